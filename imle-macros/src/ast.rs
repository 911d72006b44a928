//! Reading the solver function's signature into a [`SolverFn`]: which of the supported forms
//! it is, with an error on the offending token for anything else.

use crate::errors::Errors;
use proc_macro2::Span;
use quote::ToTokens;
use std::iter::Peekable;
use syn::spanned::Spanned;
use syn::{
    Attribute, Error, FnArg, GenericArgument, GenericParam, Ident, ItemFn, PathArguments,
    ReturnType, Safety, Signature, Type, Visibility,
};

/// The list every signature error ends with.
pub const SUPPORTED: &str = "\
#[imle_layer] supports these solver signatures:
    fn(theta: &[f32], z: &mut [f32])                 writes the solution into z (all zeros)
    fn(theta: &[f32]) -> Vec<f32>                    returns the solution
    fn(theta: &[f32], z: &mut [f32]) -> Result<(), E>
    fn(theta: &[f32]) -> Result<Vec<f32>, E>         fallible, with E: Display
    fn(context: &Ctx, theta: &[f32], ...)            a leading context the layer owns
    fn(theta: &[f32], shape: &[usize], ...)          the instance shape after theta
    fn(theta: &Tensor) -> candle_core::Result<Tensor>    batched: the whole [N, ...] batch
(f64 in place of f32 works too)";

/// The solver function, as the expansion needs it.
pub struct SolverFn {
    pub vis: Visibility,
    /// The function's doc comments, copied onto the layer type.
    pub docs: Vec<Attribute>,
    /// Its `#[cfg]`s, copied onto every generated item.
    pub cfgs: Vec<Attribute>,
    pub ident: Ident,
    /// `Ctx` of a leading `&Ctx` parameter.
    pub context: Option<Type>,
    pub form: Form,
    /// The return type's span (or the signature's), where output conversion errors point.
    pub output_span: Span,
}

pub enum Form {
    /// A per-instance solver over slices of `element` (`f32` or `f64`).
    Instance {
        element: Box<Type>,
        /// Takes `shape: &[usize]` after theta.
        shape: bool,
        /// Takes `z: &mut [E]` (otherwise returns the solution).
        writes: bool,
    },
    /// `fn(&Tensor) -> Result<Tensor>`.
    Batched,
}

/// A parameter or return type, classified.
enum Shape<'a> {
    /// `&[T]` or `&mut [T]`.
    Slice {
        mutable: bool,
        element: &'a Type,
    },
    /// `&…Tensor`.
    TensorRef,
    /// `&T` for another `T`.
    Ref(&'a Type),
    Other,
}

fn classify(ty: &Type) -> Shape<'_> {
    let Type::Reference(reference) = ty else {
        return Shape::Other;
    };
    match unparen(&reference.elem) {
        Type::Slice(slice) => Shape::Slice {
            mutable: reference.mutability.is_some(),
            element: &slice.elem,
        },
        _ if reference.mutability.is_some() => Shape::Other,
        elem if last_ident(elem).is_some_and(|i| i == "Tensor") => Shape::TensorRef,
        elem => Shape::Ref(elem),
    }
}

fn unparen(ty: &Type) -> &Type {
    match ty {
        Type::Paren(inner) => unparen(&inner.elem),
        Type::Group(inner) => unparen(&inner.elem),
        ty => ty,
    }
}

/// The last segment's name of a path type (`f32`, `Vec`, `Result`, `Tensor`).
fn last_ident(ty: &Type) -> Option<&Ident> {
    match unparen(ty) {
        Type::Path(path) if path.qself.is_none() => path.path.segments.last().map(|s| &s.ident),
        _ => None,
    }
}

