//! Validating the arguments into a [`Config`]: every key known, every value of the right type
//! and range, and the keys consistent with each other. Everything `ImleConfig::validate`
//! checks at run time is checked here, so the constant the macro emits is always valid.
//!
//! Names are compared with strings only where they are parsed into the typed vocabulary of
//! `keys.rs` ([`Key`], [`Estimator`], [`NoiseName`], ...); every later decision is an
//! exhaustive `match` over those enums.

use crate::attr::{Arg, Value};
use crate::errors::{Errors, closest};
use crate::keys::{
    ESTIMATOR_ALIASES, Estimator, KEY_ALIASES, Key, NoiseName, Perturbation, Reduce, Sense, Symbol,
    TargetName,
};
use proc_macro2::TokenStream;
use quote::ToTokens;
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

impl Estimator {
    /// The noise when `noise` is not given: I-MLE's Gumbel; none for the straight-through
    /// baseline (`MAP(θ)` forward) and blackbox (which has none); Gaussian for the perturbed
    /// optimizer (Berthet et al.'s, and the only one its multiplicative form accepts).
    fn default_noise(self) -> NoiseName {
        match self {
            Estimator::Imle => DEFAULT_NOISE,
            Estimator::Perturbed => NoiseName::Gaussian,
            Estimator::StraightThrough | Estimator::Blackbox | Estimator::SpoPlus => {
                NoiseName::None
            }
        }
    }
}

/// The noise with its parameters: `noise` combined with `k` and `gamma_terms`.
pub enum Noise {
    SumOfGamma { k: f32, terms: u32 },
    Gumbel,
    Gaussian,
    None,
}

/// The target with its parameters: `target` combined with `target_density` and
/// `adaptive_step`.
pub enum Target {
    Perturb,
    Normalized,
    Adaptive { target_density: f32, step: f32 },
}

/// The noise used when `noise` is not given (with the default estimator).
pub const DEFAULT_NOISE: NoiseName = NoiseName::Gumbel;
/// `gamma_terms` when not given (the runtime's `DEFAULT_SOG_TERMS`).
pub const DEFAULT_GAMMA_TERMS: u32 = 10;
/// `target_density` and `adaptive_step` when not given (`Target::ADAPTIVE`).
pub const DEFAULT_TARGET_DENSITY: f32 = 1.0;
pub const DEFAULT_ADAPTIVE_STEP: f32 = 1e-4;

/// The range a number key's value must lie in.
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

/// A key as given, with its checked value: the key's ident (for "this key is not allowed
/// here") and the value's tokens (for "this value is wrong").
struct Setting<T> {
    key: Ident,
    tokens: TokenStream,
    value: T,
}

/// The value of an optional setting.
fn value<T: Clone>(setting: &Option<Setting<T>>) -> Option<T> {
    setting.as_ref().map(|setting| setting.value.clone())
}

/// The ident of an optional setting.
fn ident<T>(setting: &Option<Setting<T>>) -> Option<&Ident> {
    setting.as_ref().map(|setting| &setting.key)
}

/// The keys given, each parsed into its own type (thiserror's typed attributes are the
/// model). A field is `None` when its key was not given, was given with a bad value, or does
/// not apply to the estimator; `written` tells the first case from the others.
#[derive(Default)]
struct Given {
    /// Every known key written, once each, in the order written (with or without a valid
    /// value).
    written: Vec<Key>,
    estimator: Option<Setting<Estimator>>,
    noise: Option<Setting<NoiseName>>,
    k: Option<Setting<f32>>,
    gamma_terms: Option<Setting<u64>>,
    target: Option<Setting<TargetName>>,
    lambda: Option<Setting<f32>>,
    alpha: Option<Setting<f32>>,
    samples: Option<Setting<u64>>,
    marginal_samples: Option<Setting<u64>>,
    tau: Option<Setting<f32>>,
    target_tau: Option<Setting<f32>>,
    symmetric: Option<Setting<bool>>,
    scale_by_lambda: Option<Setting<bool>>,
    sense: Option<Setting<Sense>>,
    reduce: Option<Setting<Reduce>>,
    seed: Option<Setting<u64>>,
    target_density: Option<Setting<f32>>,
    adaptive_step: Option<Setting<f32>>,
    sigma: Option<Setting<f32>>,
    perturbation: Option<Setting<Perturbation>>,
    name: Option<Setting<Ident>>,
}

