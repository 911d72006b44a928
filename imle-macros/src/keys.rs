//! The attribute's vocabulary as types: its keys ([`Key`]) and the names each choice key
//! accepts ([`Estimator`], [`NoiseName`], ...). A name is compared with a string once, when
//! it is parsed; everything after that matches on the enums, so a misspelt name in our own
//! code does not compile, and a new variant is a compile error wherever it is not handled.
//! (serde_derive's `Symbol` constants are the model, made enums for exhaustive matches.)

/// A closed set of names the attribute accepts: its keys, or the values of one choice key.
pub trait Symbol: Copy + Eq + 'static {
    /// Every member, in the documentation's order (which is the order of "expected one of"
    /// lists and of "did you mean" ties).
    const ALL: &'static [Self];
    /// What a member is called in messages: "key", "noise", "reduction", ...
    const WHAT: &'static str;

    /// The name as written in the attribute.
    fn name(self) -> &'static str;

    /// The member written `name`, compared exactly (case and all).
    fn parse(name: &str) -> Option<Self> {
        Self::ALL
            .iter()
            .copied()
            .find(|member| member.name() == name)
    }

    /// Every member's name, in [`Symbol::ALL`]'s order (the candidates of "did you mean").
    fn names() -> impl Iterator<Item = &'static str> {
        Self::ALL.iter().map(|member| member.name())
    }
}

