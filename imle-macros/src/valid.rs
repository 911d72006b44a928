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
    /// What the attribute generates over the solver.
    pub estimator: Estimator,
    /// The `estimator = "..."` value as written, for errors that involve the function too.
    pub estimator_tokens: Option<TokenStream>,
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
    /// The perturbed optimizer's σ and perturbation (`estimator = "perturbed"` only).
    pub sigma: Option<f32>,
    pub perturbation: Option<Perturbation>,
    /// The layer type's name (`name = "..."`).
    pub name: Option<Ident>,
}

/// The estimator the attribute builds over the solver (`estimator = "..."`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Estimator {
    /// `ImleLayer` with the attribute's `ImleConfig` (the default).
    Imle,
    /// `StraightThrough`, the wrapper of `ImleLayer::straight_through`.
    StraightThrough,
    /// `ImleLayer` with `ImleConfig::blackbox`'s configuration.
    Blackbox,
    /// `perturbed::PerturbedOptimizer` with a `PerturbedConfig`.
    Perturbed,
    /// `spo::SpoPlus` with a `Sense`.
    SpoPlus,
}

impl Estimator {
    fn parse(name: &str) -> Estimator {
        match name {
            "straight_through" => Estimator::StraightThrough,
            "blackbox" => Estimator::Blackbox,
            "perturbed" => Estimator::Perturbed,
            "spo_plus" => Estimator::SpoPlus,
            _ => Estimator::Imle,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Estimator::Imle => "imle",
            Estimator::StraightThrough => "straight_through",
            Estimator::Blackbox => "blackbox",
            Estimator::Perturbed => "perturbed",
            Estimator::SpoPlus => "spo_plus",
        }
    }

    /// The noise when `noise` is not given: I-MLE's Gumbel; none for the straight-through
    /// baseline (`MAP(θ)` forward) and blackbox (which has none); Gaussian for the perturbed
    /// optimizer (Berthet et al.'s, and the only one its multiplicative form accepts).
    fn default_noise(self) -> &'static str {
        match self {
            Estimator::Imle => DEFAULT_NOISE,
            Estimator::Perturbed => "gaussian",
            Estimator::StraightThrough | Estimator::Blackbox | Estimator::SpoPlus => "none",
        }
    }
}

pub enum Perturbation {
    Additive,
    Multiplicative,
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

const ESTIMATORS: &[&str] = &[
    "imle",
    "straight_through",
    "blackbox",
    "perturbed",
    "spo_plus",
];
const NOISES: &[&str] = &["sum_of_gamma", "gumbel", "gaussian", "none"];
const PERTURBATIONS: &[&str] = &["additive", "multiplicative"];
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
    /// Sum-of-Gamma's `k`: > 0 here; its lower bound depends on `gamma_terms` and is checked
    /// with the other keys ([`sum_of_gamma_min_k`]).
    GammaK,
}

const U32_MAX: u64 = u32::MAX as u64;

/// Every key, in the order of the documentation.
const KEYS: &[(&str, Kind)] = &[
    ("estimator", Kind::Choice(ESTIMATORS)),
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
    ("sigma", Kind::Number(Range::Positive)),
    ("perturbation", Kind::Choice(PERTURBATIONS)),
    ("name", Kind::Name),
];