impl Given {
    /// Parses `arg`'s value as `key`'s type and keeps it: the one place that says which type
    /// (and range) each key takes. `adaptive`: the attribute asks for the adaptive target,
    /// which lets λ be 0.
    fn set(&mut self, key: Key, arg: &Arg, adaptive: bool) -> syn::Result<()> {
        let written = Written { key, arg };
        let no_hint = |_: &str| None;
        match key {
            Key::Estimator => self.estimator = Some(written.choice(estimator_hint)?),
            Key::Noise => self.noise = Some(written.choice(no_hint)?),
            Key::K => self.k = Some(written.number(Range::GammaK)?),
            Key::GammaTerms => self.gamma_terms = Some(written.count(1, 255)?),
            Key::Target => self.target = Some(written.choice(no_hint)?),
            Key::Lambda => {
                let range = if adaptive {
                    Range::NonNegative
                } else {
                    Range::Lambda
                };
                self.lambda = Some(written.number(range)?);
            }
            Key::Alpha => self.alpha = Some(written.number(Range::Finite)?),
            Key::Samples => self.samples = Some(written.count(1, U32_MAX)?),
            Key::MarginalSamples => self.marginal_samples = Some(written.count(1, U32_MAX)?),
            Key::Tau => self.tau = Some(written.number(Range::NonNegative)?),
            Key::TargetTau => self.target_tau = Some(written.number(Range::NonNegative)?),
            Key::Symmetric => self.symmetric = Some(written.flag()?),
            Key::ScaleByLambda => self.scale_by_lambda = Some(written.flag()?),
            Key::Sense => self.sense = Some(written.choice(no_hint)?),
            Key::Reduce => self.reduce = Some(written.choice(no_hint)?),
            Key::Seed => self.seed = Some(written.count(0, u64::MAX)?),
            Key::TargetDensity => {
                self.target_density = Some(written.number(Range::NonNegative)?);
            }
            Key::AdaptiveStep => self.adaptive_step = Some(written.number(Range::Positive)?),
            Key::Sigma => self.sigma = Some(written.number(Range::Positive)?),
            Key::Perturbation => self.perturbation = Some(written.choice(no_hint)?),
            Key::Name => self.name = Some(written.name()?),
        }
        Ok(())
    }

    /// Drops `key`'s setting; its ident if it had one.
    fn take(&mut self, key: Key) -> Option<Ident> {
        fn take<T>(setting: &mut Option<Setting<T>>) -> Option<Ident> {
            setting.take().map(|setting| setting.key)
        }
        match key {
            Key::Estimator => take(&mut self.estimator),
            Key::Noise => take(&mut self.noise),
            Key::K => take(&mut self.k),
            Key::GammaTerms => take(&mut self.gamma_terms),
            Key::Target => take(&mut self.target),
            Key::Lambda => take(&mut self.lambda),
            Key::Alpha => take(&mut self.alpha),
            Key::Samples => take(&mut self.samples),
            Key::MarginalSamples => take(&mut self.marginal_samples),
            Key::Tau => take(&mut self.tau),
            Key::TargetTau => take(&mut self.target_tau),
            Key::Symmetric => take(&mut self.symmetric),
            Key::ScaleByLambda => take(&mut self.scale_by_lambda),
            Key::Sense => take(&mut self.sense),
            Key::Reduce => take(&mut self.reduce),
            Key::Seed => take(&mut self.seed),
            Key::TargetDensity => take(&mut self.target_density),
            Key::AdaptiveStep => take(&mut self.adaptive_step),
            Key::Sigma => take(&mut self.sigma),
            Key::Perturbation => take(&mut self.perturbation),
            Key::Name => take(&mut self.name),
        }
    }

