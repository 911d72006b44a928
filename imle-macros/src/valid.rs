//! Validating the arguments into a [`Config`]: every key known, every value of the right type
//! and range, and the keys consistent with each other. Everything `ImleConfig::validate`
//! checks at run time is checked here, so the constant the macro emits is always valid.

use crate::attr::{Arg, Value};
use crate::errors::{Errors, closest};
use proc_macro2::TokenStream;
use quote::ToTokens;
use std::collections::BTreeMap;
use syn::{Error, Ident};

/// The checked configuration. `None` means "not given": the runtime's default applies.
pub struct Config {
    pub noise: Noise,
    pub target: Option<Target>,
    pub lambda: Option<f32>,
    pub alpha: Option<f32>,
    pub samples: Option<u32>,
    pub marginal_samples: Option<u32>,
    pub tau: Option<f32>,
    pub target_tau: Option<f32>,
    pub symmetric: Option<bool>,
    pub scale_by_lambda: Option<bool>,
    pub sense: Option<Sense>,
    pub reduce: Option<Reduce>,
    pub seed: Option<u64>,
    /// The layer type's name (`name = "..."`).
    pub name: Option<Ident>,
}

pub enum Noise {
    SumOfGamma { k: f32, terms: u32 },
    Gumbel,
    Gaussian,
    None,
}

pub enum Target {
    Perturb,
    Normalized,
    Adaptive { target_density: f32, step: f32 },
}

pub enum Sense {
    Maximize,
    Minimize,
}

pub enum Reduce {
    None,
    Mean,
}

/// The noise used when `noise` is not given.
pub const DEFAULT_NOISE: &str = "gumbel";
/// `gamma_terms` when not given (the runtime's `DEFAULT_SOG_TERMS`).
pub const DEFAULT_GAMMA_TERMS: u32 = 10;
/// `target_density` and `adaptive_step` when not given (`Target::ADAPTIVE`).
pub const DEFAULT_TARGET_DENSITY: f32 = 1.0;
pub const DEFAULT_ADAPTIVE_STEP: f32 = 1e-4;

const NOISES: &[&str] = &["sum_of_gamma", "gumbel", "gaussian", "none"];
const TARGETS: &[&str] = &["perturb", "normalized", "adaptive"];
const SENSES: &[&str] = &["maximize", "minimize"];
const REDUCES: &[&str] = &["none", "mean"];

/// What a key's value must be.
#[derive(Clone, Copy)]
enum Kind {
    /// A string naming one of these.
    Choice(&'static [&'static str]),
    /// A number literal (integer or float) in this range.
    Number(Range),
    /// An integer literal in `min..=max`.
    Count { min: u64, max: u64 },
    /// `true`/`false`, or the bare key for `true`.
    Flag,
    /// A string holding a Rust identifier.
    Name,
}

#[derive(Clone, Copy)]
enum Range {
    Finite,
    NonNegative,
    Positive,
    /// `lambda`: > 0 for the perturb target; the adaptive target's initial β is
    /// [`Range::NonNegative`] instead.
    Lambda,
    /// Sum-of-Gamma's `k`: at least the smallest normal f32, so that the gamma shape 1/k is
    /// a finite f32 (the runtime's `ImleConfig::validate` has the same bound).
    GammaK,
}

const U32_MAX: u64 = u32::MAX as u64;

/// Every key, in the order of the documentation.
const KEYS: &[(&str, Kind)] = &[
    ("noise", Kind::Choice(NOISES)),
    ("k", Kind::Number(Range::GammaK)),
    ("gamma_terms", Kind::Count { min: 1, max: 255 }),
    ("target", Kind::Choice(TARGETS)),
    ("lambda", Kind::Number(Range::Lambda)),
    ("alpha", Kind::Number(Range::Finite)),
    (
        "samples",
        Kind::Count {
            min: 1,
            max: U32_MAX,
        },
    ),
    (
        "marginal_samples",
        Kind::Count {
            min: 1,
            max: U32_MAX,
        },
    ),
    ("tau", Kind::Number(Range::NonNegative)),
    ("target_tau", Kind::Number(Range::NonNegative)),
    ("symmetric", Kind::Flag),
    ("scale_by_lambda", Kind::Flag),
    ("sense", Kind::Choice(SENSES)),
    ("reduce", Kind::Choice(REDUCES)),
    (
        "seed",
        Kind::Count {
            min: 0,
            max: u64::MAX,
        },
    ),
    ("target_density", Kind::Number(Range::NonNegative)),
    ("adaptive_step", Kind::Number(Range::Positive)),
    ("name", Kind::Name),
];

