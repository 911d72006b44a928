//! The kernels' parameters: `#[repr(C)]` mirrors of the structs in `kernels.cu`, filled from a
//! layer's configuration by the same code whether the kernels then run on a GPU or, in the
//! tests, in the host emulation.

use crate::config::{ImleConfig, Reduce};
use crate::noise::{Noise, NoiseKey};
use crate::solver::DeviceKernel;

/// Threads per block of the selection kernels (`IMLE_THREADS` in `kernels.cu`).
pub const SELECT_THREADS: u32 = 256;

/// Rows of at most this many elements keep their keys in shared memory during a selection;
/// longer rows keep them in a global scratch region per block, or, beyond
/// [`SCRATCH_BUDGET`], recompute them (θ, g and the noise) at every radix pass. The keys and
/// the backward's bit mask, `(8192 + 256) · 4` bytes, plus the 8.1 KiB of static shared
/// memory, stay under the 48 KiB a kernel gets without opting in.
pub const CACHE_MAX_N: u32 = 8192;

/// `keys` of the params: keys recomputed at every pass of a selection.
pub const KEYS_RECOMPUTED: u32 = 0;
/// `keys` of the params: keys in shared memory.
pub const KEYS_SHARED: u32 = 1;
/// `keys` of the params: keys in the block's region of a global scratch buffer.
pub const KEYS_SCRATCH: u32 = 2;

/// The most global scratch memory a launch may take for keys, in bytes.
pub const SCRATCH_BUDGET: usize = 512 << 20;

/// The longest instance the kernels take: element indices, quads (4 elements) and their
/// bounds stay in 32 bits with room to spare.
pub const MAX_N: usize = 1 << 31;

/// An error unless `rows` (instance, draw) rows of `n` elements fit the kernels' 32-bit
/// indices.
pub fn check_sizes(rows: u64, n: usize) -> candle_core::Result<()> {
    if rows > u32::MAX as u64 || n > MAX_N {
        return Err(crate::error::input_error(format!(
            "the CUDA kernels take at most 2^32 - 1 (instance, draw) rows of at most 2^31 \
             elements; got {rows} rows of {n}"
        )));
    }
    Ok(())
}

/// Upper bound on the blocks of one launch; the kernels loop over the rest (grid-stride).
pub const MAX_GRID: u32 = 1 << 20;

/// `NoiseParams` of `kernels.cu`: which noise, its Philox key, and for Sum-of-Gamma its
/// constants (computed on the host exactly as the CPU path computes them) and the address of
/// its quantile table on the device ([`NoiseParams::with_sog_table`]).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct NoiseParams {
    /// 0 none, 1 Gumbel, 2 Gaussian, 3 Sum-of-Gamma.
    pub kind: u32,
    /// Philox key, word 0.
    pub key0: u32,
    /// Philox key, word 1.
    pub key1: u32,
    /// Sum-of-Gamma: s.
    pub terms: u32,
    /// Sum-of-Gamma: k.
    pub k: f32,
    /// Sum-of-Gamma: ln s.
    pub ln_s: f32,
    /// Sum-of-Gamma: the address of the quantile table (`[2][2048][4]` `f32`, see
    /// [`sog_coefficients`]) where the kernel runs; 0 for the other kinds.
    pub sog_table: u64,
}

/// The Sum-of-Gamma quantile table that the kernels read for `noise` (built and cached on
/// first use), or `None` for other noise.
///
/// # Errors
///
/// If `noise` fails [`Noise::validate`].
pub fn sog_coefficients(
    noise: &Noise,
) -> candle_core::Result<Option<std::sync::Arc<crate::noise::SogTable>>> {
    noise.validate()?;
    Ok(match *noise {
        Noise::SumOfGamma { k, terms } => Some(crate::noise::sog_table_for(k, terms)),
        _ => None,
    })
}

impl NoiseParams {
    /// The parameters of `noise` under `key`.
    pub fn new(noise: &Noise, key: NoiseKey) -> Self {
        let [key0, key1] = key.0;
        let base = NoiseParams {
            key0,
            key1,
            ..Self::default()
        };
        match *noise {
            Noise::None => base,
            Noise::Gumbel => NoiseParams { kind: 1, ..base },
            Noise::Gaussian => NoiseParams { kind: 2, ..base },
            Noise::SumOfGamma { k, terms } => NoiseParams {
                kind: 3,
                terms,
                k,
                ln_s: f64::from(terms).ln() as f32,
                ..base
            },
        }
    }

