//! Parsing the attribute's arguments, `key = value, ...`, into [`Arg`]s. Only the syntax is
//! checked here; what the keys and values mean is `valid.rs`'s business.

use proc_macro2::TokenStream;
use quote::{ToTokens, TokenStreamExt};
use syn::parse::{Parse, ParseStream, Parser};
use syn::punctuated::Punctuated;
use syn::{Ident, Lit, LitBool, LitFloat, LitInt, LitStr, Token};

/// One `key = value` (or a bare `key`, meaning `key = true`).
pub struct Arg {
    pub key: Ident,
    pub value: Value,
}

/// A value as written: literals are kept with their sign so errors can point at `-1`.
pub enum Value {
    /// A bare key with no `= value`.
    Flag,
    Str(LitStr),
    Int(Option<Token![-]>, LitInt),
    Float(Option<Token![-]>, LitFloat),
    Bool(LitBool),
    /// Anything else (a path, an expression, another literal kind), up to the next comma.
    Other(TokenStream),
}

impl Value {
    /// "a string", "a number", ... for messages about wrong value types.
    pub fn describe(&self) -> String {
        match self {
            Value::Flag => "no value".to_string(),
            Value::Str(_) => "a string".to_string(),
            Value::Int(..) => "an integer".to_string(),
            Value::Float(..) => "a float".to_string(),
            Value::Bool(_) => "a bool".to_string(),
            Value::Other(tokens) => format!("`{tokens}`"),
        }
    }
}

impl ToTokens for Value {
    fn to_tokens(&self, tokens: &mut TokenStream) {
        match self {
            Value::Flag => {}
            Value::Str(lit) => lit.to_tokens(tokens),
            Value::Int(minus, lit) => {
                minus.to_tokens(tokens);
                lit.to_tokens(tokens);
            }
            Value::Float(minus, lit) => {
                minus.to_tokens(tokens);
                lit.to_tokens(tokens);
            }
            Value::Bool(lit) => lit.to_tokens(tokens),
            Value::Other(other) => tokens.append_all(other.clone()),
        }
    }
}

impl Parse for Arg {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let key: Ident = input.parse()?;
        if !input.peek(Token![=]) {
            return Ok(Arg {
                key,
                value: Value::Flag,
            });
        }
        input.parse::<Token![=]>()?;
        if input.is_empty() || input.peek(Token![,]) {
            return Err(input.error(format!("expected a value after `{key} =`")));
        }
        let minus: Option<Token![-]> = input.parse()?;
        let fork = input.fork();
        if let Ok(lit) = fork.parse::<Lit>()
            && (fork.is_empty() || fork.peek(Token![,]))
        {
            input.parse::<Lit>()?;
            let value = match (minus, lit) {
                (minus, Lit::Int(int)) => Value::Int(minus, int),
                (minus, Lit::Float(float)) => Value::Float(minus, float),
                (None, Lit::Str(string)) => Value::Str(string),
                (None, Lit::Bool(boolean)) => Value::Bool(boolean),
                (minus, other) => Value::Other(quote::quote!(#minus #other)),
            };
            return Ok(Arg { key, value });
        }
        let mut rest = minus.into_token_stream();
        while !input.is_empty() && !input.peek(Token![,]) {
            rest.append(input.parse::<proc_macro2::TokenTree>()?);
        }
        Ok(Arg {
            key,
            value: Value::Other(rest),
        })
    }
}

/// Parses the whole argument list (possibly empty, trailing comma allowed).
pub fn parse(args: TokenStream) -> syn::Result<Vec<Arg>> {
    let args = Punctuated::<Arg, Token![,]>::parse_terminated.parse2(args)?;
    Ok(args.into_iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use quote::quote;

    #[test]
    fn values_keep_their_kind_and_sign() {
        let args = parse(quote!(
            noise = "gumbel",
            lambda = -2.5,
            samples = 3,
            symmetric,
            seed = f32::NAN,
            scale_by_lambda = true,
        ))
        .unwrap();
        let kinds: Vec<_> = args
            .iter()
            .map(|a| format!("{}: {}", a.key, a.value.describe()))
            .collect();
        assert_eq!(
            kinds,
            [
                "noise: a string",
                "lambda: a float",
                "samples: an integer",
                "symmetric: no value",
                "seed: `f32 :: NAN`",
                "scale_by_lambda: a bool"
            ]
        );
        assert_eq!(args[1].value.to_token_stream().to_string(), "- 2.5");
    }

    #[test]
    fn syntax_errors_are_reported() {
        assert!(parse(quote!(lambda =)).is_err());
        assert!(parse(quote!(lambda = , k = 1)).is_err());
        assert!(parse(quote!("lambda" = 1)).is_err());
        assert!(parse(quote!()).unwrap().is_empty());
    }
}
