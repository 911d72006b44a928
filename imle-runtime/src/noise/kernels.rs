//! The noise kernels: per-element reference functions, which state the counter layout
//! of `mod.rs` in code (compiled for tests), and lane kernels, which compute the same
//! values many at a time.
//!
//! The lane kernels are `#[inline(always)]` so that `mod.rs` can compile them several
//! times (portable, AVX2, AVX-512) inside functions with different target features. They
//! call the very same per-lane functions as the reference, in loops over fixed-size
//! arrays that LLVM vectorises, so all paths give bit-identical results.

#[cfg(test)]
use super::gamma::gamma_ref;
use super::gamma::{
    GammaParams, MAX_ATTEMPTS, attempt_word, boost_factor, decide, gamma_from, normal,
};
use super::math::{ln, sincos_turns, uniform};
use super::philox::philox4x32_10;
use super::{Noise, NoiseKey};

/// Philox blocks (Gumbel, Gaussian) per vector pass, and the granularity of
/// Sum-of-Gamma windows: one AVX-512 register of `f32`, two AVX2 registers.
const LANES: usize = 16;
/// Sum-of-Gamma: LANES-element groups per call of `attempts`.
const SUBS: usize = 4;
/// Sum-of-Gamma: gamma attempts per call of `attempts`.
const BLOCK: usize = SUBS * LANES;
// Rejections of a block are collected in a u64 bit mask.
const _: () = assert!(BLOCK <= 64);
/// Elements per Gumbel/Gaussian vector pass (4 per block).
const ROW_CHUNK: usize = 4 * LANES;
/// Sum-of-Gamma: below this many pending draws, finish them one at a time; a vector pass
/// costs about as much as a few scalar attempts.
const SCALAR_BELOW: usize = 4;
/// Sum-of-Gamma draw buffer for long rows: LANES * 255 = 4080 draws fit, so a window is
/// at least LANES elements wide for every number of terms.
const BIG_CAP: usize = 4096;
/// Draw buffer for short rows (fewer than LANES * 32 draws), where clearing the big one
/// would cost more than the row itself.
const SMALL_CAP: usize = 512;

/// Sum-of-Gamma constants derived once per call.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SogParams {
    pub(crate) gamma: GammaParams,
    pub(crate) k: f32,
    pub(crate) terms: u32,
    /// ln s, computed in `f64` and rounded.
    pub(crate) ln_s: f32,
}

impl SogParams {
    pub(crate) fn new(k: f32, terms: u32) -> Self {
        Self {
            gamma: GammaParams::new(1.0 / k),
            k,
            terms,
            ln_s: f64::from(terms).ln() as f32,
        }
    }

    /// Scale k / i of term i (1-based).
    #[inline(always)]
    fn scale(&self, term: u32) -> f32 {
        self.k / term as f32
    }
}

// ---------------------------------------------------------------------------------------
// Per-element reference (the specification of every value).

/// The Gumbel/Gaussian block holding elements 4b .. 4b + 3.
#[inline(always)]
fn block(key: NoiseKey, instance: u32, stream: u32, b: u32) -> [u32; 4] {
    philox4x32_10([b, 0, instance, stream], key.0)
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
    gumbel(block(key, instance, stream, e / 4)[(e % 4) as usize])
}

/// Element `e` of a Gaussian row: elements 4b, 4b+1 are (r cos, r sin) of words (0, 1),
/// elements 4b+2, 4b+3 the same of words (2, 3).
#[cfg(test)]
pub(crate) fn gaussian_at(key: NoiseKey, instance: u32, stream: u32, e: u32) -> f32 {
    let w = block(key, instance, stream, e / 4);
    let pair = (e % 4 / 2 * 2) as usize;
    let (c, s) = box_muller(w[pair], w[pair + 1]);
    if e.is_multiple_of(2) { c } else { s }
}