    /// The same with the Sum-of-Gamma table at `address` (a device pointer on a GPU, a host
    /// pointer in the emulation).
    #[must_use]
    pub fn with_sog_table(self, address: u64) -> Self {
        NoiseParams {
            sog_table: address,
            ..self
        }
    }
}

/// `ForwardParams` of `kernels.cu`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ForwardParams {
    /// B.
    pub batch: u32,
    /// Elements per instance.
    pub n: u32,
    /// Ones per solution.
    pub k: u32,
    /// S.
    pub samples: u32,
    /// S·M: rows of explicit noise per instance.
    pub draws: u32,
    /// σ·τ.
    pub tau: f32,
    /// 1/S for the mean over samples.
    pub inv_samples: f32,
    /// Whether noise is added (generated or explicit).
    pub noisy: u32,
    /// Where selections keep their keys: [`KEYS_SHARED`], [`KEYS_SCRATCH`] or
    /// [`KEYS_RECOMPUTED`].
    pub keys: u32,
    /// Output the mean over the samples ([`Reduce::Mean`]).
    pub mean: u32,
    /// The first sample of the launch.
    pub s_begin: u32,
    /// One past the last sample of the launch.
    pub s_end: u32,
}

/// `BackwardParams` of `kernels.cu`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct BackwardParams {
    /// B.
    pub batch: u32,
    /// Elements per instance.
    pub n: u32,
    /// Ones per solution.
    pub k: u32,
    /// S.
    pub samples: u32,
    /// D = S·M.
    pub draws: u32,
    /// Rows of the incoming gradient per instance (S, or 1 for a mean or S = 1).
    pub grad_per_instance: u32,
    /// α of the target.
    pub alpha: f32,
    /// σ: +1 to maximise, −1 to minimise.
    pub sign: f32,
    /// σ·τ.
    pub tau: f32,
    /// σ·τ'.
    pub target_tau: f32,
    /// λ (or AIMLE's β·‖θ‖/‖g‖ per row, passed separately).
    pub lambda: f32,
    /// Whether noise is added.
    pub noisy: u32,
    /// Where selections keep their keys (`KEYS_*`).
    pub keys: u32,
    /// Central difference.
    pub symmetric: u32,
    /// Divide the gradient by λ.
    pub scale_by_lambda: u32,
    /// The forward output holds the per-sample solutions (rows b·S + s).
    pub plus_from_output: u32,
}

/// The number of ones of a kernel's solutions. Both kernels compare values numerically
/// (−0 = +0, ties to the lowest index), so argmax is top-1.
fn ones(kernel: DeviceKernel) -> u32 {
    match kernel {
        DeviceKernel::TopK { k } => k as u32,
        DeviceKernel::Argmax => 1,
    }
}

/// Where rows of `n` elements keep their keys by default: shared memory if they fit, else
/// recomputed (the launch code moves long rows to [`KEYS_SCRATCH`] when the scratch fits).
pub fn default_keys(n: usize) -> u32 {
    if n <= CACHE_MAX_N as usize {
        KEYS_SHARED
    } else {
        KEYS_RECOMPUTED
    }
}

/// Words (u32) of one block's key region: the keys, rounded up to a multiple of 4, and the
/// backward's bits of the plus solution (`imle_key_words` in kernels.cu).
pub fn key_words(n: usize) -> usize {
    n.next_multiple_of(4) + n.div_ceil(32)
}

/// Dynamic shared memory of a selection launch, in bytes: the key region when the keys live
/// in shared memory, else none.
pub fn dynamic_shared_bytes(keys: u32, n: usize) -> u32 {
    if keys == KEYS_SHARED {
        (key_words(n) * 4) as u32
    } else {
        0
    }
}

/// Blocks of a launch over `units` rows or instances.
pub fn grid(units: usize) -> u32 {
    units.clamp(1, MAX_GRID as usize) as u32
}

