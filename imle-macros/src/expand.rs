//! The generated code: the function unchanged, a solver type that calls it, the configuration
//! as a constant, and the layer type. When the input has errors: the function unchanged, the
//! errors, and a stand-in layer type so that code using it does not add errors of its own.

use crate::ast::{Form, SolverFn};
use crate::errors::both;
use crate::keys::{Estimator, Perturbation, Reduce, Sense};
use crate::valid::{Config, Noise, Target};
use crate::{attr, valid};
use proc_macro2::{Literal, Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::ext::IdentExt;
use syn::spanned::Spanned;
use syn::{Ident, ItemFn};

/// The whole attribute: parse, validate, expand.
pub fn imle_layer(args: TokenStream, item: TokenStream) -> TokenStream {
    let func = match syn::parse2::<ItemFn>(item.clone()) {
        Ok(func) => func,
        Err(error) => {
            let error = syn::Error::new(
                error.span(),
                format!("#[imle_layer] goes on a solver function: {error}"),
            );
            let error = error.to_compile_error();
            return quote!(#item #error);
        }
    };
    let args = attr::parse(args);
    let estimator = args
        .as_ref()
        .map_or(Estimator::Imle, |args| valid::declared_estimator(args));
    let config = args.and_then(|args| valid::validate(&args));
    let checked = both(config, SolverFn::from_fn(&func))
        .and_then(|(config, solver)| fits(&config, &solver).map(|()| (config, solver)));
    match checked {
        Ok((config, solver)) => {
            let generated = expand(&solver, &config);
            quote!(#item #generated)
        }
        Err(errors) => {
            let errors = errors.to_compile_error();
            // A method's attribute sits in an `impl`, where no other item may follow.
            if func.sig.receiver().is_some() {
                return quote!(#item #errors);
            }
            let (vis, layer) = (&func.vis, layer_name(&func.sig.ident));
            let solver = format_ident!("{layer}Solver");
            let layer_ty = estimator_type(estimator, quote!(::imle::macro_support::Invalid));
            quote! {
                #item
                #errors
                #[allow(dead_code)]
                #vis type #layer = #layer_ty;
                #[allow(dead_code)]
                #vis type #solver = ::imle::macro_support::Invalid;
            }
        }
    }
}

/// Checks that need both the configuration and the function: the perturbed optimizer calls
/// a per-instance solver (a `MapSolver`), so it cannot take a batched one.
fn fits(config: &Config, solver: &SolverFn) -> syn::Result<()> {
    match (config.estimator, &solver.form, &config.estimator_tokens) {
        (Estimator::Perturbed, Form::Batched, Some(tokens)) => Err(syn::Error::new_spanned(
            tokens,
            format!(
                "the perturbed optimizer calls its solver once per instance and sample (it needs \
                 a `MapSolver`), but `{}` is a batched solver (`fn(&Tensor)`); write it for one \
                 instance (`fn(theta: &[f32], z: &mut [f32])`) or choose another estimator",
                solver.ident
            ),
        )),
        _ => Ok(()),
    }
}

/// The type the attribute defines for `estimator` over the solver type `solver`.
fn estimator_type(estimator: Estimator, solver: TokenStream) -> TokenStream {
    match estimator {
        Estimator::Imle | Estimator::Blackbox => quote!(::imle::ImleLayer<#solver>),
        Estimator::StraightThrough => quote!(::imle::StraightThrough<#solver>),
        Estimator::Perturbed => quote!(::imle::perturbed::PerturbedOptimizer<#solver>),
        Estimator::SpoPlus => quote!(::imle::spo::SpoPlus<#solver>),
    }
}

/// The default layer name: the function's name in UpperCamelCase (`top_k` -> `TopK`).
pub fn layer_name(function: &Ident) -> Ident {
    let mut name = String::new();
    let mut upper = true;
    for c in function.unraw().to_string().chars() {
        match c {
            '_' => upper = true,
            c if upper => {
                name.extend(c.to_uppercase());
                upper = false;
            }
            c => name.push(c),
        }
    }
    if !name.starts_with(|c: char| c.is_alphabetic()) {
        name.insert_str(0, "Layer");
    }
    Ident::new(&name, function.span())
}

/// The items generated for a valid solver and configuration.
pub fn expand(solver: &SolverFn, config: &Config) -> TokenStream {
    let SolverFn {
        vis,
        docs,
        cfgs,
        ident: function,
        context,
        form,
        output_span,
    } = solver;
    let layer = config.name.clone().unwrap_or_else(|| layer_name(function));
    let name = layer.to_string();
    let solver_ident = format_ident!("{layer}Solver");

    let layer_docs = if docs.is_empty() {
        let what = match config.estimator {
            Estimator::Imle => "The I-MLE layer",
            Estimator::StraightThrough => "The straight-through estimator",
            Estimator::Blackbox => "The blackbox-differentiation layer",
            Estimator::Perturbed => "The perturbed optimizer",
            Estimator::SpoPlus => "The SPO+ loss",
        };
        let doc = format!("{what} of `{function}`, made by `#[imle_layer]`.");
        quote!(#[doc = #doc])
    } else {
        quote!(#(#docs)*)
    };
    let solver_doc = format!("The solver of [`{layer}`]: calls `{function}`.");
    let (solver_def, solver_ty) = match context {
        None => (
            quote!(#[derive(Clone, Copy, Debug, Default)] #vis struct #solver_ident;),
            quote!(#solver_ident),
        ),
        Some(context) => (
            quote! {
                #[derive(Clone, Debug, Default)]
                #vis struct #solver_ident<ImleContext = #context>(
                    #[doc = "The context passed to the solver function."] pub ImleContext,
                );
            },
            quote!(#solver_ident<#context>),
        ),
    };

    // Errors about the context type (not `Sync`, not `'static`) point at it.
    let impl_span = context
        .as_ref()
        .map_or(Span::call_site(), |context| context.span());
    // Locals are hygienic, so no name of the user's can capture them.
    let local = |name: &str| Ident::new(name, Span::mixed_site().located_at(impl_span));
    let (theta, z, shape, scratch) = (local("theta"), local("z"), local("shape"), local("scratch"));
    let context_arg = context.as_ref().map(|_| quote!(&self.0,));
    let (solver_impl, layer_ty) = match form {
        Form::Instance {
            element,
            shape: takes_shape,
            writes,
        } => {
            let shape_arg = takes_shape.then(|| quote!(#shape,));
            let shape_param = if *takes_shape {
                quote!(#shape)
            } else {
                quote_spanned!(impl_span=> _)
            };
            let (z_arg, z_param) = match writes {
                true => (Some(quote!(#z)), quote!(#z)),
                false => (None, quote_spanned!(impl_span=> _)),
            };
            let element_solve = quote_spanned! {*output_span=>
                <#element as ::imle::macro_support::Element>::solve
            };
            let solver_impl = quote_spanned! {impl_span=>
                impl ::imle::MapSolver for #solver_ty {
                    type Scratch = <#element as ::imle::macro_support::Element>::Scratch;
                    fn name(&self) -> &str {
                        #name
                    }
                    fn solve(
                        &self,
                        #theta: &[f32],
                        #shape_param: &[usize],
                        #z: &mut [f32],
                        #scratch: &mut <#element as ::imle::macro_support::Element>::Scratch,
                    ) -> ::imle::macro_support::Result<()> {
                        #element_solve(#name, #theta, #z, #scratch, |#theta, #z_param| {
                            #function(#context_arg #theta, #shape_arg #z_arg)
                        })
                    }
                }
            };
            (solver_impl, quote_spanned!(impl_span=> #solver_ty))
        }
        Form::Batched => {
            let into_batch = quote_spanned! {*output_span=>
                ::imle::macro_support::BatchSolution::into_batch
            };
            let solver_impl = quote_spanned! {impl_span=>
                impl ::imle::BatchSolver for #solver_ty {
                    fn name(&self) -> &str {
                        #name
                    }
                    fn solve_batch(
                        &self,
                        #theta: &::imle::macro_support::Tensor,
                    ) -> ::imle::macro_support::Result<::imle::macro_support::Tensor> {
                        #into_batch(#function(#context_arg #theta))
                    }
                }
            };
            (
                solver_impl,
                quote_spanned!(impl_span=> ::imle::Batched<#solver_ty>),
            )
        }
    };
    let layer_ty = estimator_type(config.estimator, layer_ty);
    let context_impl = context.as_ref().map(|context| {
        // Checked first and spanned on the context type, so that a context that is not `Sync`
        // is reported at the parameter, under a name that says why.
        let sync_check = quote_spanned! {context.span()=>
            const _: () = {
                let _ = ::imle::macro_support::context_must_be_sync_because_solver_calls_run_in_parallel::<#context>;
            };
        };
        quote! {
            #(#cfgs)*
            #sync_check

            #(#cfgs)*
            impl ::imle::macro_support::HasContext for #solver_ty {
                type Context = #context;
                fn from_context(context: #context) -> Self {
                    Self(context)
                }
                fn context(&self) -> &#context {
                    &self.0
                }
            }
        }
    });
    let configured = configured_impl(config, &solver_ty);
    quote! {
        #(#cfgs)*
        #layer_docs
        #vis type #layer = #layer_ty;

        #(#cfgs)*
        #[doc = #solver_doc]
        #solver_def

        #(#cfgs)*
        #solver_impl

        #(#cfgs)*
        #configured

        #context_impl
    }
}

/// The solver type's configuration for its estimator: `ConfiguredSolver::CONFIG` (an
/// `ImleConfig`) for the layers, `ConfiguredPerturbed::PERTURBED_CONFIG` for the perturbed
/// optimizer, `ConfiguredSpo::SENSE` for SPO+.
fn configured_impl(config: &Config, solver_ty: &TokenStream) -> TokenStream {
    match config.estimator {
        Estimator::Imle | Estimator::StraightThrough | Estimator::Blackbox => {
            let config = config_tokens(config);
            quote! {
                impl ::imle::ConfiguredSolver for #solver_ty {
                    const CONFIG: ::imle::ImleConfig = #config;
                }
            }
        }
        Estimator::Perturbed => {
            let config = perturbed_tokens(config);
            quote! {
                impl ::imle::perturbed::ConfiguredPerturbed for #solver_ty {
                    const PERTURBED_CONFIG: ::imle::perturbed::PerturbedConfig = #config;
                }
            }
        }
        Estimator::SpoPlus => {
            let sense = sense_tokens(config.sense.as_ref().unwrap_or(&Sense::Maximize));
            quote! {
                impl ::imle::spo::ConfiguredSpo for #solver_ty {
                    const SENSE: ::imle::Sense = #sense;
                }
            }
        }
    }
}

fn sense_tokens(sense: &Sense) -> TokenStream {
    match sense {
        Sense::Maximize => quote!(::imle::Sense::Maximize),
        Sense::Minimize => quote!(::imle::Sense::Minimize),
    }
}

/// `PerturbedConfig::DEFAULT` with the given keys set by struct-update syntax.
fn perturbed_tokens(config: &Config) -> TokenStream {
    let mut fields = Vec::new();
    let mut set = |field: &str, value: TokenStream| {
        let field = Ident::new(field, Span::call_site());
        fields.push(quote!(#field: #value));
    };
    // Gaussian is the default; Sum-of-Gamma and none are compile errors.
    if matches!(config.noise, Noise::Gumbel) {
        set("noise", quote!(::imle::Noise::Gumbel));
    }
    if let Some(sigma) = config.sigma {
        set("sigma", float(sigma));
    }
    if let Some(samples) = config.samples {
        let samples = Literal::u32_unsuffixed(samples);
        set("samples", quote!(#samples));
    }
    match config.perturbation {
        Some(Perturbation::Additive) => set(
            "perturbation",
            quote!(::imle::perturbed::Perturbation::Additive),
        ),
        Some(Perturbation::Multiplicative) => set(
            "perturbation",
            quote!(::imle::perturbed::Perturbation::Multiplicative),
        ),
        None => {}
    }
    if let Some(sense) = &config.sense {
        set("sense", sense_tokens(sense));
    }
    if let Some(seed) = config.seed {
        let seed = Literal::u64_unsuffixed(seed);
        set("seed", quote!(#seed));
    }
    quote!(::imle::perturbed::PerturbedConfig { #(#fields,)* ..::imle::perturbed::PerturbedConfig::DEFAULT })
}

/// `ImleConfig::new(noise)`, with the given keys set by struct-update syntax.
fn config_tokens(config: &Config) -> TokenStream {
    let noise = match config.noise {
        Noise::SumOfGamma { k, terms } => {
            let (k, terms) = (float(k), Literal::u32_unsuffixed(terms));
            quote!(::imle::Noise::SumOfGamma { k: #k, terms: #terms })
        }
        Noise::Gumbel => quote!(::imle::Noise::Gumbel),
        Noise::Gaussian => quote!(::imle::Noise::Gaussian),
        Noise::None => quote!(::imle::Noise::None),
    };
    let mut fields = Vec::new();
    let mut set = |field: &str, value: TokenStream| {
        let field = Ident::new(field, Span::call_site());
        fields.push(quote!(#field: #value));
    };
    match &config.target {
        Some(Target::Perturb) => set("target", quote!(::imle::Target::Perturb)),
        Some(Target::Normalized) => set("target", quote!(::imle::Target::Normalized)),
        Some(Target::Adaptive {
            target_density,
            step,
        }) => {
            let (target_density, step) = (float(*target_density), float(*step));
            set(
                "target",
                quote!(::imle::Target::Adaptive { target_density: #target_density, step: #step }),
            );
        }
        None => {}
    }
    let floats = [
        ("lambda", config.lambda),
        ("alpha", config.alpha),
        ("tau", config.tau),
        ("target_tau", config.target_tau),
    ];
    for (field, value) in floats {
        if let Some(value) = value {
            set(field, float(value));
        }
    }
    let counts = [
        ("samples", config.samples),
        ("marginal_samples", config.marginal_samples),
    ];
    for (field, value) in counts {
        if let Some(value) = value {
            let value = Literal::u32_unsuffixed(value);
            set(field, quote!(#value));
        }
    }
    let flags = [
        ("symmetric", config.symmetric),
        ("scale_by_lambda", config.scale_by_lambda),
    ];
    for (field, value) in flags {
        if let Some(value) = value {
            set(field, quote!(#value));
        }
    }
    match config.sense {
        Some(Sense::Maximize) => set("sense", quote!(::imle::Sense::Maximize)),
        Some(Sense::Minimize) => set("sense", quote!(::imle::Sense::Minimize)),
        None => {}
    }
    match config.reduce {
        Some(Reduce::None) => set("reduce", quote!(::imle::Reduce::None)),
        Some(Reduce::Mean) => set("reduce", quote!(::imle::Reduce::Mean)),
        None => {}
    }
    if let Some(seed) = config.seed {
        let seed = Literal::u64_unsuffixed(seed);
        set("seed", quote!(#seed));
    }
    if fields.is_empty() {
        quote!(::imle::ImleConfig::new(#noise))
    } else {
        quote!(::imle::ImleConfig { #(#fields,)* ..::imle::ImleConfig::new(#noise) })
    }
}

/// An `f32` literal (negative numbers as `-` and a literal, which is what the parser makes).
fn float(value: f32) -> TokenStream {
    let literal = Literal::f32_unsuffixed(value.abs());
    if value.is_sign_negative() {
        quote!(-#literal)
    } else {
        quote!(#literal)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layer_names_are_upper_camel_case() {
        let name = |f: &str| layer_name(&Ident::new(f, Span::call_site())).to_string();
        assert_eq!(name("top5"), "Top5");
        assert_eq!(name("shortest_path_8"), "ShortestPath8");
        assert_eq!(name("_private_pick"), "PrivatePick");
        assert_eq!(name("Already"), "Already");
        assert_eq!(name("_1"), "Layer1");
    }
}

/// The snapshot of one expansion: `imle-macros/tests/snapshots/top5.rs` holds the macro's output
/// for a fixed input, formatted by rustfmt. `IMLE_BLESS=1 cargo test -p imle-macros` rewrites it.
#[cfg(test)]
mod snapshot {
    use std::io::Write;
    use std::process::{Command, Stdio};

    fn rustfmt(code: &str) -> String {
        let mut child = Command::new("rustfmt")
            .args(["--edition", "2024"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("rustfmt (a component of the pinned toolchain) runs");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(code.as_bytes())
            .unwrap();
        let output = child.wait_with_output().unwrap();
        assert!(output.status.success(), "rustfmt failed on:\n{code}");
        String::from_utf8(output.stdout).unwrap()
    }

    #[test]
    fn top5_expansion() {
        let args = quote::quote!(noise = "sum_of_gamma", k = 5, lambda = 10, samples = 10);
        let item = quote::quote! {
            /// The five largest entries.
            pub fn top5(theta: &[f32], z: &mut [f32]) {
                for i in largest(theta, 5) {
                    z[i] = 1.0;
                }
            }
        };
        let expansion = rustfmt(&super::imle_layer(args, item).to_string());
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/snapshots/top5.rs");
        if std::env::var_os("IMLE_BLESS").is_some() {
            std::fs::write(path, &expansion).unwrap();
        }
        let expected = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            expansion == expected,
            "the expansion changed (IMLE_BLESS=1 to accept it):\n{expansion}"
        );
    }
}
