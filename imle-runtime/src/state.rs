//! The state a layer shares with every op it creates: the call counter that keys the noise,
//! the target's [`Adaptation`] (densities, AIMLE's β) and the backward pass's kept buffer.

use crate::config::ImleConfig;
use crate::target::Adaptation;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// Shared by a layer, its clones and its ops (behind an `Arc`). Each lock is taken once per
/// pass, never per row or element.
#[derive(Debug)]
pub(crate) struct LayerState {
    calls: AtomicU64,
    adaptation: Mutex<Adaptation>,
    /// The backward pass's buffer of target solutions, kept between calls (taken and given
    /// back once per backward pass).
    buffer: Mutex<Vec<f32>>,
}

impl LayerState {
    pub(crate) fn new(config: &ImleConfig) -> Self {
        LayerState {
            calls: 0.into(),
            adaptation: Mutex::new(Adaptation::new(config.lambda)),
            buffer: Mutex::new(Vec::new()),
        }
    }

    /// The number of this training call (0, 1, ...), which keys its noise.
    pub(crate) fn next_call(&self) -> u64 {
        self.calls.fetch_add(1, Ordering::Relaxed)
    }

    /// A buffer of `len` values (contents unspecified): the kept one if no other pass holds
    /// it, else a fresh one.
    pub(crate) fn take_buffer(&self, len: usize) -> Vec<f32> {
        let mut buffer =
            std::mem::take(&mut *self.buffer.lock().unwrap_or_else(|e| e.into_inner()));
        buffer.resize(len, 0.0);
        buffer
    }

    /// Keeps `buffer` for the next [`LayerState::take_buffer`].
    pub(crate) fn give_back(&self, buffer: Vec<f32>) {
        let mut kept = self.buffer.lock().unwrap_or_else(|e| e.into_inner());
        if buffer.capacity() > kept.capacity() {
            *kept = buffer;
        }
    }

    pub(crate) fn adaptation(&self) -> Adaptation {
        // Nothing panics while holding this lock, so poisoning cannot happen; recover anyway.
        *self.adaptation.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// λ for a pass starting now (see [`Adaptation::lambda`]).
    pub(crate) fn lambda(&self, config: &ImleConfig) -> f32 {
        self.adaptation().lambda(config.target, config.lambda)
    }

    /// Records a backward pass's gradient density (see [`Adaptation::record`]).
    pub(crate) fn record_density(&self, density: f32, config: &ImleConfig) {
        self.adaptation
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .record(density, config.target);
    }
}