    /// Whether `key` was written at all. A key written with a bad value (or one that does not
    /// apply to the estimator) already has its error, so checks against it would only add
    /// noise; a key left out has its default, which the checks can use.
    fn omitted(&self, key: Key) -> bool {
        !self.written.contains(&key)
    }
}

/// Checks the arguments and builds the configuration, or returns every error found.
pub fn validate(args: &[Arg]) -> syn::Result<Config> {
    let mut errors = Errors::default();
    let mut given = read_keys(args, &mut errors);
    // The estimator decides which keys apply; an unknown one has its error, and checking the
    // other keys against a guess would only add noise.
    if !given.omitted(Key::Estimator) && given.estimator.is_none() {
        return Err(errors
            .finish(())
            .expect_err("the estimator's error was pushed"));
    }
    let estimator = value(&given.estimator).unwrap_or(Estimator::Imle);
    drop_inapplicable(&mut given, estimator, &mut errors);
    let config = consistent(&given, estimator, &mut errors);
    errors.finish(config)
}

/// The key an argument names, if it is one of ours.
fn key_of(arg: &Arg) -> Option<Key> {
    Key::parse(&arg.key.to_string())
}

/// The estimator `args` ask for, if they name a valid one (for the stand-in types that an
/// attribute with errors still defines).
pub fn declared_estimator(args: &[Arg]) -> Estimator {
    args.iter()
        .find(|arg| key_of(arg) == Some(Key::Estimator))
        .and_then(|arg| match &arg.value {
            Value::Str(name) => Estimator::parse(&name.value()),
            _ => None,
        })
        .unwrap_or(Estimator::Imle)
}

/// Reads each argument on its own: the key known (else "unknown key", with a suggestion) and
/// not given before (else "duplicate key"), the value of the key's type and range (else an
/// error on the value).
fn read_keys(args: &[Arg], errors: &mut Errors) -> Given {
    let mut given = Given::default();
    // λ's range depends on the target, wherever `target` is written.
    let adaptive = args.iter().any(|arg| {
        key_of(arg) == Some(Key::Target)
            && matches!(&arg.value,
                Value::Str(s) if TargetName::parse(&s.value()) == Some(TargetName::Adaptive))
    });
    for arg in args {
        let Some(key) = key_of(arg) else {
            errors.push(unknown_key(&arg.key));
            continue;
        };
        if !given.omitted(key) {
            errors.push(Error::new_spanned(
                &arg.key,
                format!(
                    "duplicate key `{}`: it is already set earlier in this attribute",
                    key.name()
                ),
            ));
            continue;
        }
        given.written.push(key);
        if let Err(error) = given.set(key, arg, adaptive) {
            errors.push(error);
        }
    }
    given
}

/// Drops the keys that do not apply to `estimator`, each with an error saying why, in the
/// order written. They stay `written`, so the checks that involve them are skipped.
fn drop_inapplicable(given: &mut Given, estimator: Estimator, errors: &mut Errors) {
    let chosen = match given.estimator {
        Some(_) => format!("estimator = \"{}\"", estimator.name()),
        None => "estimator = \"imle\" (the default)".to_string(),
    };
    for key in given.written.clone() {
        if let Some(why) = not_applicable(key, estimator)
            && let Some(ident) = given.take(key)
        {
            errors.push(Error::new_spanned(
                ident,
                format!("`{}` does not apply to {chosen}: {why}", key.name()),
            ));
        }
    }
}

/// The part of the configuration a key sets, which decides the estimators it applies to.
enum Part {
    /// `estimator`, `name`, `sense`: every estimator takes them.
    Shared,
    /// The noisy forward pass: the noise and its parameters, the samples and their reduction,
    /// the seed.
    Forward,
    /// I-MLE's backward pass: the target distribution and the gradient.
    Backward,
    /// The perturbed optimizer's own keys.
    Perturbed,
}

