//! Philox4x32-10, the counter-based generator of Salmon, Moraes, Dror and Shaw,
//! "Parallel random numbers: as easy as 1, 2, 3" (SC 2011).
//!
//! A block is a pure function of a 128-bit counter and a 64-bit key, so any element of
//! any noise tensor can be generated on its own, in any order, on any thread or GPU.
//!
//! The function is written for one block; the lane kernels call it in loops over
//! fixed-size arrays, which LLVM vectorises (the 32x32->64 products become
//! `vpmuludq`), so the vector and scalar paths run the very same code.

/// Multiplier applied to counter word 0.
const M0: u32 = 0xD251_1F53;
/// Multiplier applied to counter word 2.
const M1: u32 = 0xCD9E_8D57;
/// Weyl increment of key word 0 between rounds (golden ratio).
const W0: u32 = 0x9E37_79B9;
/// Weyl increment of key word 1 between rounds (sqrt(3) - 1).
const W1: u32 = 0xBB67_AE85;

/// One Philox S-box round: the two 32x32->64 products and the Feistel-like mixing.
///
/// The state is carried in `u64` words whose low 32 bits are the Philox words; the high
/// bits are don't-care (they are masked off before each product and dropped at the end).
/// This way a vectorised loop keeps every word in a 64-bit lane for all ten rounds --
/// `vpmuludq` multiplies exactly the low halves of 64-bit lanes -- instead of packing
/// and unpacking 32-bit lanes around every product.
#[inline(always)]
fn round(c: [u64; 4], k: [u64; 2]) -> [u64; 4] {
    const LOW: u64 = 0xffff_ffff;
    let p0 = (c[0] & LOW) * u64::from(M0);
    let p1 = (c[2] & LOW) * u64::from(M1);
    // Words: hi(p1) ^ c1 ^ k0, lo(p1), hi(p0) ^ c3 ^ k1, lo(p0).
    [(p1 >> 32) ^ c[1] ^ k[0], p1, (p0 >> 32) ^ c[3] ^ k[1], p0]
}

/// Philox4x32 with 10 rounds: the key is bumped by the Weyl increments before every
/// round but the first.
#[inline(always)]
pub(crate) fn philox4x32_10(ctr: [u32; 4], key: [u32; 2]) -> [u32; 4] {
    let mut k = key.map(u64::from);
    let mut c = round(ctr.map(u64::from), k);
    for _ in 1..10 {
        // Only the low 32 bits matter, so the u64 sums wrap correctly mod 2^32.
        k = [k[0] + u64::from(W0), k[1] + u64::from(W1)];
        c = round(c, k);
    }
    c.map(|w| w as u32)
}

#[cfg(test)]
mod tests {
    use super::philox4x32_10;

    /// Known-answer vectors of Random123 (kat_vectors, "philox4x32 10" lines):
    /// counter, key, expected output.
    #[test]
    fn known_answers() {
        let cases: [([u32; 4], [u32; 2], [u32; 4]); 3] = [
            (
                [0, 0, 0, 0],
                [0, 0],
                [0x6627_e8d5, 0xe169_c58d, 0xbc57_ac4c, 0x9b00_dbd8],
            ),
            (
                [u32::MAX; 4],
                [u32::MAX; 2],
                [0x408f_276d, 0x41c8_3b0e, 0xa20b_c7c6, 0x6d54_51fd],
            ),
            (
                [0x243f_6a88, 0x85a3_08d3, 0x1319_8a2e, 0x0370_7344],
                [0xa409_3822, 0x299f_31d0],
                [0xd16c_fe09, 0x94fd_cceb, 0x5001_e420, 0x2412_6ea1],
            ),
        ];
        for (ctr, key, want) in cases {
            assert_eq!(
                philox4x32_10(ctr, key),
                want,
                "ctr {ctr:08x?} key {key:08x?}"
            );
        }
    }
}
