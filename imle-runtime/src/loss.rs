//! Losses written for discrete solutions.
//!
//! [`hamming`] is the loss the I-MLE paper trains its structured-output experiments with
//! (Niepert et al., 2021, §5), written so that its gradient is right where `|z − y|` is not.

use crate::error::input_error;
use candle_core::{DType, Result, Tensor};

/// How a loss turns its per-entry values into what it returns.
///
/// The reduction sets the scale of `∂L/∂z`, and with it the λ that
/// [`Target::Perturb`](crate::Target::Perturb) needs: each entry of `∂L/∂z` is ±1 for
/// [`Sum`](Reduction::Sum), ±1/B for [`InstanceMean`](Reduction::InstanceMean) (B rows) and
/// ±1/N for [`Mean`](Reduction::Mean) (N entries). [`Target::Normalized`](crate::Target::Normalized)
/// is unaffected by the choice.
///
/// ```
/// use imle_runtime::loss::Reduction;
/// assert_ne!(Reduction::Sum, Reduction::Mean);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reduction {
    /// No reduction: the per-entry losses, in `z`'s shape.
    None,
    /// The sum over every entry (a scalar).
    Sum,
    /// The mean over every entry (a scalar), as candle-nn's losses and `mean_all` reduce.
    Mean,
    /// The sum over each row's entries, averaged over the rows (the first dimension): the mean
    /// Hamming distance per instance (PyTorch calls this reduction `batchmean`).
    InstanceMean,
}