fn part(key: Key) -> Part {
    match key {
        Key::Estimator | Key::Name | Key::Sense => Part::Shared,
        Key::Noise
        | Key::K
        | Key::GammaTerms
        | Key::Tau
        | Key::Samples
        | Key::Reduce
        | Key::Seed => Part::Forward,
        Key::Target
        | Key::Lambda
        | Key::Alpha
        | Key::MarginalSamples
        | Key::TargetTau
        | Key::Symmetric
        | Key::ScaleByLambda
        | Key::TargetDensity
        | Key::AdaptiveStep => Part::Backward,
        Key::Sigma | Key::Perturbation => Part::Perturbed,
    }
}

/// Why `key` does not apply to `estimator` (the end of the error message), or `None` when it
/// applies.
fn not_applicable(key: Key, estimator: Estimator) -> Option<&'static str> {
    match estimator {
        Estimator::Imle => match part(key) {
            Part::Shared | Part::Forward | Part::Backward => None,
            Part::Perturbed => Some(
                "it configures the perturbed optimizer (`estimator = \"perturbed\"`); I-MLE's \
                 noise is scaled by `tau` and always added to θ",
            ),
        },
        Estimator::StraightThrough => match part(key) {
            Part::Shared | Part::Forward => None,
            Part::Backward => Some(
                "it configures I-MLE's backward pass (the target distribution and its \
                 gradient), and the straight-through estimator's backward pass is the \
                 identity; remove it, or use `estimator = \"imle\"`",
            ),
            Part::Perturbed => Some(
                "it configures the perturbed optimizer (`estimator = \"perturbed\"`); the \
                 straight-through forward noise is scaled by `tau`",
            ),
        },
        Estimator::Blackbox => match key {
            Key::Estimator | Key::Name | Key::Sense | Key::Lambda => None,
            Key::Noise | Key::K | Key::GammaTerms | Key::Tau | Key::TargetTau | Key::Seed => Some(
                "blackbox differentiation draws no noise (it is I-MLE with `noise = \"none\"` \
                 and the gradient divided by λ); for a noisy variant use `estimator = \"imle\"`",
            ),
            Key::Samples | Key::MarginalSamples | Key::Reduce => Some(
                "without noise every sample would be the same MAP(θ), so blackbox \
                 differentiation solves each instance once",
            ),
            Key::ScaleByLambda => Some(
                "blackbox differentiation always divides the gradient by λ; for the undivided \
                 gradient use `estimator = \"imle\"` with `noise = \"none\"`",
            ),
            Key::Sigma | Key::Perturbation => Some(
                "it configures the perturbed optimizer (`estimator = \"perturbed\"`); \
                 blackbox differentiation draws no noise",
            ),
            Key::Target | Key::Alpha | Key::Symmetric | Key::TargetDensity | Key::AdaptiveStep => {
                Some(
                    "blackbox differentiation's target is fixed, θ − λ·∂L/∂z with a one-sided \
                     difference; for other targets use `estimator = \"imle\"` with \
                     `noise = \"none\"`",
                )
            }
        },
        Estimator::Perturbed => match key {
            Key::Estimator
            | Key::Name
            | Key::Sense
            | Key::Noise
            | Key::Samples
            | Key::Seed
            | Key::Sigma
            | Key::Perturbation => None,
            Key::K | Key::GammaTerms => Some(
                "it parametrises Sum-of-Gamma noise, which the perturbed optimizer cannot use: \
                 its Jacobian needs the score ∇ log density of the noise in closed form, and \
                 Sum-of-Gamma has none; use `noise = \"gaussian\"` or `\"gumbel\"`",
            ),
            Key::Tau => Some("the perturbed optimizer's noise scale is `sigma`"),
            Key::Reduce => Some(
                "the perturbed optimizer always returns the mean over its samples, y_σ(θ), \
                 of shape [B, d]",
            ),
            Key::Target
            | Key::Lambda
            | Key::Alpha
            | Key::MarginalSamples
            | Key::TargetTau
            | Key::Symmetric
            | Key::ScaleByLambda
            | Key::TargetDensity
            | Key::AdaptiveStep => Some(
                "it configures I-MLE's target distribution, and the perturbed optimizer has \
                 none: its gradient is the Monte-Carlo Jacobian of y_σ(θ) (or, through \
                 `fenchel_young_loss`, y_σ(θ) − y); remove it, or use `estimator = \"imle\"`",
            ),
        },
        Estimator::SpoPlus => match part(key) {
            Part::Shared => None,
            Part::Forward | Part::Backward | Part::Perturbed => Some(
                "SPO+ is a deterministic loss (one solver call on 2ĉ − c per instance) with no \
                 noise, samples or target; its only key is `sense`",
            ),
        },
    }
}