/// Element `e` of a Sum-of-Gamma row: the draws of terms 1..=s added in that order, each
/// times its scale k / i, then (sum - ln s) / k.
#[cfg(test)]
pub(crate) fn sog_at(p: &SogParams, key: NoiseKey, instance: u32, stream: u32, e: u32) -> f32 {
    let mut acc = 0.0f32;
    for term in 1..=p.terms {
        acc += gamma_ref(&p.gamma, key.0, [e, term, instance, stream]) * p.scale(term);
    }
    (acc - p.ln_s) / p.k
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
        Noise::SumOfGamma { k, terms } => Some(SogParams::new(k, terms)),
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
        Noise::SumOfGamma { k, terms } => {
            let p = SogParams::new(k, terms);
            // Short rows get a small buffer (see SMALL_CAP); the boost is a compile-time
            // switch so the a >= 1 kernel does not compute it.
            let small = (terms as usize) * out.len().next_multiple_of(LANES) <= SMALL_CAP;
            match (p.gamma.boost, small) {
                (true, true) => fill_sog::<true, SMALL_CAP>(&p, key, instance, stream, out),
                (true, false) => fill_sog::<true, BIG_CAP>(&p, key, instance, stream, out),
                (false, true) => fill_sog::<false, SMALL_CAP>(&p, key, instance, stream, out),
                (false, false) => fill_sog::<false, BIG_CAP>(&p, key, instance, stream, out),
            }
        }
    }
}

/// The words of blocks `first .. first + LANES`, in element order.
#[inline(always)]
fn blocks(key: NoiseKey, instance: u32, stream: u32, first: u32) -> [u32; ROW_CHUNK] {
    let mut words = [0u32; ROW_CHUNK];
    for (j, w) in words.chunks_exact_mut(4).enumerate() {
        w.copy_from_slice(&block(key, instance, stream, first.wrapping_add(j as u32)));
    }
    words
}

/// Gumbel rows, LANES blocks (64 elements) per pass: Philox, then -ln(-ln U) per word.
#[inline(always)]
fn fill_gumbel(key: NoiseKey, instance: u32, stream: u32, out: &mut [f32]) {
    for (i, chunk) in out.chunks_mut(ROW_CHUNK).enumerate() {
        let words = blocks(key, instance, stream, (i * LANES) as u32);
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
        let words = blocks(key, instance, stream, (i * LANES) as u32);
        let mut vals = [0f32; ROW_CHUNK];
        for (v, w) in vals.chunks_exact_mut(2).zip(words.chunks_exact(2)) {
            (v[0], v[1]) = box_muller(w[0], w[1]);
        }
        chunk.copy_from_slice(&vals[..chunk.len()]);
    }
}

/// Bit l set iff lane l was rejected.
#[inline(always)]
fn rejected_mask(ok: &[bool; BLOCK]) -> u64 {
    let mut m = 0;
    for (l, &accepted) in ok.iter().enumerate() {
        m |= u64::from(!accepted) << l;
    }
    m
}

/// Bits 0 .. min(live, LANES) set: the lanes of a group that hold real elements.
#[inline(always)]
fn valid_mask(live: usize) -> u64 {
    if live >= LANES {
        u64::MAX >> (64 - LANES)
    } else {
        (1 << live) - 1
    }
}

/// Sum-of-Gamma, window by window (see [`SogWindow`]).
#[inline(always)]
fn fill_sog<const BOOST: bool, const CAP: usize>(
    p: &SogParams,
    key: NoiseKey,
    instance: u32,
    stream: u32,
    out: &mut [f32],
) {
    let s = p.terms as usize;
    // A multiple of LANES, so that groups never straddle terms, and no wider than the row.
    let width = (CAP / s / LANES * LANES).min(out.len().next_multiple_of(LANES));
    let mut win = SogWindow::<CAP> {
        p,
        key,
        instance,
        stream,
        width,
        e0: 0,
        n: 0,
        draws: [0.0; CAP],
        pending: [0; CAP],
        np: 0,
    };
    for (w, chunk) in out.chunks_mut(width).enumerate() {
        win.e0 = (w * width) as u32;
        win.n = chunk.len();
        win.np = 0;
        win.first_attempts::<BOOST>();
        let next_attempt = win.vector_retries::<BOOST>();
        win.scalar_retries::<BOOST>(next_attempt);
        win.sum_into(chunk);
    }
}