/// Defines an enum and its [`Symbol`] implementation from one list of `Variant = "name"`, so
/// that `ALL` and `name` cannot leave a variant out.
macro_rules! symbols {
    (
        $(#[$meta:meta])*
        pub enum $symbol:ident ($what:literal) {
            $($(#[$variant_meta:meta])* $variant:ident = $name:literal,)+
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, Debug)]
        pub enum $symbol {
            $($(#[$variant_meta])* $variant,)+
        }

        impl Symbol for $symbol {
            const ALL: &'static [Self] = &[$($symbol::$variant,)+];
            const WHAT: &'static str = $what;

            fn name(self) -> &'static str {
                match self {
                    $($symbol::$variant => $name,)+
                }
            }
        }
    };
}

symbols! {
    /// A key of the attribute, in the order of the documentation (and of the list an
    /// unknown key's error gives).
    pub enum Key("key") {
        Estimator = "estimator",
        Noise = "noise",
        K = "k",
        GammaTerms = "gamma_terms",
        Target = "target",
        Lambda = "lambda",
        Alpha = "alpha",
        Samples = "samples",
        MarginalSamples = "marginal_samples",
        Tau = "tau",
        TargetTau = "target_tau",
        Symmetric = "symmetric",
        ScaleByLambda = "scale_by_lambda",
        Sense = "sense",
        Reduce = "reduce",
        Seed = "seed",
        TargetDensity = "target_density",
        AdaptiveStep = "adaptive_step",
        Sigma = "sigma",
        Perturbation = "perturbation",
        Name = "name",
    }
}

symbols! {
    /// The estimator the attribute builds over the solver (`estimator = "..."`).
    pub enum Estimator("estimator") {
        /// `ImleLayer` with the attribute's `ImleConfig` (the default).
        Imle = "imle",
        /// `StraightThrough`, the wrapper of `ImleLayer::straight_through`.
        StraightThrough = "straight_through",
        /// `ImleLayer` with `ImleConfig::blackbox`'s configuration.
        Blackbox = "blackbox",
        /// `perturbed::PerturbedOptimizer` with a `PerturbedConfig`.
        Perturbed = "perturbed",
        /// `spo::SpoPlus` with a `Sense`.
        SpoPlus = "spo_plus",
    }
}

symbols! {
    /// A `noise = "..."` value; the Sum-of-Gamma parameters are other keys (`k`,
    /// `gamma_terms`), combined into `valid::Noise`.
    pub enum NoiseName("noise") {
        SumOfGamma = "sum_of_gamma",
        Gumbel = "gumbel",
        Gaussian = "gaussian",
        None = "none",
    }
}

symbols! {
    /// A `target = "..."` value; the adaptive target's parameters are other keys
    /// (`target_density`, `adaptive_step`), combined into `valid::Target`.
    pub enum TargetName("target") {
        Perturb = "perturb",
        Normalized = "normalized",
        Adaptive = "adaptive",
    }
}

symbols! {
    /// `sense = "..."`: which way the solver optimises (the runtime's `Sense`).
    pub enum Sense("sense") {
        Maximize = "maximize",
        Minimize = "minimize",
    }
}

symbols! {
    /// `reduce = "..."`: the layer's output over the samples (the runtime's `Reduce`).
    pub enum Reduce("reduction") {
        None = "none",
        Mean = "mean",
    }
}

symbols! {
    /// `perturbation = "..."`: how the perturbed optimizer applies its noise (the runtime's
    /// `perturbed::Perturbation`).
    pub enum Perturbation("perturbation") {
        Additive = "additive",
        Multiplicative = "multiplicative",
    }
}

/// Names from torch-imle, AIMLE and the paper, and other likely guesses, with our key: an
/// unknown key among them suggests ours even when the spelling is far from it.
pub const KEY_ALIASES: &[(&str, Key)] = &[
    ("beta", Key::Lambda),
    ("temperature", Key::Tau),
    ("noise_temperature", Key::Tau),
    ("target_noise_temperature", Key::TargetTau),
    ("nb_samples", Key::Samples),
    ("n_samples", Key::Samples),
    ("num_samples", Key::Samples),
    ("nb_marginal_samples", Key::MarginalSamples),
    ("nb_iterations", Key::GammaTerms),
    ("terms", Key::GammaTerms),
    ("s", Key::GammaTerms),
    ("noise_distribution", Key::Noise),
    ("target_distribution", Key::Target),
    ("density", Key::TargetDensity),
    ("step", Key::AdaptiveStep),
    ("maximize", Key::Sense),
    ("minimize", Key::Sense),
    ("method", Key::Estimator),
    ("gradient", Key::Estimator),
    ("epsilon", Key::Sigma),
    ("noise_scale", Key::Sigma),
];

/// Other names of the estimators (the examples' method names, the papers' acronyms), with
/// ours, compared ignoring case: `estimator = "ste"` is an error that suggests
/// `"straight_through"`.
pub const ESTIMATOR_ALIASES: &[(&str, Estimator)] = &[
    ("ste", Estimator::StraightThrough),
    ("straight-through", Estimator::StraightThrough),
    ("identity", Estimator::StraightThrough),
    ("bb", Estimator::Blackbox),
    ("pfyl", Estimator::Perturbed),
    ("fenchel_young", Estimator::Perturbed),
    ("perturbed_optimizer", Estimator::Perturbed),
    ("dpo", Estimator::Perturbed),
    ("spo", Estimator::SpoPlus),
    ("spo+", Estimator::SpoPlus),
    ("spoplus", Estimator::SpoPlus),
    ("i-mle", Estimator::Imle),
    ("aimle", Estimator::Imle),
];

#[cfg(test)]
mod tests {
    use super::*;

    /// Every member parses back from its name, and no two share one.
    fn round_trips<S: Symbol + std::fmt::Debug>() {
        for &member in S::ALL {
            assert_eq!(S::parse(member.name()), Some(member), "{}", S::WHAT);
        }
        let mut names: Vec<_> = S::names().collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), S::ALL.len(), "{} names repeat", S::WHAT);
    }

    #[test]
    fn names_round_trip() {
        round_trips::<Key>();
        round_trips::<Estimator>();
        round_trips::<NoiseName>();
        round_trips::<TargetName>();
        round_trips::<Sense>();
        round_trips::<Reduce>();
        round_trips::<Perturbation>();
        assert_eq!(Key::parse("Lambda"), None);
        assert_eq!(Key::parse("r#noise"), None);
    }

    #[test]
    fn aliases_are_not_names() {
        for (alias, _) in KEY_ALIASES {
            assert_eq!(Key::parse(alias), None, "{alias}");
        }
        for (alias, _) in ESTIMATOR_ALIASES {
            assert_eq!(Estimator::parse(alias), None, "{alias}");
        }
    }
}
