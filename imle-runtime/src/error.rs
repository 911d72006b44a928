//! Error helpers: every failure of the runtime is a `candle_core::Error::Msg` whose text names
//! the problem, so users can match on the message and candle propagates it unchanged.

use candle_core::Error;

/// A configuration value is out of range.
pub(crate) fn config_error(message: impl std::fmt::Display) -> Error {
    Error::Msg(format!("imle config: {message}"))
}

/// The input tensor (θ, the incoming gradient, explicit noise) is unusable.
pub(crate) fn input_error(message: impl std::fmt::Display) -> Error {
    Error::Msg(format!("imle input: {message}"))
}

/// A solver failed: returned an error, panicked, or wrote a bad solution.
pub(crate) fn solver_error(solver: &str, message: impl std::fmt::Display) -> Error {
    Error::Msg(format!("imle solver `{solver}`: {message}"))
}

/// The text of a caught panic payload.
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(text) = payload.downcast_ref::<&str>() {
        (*text).to_string()
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else {
        "(non-string panic payload)".to_string()
    }
}

/// The error when a solver input is not finite although θ, g and ε are: the sum overflowed.
/// The CPU passes and the CUDA kernels (`IMLE_BAD_INPUT` alone) report it the same way.
pub(crate) const INPUT_OVERFLOW: &str = "the solver input α·θ + λ·g + τ·ε overflowed to ±inf \
     or NaN (θ, λ·g or the noise is too large for f32)";

/// Checks that a configuration value is finite.
pub(crate) fn finite(name: &str, value: f32) -> candle_core::Result<()> {
    if value.is_finite() {
        Ok(())
    } else {
        Err(config_error(format!("{name} must be finite, got {value}")))
    }
}

/// Checks that a configuration value is finite and `>= 0`.
pub(crate) fn non_negative_finite(name: &str, value: f32) -> candle_core::Result<()> {
    if value.is_finite() && value >= 0.0 {
        Ok(())
    } else {
        Err(config_error(format!(
            "{name} must be finite and >= 0, got {value}"
        )))
    }
}

/// Checks that a configuration value is finite and `> 0`.
pub(crate) fn positive_finite(name: &str, value: f32) -> candle_core::Result<()> {
    if value.is_finite() && value > 0.0 {
        Ok(())
    } else {
        Err(config_error(format!(
            "{name} must be finite and > 0, got {value}"
        )))
    }
}
