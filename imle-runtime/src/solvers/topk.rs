//! Top-k: the indicator of the `k` largest entries of θ.

use crate::error::{config_error, solver_error};
use crate::solver::{DeviceKernel, MapSolver, cmp_desc};
use candle_core::Result;

/// `z = argmax ⟨z, θ⟩` over binary vectors with exactly `k` ones: the `k` largest entries.
///
/// Exact selection in O(n) (`select_nth_unstable_by`). Values are compared numerically, so
/// **−0.0 = +0.0**, and **ties go to the lowest index**: among equal values, the entry that
/// comes first is chosen (the order of [`cmp_desc`](crate::cmp_desc)). So `TopK::new(1)` is
/// the same solver as [`Argmax`](crate::Argmax). Instances of any shape are flattened.
///
/// ```
/// use imle_runtime::{MapSolver, TopK};
/// let top2 = TopK::new(2)?;
/// let mut z = [0.0; 4];
/// let mut scratch = Default::default();
/// top2.solve(&[0.5, 3.0, 0.5, -1.0], &[4], &mut z, &mut scratch)?;
/// assert_eq!(z, [1.0, 1.0, 0.0, 0.0]); // the tie between 0.5s goes to index 0
///
/// let top1 = TopK::new(1)?;
/// let mut z = [0.0; 2];
/// top1.solve(&[-0.0, 0.0], &[2], &mut z, &mut scratch)?;
/// assert_eq!(z, [1.0, 0.0]); // −0.0 and +0.0 tie: index 0, as Argmax
/// # Ok::<(), candle_core::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TopK {
    k: usize,
}

impl TopK {
    /// A top-`k` solver; `k = 0` is an error (`k > n` is reported when the instance size is
    /// known).
    ///
    /// ```
    /// use imle_runtime::TopK;
    /// assert!(TopK::new(0).is_err());
    /// assert_eq!(TopK::new(3)?.k(), 3);
    /// # Ok::<(), candle_core::Error>(())
    /// ```
    pub fn new(k: usize) -> Result<Self> {
        if k == 0 {
            return Err(config_error("top-k needs k >= 1, got k = 0"));
        }
        Ok(TopK { k })
    }

    /// The subset size.
    ///
    /// ```
    /// assert_eq!(imle_runtime::TopK::new(5)?.k(), 5);
    /// # Ok::<(), candle_core::Error>(())
    /// ```
    pub fn k(&self) -> usize {
        self.k
    }
}

impl MapSolver for TopK {
    /// Index buffer, reused across calls.
    type Scratch = Vec<u32>;

    fn name(&self) -> &str {
        "top-k"
    }

    fn device_kernel(&self) -> Option<DeviceKernel> {
        Some(DeviceKernel::TopK { k: self.k })
    }

    fn check_instance(&self, shape: &[usize]) -> Result<()> {
        let n: usize = shape.iter().product();
        if self.k > n {
            return Err(config_error(format!(
                "top-k with k = {} on instances of only {n} elements (shape {shape:?})",
                self.k
            )));
        }
        if n > u32::MAX as usize {
            return Err(config_error(format!(
                "top-k instance too large ({n} elements)"
            )));
        }
        Ok(())
    }

    fn solve(&self, theta: &[f32], _: &[usize], z: &mut [f32], order: &mut Vec<u32>) -> Result<()> {
        let (n, k) = (theta.len(), self.k);
        if k > n {
            return Err(solver_error(self.name(), format!("k = {k} > n = {n}")));
        }
        if k == n {
            z.fill(1.0);
            return Ok(());
        }
        order.clear();
        order.extend(0..n as u32);
        // Descending by value (−0 = +0), ascending by index: a strict total order, so the
        // first k after selection are exactly the top k with ties to the lowest index.
        order.select_nth_unstable_by(k - 1, |&a, &b| {
            let (a, b) = (a as usize, b as usize);
            cmp_desc((a, theta[a]), (b, theta[b]))
        });
        for &i in &order[..k] {
            z[i as usize] = 1.0;
        }
        Ok(())
    }
}
