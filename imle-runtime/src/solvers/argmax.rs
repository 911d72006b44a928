//! Argmax: the one-hot indicator of the largest entry.

use crate::solver::{DeviceKernel, MapSolver};
use candle_core::Result;

/// `z = e_i` with `i = argmax θ_i`. Values are compared numerically (**−0.0 = +0.0**) and
/// ties go to the lowest index, so it is the same solver as `TopK::new(1)` (the order of
/// [`cmp_desc`](crate::cmp_desc)). With Gumbel noise this samples exactly from `softmax(θ)`.
///
/// ```
/// use imle_runtime::{Argmax, MapSolver};
/// let mut z = [0.0; 3];
/// Argmax.solve(&[0.1, 2.0, 2.0], &[3], &mut z, &mut ())?;
/// assert_eq!(z, [0.0, 1.0, 0.0]);
/// let mut z = [0.0; 2];
/// Argmax.solve(&[-0.0, 0.0], &[2], &mut z, &mut ())?;
/// assert_eq!(z, [1.0, 0.0]); // −0.0 and +0.0 tie
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
            // `>` compares numerically (−0.0 is not above +0.0), and only a strictly larger
            // value moves the choice: ties stay with the lowest index, as in `cmp_desc`.
            if value > theta[best] {
                best = i;
            }
        }
        z[best] = 1.0;
        Ok(())
    }
}