/// Other names of the estimators (the examples' method names, the papers' acronyms), with
/// ours: `estimator = "ste"` is an error that suggests `"straight_through"`.
const ESTIMATOR_ALIASES: &[(&str, &str)] = &[
    ("ste", "straight_through"),
    ("straight-through", "straight_through"),
    ("identity", "straight_through"),
    ("bb", "blackbox"),
    ("pfyl", "perturbed"),
    ("fenchel_young", "perturbed"),
    ("perturbed_optimizer", "perturbed"),
    ("dpo", "perturbed"),
    ("spo", "spo_plus"),
    ("spo+", "spo_plus"),
    ("spoplus", "spo_plus"),
    ("i-mle", "imle"),
    ("aimle", "imle"),
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
    ("method", "estimator"),
    ("gradient", "estimator"),
    ("epsilon", "sigma"),
    ("noise_scale", "sigma"),
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
    // The estimator decides which keys apply; an unknown one has its error, and checking the
    // other keys against a guess would only add noise.
    if seen.contains(&"estimator") && given.entry("estimator").is_none() {
        return Err(errors
            .finish(())
            .expect_err("the estimator's error was pushed"));
    }
    let estimator = Estimator::parse(given.choice("estimator").unwrap_or("imle"));
    for arg in args {
        let Some(key) = given.0.keys().copied().find(|key| arg.key == key) else {
            continue;
        };
        if let Some(why) = not_applicable(key, estimator) {
            let chosen = match given.entry("estimator") {
                Some(_) => format!("estimator = \"{}\"", estimator.name()),
                None => "estimator = \"imle\" (the default)".to_string(),
            };
            errors.push(Error::new_spanned(
                &arg.key,
                format!("`{key}` does not apply to {chosen}: {why}"),
            ));
            // Still `seen`, so the checks that involve it are skipped.
            given.0.remove(key);
        }
    }
    let config = consistent(&given, &seen, estimator, &mut errors);
    errors.finish(config)
}

/// The estimator `args` ask for, if they name a valid one (for the stand-in types that an
/// attribute with errors still defines).
pub fn declared_estimator(args: &[Arg]) -> Estimator {
    args.iter()
        .find(|arg| arg.key == "estimator")
        .and_then(|arg| match &arg.value {
            Value::Str(name) => ESTIMATORS
                .contains(&name.value().as_str())
                .then(|| Estimator::parse(&name.value())),
            _ => None,
        })
        .unwrap_or(Estimator::Imle)
}