/// Names from torch-imle, AIMLE and the paper, and other likely guesses, with our key.
const ALIASES: &[(&str, &str)] = &[
    ("beta", "lambda"),
    ("temperature", "tau"),
    ("noise_temperature", "tau"),
    ("target_noise_temperature", "target_tau"),
    ("nb_samples", "samples"),
    ("n_samples", "samples"),
    ("num_samples", "samples"),
    ("nb_marginal_samples", "marginal_samples"),
    ("nb_iterations", "gamma_terms"),
    ("terms", "gamma_terms"),
    ("s", "gamma_terms"),
    ("noise_distribution", "noise"),
    ("target_distribution", "target"),
    ("density", "target_density"),
    ("step", "adaptive_step"),
    ("maximize", "sense"),
    ("minimize", "sense"),
];

/// A checked value of one key.
enum Parsed {
    Choice(&'static str),
    Number(f32),
    Count(u64),
    Flag(bool),
    Name(Ident),
}

/// A key as given: its ident (for "this key is not allowed here") and value tokens (for
/// "this value is wrong").
struct Entry {
    key: Ident,
    tokens: TokenStream,
    parsed: Parsed,
}

/// The keys given, checked one by one.
struct Given(BTreeMap<&'static str, Entry>);

impl Given {
    fn entry(&self, key: &str) -> Option<&Entry> {
        self.0.get(key)
    }

    fn choice(&self, key: &str) -> Option<&'static str> {
        match self.entry(key)?.parsed {
            Parsed::Choice(choice) => Some(choice),
            _ => None,
        }
    }

    fn number(&self, key: &str) -> Option<f32> {
        match self.entry(key)?.parsed {
            Parsed::Number(number) => Some(number),
            _ => None,
        }
    }

    fn count(&self, key: &str) -> Option<u64> {
        match self.entry(key)?.parsed {
            Parsed::Count(count) => Some(count),
            _ => None,
        }
    }

    fn flag(&self, key: &str) -> Option<bool> {
        match self.entry(key)?.parsed {
            Parsed::Flag(flag) => Some(flag),
            _ => None,
        }
    }
}

/// Checks the arguments and builds the configuration, or returns every error found.
pub fn validate(args: &[Arg]) -> syn::Result<Config> {
    let mut errors = Errors::default();
    let mut given = Given(BTreeMap::new());
    let mut seen = Vec::new();
    // λ's range depends on the target, wherever `target` is written.
    let adaptive = args.iter().any(|arg| {
        arg.key == "target" && matches!(&arg.value, Value::Str(s) if s.value() == "adaptive")
    });
    for arg in args {
        let name = arg.key.to_string();
        let Some(&(key, kind)) = KEYS.iter().find(|(key, _)| *key == name) else {
            errors.push(unknown_key(&arg.key));
            continue;
        };
        if seen.contains(&key) {
            errors.push(Error::new_spanned(
                &arg.key,
                format!("duplicate key `{key}`: it is already set earlier in this attribute"),
            ));
            continue;
        }
        seen.push(key);
        let kind = match kind {
            Kind::Number(Range::Lambda) if adaptive => Kind::Number(Range::NonNegative),
            kind => kind,
        };
        match parse_value(&arg.key, key, kind, &arg.value) {
            Ok(parsed) => {
                let tokens = match arg.value {
                    Value::Flag => arg.key.to_token_stream(),
                    ref value => value.to_token_stream(),
                };
                let entry = Entry {
                    key: arg.key.clone(),
                    tokens,
                    parsed,
                };
                given.0.insert(key, entry);
            }
            Err(error) => errors.push(error),
        }
    }
    let config = consistent(&given, &seen, &mut errors);
    errors.finish(config)
}

fn unknown_key(key: &Ident) -> Error {
    let name = key.to_string();
    let alias = ALIASES.iter().find(|(alias, _)| *alias == name);
    let suggestion = alias
        .map(|&(_, key)| key)
        .or_else(|| closest(&name, KEYS.iter().map(|(key, _)| *key)));
    let message = match suggestion {
        Some(suggestion) => format!("unknown key `{name}`; did you mean `{suggestion}`?"),
        None => {
            let keys: Vec<&str> = KEYS.iter().map(|(key, _)| *key).collect();
            format!("unknown key `{name}`; the keys are: {}", keys.join(", "))
        }
    };
    Error::new_spanned(key, message)
}

/// Checks one value against its key's kind (everything that does not depend on other keys).
fn parse_value(ident: &Ident, key: &'static str, kind: Kind, value: &Value) -> syn::Result<Parsed> {
    let wrong = |expected: String| {
        let got = match value {
            Value::Other(_) => String::new(),
            value => format!(", got {}", value.describe()),
        };
        let message = match value {
            Value::Flag => format!("`{key}` needs a value: {expected}"),
            _ => format!("`{key}` takes {expected}{got}"),
        };
        match value {
            Value::Flag => Error::new_spanned(ident, message),
            value => Error::new_spanned(value, message),
        }
    };
    match (kind, value) {
        (Kind::Choice(choices), Value::Str(lit)) => {
            let name = lit.value();
            match choices.iter().find(|choice| **choice == name) {
                Some(choice) => Ok(Parsed::Choice(choice)),
                None => {
                    let hint = closest(&name, choices.iter().copied())
                        .map(|c| format!("did you mean \"{c}\"? "))
                        .unwrap_or_default();
                    let what = match key {
                        "noise" => "noise",
                        "target" => "target",
                        "sense" => "sense",
                        _ => "reduction",
                    };
                    Err(Error::new_spanned(
                        lit,
                        format!(
                            "unknown {what} \"{name}\"; {hint}expected one of: {}",
                            quoted(choices)
                        ),
                    ))
                }
            }
        }
        (Kind::Choice(choices), _) => Err(wrong(format!("a string, one of: {}", quoted(choices)))),
        (Kind::Number(range), Value::Int(minus, lit)) => {
            let number = lit.base10_parse::<f64>()?;
            let text = format!("{}{}", if minus.is_some() { "-" } else { "" }, lit);
            check_number(key, range, number, minus.is_some(), &text, value)
        }
        (Kind::Number(range), Value::Float(minus, lit)) => {
            let number = lit.base10_parse::<f64>()?;
            let text = format!("{}{}", if minus.is_some() { "-" } else { "" }, lit);
            check_number(key, range, number, minus.is_some(), &text, value)
        }
        (Kind::Number(_), Value::Other(_)) => Err(wrong(format!(
            "a number literal such as `{key} = 10.0` (constants and expressions cannot be \
             checked at compile time)"
        ))),
        (Kind::Number(_), _) => Err(wrong(format!("a number such as `{key} = 10.0`"))),
        (Kind::Count { min, max }, Value::Int(minus, lit)) => {
            let count = match (minus, lit.base10_parse::<u64>().ok()) {
                (None, count) | (Some(_), count @ Some(0)) => count,
                (Some(_), _) => None,
            };
            let rule = match count {
                Some(count) if (min..=max).contains(&count) => return Ok(Parsed::Count(count)),
                Some(count) if count > max && max == U32_MAX => "fit in a u32".to_string(),
                _ => match (min, max) {
                    (0, u64::MAX) => "an integer from 0 to 2^64 - 1".to_string(),
                    (min, U32_MAX) => format!("at least {min}"),
                    (min, max) => format!("between {min} and {max}"),
                },
            };
            let sign = if minus.is_some() { "-" } else { "" };
            Err(Error::new_spanned(
                value,
                format!("`{key}` must be {rule}, got {sign}{lit}"),
            ))
        }
        (Kind::Count { .. }, _) => Err(wrong(format!("an integer such as `{key} = 1`"))),
        (Kind::Flag, Value::Bool(lit)) => Ok(Parsed::Flag(lit.value)),
        (Kind::Flag, Value::Flag) => Ok(Parsed::Flag(true)),
        (Kind::Flag, _) => Err(wrong("`true` or `false`".to_string())),
        (Kind::Name, Value::Str(lit)) => match syn::parse_str::<Ident>(&lit.value()) {
            Ok(ident) if !ident.to_string().starts_with("r#") => {
                Ok(Parsed::Name(Ident::new(&ident.to_string(), lit.span())))
            }
            _ => Err(Error::new_spanned(
                lit,
                format!(
                    "`name` must be a Rust identifier such as \"TopK\", got {:?}",
                    lit.value()
                ),
            )),
        },
        (Kind::Name, _) => Err(wrong(
            "a string with the layer type's name, such as `name = \"TopK\"`".to_string(),
        )),
    }
}

fn quoted(choices: &[&str]) -> String {
    let quoted: Vec<String> = choices.iter().map(|c| format!("\"{c}\"")).collect();
    quoted.join(", ")
}

/// Converts a number literal to `f32` and checks the range that does not depend on other keys.
fn check_number(
    key: &str,
    range: Range,
    number: f64,
    negative: bool,
    text: &str,
    value: &Value,
) -> syn::Result<Parsed> {
    let number = if negative { -number } else { number };
    let single = number as f32;
    let why = if number.is_finite() && !single.is_finite() {
        " (too large for an f32)"
    } else if number != 0.0 && single == 0.0 {
        " (rounds to 0 as an f32)"
    } else {
        ""
    };
    let ok = why.is_empty()
        && single.is_finite()
        && match range {
            Range::Finite => true,
            Range::NonNegative => single >= 0.0,
            Range::Positive | Range::Lambda => single > 0.0,
            Range::GammaK => single >= f32::MIN_POSITIVE,
        };
    if ok {
        return Ok(Parsed::Number(single));
    }
    let rule = match range {
        Range::Finite => "finite",
        Range::NonNegative => "finite and >= 0",
        Range::Positive => "finite and > 0",
        Range::Lambda => "finite and > 0 (0 is allowed only for the adaptive target)",
        Range::GammaK => {
            "finite and >= 1.1754944e-38 (the smallest normal f32: the gamma shape 1/k must be \
             a finite f32)"
        }
    };
    Err(Error::new_spanned(
        value,
        format!("`{key}` must be {rule}, got {text}{why}"),
    ))
}

/// The checks across keys, and the typed configuration.
fn consistent(given: &Given, seen: &[&str], errors: &mut Errors) -> Config {
    // A key given with a bad value already has its error: checks against it would only add
    // noise.
    let known = |key: &str| given.entry(key).is_some() || !seen.contains(&key);
    let noise_name = given.choice("noise").unwrap_or(DEFAULT_NOISE);
    let noise_is = |name: &str| match given.entry("noise") {
        Some(_) => format!("the noise is \"{name}\""),
        None => format!("the noise is \"{name}\" (the default)"),
    };
    let noise = match noise_name {
        "sum_of_gamma" => {
            let k = given.number("k");
            if !seen.contains(&"k") {
                errors.push(Error::new_spanned(
                    &given.entry("noise").unwrap().tokens,
                    "sum_of_gamma noise needs `k`, the expected number of ones in a solution \
                     (e.g. `k = 5` for a top-5 solver)",
                ));
            }
            let terms = given
                .count("gamma_terms")
                .map_or(DEFAULT_GAMMA_TERMS, |t| t as u32);
            Noise::SumOfGamma {
                k: k.unwrap_or(1.0),
                terms,
            }
        }
        other => {
            for key in ["k", "gamma_terms"] {
                if let Some(entry) = given.entry(key).filter(|_| known("noise")) {
                    errors.push(Error::new_spanned(
                        &entry.key,
                        format!(
                            "`{key}` only applies to sum_of_gamma noise, but {}; add \
                             `noise = \"sum_of_gamma\"` or remove `{key}`",
                            noise_is(other)
                        ),
                    ));
                }
            }
            match other {
                "gumbel" => Noise::Gumbel,
                "gaussian" => Noise::Gaussian,
                _ => Noise::None,
            }
        }
    };
    if noise_name == "none" {
        for key in ["tau", "target_tau"] {
            if let Some(entry) = given.entry(key) {
                errors.push(Error::new_spanned(
                    &entry.key,
                    format!(
                        "`{key}` scales the noise, but the noise is \"none\": remove `{key}` or \
                         choose a noise"
                    ),
                ));
            }
        }
    }

    let adaptive = given.choice("target") == Some("adaptive");
    if !adaptive {
        for key in ["target_density", "adaptive_step"] {
            if let Some(entry) = given.entry(key).filter(|_| known("target")) {
                let target = match given.choice("target") {
                    Some(target) => format!("the target is \"{target}\""),
                    None => "the target is \"perturb\" (the default)".to_string(),
                };
                errors.push(Error::new_spanned(
                    &entry.key,
                    format!(
                        "`{key}` only applies to the adaptive target, but {target}; add \
                         `target = \"adaptive\"` or remove `{key}`"
                    ),
                ));
            }
        }
    }
    let lambda = given.number("lambda");
    let target = given.choice("target").map(|target| match target {
        "adaptive" => Target::Adaptive {
            target_density: given
                .number("target_density")
                .unwrap_or(DEFAULT_TARGET_DENSITY),
            step: given
                .number("adaptive_step")
                .unwrap_or(DEFAULT_ADAPTIVE_STEP),
        },
        "normalized" => Target::Normalized,
        _ => Target::Perturb,
    });

    let samples = given.count("samples").map(|s| s as u32);
    let marginal_samples = given.count("marginal_samples").map(|m| m as u32);
    if samples
        .unwrap_or(1)
        .checked_mul(marginal_samples.unwrap_or(1))
        .is_none()
    {
        let entry = given.entry("marginal_samples").unwrap();
        errors.push(Error::new_spanned(
            &entry.tokens,
            format!(
                "samples × marginal_samples must fit in a u32, got {} × {}",
                samples.unwrap_or(1),
                marginal_samples.unwrap_or(1)
            ),
        ));
    }

    Config {
        noise,
        target,
        lambda,
        alpha: given.number("alpha"),
        samples,
        marginal_samples,
        tau: given.number("tau"),
        target_tau: given.number("target_tau"),
        symmetric: given.flag("symmetric"),
        scale_by_lambda: given.flag("scale_by_lambda"),
        sense: given.choice("sense").map(|sense| match sense {
            "minimize" => Sense::Minimize,
            _ => Sense::Maximize,
        }),
        reduce: given.choice("reduce").map(|reduce| match reduce {
            "mean" => Reduce::Mean,
            _ => Reduce::None,
        }),
        seed: given.count("seed"),
        name: match given.entry("name") {
            Some(Entry {
                parsed: Parsed::Name(name),
                ..
            }) => Some(name.clone()),
            _ => None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quote::quote;

    fn errors(args: TokenStream) -> Vec<String> {
        let args = crate::attr::parse(args).unwrap();
        match validate(&args) {
            Ok(_) => vec![],
            Err(error) => error.into_iter().map(|e| e.to_string()).collect(),
        }
    }

    #[test]
    fn a_full_configuration_is_accepted() {
        let args = crate::attr::parse(quote!(
            noise = "sum_of_gamma",
            k = 5,
            gamma_terms = 20,
            target = "adaptive",
            lambda = 0,
            alpha = -0.5,
            samples = 3,
            marginal_samples = 2,
            tau = 0.5,
            target_tau = 2,
            symmetric,
            scale_by_lambda = false,
            sense = "minimize",
            reduce = "mean",
            seed = 7,
            target_density = 2.5,
            adaptive_step = 1e-3,
            name = "MyLayer"
        ))
        .unwrap();
        let config = validate(&args).unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(
            config.noise,
            Noise::SumOfGamma { k: 5.0, terms: 20 }
        ));
        assert!(matches!(
            config.target,
            Some(Target::Adaptive {
                target_density: 2.5,
                step: 1e-3
            })
        ));
        assert_eq!(config.lambda, Some(0.0));
        assert_eq!(config.alpha, Some(-0.5));
        assert_eq!(
            (config.samples, config.marginal_samples),
            (Some(3), Some(2))
        );
        assert_eq!((config.tau, config.target_tau), (Some(0.5), Some(2.0)));
        assert_eq!(config.symmetric, Some(true));
        assert_eq!(config.scale_by_lambda, Some(false));
        assert!(matches!(config.sense, Some(Sense::Minimize)));
        assert!(matches!(config.reduce, Some(Reduce::Mean)));
        assert_eq!(config.seed, Some(7));
        assert_eq!(config.name.unwrap().to_string(), "MyLayer");
    }

    #[test]
    fn every_error_is_reported_at_once() {
        let found = errors(quote!(
            lamda = 1,
            samples = 0,
            noise = "gumble",
            lambda = "10",
            k = 2,
            target_density = 1,
            seed = -1,
            seed = 2
        ));
        assert_eq!(found.len(), 7, "{found:#?}");
        assert!(found[0].contains("did you mean `lambda`"));
        assert!(found[2].contains("did you mean \"gumbel\""));
        assert!(found[5].starts_with("duplicate key `seed`"), "{found:#?}");
    }

    #[test]
    fn numbers_must_fit_an_f32() {
        assert!(errors(quote!(lambda = 1e39))[0].contains("too large for an f32"));
        assert!(errors(quote!(lambda = 1e400))[0].contains("must be finite"));
        assert!(errors(quote!(lambda = 1e-50))[0].contains("rounds to 0"));
        assert!(errors(quote!(tau = -0.0)).is_empty());
        assert!(errors(quote!(alpha = -3)).is_empty());
    }

    #[test]
    fn sum_of_gamma_k_must_have_a_finite_inverse() {
        // 1e-39 is a subnormal f32 > 0, but 1/k overflows; the smallest normal f32 is fine.
        let found = errors(quote!(noise = "sum_of_gamma", k = 1e-39));
        assert!(found[0].contains("gamma shape 1/k"), "{found:?}");
        assert!(errors(quote!(noise = "sum_of_gamma", k = 1.1754944e-38)).is_empty());
    }

    #[test]
    fn counts_and_their_product_are_checked() {
        assert!(errors(quote!(gamma_terms = 256))[0].contains("between 1 and 255"));
        assert!(errors(quote!(samples = 4294967296))[0].contains("fit in a u32"));
        assert!(errors(quote!(samples = 0))[0].contains("must be at least 1, got 0"));
        let found = errors(quote!(samples = 65536, marginal_samples = 65536));
        assert!(found[0].contains("must fit in a u32"), "{found:?}");
        assert!(errors(quote!(seed = 18446744073709551615)).is_empty());
    }

    #[test]
    fn a_bad_value_adds_no_second_error() {
        assert_eq!(errors(quote!(noise = "sum_of_gama", k = 5)).len(), 1);
        assert_eq!(
            errors(quote!(target = "adaptiv", target_density = 5)).len(),
            1
        );
        assert_eq!(errors(quote!(noise = "sum_of_gamma", k = 0)).len(), 1);
    }

    #[test]
    fn aliases_suggest_our_names() {
        assert!(errors(quote!(nb_samples = 2))[0].contains("did you mean `samples`"));
        assert!(errors(quote!(banana = 2))[0].contains("the keys are: noise, k,"));
    }
}
