//! The noise kernels: per-element reference functions, which state the counter layout
//! of `mod.rs` in code (compiled for tests), and lane kernels, which compute the same
//! values many at a time.
//!
//! The lane kernels are `#[inline(always)]` so that `mod.rs` can compile them several
//! times (portable, AVX2, AVX-512) inside functions with different target features. They
//! call the very same per-lane functions as the reference, in loops over fixed-size
//! arrays that LLVM vectorises, so all paths give bit-identical results.

use super::math::{ln, sincos_turns, uniform};
use super::philox::philox4x32_10;
use super::sog_table::{SogTable, finish, locate};
use super::{Noise, NoiseKey};

/// Philox blocks per vector pass: one AVX-512 register of `f32`, two AVX2 registers.
const LANES: usize = 16;
/// Elements per vector pass (4 per block).
const ROW_CHUNK: usize = 4 * LANES;
/// Counter word 1 of the Sum-of-Gamma blocks (Gumbel and Gaussian use 0), so that the
/// kinds never share random words.
pub(crate) const SOG_STREAM_WORD: u32 = 1;

// ---------------------------------------------------------------------------------------
// Per-element reference (the specification of every value).

/// The block holding elements 4b .. 4b + 3: counter word 1 is 0 for Gumbel and Gaussian,
/// [`SOG_STREAM_WORD`] for Sum-of-Gamma.
#[inline(always)]
fn block(key: NoiseKey, instance: u32, stream: u32, c1: u32, b: u32) -> [u32; 4] {
    philox4x32_10([b, c1, instance, stream], key.0)
}

/// Standard Gumbel from one word: -ln(-ln U).
#[inline(always)]
fn gumbel(w: u32) -> f32 {
    -ln(-ln(uniform(w)))
}

/// Box–Muller: radius from `w_r`, angle from `w_a`; returns (r cos, r sin).
#[inline(always)]
fn box_muller(w_r: u32, w_a: u32) -> (f32, f32) {
    let r = (-2.0 * ln(uniform(w_r))).sqrt();
    let (sin, cos) = sincos_turns(uniform(w_a));
    (r * cos, r * sin)
}

/// Element `e` of a Gumbel row.
#[cfg(test)]
pub(crate) fn gumbel_at(key: NoiseKey, instance: u32, stream: u32, e: u32) -> f32 {
    gumbel(block(key, instance, stream, 0, e / 4)[(e % 4) as usize])
}

/// Element `e` of a Gaussian row: elements 4b, 4b+1 are (r cos, r sin) of words (0, 1),
/// elements 4b+2, 4b+3 the same of words (2, 3).
#[cfg(test)]
pub(crate) fn gaussian_at(key: NoiseKey, instance: u32, stream: u32, e: u32) -> f32 {
    let w = block(key, instance, stream, 0, e / 4);
    let pair = (e % 4 / 2 * 2) as usize;
    let (c, s) = box_muller(w[pair], w[pair + 1]);
    if e.is_multiple_of(2) { c } else { s }
}

/// Element `e` of a Sum-of-Gamma row: word `e % 4` of the block at counter
/// `[e / 4, SOG_STREAM_WORD, instance, stream]` through the quantile table.
#[cfg(test)]
pub(crate) fn sog_at(table: &SogTable, key: NoiseKey, instance: u32, stream: u32, e: u32) -> f32 {
    table.value(block(key, instance, stream, SOG_STREAM_WORD, e / 4)[(e % 4) as usize])
}

/// Fills `out` one element at a time with the reference functions.
#[cfg(test)]
pub(crate) fn fill_reference(
    noise: &Noise,
    key: NoiseKey,
    instance: u32,
    stream: u32,
    out: &mut [f32],
) {
    let sog = match *noise {
        Noise::SumOfGamma { k, terms } => Some(table(k, terms)),
        _ => None,
    };
    for (e, o) in out.iter_mut().enumerate() {
        let e = e as u32;
        *o = match noise {
            Noise::None => 0.0,
            Noise::Gumbel => gumbel_at(key, instance, stream, e),
            Noise::Gaussian => gaussian_at(key, instance, stream, e),
            Noise::SumOfGamma { .. } => sog_at(sog.as_ref().unwrap(), key, instance, stream, e),
        };
    }
}

// ---------------------------------------------------------------------------------------
// Lane kernels.