/// Why `key` does not apply to `estimator` (the end of the error message), or `None` when it
/// applies.
fn not_applicable(key: &str, estimator: Estimator) -> Option<&'static str> {
    const IMLE_BACKWARD: &[&str] = &[
        "target",
        "lambda",
        "alpha",
        "marginal_samples",
        "target_tau",
        "symmetric",
        "scale_by_lambda",
        "target_density",
        "adaptive_step",
    ];
    const PERTURBED_ONLY: &[&str] = &["sigma", "perturbation"];
    if matches!(key, "estimator" | "name" | "sense") {
        return None;
    }
    match estimator {
        Estimator::Imle => PERTURBED_ONLY.contains(&key).then_some(
            "it configures the perturbed optimizer (`estimator = \"perturbed\"`); I-MLE's noise \
             is scaled by `tau` and always added to θ",
        ),
        Estimator::StraightThrough if IMLE_BACKWARD.contains(&key) => Some(
            "it configures I-MLE's backward pass (the target distribution and its gradient), \
             and the straight-through estimator's backward pass is the identity; remove it, or \
             use `estimator = \"imle\"`",
        ),
        Estimator::StraightThrough => PERTURBED_ONLY.contains(&key).then_some(
            "it configures the perturbed optimizer (`estimator = \"perturbed\"`); the \
             straight-through forward noise is scaled by `tau`",
        ),
        Estimator::Blackbox => match key {
            "lambda" => None,
            "noise" | "k" | "gamma_terms" | "tau" | "target_tau" | "seed" => Some(
                "blackbox differentiation draws no noise (it is I-MLE with `noise = \"none\"` \
                 and the gradient divided by λ); for a noisy variant use `estimator = \"imle\"`",
            ),
            "samples" | "marginal_samples" | "reduce" => Some(
                "without noise every sample would be the same MAP(θ), so blackbox \
                 differentiation solves each instance once",
            ),
            "scale_by_lambda" => Some(
                "blackbox differentiation always divides the gradient by λ; for the undivided \
                 gradient use `estimator = \"imle\"` with `noise = \"none\"`",
            ),
            "sigma" | "perturbation" => Some(
                "it configures the perturbed optimizer (`estimator = \"perturbed\"`); \
                 blackbox differentiation draws no noise",
            ),
            _ => Some(
                "blackbox differentiation's target is fixed, θ − λ·∂L/∂z with a one-sided \
                 difference; for other targets use `estimator = \"imle\"` with \
                 `noise = \"none\"`",
            ),
        },
        Estimator::Perturbed => match key {
            "noise" | "samples" | "seed" | "sigma" | "perturbation" => None,
            "k" | "gamma_terms" => Some(
                "it parametrises Sum-of-Gamma noise, which the perturbed optimizer cannot use: \
                 its Jacobian needs the score ∇ log density of the noise in closed form, and \
                 Sum-of-Gamma has none; use `noise = \"gaussian\"` or `\"gumbel\"`",
            ),
            "tau" => Some("the perturbed optimizer's noise scale is `sigma`"),
            "reduce" => Some(
                "the perturbed optimizer always returns the mean over its samples, y_σ(θ), \
                 of shape [B, d]",
            ),
            _ => Some(
                "it configures I-MLE's target distribution, and the perturbed optimizer has \
                 none: its gradient is the Monte-Carlo Jacobian of y_σ(θ) (or, through \
                 `fenchel_young_loss`, y_σ(θ) − y); remove it, or use `estimator = \"imle\"`",
            ),
        },
        Estimator::SpoPlus => Some(
            "SPO+ is a deterministic loss (one solver call on 2ĉ − c per instance) with no \
             noise, samples or target; its only key is `sense`",
        ),
    }
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
                    let alias = match key {
                        "estimator" => ESTIMATOR_ALIASES
                            .iter()
                            .find(|(alias, _)| alias.eq_ignore_ascii_case(&name))
                            .map(|&(_, ours)| ours),
                        _ => None,
                    };
                    let hint = alias
                        .or_else(|| closest(&name, choices.iter().copied()))
                        .map(|c| format!("did you mean \"{c}\"? "))
                        .unwrap_or_default();
                    let hint = match (key, name.as_str()) {
                        ("estimator", "aimle") => "AIMLE is I-MLE with `target = \"adaptive\"`: \
                                                   did you mean \"imle\"? "
                            .to_string(),
                        _ => hint,
                    };
                    let what = match key {
                        "estimator" => "estimator",
                        "noise" => "noise",
                        "target" => "target",
                        "sense" => "sense",
                        "perturbation" => "perturbation",
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
            Range::GammaK => single > 0.0,
        };
    if ok {
        return Ok(Parsed::Number(single));
    }
    let rule = match range {
        Range::Finite => "finite",
        Range::NonNegative => "finite and >= 0",
        Range::Positive => "finite and > 0",
        Range::Lambda => "finite and > 0 (0 is allowed only for the adaptive target)",
        Range::GammaK => "finite and > 0 (the expected number of ones in a solution)",
    };
    Err(Error::new_spanned(
        value,
        format!("`{key}` must be {rule}, got {text}{why}"),
    ))
}

/// The smallest Sum-of-Gamma `k` for `terms` terms: max(1e-3, s (H_s - 1) / 30000). The
/// same formula as the runtime's `Noise::sum_of_gamma_min_k` (which says why); the tests of
/// both check the same values.
fn sum_of_gamma_min_k(terms: u32) -> f32 {
    let s = f64::from(terms);
    let h: f64 = (1..=terms).map(|i| 1.0 / f64::from(i)).sum();
    (s * (h - 1.0) / 30_000.0).max(1e-3) as f32
}

