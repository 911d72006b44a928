//! Reproducible initial weights.
//!
//! candle's CPU random generator cannot be seeded (`Device::Cpu.set_seed` is an error), so a
//! network built with candle-nn's `linear`/`conv2d` starts from different weights on every
//! run, and the same training program ends at different accuracies. [`seeded_init`] redraws
//! every variable from a seed, with the distributions candle-nn itself uses.

use crate::noise::{Noise, NoiseKey, fill_instance, philox};
use candle_core::{Result, Tensor, Var};
use std::collections::HashMap;

/// Redraws every variable of a candle-nn `VarMap` from `seed`, so that a program starts from
/// the same weights on every run and machine.
///
/// Pass the map's contents: `seeded_init(&varmap.data().lock().unwrap(), seed)`. Variables
/// whose name ends in `bias` are drawn uniform in `±1/√fan_in`, where `fan_in` is the product
/// of the matching `…weight`'s dims after the first (as candle-nn's `linear` and `conv2d`
/// initialise biases); every other variable is Kaiming-normal with standard deviation
/// `√(2/fan_in)`, `fan_in` its own dims after the first (candle-nn's default weight
/// initialisation). Each variable's values depend only on the seed and its name's rank in
/// sorted order, not on hash-map order or thread count. Values are drawn in f32 and
/// converted to the variable's dtype.
///
/// Call it after the model is built (the variables exist) and before the optimiser's first
/// step.
///
/// # Errors
/// When a variable cannot be set (a dtype candle cannot convert f32 to).
///
/// ```
/// use candle_core::{DType, Device};
/// use candle_nn::{VarBuilder, VarMap};
/// let weights = |seed| -> candle_core::Result<Vec<Vec<f32>>> {
///     let varmap = VarMap::new();
///     let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
///     let layer = candle_nn::linear(8, 10, vb.pp("values"))?;
///     imle_runtime::init::seeded_init(&varmap.data().lock().unwrap(), seed)?;
///     layer.weight().to_vec2()
/// };
/// assert_eq!(weights(7)?, weights(7)?);
/// assert_ne!(weights(7)?, weights(8)?);
/// # Ok::<(), candle_core::Error>(())
/// ```
pub fn seeded_init(vars: &HashMap<String, Var>, seed: u64) -> Result<()> {
    let mut names: Vec<&String> = vars.keys().collect();
    names.sort();
    for (rank, name) in names.into_iter().enumerate() {
        let var = &vars[name];
        let dims = var.dims().to_vec();
        let fan_in = |dims: &[usize]| dims.get(1..).map_or(1, |d| d.iter().product::<usize>());
        let key = NoiseKey::new(seed, rank as u64);
        let mut values = vec![0.0f32; var.elem_count()];
        match name.strip_suffix("bias") {
            Some(prefix) => {
                let fan_in = vars
                    .get(&format!("{prefix}weight"))
                    .map_or(values.len(), |w| fan_in(w.dims()));
                let bound = 1.0 / (fan_in.max(1) as f32).sqrt();
                for (e, v) in values.iter_mut().enumerate() {
                    *v = bound * (2.0 * uniform(key, e as u64) - 1.0);
                }
            }
            None => {
                fill_instance(&Noise::Gaussian, key, 0, 0, &mut values);
                let std = (2.0 / fan_in(&dims).max(1) as f32).sqrt();
                values.iter_mut().for_each(|v| *v *= std);
            }
        }
        let values = Tensor::from_vec(values, dims, var.device())?.to_dtype(var.dtype())?;
        var.set(&values)?;
    }
    Ok(())
}

/// A uniform draw in [0, 1) for element `e`: 24 bits of a Philox word under `key`.
fn uniform(key: NoiseKey, e: u64) -> f32 {
    let word = philox::philox4x32_10([e as u32, (e >> 32) as u32, 0x696e_6974, 0], key.0)[0];
    (word >> 8) as f32 * (1.0 / (1u32 << 24) as f32)
}