/// The Hamming loss between solutions `z` and 0/1 targets `y`, in its linear form
/// `z·(1 − 2y) + y`, reduced as `reduction` says.
///
/// For 0/1 values this equals `|z − y|`, the number of entries where they differ. Written
/// as `(z − y).abs()` it would train badly: candle's `abs` has gradient +1 at 0, so every
/// correctly chosen entry (`z = y = 1`) would be pushed out of the solution. The linear form
/// has the gradient `∂L/∂z = 1 − 2y` everywhere: +1 where the target has a 0, −1 where it has
/// a 1. It is also exact for fractional `z` (the sample mean of a layer with
/// [`Reduce::Mean`](crate::Reduce::Mean)): it is then the expected Hamming distance.
///
/// * `z`: any float dtype and shape (`[B, n]`, or `[B·S, n]` from a layer with S samples).
/// * `y`: the same shape and dtype, every entry 0 or 1. For `[B·S, n]` solutions, line the
///   targets up with [`ImleLayer::repeat_for_samples`](crate::ImleLayer::repeat_for_samples).
///
/// Returns a scalar of `z`'s dtype, or the per-entry losses for [`Reduction::None`].
///
/// # Errors
/// A shape or dtype mismatch, a non-float dtype, `y` with an entry other than 0 or 1, or an
/// empty `z` with [`Reduction::Mean`] or [`Reduction::InstanceMean`].
///
/// ```
/// use candle_core::{Device, Tensor, Var};
/// use imle_runtime::loss::{Reduction, hamming};
/// let z = Var::new(&[[1f32, 1.0, 0.0, 0.0]], &Device::Cpu)?;
/// let y = Tensor::new(&[[1f32, 0.0, 1.0, 0.0]], &Device::Cpu)?;
/// let loss = hamming(z.as_tensor(), &y, Reduction::Sum)?;
/// assert_eq!(loss.to_scalar::<f32>()?, 2.0); // entries 1 and 2 differ
/// let grad = loss.backward()?.get(&z).unwrap().to_vec2::<f32>()?;
/// assert_eq!(grad, [[-1.0, 1.0, -1.0, 1.0]]); // 1 − 2y: the correct entry 0 is kept
/// # Ok::<(), candle_core::Error>(())
/// ```
pub fn hamming(z: &Tensor, y: &Tensor, reduction: Reduction) -> Result<Tensor> {
    if z.shape() != y.shape() {
        return Err(input_error(format!(
            "hamming loss: z has shape {:?} but y has shape {:?}; for a layer with S samples \
             per instance, pass layer.repeat_for_samples(&y)",
            z.dims(),
            y.dims()
        )));
    }
    if z.dtype() != y.dtype() || !z.dtype().is_float() {
        return Err(input_error(format!(
            "hamming loss: z and y need the same float dtype, got {:?} and {:?}",
            z.dtype(),
            y.dtype()
        )));
    }
    // One pass over y: its entries must be 0 or 1, or the linear form is not the Hamming loss.
    let not_binary = y.ne(0.0)?.mul(&y.ne(1.0)?)?;
    let count = not_binary
        .to_dtype(DType::F32)?
        .sum_all()?
        .to_scalar::<f32>()?;
    if count > 0.0 {
        return Err(input_error(format!(
            "hamming loss: y must hold only 0 and 1, but {count} entries are something else"
        )));
    }
    let per_entry = ((z * y.affine(-2.0, 1.0)?)? + y)?;
    let entries = z.elem_count();
    match reduction {
        Reduction::None => Ok(per_entry),
        Reduction::Sum => per_entry.sum_all(),
        Reduction::Mean | Reduction::InstanceMean if entries == 0 => Err(input_error(
            "hamming loss: the mean of an empty tensor is undefined",
        )),
        Reduction::Mean => per_entry.sum_all()? / entries as f64,
        Reduction::InstanceMean => {
            let rows = z.dims().first().copied().unwrap_or(1);
            per_entry.sum_all()? / rows as f64
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    fn pair() -> Result<(Var, Tensor)> {
        let z = Var::new(&[[1f32, 0.0, 1.0], [0.0, 0.0, 1.0]], &Device::Cpu)?;
        let y = Tensor::new(&[[1f32, 1.0, 0.0], [0.0, 0.0, 1.0]], &Device::Cpu)?;
        Ok((z, y))
    }

    #[test]
    fn equals_the_number_of_differing_entries_under_each_reduction() -> Result<()> {
        let (z, y) = pair()?;
        let z = z.as_tensor();
        let entries = hamming(z, &y, Reduction::None)?.to_vec2::<f32>()?;
        assert_eq!(entries, [[0.0, 1.0, 1.0], [0.0, 0.0, 0.0]]);
        let value = |r| hamming(z, &y, r)?.to_scalar::<f32>();
        assert_eq!(value(Reduction::Sum)?, 2.0);
        assert_eq!(value(Reduction::Mean)?, 2.0 / 6.0);
        assert_eq!(value(Reduction::InstanceMean)?, 1.0);
        Ok(())
    }

    #[test]
    fn gradient_is_one_minus_twice_the_target_even_where_z_equals_y() -> Result<()> {
        let (z, y) = pair()?;
        for (reduction, scale) in [
            (Reduction::Sum, 1.0),
            (Reduction::Mean, 1.0 / 6.0),
            (Reduction::InstanceMean, 0.5),
        ] {
            let grads = hamming(z.as_tensor(), &y, reduction)?.backward()?;
            let grad = grads.get(&z).unwrap().to_vec2::<f32>()?;
            let expected: Vec<Vec<f32>> = y
                .to_vec2::<f32>()?
                .iter()
                .map(|row| row.iter().map(|&t| scale * (1.0 - 2.0 * t)).collect())
                .collect();
            assert_eq!(grad, expected, "{reduction:?}");
        }
        // The trap this loss avoids: |z − y| has gradient +1 where z = y = 1.
        let abs = (z.as_tensor() - &y)?.abs()?.sum_all()?.backward()?;
        assert_eq!(abs.get(&z).unwrap().to_vec2::<f32>()?[0][0], 1.0);
        Ok(())
    }

    #[test]
    fn bad_inputs_are_errors_that_say_what_is_wrong() -> Result<()> {
        let (z, y) = pair()?;
        let z = z.as_tensor();
        let tall = Tensor::cat(&[&y, &y], 0)?;
        let err = hamming(z, &tall, Reduction::Sum).unwrap_err().to_string();
        assert!(err.contains("repeat_for_samples"), "{err}");
        let soft = (&y * 0.5)?;
        let err = hamming(z, &soft, Reduction::Sum).unwrap_err().to_string();
        assert!(err.contains("only 0 and 1"), "{err}");
        let err = hamming(z, &y.to_dtype(DType::F64)?, Reduction::Sum)
            .unwrap_err()
            .to_string();
        assert!(err.contains("same float dtype"), "{err}");
        let empty = Tensor::zeros((0, 3), DType::F32, &Device::Cpu)?;
        assert!(hamming(&empty, &empty, Reduction::Mean).is_err());
        assert_eq!(
            hamming(&empty, &empty, Reduction::Sum)?.to_scalar::<f32>()?,
            0.0
        );
        Ok(())
    }
}