/// The type arguments of a path type's last segment (`T, E` of `Result<T, E>`).
fn type_args(ty: &Type) -> Vec<&Type> {
    let Type::Path(path) = unparen(ty) else {
        return Vec::new();
    };
    match path.path.segments.last().map(|s| &s.arguments) {
        Some(PathArguments::AngleBracketed(args)) => args
            .args
            .iter()
            .filter_map(|arg| match arg {
                GenericArgument::Type(ty) => Some(ty),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

fn is_unit(ty: &Type) -> bool {
    matches!(unparen(ty), Type::Tuple(tuple) if tuple.elems.is_empty())
}

fn is_named(ty: &Type, name: &str) -> bool {
    last_ident(ty).is_some_and(|i| i == name) && type_args(ty).is_empty()
}

/// `Vec<element>`.
fn is_vec_of(ty: &Type, element: &str) -> bool {
    last_ident(ty).is_some_and(|i| i == "Vec")
        && matches!(type_args(ty)[..], [inner] if is_named(inner, element))
}

/// The `T` of `Result<T>` / `Result<T, E>`.
fn result_ok(ty: &Type) -> Option<&Type> {
    if last_ident(ty).is_none_or(|i| i != "Result") {
        return None;
    }
    match type_args(ty)[..] {
        [ok] | [ok, _] => Some(ok),
        _ => None,
    }
}

fn unsupported(tokens: impl ToTokens, problem: &str) -> Error {
    Error::new_spanned(tokens, format!("{problem}\n{SUPPORTED}"))
}

impl SolverFn {
    /// Reads the signature; every problem becomes an error on its token.
    pub fn from_fn(item: &ItemFn) -> syn::Result<SolverFn> {
        let mut errors = Errors::default();
        let sig = &item.sig;
        if let Some(asyncness) = &sig.asyncness {
            errors.push(Error::new_spanned(
                asyncness,
                "an #[imle_layer] solver cannot be `async`: the layer calls it synchronously, \
                 from many threads",
            ));
        }
        if let Safety::Unsafe(unsafety) = &sig.safety {
            errors.push(Error::new_spanned(
                unsafety,
                "an #[imle_layer] solver cannot be an `unsafe fn`: wrap it in a safe function \
                 that upholds its contract",
            ));
        }
        for param in &sig.generics.params {
            if !matches!(param, GenericParam::Lifetime(_)) {
                errors.push(Error::new_spanned(
                    param,
                    "an #[imle_layer] solver cannot be generic: the layer calls it with fixed \
                     types; write a non-generic function that calls the generic one",
                ));
            }
        }
        if let Some(where_clause) = &sig.generics.where_clause {
            errors.push(Error::new_spanned(
                where_clause,
                "an #[imle_layer] solver cannot have a `where` clause",
            ));
        }
        if let Some(variadic) = &sig.variadic {
            errors.push(unsupported(
                variadic,
                "variadic functions are not supported",
            ));
        }
        let mut generic = sig.generics.type_params().next().is_some()
            || sig.generics.const_params().next().is_some();
        for input in &sig.inputs {
            if let FnArg::Typed(typed) = input
                && let Some(impl_trait) = impl_trait(&typed.ty)
            {
                generic = true;
                errors.push(Error::new_spanned(
                    impl_trait,
                    "an #[imle_layer] solver cannot be generic: `impl Trait` parameters make it \
                     generic; use the concrete type",
                ));
            }
        }
        // A generic function's parameters are not worth a second error.
        let form = if generic {
            None
        } else {
            read_params(item, &mut errors)
        };
        let output_span = match &sig.output {
            ReturnType::Type(_, ty) => ty.span(),
            ReturnType::Default => sig.paren_token.span.join(),
        };
        let (docs, cfgs) = (attrs(&item.attrs, "doc"), attrs(&item.attrs, "cfg"));
        let solver = form.map(|(context, form)| SolverFn {
            vis: item.vis.clone(),
            docs,
            cfgs,
            ident: sig.ident.clone(),
            context,
            form,
            output_span,
        });
        let solver = errors.finish(solver)?;
        Ok(solver.expect("an error was pushed for every missing form"))
    }
}

/// An `impl Trait` in a parameter type (possibly behind references).
fn impl_trait(ty: &Type) -> Option<&Type> {
    match ty {
        Type::ImplTrait(_) => Some(ty),
        Type::Reference(reference) => impl_trait(&reference.elem),
        Type::Paren(inner) => impl_trait(&inner.elem),
        _ => None,
    }
}

fn attrs(attrs: &[Attribute], name: &str) -> Vec<Attribute> {
    attrs
        .iter()
        .filter(|attr| attr.path().is_ident(name))
        .cloned()
        .collect()
}

/// The parameter types, in order, yet to be read.
type Params<'a> = Peekable<std::vec::IntoIter<&'a Type>>;

/// Matches the parameters and return type against the supported forms, one step per part of
/// the signature: `[context,] theta[, shape][, z]`, then the return type. Each step pushes its
/// error and returns `None` when its part is wrong, which ends the reading (the parts after a
/// wrong one would only get confusing errors).
fn read_params(item: &ItemFn, errors: &mut Errors) -> Option<(Option<Type>, Form)> {
    let sig = &item.sig;
    let mut params = param_types(sig, errors)?.into_iter().peekable();
    let context = read_context(&mut params, errors)?;
    let element = match read_theta(&mut params, sig, context.is_some(), errors)? {
        Theta::Tensor => {
            return read_batched(item, params.next(), errors).map(|form| (context, form));
        }
        Theta::Slice(element) => element,
    };
    let element_name = last_ident(element)
        .expect("checked by read_theta")
        .to_string();
    let shape = read_shape(&mut params);
    let writes = read_z(&mut params, &element_name, errors);
    no_extra_param(&mut params, shape, writes, errors)?;
    check_output(sig, writes, &element_name, errors)?;
    let element = Box::new(element.clone());
    Some((
        context,
        Form::Instance {
            element,
            shape,
            writes,
        },
    ))
}

/// The parameters' types. A `self` parameter is an error: the attribute goes on a free
/// function (in an `impl` it could not add the layer's items beside it).
fn param_types<'a>(sig: &'a Signature, errors: &mut Errors) -> Option<Vec<&'a Type>> {
    let mut types = Vec::new();
    for input in &sig.inputs {
        match input {
            FnArg::Typed(typed) => types.push(&*typed.ty),
            FnArg::Receiver(receiver) => {
                errors.push(Error::new_spanned(
                    receiver,
                    "#[imle_layer] goes on a free function, not a method: call your method \
                     from a function `fn(theta: &[f32], z: &mut [f32])` outside the `impl`",
                ));
                return None;
            }
        }
    }
    Some(types)
}

/// The optional leading context: `Some(None)` when there is none, `Some(Some(Ctx))` for a
/// `&Ctx`, `None` (with its error) for a context the layer cannot hold: a `&mut` (the solver
/// runs on many threads at once) or a borrow of an unsized type (the layer owns the context).
fn read_context(params: &mut Params, errors: &mut Errors) -> Option<Option<Type>> {
    if let Some(&first) = params.peek()
        && let Type::Reference(reference) = first
        && reference.mutability.is_some()
        && !matches!(unparen(&reference.elem), Type::Slice(_))
    {
        errors.push(unsupported(
            first,
            "a context parameter must be a shared reference `&Ctx`: the solver runs on many \
             threads at once",
        ));
        return None;
    }
    let Some(&first) = params.peek() else {
        return Some(None);
    };
    let Shape::Ref(ctx) = classify(first) else {
        return Some(None);
    };
    params.next();
    match ctx {
        Type::Slice(_) | Type::TraitObject(_) | Type::ImplTrait(_) => {}
        ty if is_named(ty, "str") => {}
        ty => return Some(Some(ty.clone())),
    }
    errors.push(unsupported(
        first,
        "a context parameter must borrow a sized type that the layer can own, such as \
         `&Graph` or `&Vec<f32>`",
    ));
    None
}

/// What theta is: the whole batch, or one instance as a slice of this element type.
enum Theta<'a> {
    Tensor,
    Slice(&'a Type),
}

/// theta, the first parameter after the context: `&[f32]` or `&[f64]` for a per-instance
/// solver, `&Tensor` for a batched one. A missing theta, or one of another type, is an error.
fn read_theta<'a>(
    params: &mut Params<'a>,
    sig: &Signature,
    after_context: bool,
    errors: &mut Errors,
) -> Option<Theta<'a>> {
    let Some(theta) = params.next() else {
        let span = sig.paren_token.span.join();
        let problem = if after_context {
            "the solver takes no `theta: &[f32]` after its context"
        } else {
            "the solver takes no `theta: &[f32]`"
        };
        errors.push(Error::new(span, format!("{problem}\n{SUPPORTED}")));
        return None;
    };
    match classify(theta) {
        Shape::TensorRef => Some(Theta::Tensor),
        Shape::Slice {
            mutable: false,
            element,
        } if is_named(element, "f32") || is_named(element, "f64") => Some(Theta::Slice(element)),
        Shape::Slice {
            mutable: false,
            element,
        } => {
            errors.push(unsupported(
                element,
                "theta's elements must be `f32` or `f64`",
            ));
            None
        }
        _ => {
            let problem = if after_context {
                "expected `theta: &[f32]` after the context"
            } else {
                "expected `theta: &[f32]` (or a context `&Ctx` before it)"
            };
            errors.push(unsupported(theta, problem));
            None
        }
    }
}