/// The checks across keys, and the typed configuration.
fn consistent(given: &Given, seen: &[&str], estimator: Estimator, errors: &mut Errors) -> Config {
    // A key given with a bad value (or one that does not apply to the estimator) already has
    // its error: checks against it would only add noise.
    let known = |key: &str| given.entry(key).is_some() || !seen.contains(&key);
    let noise_name = given.choice("noise").unwrap_or(estimator.default_noise());
    let noise_is = |name: &str| match (given.entry("noise"), estimator) {
        (Some(_), _) => format!("the noise is \"{name}\""),
        (None, Estimator::Imle) => format!("the noise is \"{name}\" (the default)"),
        (None, estimator) => format!(
            "the noise is \"{name}\" (the default for estimator = \"{}\")",
            estimator.name()
        ),
    };
    let perturbation = given.choice("perturbation").map(|p| match p {
        "multiplicative" => Perturbation::Multiplicative,
        _ => Perturbation::Additive,
    });
    if estimator == Estimator::Perturbed
        && let Some(entry) = given.entry("noise")
    {
        let why = match noise_name {
            "sum_of_gamma" => Some(
                "the perturbed optimizer cannot use sum_of_gamma noise: its Jacobian \
                 E[y*(θ + σZ)·∇ν(Z)]/σ needs the score ∇ν = −∇ log density of the noise in \
                 closed form, and the Sum-of-Gamma density has none; use \"gaussian\" or \
                 \"gumbel\""
                    .to_string(),
            ),
            "none" => Some(
                "the perturbed optimizer needs noise: without it y_σ(θ) is MAP(θ), piecewise \
                 constant, with no gradient; use \"gaussian\" or \"gumbel\" (for a noiseless \
                 estimator, `estimator = \"blackbox\"`)"
                    .to_string(),
            ),
            "gumbel" if matches!(perturbation, Some(Perturbation::Multiplicative)) => Some(
                "the multiplicative perturbation θ ⊙ exp(σZ − σ²/2) needs gaussian noise: its \
                 −σ²/2 makes E[exp(σZ − σ²/2)] = 1 only for a standard normal Z; use \
                 \"gaussian\" or `perturbation = \"additive\"`"
                    .to_string(),
            ),
            _ => None,
        };
        if let Some(why) = why {
            errors.push(Error::new_spanned(&entry.tokens, why));
        }
    }
    let noise = match noise_name {
        // Reported above; the perturbed optimizer's noise is never Sum-of-Gamma.
        "sum_of_gamma" if estimator == Estimator::Perturbed => Noise::Gaussian,
        "none" if estimator == Estimator::Perturbed => Noise::Gaussian,
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
            let min_k = sum_of_gamma_min_k(terms);
            if let (Some(value), Some(entry)) = (k, given.entry("k"))
                && value < min_k
            {
                errors.push(Error::new_spanned(
                    &entry.tokens,
                    format!(
                        "`k` must be at least {min_k:e} with {terms} Sum-of-Gamma terms, got \
                         {value:e}: the sampler inverts the exact distribution of the sum of \
                         gammas, whose series needs too many terms below that (fewer \
                         `gamma_terms` allow a smaller k)"
                    ),
                ));
            }
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
                        "`{key}` scales the noise, but {}: remove `{key}` or choose a noise",
                        noise_is("none")
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
        estimator,
        estimator_tokens: given.entry("estimator").map(|entry| entry.tokens.clone()),
        noise,
        target,
        lambda,
        alpha: given.number("alpha"),
        samples,
        marginal_samples,
        tau: given.number("tau"),
        target_tau: given.number("target_tau"),
        symmetric: given.flag("symmetric"),
        // Blackbox differentiation is I-MLE without noise and with the gradient divided by λ
        // (`ImleConfig::blackbox`); `scale_by_lambda` itself does not apply to it.
        scale_by_lambda: match estimator {
            Estimator::Blackbox => Some(true),
            _ => given.flag("scale_by_lambda"),
        },
        sense: given.choice("sense").map(|sense| match sense {
            "minimize" => Sense::Minimize,
            _ => Sense::Maximize,
        }),
        reduce: given.choice("reduce").map(|reduce| match reduce {
            "mean" => Reduce::Mean,
            _ => Reduce::None,
        }),
        seed: given.count("seed"),
        sigma: given.number("sigma"),
        perturbation,
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
    fn sum_of_gamma_k_has_a_lower_bound_that_depends_on_the_terms() {
        // The values the runtime's `Noise::sum_of_gamma_min_k` doc test states.
        assert_eq!(sum_of_gamma_min_k(1), 1e-3);
        assert_eq!(sum_of_gamma_min_k(13), 1e-3);
        assert!((sum_of_gamma_min_k(50) - 0.005_832).abs() < 1e-6);
        assert!((sum_of_gamma_min_k(255) - 0.043_524).abs() < 1e-6);
        let found = errors(quote!(noise = "sum_of_gamma", k = 1e-4));
        assert!(found[0].contains("at least 1e-3 with 10"), "{found:?}");
        assert!(errors(quote!(noise = "sum_of_gamma", k = 0.001)).is_empty());
        let found = errors(quote!(noise = "sum_of_gamma", k = 0.01, gamma_terms = 255));
        assert!(
            found[0].contains("with 255 Sum-of-Gamma terms"),
            "{found:?}"
        );
        assert!(errors(quote!(noise = "sum_of_gamma", k = 0.0))[0].contains("finite and > 0"));
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
    fn each_estimator_takes_its_own_keys() {
        let ok = |args: TokenStream| {
            let args = crate::attr::parse(args).unwrap();
            validate(&args).unwrap_or_else(|e| panic!("{e}"))
        };
        let ste = ok(quote!(
            estimator = "straight_through",
            samples = 2,
            tau = 0.5,
            noise = "gumbel"
        ));
        assert_eq!(ste.estimator, Estimator::StraightThrough);
        assert!(matches!(
            ok(quote!(estimator = "straight_through")).noise,
            Noise::None
        ));
        let bb = ok(quote!(
            estimator = "blackbox",
            lambda = 20,
            sense = "minimize"
        ));
        assert!(matches!(bb.noise, Noise::None));
        assert_eq!((bb.lambda, bb.scale_by_lambda), (Some(20.0), Some(true)));
        let perturbed = ok(quote!(
            estimator = "perturbed",
            sigma = 0.5,
            samples = 4,
            seed = 2
        ));
        assert!(matches!(perturbed.noise, Noise::Gaussian));
        assert_eq!(perturbed.sigma, Some(0.5));
        let perturbed = ok(quote!(estimator = "perturbed", noise = "gumbel"));
        assert!(matches!(perturbed.noise, Noise::Gumbel));
        assert_eq!(
            ok(quote!(estimator = "spo_plus", sense = "minimize")).estimator,
            Estimator::SpoPlus
        );
        assert_eq!(ok(quote!()).estimator, Estimator::Imle);
    }

    #[test]
    fn keys_that_do_not_apply_say_why() {
        let found = errors(quote!(estimator = "spo_plus", lambda = 1, k = 3));
        assert_eq!(found.len(), 2, "{found:#?}");
        assert!(found[0].starts_with("`lambda` does not apply to estimator = \"spo_plus\""));
        let found = errors(quote!(estimator = "straight_through", target = "adaptive"));
        assert!(
            found[0].contains("backward pass is the identity"),
            "{found:?}"
        );
        let found = errors(quote!(
            estimator = "perturbed",
            noise = "sum_of_gamma",
            k = 2
        ));
        assert_eq!(found.len(), 2, "{found:#?}");
        assert!(found.iter().all(|e| e.contains("closed form")), "{found:?}");
        let found = errors(quote!(sigma = 1));
        assert!(
            found[0].contains("estimator = \"imle\" (the default)"),
            "{found:?}"
        );
        // An unknown estimator: its error only, no guesses about the other keys.
        let found = errors(quote!(estimator = "perturbd", sigma = 1, lambda = 2));
        assert_eq!(found.len(), 1, "{found:#?}");
        assert!(errors(quote!(estimator = "spo"))[0].contains("did you mean \"spo_plus\""));
    }

    #[test]
    fn aliases_suggest_our_names() {
        assert!(errors(quote!(nb_samples = 2))[0].contains("did you mean `samples`"));
        assert!(errors(quote!(banana = 2))[0].contains("the keys are: estimator, noise, k,"));
    }
}