/// "unknown key", with our name for it: the key it is an alias of, or the one it is a likely
/// typo of; otherwise the list of keys.
fn unknown_key(key: &Ident) -> Error {
    let name = key.to_string();
    let alias = KEY_ALIASES.iter().find(|(alias, _)| *alias == name);
    let suggestion = alias
        .map(|&(_, key)| key.name())
        .or_else(|| closest(&name, Key::names()));
    let message = match suggestion {
        Some(suggestion) => format!("unknown key `{name}`; did you mean `{suggestion}`?"),
        None => {
            let keys: Vec<&str> = Key::names().collect();
            format!("unknown key `{name}`; the keys are: {}", keys.join(", "))
        }
    };
    Error::new_spanned(key, message)
}

/// The hint for an unknown estimator name that is not a typo: another name of one of ours
/// ([`ESTIMATOR_ALIASES`]), or AIMLE, which is a target rather than an estimator.
fn estimator_hint(name: &str) -> Option<String> {
    if name == "aimle" {
        return Some(
            "AIMLE is I-MLE with `target = \"adaptive\"`: did you mean \"imle\"? ".to_string(),
        );
    }
    ESTIMATOR_ALIASES
        .iter()
        .find(|(alias, _)| alias.eq_ignore_ascii_case(name))
        .map(|&(_, ours)| format!("did you mean \"{}\"? ", ours.name()))
}

/// One `key = value` of a known key, checked against the key's type on its own (everything
/// that does not depend on other keys).
struct Written<'a> {
    key: Key,
    arg: &'a Arg,
}