/// Whether the next parameter is the optional `shape: &[usize]` (which it then consumes).
fn read_shape(params: &mut Params) -> bool {
    let is_shape = |next: &&Type| match classify(next) {
        Shape::Slice {
            mutable: false,
            element,
        } => is_named(element, "usize"),
        _ => false,
    };
    params.next_if(is_shape).is_some()
}

/// Whether the next parameter is the optional `z: &mut [E]` (which it then consumes). Its
/// element type must be theta's, `element_name`: the generated code converts both through
/// one `Element` type.
fn read_z(params: &mut Params, element_name: &str, errors: &mut Errors) -> bool {
    let Some(&next) = params.peek() else {
        return false;
    };
    let Shape::Slice {
        mutable: true,
        element: z_element,
    } = classify(next)
    else {
        return false;
    };
    params.next();
    if !is_named(z_element, element_name) {
        errors.push(unsupported(
            z_element,
            &format!("z must be `&mut [{element_name}]`, like theta"),
        ));
    }
    true
}

/// Nothing after the parameters read: any other is an error that says what was expected at
/// its place (`shape` and `writes`: whether shape and z were read).
fn no_extra_param(
    params: &mut Params,
    shape: bool,
    writes: bool,
    errors: &mut Errors,
) -> Option<()> {
    let Some(extra) = params.next() else {
        return Some(());
    };
    let expected = match (shape, writes) {
        (_, true) => "no parameter after `z: &mut [f32]`",
        (true, false) => "`z: &mut [f32]` or nothing after `shape: &[usize]`",
        (false, false) => "`shape: &[usize]`, `z: &mut [f32]` or nothing after theta",
    };
    errors.push(unsupported(
        extra,
        &format!("unexpected parameter: expected {expected}"),
    ));
    None
}