/// Fills `out` with the lane kernels; inlined into each multiversioned entry point.
#[inline(always)]
pub(crate) fn fill_lanes(
    noise: &Noise,
    key: NoiseKey,
    instance: u32,
    stream: u32,
    out: &mut [f32],
) {
    match *noise {
        Noise::None => out.fill(0.0),
        Noise::Gumbel => fill_gumbel(key, instance, stream, out),
        Noise::Gaussian => fill_gaussian(key, instance, stream, out),
        Noise::SumOfGamma { k, terms } => fill_sog(&table(k, terms), key, instance, stream, out),
    }
}

/// The cached table of a Sum-of-Gamma configuration that has passed `Noise::validate`.
///
/// # Panics
///
/// If (k, terms) has no table (`Noise::validate` reports that as an error first).
pub(crate) fn table(k: f32, terms: u32) -> std::sync::Arc<SogTable> {
    SogTable::get(k, terms)
        .unwrap_or_else(|e| panic!("Sum-of-Gamma noise with k = {k}, terms = {terms}: {e}"))
}

/// The words of blocks `first .. first + LANES`, in element order.
#[inline(always)]
fn blocks(key: NoiseKey, instance: u32, stream: u32, c1: u32, first: u32) -> [u32; ROW_CHUNK] {
    let mut words = [0u32; ROW_CHUNK];
    for (j, w) in words.chunks_exact_mut(4).enumerate() {
        w.copy_from_slice(&block(
            key,
            instance,
            stream,
            c1,
            first.wrapping_add(j as u32),
        ));
    }
    words
}

/// Gumbel rows, LANES blocks (64 elements) per pass: Philox, then -ln(-ln U) per word.
#[inline(always)]
fn fill_gumbel(key: NoiseKey, instance: u32, stream: u32, out: &mut [f32]) {
    for (i, chunk) in out.chunks_mut(ROW_CHUNK).enumerate() {
        let words = blocks(key, instance, stream, 0, (i * LANES) as u32);
        let mut vals = [0f32; ROW_CHUNK];
        for (v, &w) in vals.iter_mut().zip(&words) {
            *v = gumbel(w);
        }
        chunk.copy_from_slice(&vals[..chunk.len()]);
    }
}

/// Gaussian rows, LANES blocks (64 elements) per pass: Philox, then Box–Muller per
/// pair of words.
#[inline(always)]
fn fill_gaussian(key: NoiseKey, instance: u32, stream: u32, out: &mut [f32]) {
    for (i, chunk) in out.chunks_mut(ROW_CHUNK).enumerate() {
        let words = blocks(key, instance, stream, 0, (i * LANES) as u32);
        let mut vals = [0f32; ROW_CHUNK];
        for (v, w) in vals.chunks_exact_mut(2).zip(words.chunks_exact(2)) {
            (v[0], v[1]) = box_muller(w[0], w[1]);
        }
        chunk.copy_from_slice(&vals[..chunk.len()]);
    }
}

/// Sum-of-Gamma rows, LANES blocks (64 elements) per pass: Philox, then per word the
/// table interval and local coordinate, the four coefficients, the cubic, and
/// [`finish`]. Each stage is its own loop so that each vectorises (the coefficient loads
/// become gathers).
#[inline(always)]
fn fill_sog(table: &SogTable, key: NoiseKey, instance: u32, stream: u32, out: &mut [f32]) {
    let coef = table.coefficients();
    let (ln_s, k) = (table.ln_s(), table.k());
    for (i, chunk) in out.chunks_mut(ROW_CHUNK).enumerate() {
        let words = blocks(key, instance, stream, SOG_STREAM_WORD, (i * LANES) as u32);
        let mut index = [0usize; ROW_CHUNK];
        let mut x = [0f32; ROW_CHUNK];
        let mut lower = [false; ROW_CHUNK];
        for l in 0..ROW_CHUNK {
            (index[l], x[l], lower[l]) = locate(words[l]);
        }
        let mut p = [0f32; ROW_CHUNK];
        for l in 0..ROW_CHUNK {
            let c = &coef[index[l]..][..4];
            p[l] = c[0] + x[l] * (c[1] + x[l] * (c[2] + x[l] * c[3]));
        }
        let mut vals = [0f32; ROW_CHUNK];
        for l in 0..ROW_CHUNK {
            vals[l] = finish(p[l], lower[l], ln_s, k);
        }
        chunk.copy_from_slice(&vals[..chunk.len()]);
    }
}
