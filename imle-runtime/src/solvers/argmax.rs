//! Argmax: the one-hot indicator of the largest entry.

use crate::solver::{DeviceKernel, MapSolver};
use candle_core::Result;

/// `z = e_i` with `i = argmax θ_i` (ties to the lowest index). With Gumbel noise this samples
/// exactly from `softmax(θ)`.
///
/// ```
/// use imle_runtime::{Argmax, MapSolver};
/// let mut z = [0.0; 3];
/// Argmax.solve(&[0.1, 2.0, 2.0], &[3], &mut z, &mut ())?;
/// assert_eq!(z, [0.0, 1.0, 0.0]);
/// # Ok::<(), candle_core::Error>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Argmax;

impl MapSolver for Argmax {
    type Scratch = ();

    fn name(&self) -> &str {
        "argmax"
    }

    fn device_kernel(&self) -> Option<DeviceKernel> {
        Some(DeviceKernel::Argmax)
    }

    fn solve(&self, theta: &[f32], _: &[usize], z: &mut [f32], _: &mut ()) -> Result<()> {
        let mut best = 0;
        for (i, &value) in theta.iter().enumerate().skip(1) {
            if value > theta[best] {
                best = i;
            }
        }
        z[best] = 1.0;
        Ok(())
    }
}