/// The draws of elements `e0 .. e0 + n` (n <= width) of a Sum-of-Gamma row:
/// `draws[t * width + i]` is term t + 1 of element e0 + i.
///
/// They are made in four steps: (1) attempt 0 of every draw, for LANES elements of one
/// term at a time; (2) the rejected draws, gathered in `pending`, get attempt 1 in vector
/// passes, the still-rejected attempt 2, and so on -- all pending draws are at the same
/// attempt number, so none has to be stored; (3) the last few finish in the scalar
/// sampler from their current attempt; (4) the draws are added up per element in term
/// order. Every draw thus takes the same attempts as in `sog_at`, and the sums add in
/// the same order.
struct SogWindow<'a, const CAP: usize> {
    p: &'a SogParams,
    key: NoiseKey,
    instance: u32,
    stream: u32,
    width: usize,
    e0: u32,
    n: usize,
    draws: [f32; CAP],
    /// Rejected draws, as `(t << 16) | i` (i < width <= CAP < 2^16).
    pending: [u32; CAP],
    np: usize,
}

impl<const CAP: usize> SogWindow<'_, CAP> {
    /// Step (1): groups of LANES elements of one term (windows are a multiple of LANES
    /// wide, so groups never straddle terms), SUBS groups per call of
    /// [`Self::attempts`]; a last, partial call repeats its first group as padding.
    #[inline(always)]
    fn first_attempts<const BOOST: bool>(&mut self) {
        let s = self.p.terms as usize;
        let (mut t, mut i0) = (0, 0); // the next group: term t + 1, elements i0 ..
        while t < s {
            let mut group = [(0, 0); SUBS];
            let mut live = 0;
            while live < SUBS && t < s {
                group[live] = (t, i0);
                live += 1;
                i0 += LANES;
                if i0 >= self.n {
                    (t, i0) = (t + 1, 0);
                }
            }
            let mut c0 = [0u32; BLOCK];
            let mut c1 = [0u32; BLOCK];
            for j in 0..SUBS {
                let (t, i0) = group[if j < live { j } else { 0 }];
                for l in 0..LANES {
                    c0[j * LANES + l] = self.e0.wrapping_add((i0 + l) as u32);
                    c1[j * LANES + l] = attempt_word(0, t as u32 + 1);
                }
            }
            let (g, ok) = self.attempts::<BOOST, BLOCK>(&c0, &c1);
            let rejected = rejected_mask(&ok);
            for (j, &(t, i0)) in group[..live].iter().enumerate() {
                // i0 + LANES <= width: padding lanes write into the buffer's slack.
                self.draws[t * self.width + i0..][..LANES]
                    .copy_from_slice(&g[j * LANES..][..LANES]);
                // Usually no lane or one is rejected, so walk the set bits.
                let mut bits = (rejected >> (j * LANES)) & valid_mask(self.n - i0);
                while bits != 0 {
                    let l = bits.trailing_zeros() as usize;
                    self.pending[self.np] = ((t as u32) << 16) | (i0 + l) as u32;
                    self.np += 1;
                    bits &= bits - 1;
                }
            }
        }
    }

    /// Step (2): vector passes over the pending draws, each pass one attempt further,
    /// until only a few are left. Returns the attempt number those are at.
    #[inline(always)]
    fn vector_retries<const BOOST: bool>(&mut self) -> u32 {
        let mut attempt = 1;
        while self.np >= SCALAR_BELOW && attempt < MAX_ATTEMPTS {
            let mut kept = 0;
            for j0 in (0..self.np).step_by(LANES) {
                let m = (self.np - j0).min(LANES);
                let mut idx = [self.pending[j0]; LANES];
                idx[..m].copy_from_slice(&self.pending[j0..j0 + m]);
                let mut c0 = [0u32; LANES];
                let mut c1 = [0u32; LANES];
                for l in 0..LANES {
                    c0[l] = self.e0.wrapping_add(idx[l] & 0xffff);
                    c1[l] = attempt_word(attempt, (idx[l] >> 16) + 1);
                }
                let (g, ok) = self.attempts::<BOOST, LANES>(&c0, &c1);
                for l in 0..m {
                    let x = idx[l];
                    self.draws[(x >> 16) as usize * self.width + (x & 0xffff) as usize] = g[l];
                    // Compaction in place: kept <= j0 + l, and idx holds a copy.
                    self.pending[kept] = x;
                    kept += usize::from(!ok[l]);
                }
            }
            self.np = kept;
            attempt += 1;
        }
        attempt
    }

    /// Step (3): the pending draws, one at a time, from attempt `attempt` on.
    #[inline(always)]
    fn scalar_retries<const BOOST: bool>(&mut self, attempt: u32) {
        for &x in &self.pending[..self.np] {
            let (t, i) = (x >> 16, x & 0xffff);
            let ctr = [self.e0.wrapping_add(i), t + 1, self.instance, self.stream];
            let g = gamma_from::<BOOST>(&self.p.gamma, self.key.0, ctr, attempt);
            self.draws[t as usize * self.width + i as usize] = g;
        }
    }

    /// Step (4): the scaled sum in term order, then the shift by ln s and the 1/k.
    #[inline(always)]
    fn sum_into(&self, out: &mut [f32]) {
        out.fill(0.0);
        for t in 0..self.p.terms as usize {
            let scale = self.p.scale(t as u32 + 1);
            for (o, &g) in out.iter_mut().zip(&self.draws[t * self.width..]) {
                *o += g * scale;
            }
        }
        for o in out.iter_mut() {
            *o = (*o - self.p.ln_s) / self.p.k;
        }
    }

    /// One Marsaglia–Tsang attempt per lane, lane l using the block at counter
    /// `[c0[l], c1[l], instance, stream]`.
    ///
    /// Written as a loop per stage (Philox; the normal; ln U2; the boost; the decision)
    /// rather than one loop: each body is short enough that the out-of-order core
    /// overlaps the long dependency chains of the N / 16 vectors, which a single loop
    /// body of some 400 instructions per vector does not allow (with N = 64 this made
    /// the AVX-512 kernel 1.5 times faster).
    #[inline(always)]
    fn attempts<const BOOST: bool, const N: usize>(
        &self,
        c0: &[u32; N],
        c1: &[u32; N],
    ) -> ([f32; N], [bool; N]) {
        let (p, key) = (&self.p.gamma, self.key.0);
        let (mut w0, mut w1, mut w2, mut w3) = ([0u32; N], [0u32; N], [0u32; N], [0u32; N]);
        for l in 0..N {
            [w0[l], w1[l], w2[l], w3[l]] =
                philox4x32_10([c0[l], c1[l], self.instance, self.stream], key);
        }
        let mut x = [0f32; N];
        for l in 0..N {
            x[l] = normal(w0[l], w1[l]);
        }
        let mut ln_u = [0f32; N];
        for l in 0..N {
            ln_u[l] = ln(uniform(w2[l]));
        }
        let mut boost = [1f32; N];
        if BOOST {
            for l in 0..N {
                boost[l] = boost_factor(p, w3[l]);
            }
        }
        let mut g = [0f32; N];
        let mut ok = [false; N];
        for l in 0..N {
            (g[l], ok[l]) = decide::<BOOST>(p, x[l], ln_u[l], boost[l]);
        }
        (g, ok)
    }
}