impl Written<'_> {
    /// The value, checked, with the tokens errors about it point at.
    fn setting<T>(&self, value: T) -> Setting<T> {
        let tokens = match self.arg.value {
            Value::Flag => self.arg.key.to_token_stream(),
            ref value => value.to_token_stream(),
        };
        Setting {
            key: self.arg.key.clone(),
            tokens,
            value,
        }
    }

    /// A value of the wrong kind: what the key takes (`expected`) and what was written.
    fn wrong(&self, expected: String) -> Error {
        let (key, value) = (self.key.name(), &self.arg.value);
        let got = match value {
            Value::Other(_) => String::new(),
            value => format!(", got {}", value.describe()),
        };
        let message = match value {
            Value::Flag => format!("`{key}` needs a value: {expected}"),
            _ => format!("`{key}` takes {expected}{got}"),
        };
        match value {
            Value::Flag => Error::new_spanned(&self.arg.key, message),
            value => Error::new_spanned(value, message),
        }
    }

    /// A string naming one of `C`. An unknown name gets `hint(name)` or else the closest
    /// name as a suggestion, and the list of names.
    fn choice<C: Symbol>(&self, hint: impl Fn(&str) -> Option<String>) -> syn::Result<Setting<C>> {
        let Value::Str(lit) = &self.arg.value else {
            return Err(self.wrong(format!("a string, one of: {}", quoted::<C>())));
        };
        let name = lit.value();
        if let Some(choice) = C::parse(&name) {
            return Ok(self.setting(choice));
        }
        let hint = hint(&name)
            .or_else(|| closest(&name, C::names()).map(|c| format!("did you mean \"{c}\"? ")))
            .unwrap_or_default();
        Err(Error::new_spanned(
            lit,
            format!(
                "unknown {} \"{name}\"; {hint}expected one of: {}",
                C::WHAT,
                quoted::<C>()
            ),
        ))
    }

    /// A number literal (integer or float) that fits an `f32` and lies in `range`.
    fn number(&self, range: Range) -> syn::Result<Setting<f32>> {
        let key = self.key.name();
        let value = &self.arg.value;
        let (minus, number, digits) = match value {
            Value::Int(minus, lit) => (minus, lit.base10_parse::<f64>()?, lit.to_string()),
            Value::Float(minus, lit) => (minus, lit.base10_parse::<f64>()?, lit.to_string()),
            Value::Other(_) => {
                return Err(self.wrong(format!(
                    "a number literal such as `{key} = 10.0` (constants and expressions \
                     cannot be checked at compile time)"
                )));
            }
            Value::Flag | Value::Str(_) | Value::Bool(_) => {
                return Err(self.wrong(format!("a number such as `{key} = 10.0`")));
            }
        };
        let text = format!("{}{digits}", if minus.is_some() { "-" } else { "" });
        let number = check_number(key, range, number, minus.is_some(), &text, value)?;
        Ok(self.setting(number))
    }

    /// An integer literal in `min..=max`.
    fn count(&self, min: u64, max: u64) -> syn::Result<Setting<u64>> {
        let key = self.key.name();
        let value = &self.arg.value;
        let Value::Int(minus, lit) = value else {
            return Err(self.wrong(format!("an integer such as `{key} = 1`")));
        };
        let count = match (minus, lit.base10_parse::<u64>().ok()) {
            (None, count) | (Some(_), count @ Some(0)) => count,
            (Some(_), _) => None,
        };
        let rule = match count {
            Some(count) if (min..=max).contains(&count) => return Ok(self.setting(count)),
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

    /// `true`/`false`, or the bare key for `true`.
    fn flag(&self) -> syn::Result<Setting<bool>> {
        match &self.arg.value {
            Value::Bool(lit) => Ok(self.setting(lit.value)),
            Value::Flag => Ok(self.setting(true)),
            Value::Str(_) | Value::Int(..) | Value::Float(..) | Value::Other(_) => {
                Err(self.wrong("`true` or `false`".to_string()))
            }
        }
    }

    /// A string holding a Rust identifier (not a raw one), kept with the string's span.
    fn name(&self) -> syn::Result<Setting<Ident>> {
        let Value::Str(lit) = &self.arg.value else {
            return Err(self.wrong(
                "a string with the layer type's name, such as `name = \"TopK\"`".to_string(),
            ));
        };
        match syn::parse_str::<Ident>(&lit.value()) {
            Ok(ident) if !ident.to_string().starts_with("r#") => {
                Ok(self.setting(Ident::new(&ident.to_string(), lit.span())))
            }
            _ => Err(Error::new_spanned(
                lit,
                format!(
                    "`name` must be a Rust identifier such as \"TopK\", got {:?}",
                    lit.value()
                ),
            )),
        }
    }
}

/// `"a", "b", ...`: the names of `C`, for "expected one of" lists.
fn quoted<C: Symbol>() -> String {
    let quoted: Vec<String> = C::names().map(|c| format!("\"{c}\"")).collect();
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
) -> syn::Result<f32> {
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
        return Ok(single);
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
fn consistent(given: &Given, estimator: Estimator, errors: &mut Errors) -> Config {
    let noise = noise(given, estimator, errors);
    let target = target(given, errors);
    let (samples, marginal_samples) = samples(given, errors);
    Config {
        estimator,
        estimator_tokens: given.estimator.as_ref().map(|s| s.tokens.clone()),
        noise,
        target,
        lambda: value(&given.lambda),
        alpha: value(&given.alpha),
        samples,
        marginal_samples,
        tau: value(&given.tau),
        target_tau: value(&given.target_tau),
        symmetric: value(&given.symmetric),
        // Blackbox differentiation is I-MLE without noise and with the gradient divided by λ
        // (`ImleConfig::blackbox`); `scale_by_lambda` itself does not apply to it.
        scale_by_lambda: match estimator {
            Estimator::Blackbox => Some(true),
            Estimator::Imle
            | Estimator::StraightThrough
            | Estimator::Perturbed
            | Estimator::SpoPlus => value(&given.scale_by_lambda),
        },
        sense: value(&given.sense),
        reduce: value(&given.reduce),
        seed: value(&given.seed),
        sigma: value(&given.sigma),
        perturbation: value(&given.perturbation),
        name: value(&given.name),
    }
}

/// The noise, from `noise` (or the estimator's default) and Sum-of-Gamma's parameters, with
/// the errors of the keys that need another noise.
fn noise(given: &Given, estimator: Estimator, errors: &mut Errors) -> Noise {
    let name = value(&given.noise).unwrap_or(estimator.default_noise());
    let noise_is = |name: NoiseName| match (&given.noise, estimator) {
        (Some(_), _) => format!("the noise is \"{}\"", name.name()),
        (None, Estimator::Imle) => format!("the noise is \"{}\" (the default)", name.name()),
        (None, estimator) => format!(
            "the noise is \"{}\" (the default for estimator = \"{}\")",
            name.name(),
            estimator.name()
        ),
    };
    if estimator == Estimator::Perturbed
        && let Some(setting) = &given.noise
        && let Some(why) = perturbed_cannot_use(name, value(&given.perturbation))
    {
        errors.push(Error::new_spanned(&setting.tokens, why));
    }
    let noise = match (name, estimator) {
        // Reported above; the perturbed optimizer's noise is never Sum-of-Gamma or none.
        (NoiseName::SumOfGamma | NoiseName::None, Estimator::Perturbed) => Noise::Gaussian,
        (NoiseName::SumOfGamma, _) => sum_of_gamma(given, errors),
        (NoiseName::Gumbel, _) => Noise::Gumbel,
        (NoiseName::Gaussian, _) => Noise::Gaussian,
        (NoiseName::None, _) => Noise::None,
    };
    // (`k` and `gamma_terms` never reach here with the perturbed optimizer: they do not apply
    // to it.)
    if name != NoiseName::SumOfGamma {
        for (key, ident) in [
            (Key::K, ident(&given.k)),
            (Key::GammaTerms, ident(&given.gamma_terms)),
        ] {
            if let Some(ident) =
                ident.filter(|_| given.noise.is_some() || given.omitted(Key::Noise))
            {
                errors.push(Error::new_spanned(
                    ident,
                    format!(
                        "`{key}` only applies to sum_of_gamma noise, but {}; add \
                         `noise = \"sum_of_gamma\"` or remove `{key}`",
                        noise_is(name),
                        key = key.name(),
                    ),
                ));
            }
        }
    }
    if name == NoiseName::None {
        for (key, ident) in [
            (Key::Tau, ident(&given.tau)),
            (Key::TargetTau, ident(&given.target_tau)),
        ] {
            if let Some(ident) = ident {
                errors.push(Error::new_spanned(
                    ident,
                    format!(
                        "`{key}` scales the noise, but {}: remove `{key}` or choose a noise",
                        noise_is(NoiseName::None),
                        key = key.name(),
                    ),
                ));
            }
        }
    }
    noise
}

/// Why the perturbed optimizer cannot use `noise` (with `perturbation`), if it cannot.
fn perturbed_cannot_use(noise: NoiseName, perturbation: Option<Perturbation>) -> Option<String> {
    let why = match (noise, perturbation) {
        (NoiseName::SumOfGamma, _) => {
            "the perturbed optimizer cannot use sum_of_gamma noise: its Jacobian \
             E[y*(θ + σZ)·∇ν(Z)]/σ needs the score ∇ν = −∇ log density of the noise in \
             closed form, and the Sum-of-Gamma density has none; use \"gaussian\" or \
             \"gumbel\""
        }
        (NoiseName::None, _) => {
            "the perturbed optimizer needs noise: without it y_σ(θ) is MAP(θ), piecewise \
             constant, with no gradient; use \"gaussian\" or \"gumbel\" (for a noiseless \
             estimator, `estimator = \"blackbox\"`)"
        }
        (NoiseName::Gumbel, Some(Perturbation::Multiplicative)) => {
            "the multiplicative perturbation θ ⊙ exp(σZ − σ²/2) needs gaussian noise: its \
             −σ²/2 makes E[exp(σZ − σ²/2)] = 1 only for a standard normal Z; use \
             \"gaussian\" or `perturbation = \"additive\"`"
        }
        (NoiseName::Gumbel, None | Some(Perturbation::Additive)) | (NoiseName::Gaussian, _) => {
            return None;
        }
    };
    Some(why.to_string())
}

/// Sum-of-Gamma noise from `k` (required, and at least the sampler's lower bound for the
/// number of terms) and `gamma_terms`.
fn sum_of_gamma(given: &Given, errors: &mut Errors) -> Noise {
    if given.omitted(Key::K) {
        let noise = given
            .noise
            .as_ref()
            .expect("Sum-of-Gamma is no estimator's default noise");
        errors.push(Error::new_spanned(
            &noise.tokens,
            "sum_of_gamma noise needs `k`, the expected number of ones in a solution \
             (e.g. `k = 5` for a top-5 solver)",
        ));
    }
    let terms = value(&given.gamma_terms).map_or(DEFAULT_GAMMA_TERMS, |t| t as u32);
    let min_k = sum_of_gamma_min_k(terms);
    if let Some(k) = &given.k
        && k.value < min_k
    {
        errors.push(Error::new_spanned(
            &k.tokens,
            format!(
                "`k` must be at least {min_k:e} with {terms} Sum-of-Gamma terms, got {:e}: \
                 the sampler inverts the exact distribution of the sum of gammas, whose series \
                 needs too many terms below that (fewer `gamma_terms` allow a smaller k)",
                k.value
            ),
        ));
    }
    Noise::SumOfGamma {
        k: value(&given.k).unwrap_or(1.0),
        terms,
    }
}

/// The target, from `target` and the adaptive target's parameters, with the errors of those
/// parameters under another target.
fn target(given: &Given, errors: &mut Errors) -> Option<Target> {
    let target = value(&given.target);
    if target != Some(TargetName::Adaptive) {
        for (key, ident) in [
            (Key::TargetDensity, ident(&given.target_density)),
            (Key::AdaptiveStep, ident(&given.adaptive_step)),
        ] {
            if let Some(ident) = ident.filter(|_| target.is_some() || given.omitted(Key::Target)) {
                let target = match target {
                    Some(target) => format!("the target is \"{}\"", target.name()),
                    None => "the target is \"perturb\" (the default)".to_string(),
                };
                errors.push(Error::new_spanned(
                    ident,
                    format!(
                        "`{key}` only applies to the adaptive target, but {target}; add \
                         `target = \"adaptive\"` or remove `{key}`",
                        key = key.name(),
                    ),
                ));
            }
        }
    }
    target.map(|target| match target {
        TargetName::Perturb => Target::Perturb,
        TargetName::Normalized => Target::Normalized,
        TargetName::Adaptive => Target::Adaptive {
            target_density: value(&given.target_density).unwrap_or(DEFAULT_TARGET_DENSITY),
            step: value(&given.adaptive_step).unwrap_or(DEFAULT_ADAPTIVE_STEP),
        },
    })
}

/// `samples` and `marginal_samples`, whose product (the draws per instance) must fit a `u32`.
fn samples(given: &Given, errors: &mut Errors) -> (Option<u32>, Option<u32>) {
    let samples = value(&given.samples).map(|s| s as u32);
    let marginal_samples = value(&given.marginal_samples).map(|m| m as u32);
    if samples
        .unwrap_or(1)
        .checked_mul(marginal_samples.unwrap_or(1))
        .is_none()
    {
        let setting = given
            .marginal_samples
            .as_ref()
            .expect("samples alone fits a u32");
        errors.push(Error::new_spanned(
            &setting.tokens,
            format!(
                "samples × marginal_samples must fit in a u32, got {} × {}",
                samples.unwrap_or(1),
                marginal_samples.unwrap_or(1)
            ),
        ));
    }
    (samples, marginal_samples)
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