impl ForwardParams {
    /// Perturb-and-MAP in training: `draws` rows of explicit noise per instance when
    /// `explicit_noise` (its S first are used), else the configured noise.
    pub fn training(
        config: &ImleConfig,
        kernel: DeviceKernel,
        batch: usize,
        n: usize,
        explicit_noise: bool,
    ) -> Self {
        let k = ones(kernel);
        let samples = config.samples;
        ForwardParams {
            batch: batch as u32,
            n: n as u32,
            k,
            samples,
            draws: config.draws(),
            tau: config.sense.sign() * config.tau,
            inv_samples: 1.0 / samples as f32,
            noisy: u32::from(explicit_noise || config.noise != Noise::None),
            keys: default_keys(n),
            mean: u32::from(config.reduce == Reduce::Mean && samples > 1),
            s_begin: 0,
            s_end: samples,
        }
    }

    /// Plain MAP(θ) (evaluation).
    pub fn map(kernel: DeviceKernel, batch: usize, n: usize) -> Self {
        let k = ones(kernel);
        ForwardParams {
            batch: batch as u32,
            n: n as u32,
            k,
            samples: 1,
            draws: 1,
            tau: 0.0,
            inv_samples: 1.0,
            noisy: 0,
            keys: default_keys(n),
            mean: 0,
            s_begin: 0,
            s_end: 1,
        }
    }

    /// Rows (or instances, for the mean) the launch covers.
    pub fn units(&self) -> usize {
        if self.mean != 0 {
            self.batch as usize
        } else {
            self.batch as usize * (self.s_end - self.s_begin) as usize
        }
    }

    /// The launch of the first phase of the two-phase mean: samples `s_begin .. s_end`
    /// solved into rows of their own, without the mean.
    pub fn sample_rows(&self, s_begin: u32, s_end: u32) -> Self {
        ForwardParams {
            mean: 0,
            s_begin,
            s_end,
            ..*self
        }
    }
}

impl BackwardParams {
    /// The backward pass of a layer with `config` whose forward ran with `lambda` (λ, or
    /// AIMLE's β) on `batch` instances of `n` elements, given `grad_rows` rows of incoming
    /// gradient.
    pub fn new(
        config: &ImleConfig,
        kernel: DeviceKernel,
        batch: usize,
        n: usize,
        grad_rows: usize,
        lambda: f32,
        explicit_noise: bool,
    ) -> Self {
        let k = ones(kernel);
        let sign = config.sense.sign();
        BackwardParams {
            batch: batch as u32,
            n: n as u32,
            k,
            samples: config.samples,
            draws: config.draws(),
            grad_per_instance: (grad_rows / batch) as u32,
            alpha: config.alpha,
            sign,
            tau: sign * config.tau,
            target_tau: sign * config.target_tau,
            lambda,
            noisy: u32::from(explicit_noise || config.noise != Noise::None),
            keys: default_keys(n),
            symmetric: u32::from(config.symmetric),
            scale_by_lambda: u32::from(config.scale_by_lambda),
            // With Reduce::Mean the output is the mean; the samples are solved again.
            plus_from_output: u32::from(config.reduce == Reduce::None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The structs are passed by value to the kernels: their sizes must match kernels.cu,
    /// where every field is 4 bytes.
    #[test]
    fn layouts_match_the_kernels() {
        assert_eq!(std::mem::size_of::<NoiseParams>(), 6 * 4 + 8);
        assert_eq!(std::mem::size_of::<ForwardParams>(), 12 * 4);
        assert_eq!(std::mem::size_of::<BackwardParams>(), 16 * 4);
    }

    #[test]
    fn sizes_beyond_32_bit_indices_are_errors() {
        assert!(check_sizes(u32::MAX as u64, MAX_N).is_ok());
        assert!(check_sizes(u32::MAX as u64 + 1, 1).is_err());
        assert!(check_sizes(1, MAX_N + 1).is_err());
    }

    #[test]
    fn shared_memory_fits_without_opt_in() {
        let static_bytes = (8 * 256 + 8 + 6) * 4; // SelectShared in kernels.cu
        let n = CACHE_MAX_N as usize;
        assert_eq!(default_keys(n), KEYS_SHARED);
        assert!(dynamic_shared_bytes(KEYS_SHARED, n) + static_bytes <= 48 * 1024);
        assert_eq!(default_keys(n + 1), KEYS_RECOMPUTED);
        assert_eq!(dynamic_shared_bytes(KEYS_SCRATCH, n + 1), 0);
    }
}