/// The return type matches the parameters: `()` (or `Result<(), E>`) when the solver writes
/// into z, the solution `Vec<E>` (or `Result<Vec<E>, E2>`) otherwise.
fn check_output(
    sig: &Signature,
    writes: bool,
    element_name: &str,
    errors: &mut Errors,
) -> Option<()> {
    let output = match &sig.output {
        ReturnType::Default => None,
        ReturnType::Type(_, ty) => Some(&**ty),
    };
    let ok = output.map(|ty| result_ok(ty).unwrap_or(ty));
    let fits = match ok {
        None => writes,
        Some(ty) if is_unit(ty) => writes,
        Some(ty) => !writes && is_vec_of(ty, element_name),
    };
    if fits {
        return Some(());
    }
    let problem = if writes {
        "a solver that writes into `z` returns nothing, `()` or `Result<(), E>`".to_string()
    } else {
        format!(
            "a solver without a `z: &mut [{element_name}]` parameter returns its solution: \
             `Vec<{element_name}>` or `Result<Vec<{element_name}>, E>`"
        )
    };
    match output {
        Some(ty) => errors.push(unsupported(ty, &problem)),
        None => errors.push(Error::new(
            sig.paren_token.span.join(),
            format!("{problem}\n{SUPPORTED}"),
        )),
    }
    None
}

/// `fn([context,] theta: &Tensor) -> Result<Tensor>` (or `-> Tensor`).
fn read_batched(item: &ItemFn, extra: Option<&Type>, errors: &mut Errors) -> Option<Form> {
    if let Some(extra) = extra {
        errors.push(unsupported(
            extra,
            "unexpected parameter: a batched solver takes only `theta: &Tensor` (after an \
             optional context)",
        ));
        return None;
    }
    match &item.sig.output {
        ReturnType::Type(_, ty) if is_named(result_ok(ty).unwrap_or(ty), "Tensor") => {
            Some(Form::Batched)
        }
        ReturnType::Type(_, ty) => {
            errors.push(unsupported(
                ty,
                "a batched solver returns `Result<Tensor>` (or `Tensor`)",
            ));
            None
        }
        ReturnType::Default => {
            errors.push(Error::new(
                item.sig.paren_token.span.join(),
                format!("a batched solver returns `Result<Tensor>` (or `Tensor`)\n{SUPPORTED}"),
            ));
            None
        }
    }
}
