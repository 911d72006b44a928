// imle's CUDA kernels: counter-based noise, and perturb-and-MAP with a top-k (or argmax)
// selection fused into one pass per solution.
//
// Compiled at run time with NVRTC (see cuda/mod.rs for the options: no FMA contraction, IEEE
// division and square root, no flush-to-zero). Every noise value is computed with the same
// f32 operations, in the same order, as the CPU path in noise/*.rs, so both paths give the
// same bits from the same Philox key. The counter layout is documented in noise/mod.rs.
//
// The file is also compiled as host C++ by the test harness in
// imle-runtime/tests/cuda_emulation/ (which defines IMLE_HOST_EMULATION and the CUDA built-ins
// used here), so the kernels' logic is checked against the CPU path on machines without a GPU.
// Hence: no early returns before a __syncthreads, warp shuffles only with all 32 lanes
// converged, and otherwise cooperation only through shared memory, __syncthreads and
// shared-memory atomics.

#ifndef IMLE_HOST_EMULATION
typedef unsigned int u32;
typedef int i32;
typedef unsigned long long u64;
#define IMLE_DYNAMIC_SHARED(type, name) extern __shared__ type name[]
#endif

// Threads per block of the selection kernels (the radix histogram has one bin per thread).
#define IMLE_THREADS 256
#define IMLE_WARPS (IMLE_THREADS / 32)
#define IMLE_BINS 256

// ---------------------------------------------------------------------------------------
// f32 constants, as bit patterns (the values of noise/math.rs, exactly).

#define IMLE_F32(bits) __uint_as_float(bits)
#define IMLE_SQRT_HALF_BITS 0x3f3504f3u
#define IMLE_LN2_HI 0x3f317200u
#define IMLE_LN2_LO 0x35bfbe8eu
#define IMLE_LN_R1 0x3f2aaaabu
#define IMLE_LN_R2 0x3ecccccdu
#define IMLE_LN_R3 0x3e924925u
#define IMLE_LN_R4 0x3e638e39u
#define IMLE_LOG2_E 0x3fb8aa3bu
#define IMLE_EXP_P2 0x3f000000u
#define IMLE_EXP_P3 0x3e2aaaabu
#define IMLE_EXP_P4 0x3d2aaaabu
#define IMLE_EXP_P5 0x3c088889u
#define IMLE_EXP_P6 0x3ab60b61u
#define IMLE_EXP_P7 0x39500d01u
#define IMLE_EXP_LO 0xc2d00000u
#define IMLE_EXP_HI 0x42b170a4u
#define IMLE_SHIFT 0x4b400000u
#define IMLE_ONE_MINUS_HALF_CELL 0x3f7fffffu
#define IMLE_SIN_S1 0x3fc90fdbu
#define IMLE_SIN_S3 0xbf255de7u
#define IMLE_SIN_S5 0x3da335e3u
#define IMLE_SIN_S7 0xbb996966u
#define IMLE_SIN_S9 0x39283c1au
#define IMLE_COS_C2 0xbf9de9e6u
#define IMLE_COS_C4 0x3e81e0f8u
#define IMLE_COS_C6 0xbcaae9e4u
#define IMLE_COS_C8 0x3a70fa83u
#define IMLE_COS_C10 0xb7d368f9u

__device__ __forceinline__ u32 imle_min_u32(u32 a, u32 b) { return a < b ? a : b; }

// ---------------------------------------------------------------------------------------
// Philox4x32-10 (noise/philox.rs).

__device__ __forceinline__ void imle_philox(u32 c0, u32 c1, u32 c2, u32 c3, u32 k0, u32 k1,
                                            u32 out[4]) {
  for (int round = 0; round < 10; ++round) {
    if (round > 0) {
      k0 += 0x9E3779B9u;
      k1 += 0xBB67AE85u;
    }
    const u32 hi0 = __umulhi(0xD2511F53u, c0), lo0 = 0xD2511F53u * c0;
    const u32 hi1 = __umulhi(0xCD9E8D57u, c2), lo1 = 0xCD9E8D57u * c2;
    const u32 n0 = hi1 ^ c1 ^ k0, n2 = hi0 ^ c3 ^ k1;
    c0 = n0;
    c1 = lo1;
    c2 = n2;
    c3 = lo0;
  }
  out[0] = c0;
  out[1] = c1;
  out[2] = c2;
  out[3] = c3;
}

// ---------------------------------------------------------------------------------------
// Elementary functions (noise/math.rs, operation for operation).

__device__ __forceinline__ float imle_uniform(u32 w) {
  return __uint_as_float(0x3f800000u | (w >> 9)) - IMLE_F32(IMLE_ONE_MINUS_HALF_CELL);
}

__device__ __forceinline__ float imle_ln(float x) {
  const i32 t = (i32)(__float_as_uint(x) - IMLE_SQRT_HALF_BITS);
  const float e = (float)(t >> 23);
  const float m = __uint_as_float((u32)(t & 0x007fffff) + IMLE_SQRT_HALF_BITS);
  const float f = m - 1.0f;
  const float s = f / (2.0f + f);
  const float z = s * s;
  const float r =
      z * (IMLE_F32(IMLE_LN_R1) +
           z * (IMLE_F32(IMLE_LN_R2) + z * (IMLE_F32(IMLE_LN_R3) + z * IMLE_F32(IMLE_LN_R4))));
  const float ln_m = f - s * (f - r);
  return e * IMLE_F32(IMLE_LN2_HI) + (ln_m + e * IMLE_F32(IMLE_LN2_LO));
}

__device__ __forceinline__ float imle_pow2(i32 n) { return __uint_as_float((u32)(n + 127) << 23); }

__device__ __forceinline__ float imle_exp(float x) {
  x = x > IMLE_F32(IMLE_EXP_LO) ? x : IMLE_F32(IMLE_EXP_LO);
  x = x < IMLE_F32(IMLE_EXP_HI) ? x : IMLE_F32(IMLE_EXP_HI);
  const float k = x * IMLE_F32(IMLE_LOG2_E) + IMLE_F32(IMLE_SHIFT);
  const float n_f = k - IMLE_F32(IMLE_SHIFT);
  const i32 n = (i32)(__float_as_uint(k) - IMLE_SHIFT);
  const float r = (x - n_f * IMLE_F32(IMLE_LN2_HI)) - n_f * IMLE_F32(IMLE_LN2_LO);
  const float p =
      1.0f +
      r * (1.0f +
           r * (IMLE_F32(IMLE_EXP_P2) +
                r * (IMLE_F32(IMLE_EXP_P3) +
                     r * (IMLE_F32(IMLE_EXP_P4) +
                          r * (IMLE_F32(IMLE_EXP_P5) +
                               r * (IMLE_F32(IMLE_EXP_P6) + r * IMLE_F32(IMLE_EXP_P7)))))));
  const i32 n1 = n >> 1;
  return p * imle_pow2(n1) * imle_pow2(n - n1);
}

// (sin 2 pi u, cos 2 pi u).
__device__ __forceinline__ void imle_sincos_turns(float u, float* sin_out, float* cos_out) {
  const float x = 4.0f * u;
  const float k = x + IMLE_F32(IMLE_SHIFT);
  const u32 q = __float_as_uint(k) - IMLE_SHIFT;
  const float f = x - (k - IMLE_F32(IMLE_SHIFT));
  const float z = f * f;
  float s = f * (IMLE_F32(IMLE_SIN_S1) +
                 z * (IMLE_F32(IMLE_SIN_S3) +
                      z * (IMLE_F32(IMLE_SIN_S5) +
                           z * (IMLE_F32(IMLE_SIN_S7) + z * IMLE_F32(IMLE_SIN_S9)))));
  float c = 1.0f + z * (IMLE_F32(IMLE_COS_C2) +
                        z * (IMLE_F32(IMLE_COS_C4) +
                             z * (IMLE_F32(IMLE_COS_C6) +
                                  z * (IMLE_F32(IMLE_COS_C8) + z * IMLE_F32(IMLE_COS_C10)))));
  if (q & 1u) {
    const float swap = s;
    s = c;
    c = swap;
  }
  *sin_out = __uint_as_float(__float_as_uint(s) ^ ((q & 2u) << 30));
  *cos_out = __uint_as_float(__float_as_uint(c) ^ (((q + 1u) & 2u) << 30));
}

// ---------------------------------------------------------------------------------------
// Noise (noise/kernels.rs and noise/sog_table.rs). The layout of this struct is mirrored
// by `NoiseParams` in cuda/params.rs.

#define IMLE_NOISE_NONE 0u
#define IMLE_NOISE_GUMBEL 1u
#define IMLE_NOISE_GAUSSIAN 2u
#define IMLE_NOISE_SUM_OF_GAMMA 3u

struct NoiseParams {
  u32 kind;
  u32 key0, key1;
  u32 terms;           // Sum-of-Gamma: s
  float k;             // Sum-of-Gamma: k
  float ln_s;          // Sum-of-Gamma: ln s, computed in f64 and rounded on the host
  const float* sog_table;  // Sum-of-Gamma: the quantile table, [2][2048][4] (sog_table.rs)
};

// Sum-of-Gamma table geometry (sog_table.rs): 32 binades of m = 2^-33 .. 2^-1, 64
// intervals each, per half.
#define IMLE_SOG_LOG_SUB 6u
#define IMLE_SOG_INTERVALS 2048u
#define IMLE_SOG_TABLE_LEN 16384u
#define IMLE_SOG_MIN_BIASED_EXP 94u  // 127 - 33
#define IMLE_SOG_M_MAX 0x3effffffu   // the largest f32 below 1/2

__device__ __forceinline__ float imle_gumbel(u32 w) { return -imle_ln(-imle_ln(imle_uniform(w))); }

__device__ __forceinline__ void imle_box_muller(u32 w_r, u32 w_a, float* c_out, float* s_out) {
  const float r = sqrtf(-2.0f * imle_ln(imle_uniform(w_r)));
  float sin_a, cos_a;
  imle_sincos_turns(imle_uniform(w_a), &sin_a, &cos_a);
  *c_out = r * cos_a;
  *s_out = r * sin_a;
}

// The Sum-of-Gamma value of word w (SogTable::value, locate and finish in sog_table.rs):
// the top bit picks the half, the other 31 bits the probability m, whose exponent and top
// mantissa bits address an interval and whose remaining bits are the cubic's argument.
__device__ __forceinline__ float imle_sog_value(const NoiseParams& p, u32 w) {
  const bool lower = (w >> 31) == 0u;
  float m = ((float)(int)(w & 0x7fffffffu) + 0.5f) * 2.3283064365386963e-10f;  // 2^-32
  const float m_max = __uint_as_float(IMLE_SOG_M_MAX);
  m = m < m_max ? m : m_max;
  const u32 bits = __float_as_uint(m);
  const u32 interval = (bits >> (23u - IMLE_SOG_LOG_SUB)) - (IMLE_SOG_MIN_BIASED_EXP << IMLE_SOG_LOG_SUB);
  const float x = __uint_as_float(0x3f800000u | ((bits << IMLE_SOG_LOG_SUB) & 0x007fffffu)) - 1.0f;
  const u32 index = (((lower ? 0u : IMLE_SOG_INTERVALS) + interval) * 4u) & (IMLE_SOG_TABLE_LEN - 4u);
  const float4 c = __ldg(reinterpret_cast<const float4*>(p.sog_table + index));
  const float poly = c.x + x * (c.y + x * (c.z + x * c.w));
  float y = lower ? imle_exp(poly) : poly;
  y = y > 0.0f ? y : 0.0f;
  return (y - p.ln_s) / p.k;
}

// Elements 4q .. 4q + valid - 1 of the row (instance, stream); valid <= 4. The four share
// one Philox block: counter word 1 is 0 for Gumbel and Gaussian, 1 for Sum-of-Gamma.
__device__ void imle_noise_quad(const NoiseParams& p, u32 instance, u32 stream, u32 q, u32 valid,
                                float out[4]) {
  if (p.kind == IMLE_NOISE_GUMBEL || p.kind == IMLE_NOISE_GAUSSIAN) {
    u32 w[4];
    imle_philox(q, 0u, instance, stream, p.key0, p.key1, w);
    if (p.kind == IMLE_NOISE_GUMBEL) {
      for (int j = 0; j < 4; ++j) out[j] = imle_gumbel(w[j]);
    } else {
      imle_box_muller(w[0], w[1], &out[0], &out[1]);
      imle_box_muller(w[2], w[3], &out[2], &out[3]);
    }
  } else if (p.kind == IMLE_NOISE_SUM_OF_GAMMA) {
    u32 w[4];
    imle_philox(q, 1u, instance, stream, p.key0, p.key1, w);
    for (int j = 0; j < 4; ++j) out[j] = imle_sog_value(p, w[j]);
  } else {
    for (int j = 0; j < 4; ++j) out[j] = 0.0f;
  }
}

// Noise rows: row r is (instance r / draws, stream r % draws); out is [rows, n].
extern "C" __global__ void imle_noise(NoiseParams p, u32 n, u32 draws, u64 rows, float* out) {
  const u64 quads_per_row = ((u64)n + 3u) / 4u;
  const u64 total = rows * quads_per_row;
  const u64 stride = (u64)gridDim.x * blockDim.x;
  for (u64 i = (u64)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += stride) {
    const u64 row = i / quads_per_row;
    const u32 q = (u32)(i % quads_per_row);
    const u32 valid = imle_min_u32(4u, n - 4u * q);
    float v[4];
    imle_noise_quad(p, (u32)(row / draws), (u32)(row % draws), q, valid, v);
    for (u32 j = 0; j < valid; ++j) out[row * n + 4u * q + j] = v[j];
  }
}

// ---------------------------------------------------------------------------------------
// Solver inputs: alpha * theta + step * g + tau * eps, exactly as `solver_input` in op/cpu.rs
// (the g term only when there is a g, the eps term only when the layer has noise).

struct RowInput {
  const float* theta;  // the instance's row of theta
  const float* g;      // a row of the incoming gradient, or null
  const float* eps;    // a row of explicit noise, or null (then generated if noisy)
  float alpha, step, tau;
  u32 instance, stream;
  bool noisy;
  u32* bad;            // gets IMLE_BAD_* bits for non-finite inputs read (or null)
};

// Bits of the `bad` word: which input had a NaN or an infinity.
#define IMLE_BAD_THETA 1u
#define IMLE_BAD_GRADIENT 2u
#define IMLE_BAD_NOISE 4u
#define IMLE_BAD_INPUT 8u  // alpha * theta + step * g + tau * eps overflowed (inputs finite)

__device__ __forceinline__ bool imle_finite(float x) {
  return (__float_as_uint(x) & 0x7f800000u) != 0x7f800000u;
}

// Order-preserving map from finite floats to u32: a larger float gets a larger key, and
// -0 and +0 get the same key, so they tie (ties go to the lowest index) as in the CPU
// solvers, which compare numerically (`cmp_desc`). -0 is turned into +0 on the bits rather
// than by `x + 0.0f`, which no compiler option may fold away.
__device__ __forceinline__ u32 imle_order_key(float x) {
  u32 u = __float_as_uint(x);
  if (u == 0x80000000u) u = 0u;
  return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

// Keys of elements 4q .. 4q + 3 (those < n); returns how many are valid.
__device__ u32 imle_input_keys(const NoiseParams& np, const RowInput& in, u32 n, u32 q,
                               u32 keys[4]) {
  const u32 e0 = 4u * q;
  const u32 valid = imle_min_u32(4u, n - e0);
  float eps[4] = {0.0f, 0.0f, 0.0f, 0.0f};
  if (in.noisy) {
    if (in.eps) {
      for (u32 j = 0; j < valid; ++j) eps[j] = in.eps[e0 + j];
    } else {
      imle_noise_quad(np, in.instance, in.stream, q, valid, eps);
    }
  }
  u32 bad = 0u;
  for (u32 j = 0; j < valid; ++j) {
    const float theta = in.theta[e0 + j];
    const float g = in.g ? in.g[e0 + j] : 0.0f;
    float x = in.g ? in.alpha * theta + in.step * g : in.alpha * theta;
    if (in.noisy) x += in.tau * eps[j];
    keys[j] = imle_order_key(x);
    u32 element = imle_finite(theta) ? 0u : IMLE_BAD_THETA;
    element |= imle_finite(g) ? 0u : IMLE_BAD_GRADIENT;
    element |= in.eps && !imle_finite(eps[j]) ? IMLE_BAD_NOISE : 0u;
    // Finite inputs whose sum is not: an overflow.
    element |= element == 0u && !imle_finite(x) ? IMLE_BAD_INPUT : 0u;
    bad |= element;
  }
  // Checked here, where every input is read anyway, instead of in passes of their own.
  if (bad && in.bad) atomicOr(in.bad, bad);
  return valid;
}

// ---------------------------------------------------------------------------------------
// Block-wide top-k selection by radix select on the keys.
//
// The result is a cut: element i is selected iff (key & mask) > prefix, or
// (key & mask) == prefix and i <= last_tie. The radix passes fix the key's bits 8 at a time
// from the top until the k-th largest key's bin holds exactly the elements still needed
// (then all of them are selected and last_tie = ~0), or all 32 bits are fixed; in that case
// the tied keys equal to the k-th largest are taken from the lowest index up, as the CPU
// solvers do, and last_tie is the index of the last one taken.

struct Cut {
  u32 prefix, mask, last_tie;
};

__device__ __forceinline__ bool imle_selected(const Cut& c, u32 key, u32 index) {
  const u32 m = key & c.mask;
  return m > c.prefix || (m == c.prefix && index <= c.last_tie);
}

struct SelectShared {
  u32 hist[IMLE_WARPS][IMLE_BINS];  // one histogram per warp: fewer atomic collisions
  u32 warp_totals[IMLE_WARPS];
  u32 prefix, mask, remaining, last_tie, done;
  u64 count;  // a block's non-zero differences (AIMLE)
};

// Inclusive prefix sum over the block; *total gets the block's sum. Every thread of the block
// must call it. A warp scans its 32 values with shuffles, then each thread adds the totals
// of the warps before it: two barriers per scan.
__device__ u32 imle_block_scan(u32 value, u32* warp_totals, u32* total) {
  const u32 lane = threadIdx.x & 31u, warp = threadIdx.x >> 5;
  u32 x = value;
  for (u32 delta = 1; delta < 32u; delta <<= 1) {
    const u32 y = __shfl_up_sync(0xffffffffu, x, delta);
    if (lane >= delta) x += y;
  }
  if (lane == 31u) warp_totals[warp] = x;
  __syncthreads();
  u32 before = 0u, sum = 0u;
  for (u32 w = 0; w < IMLE_WARPS; ++w) {
    const u32 t = warp_totals[w];
    before += w < warp ? t : 0u;
    sum += t;
  }
  *total = sum;
  __syncthreads();  // warp_totals may be reused by the next scan
  return before + x;
}

// Keys kept in shared memory (filled once per selection).
struct CachedKeys {
  const u32* keys;
  u32 n;
  __device__ u32 quad(u32 q, u32 out[4]) const {
    const u32 valid = imle_min_u32(4u, n - 4u * q);
    for (u32 j = 0; j < valid; ++j) out[j] = keys[4u * q + j];
    return valid;
  }
};

// Keys recomputed from theta, g and the noise at every use (rows too long for shared memory).
struct ComputedKeys {
  const NoiseParams* np;
  RowInput in;
  u32 n;
  __device__ u32 quad(u32 q, u32 out[4]) const {
    return imle_input_keys(*np, in, n, q, out);
  }
};

template <class Keys>
__device__ Cut imle_select(const Keys& keys, u32 n, u32 k, SelectShared& sh) {
  const u32 t = threadIdx.x;
  const u32 quads = (n + 3u) / 4u;
  if (t == 0) {
    sh.prefix = 0u;
    sh.mask = 0u;
    sh.remaining = k;
    sh.last_tie = 0xffffffffu;
    sh.done = 0u;
  }
  __syncthreads();
  for (int shift = 24; shift >= 0; shift -= 8) {
    const u32 prefix = sh.prefix, mask = sh.mask, remaining = sh.remaining;
    for (u32 i = t; i < IMLE_WARPS * IMLE_BINS; i += IMLE_THREADS) (&sh.hist[0][0])[i] = 0u;
    __syncthreads();
    u32* hist = sh.hist[t / 32u];
    for (u32 q = t; q < quads; q += IMLE_THREADS) {
      u32 kq[4];
      const u32 valid = keys.quad(q, kq);
      for (u32 j = 0; j < valid; ++j) {
        if ((kq[j] & mask) == prefix) atomicAdd(&hist[(kq[j] >> shift) & 0xffu], 1u);
      }
    }
    __syncthreads();
    // Thread t owns bin 255 - t, so the inclusive scan counts the keys in this bin or above.
    const u32 bin = IMLE_BINS - 1u - t;
    u32 count = 0u;
    for (u32 w = 0; w < IMLE_WARPS; ++w) count += sh.hist[w][bin];
    u32 total;
    const u32 at_or_above = imle_block_scan(count, sh.warp_totals, &total);
    const u32 above = at_or_above - count;
    if (above < remaining && remaining <= at_or_above) {
      sh.prefix = prefix | (bin << shift);
      sh.mask = mask | (0xffu << shift);
      sh.remaining = remaining - above;
      sh.done = count == remaining - above ? 1u : 0u;
    }
    __syncthreads();
    if (sh.done) break;
  }
  if (!sh.done) {
    // All 32 bits fixed: take the `need` tied keys of lowest index, a tile of
    // IMLE_THREADS quads at a time.
    const u32 key = sh.prefix, need = sh.remaining;
    u32 base = 0u;
    for (u32 q0 = 0; q0 < quads && base < need; q0 += IMLE_THREADS) {
      const u32 q = q0 + t;
      u32 kq[4];
      u32 valid = 0u, ties = 0u;
      if (q < quads) {
        valid = keys.quad(q, kq);
        for (u32 j = 0; j < valid; ++j) ties += kq[j] == key ? 1u : 0u;
      }
      u32 total;
      const u32 before = base + imle_block_scan(ties, sh.warp_totals, &total) - ties;
      if (before < need && need <= before + ties) {
        u32 rank = need - before;
        for (u32 j = 0; j < valid; ++j) {
          if (kq[j] == key && --rank == 0u) sh.last_tie = 4u * q + j;
        }
      }
      base += total;
    }
  }
  __syncthreads();
  Cut cut;
  cut.prefix = sh.prefix;
  cut.mask = sh.mask;
  cut.last_tie = sh.last_tie;
  __syncthreads();  // sh may be reused by the next selection
  return cut;
}

// Where a selection keeps its keys (the `keys` field of the params): recomputed from theta,
// g and the noise at every pass; in shared memory (rows of up to CACHE_MAX_N elements); or in
// a region of a global scratch buffer per block (longer rows), `imle_key_words(n)` words each.
#define IMLE_KEYS_RECOMPUTED 0u
#define IMLE_KEYS_SHARED 1u
#define IMLE_KEYS_SCRATCH 2u

// Words of a block's key region: the keys (rounded up to a multiple of 4, so what follows is
// 16-byte aligned) and the backward's bits of the plus solution.
__device__ __forceinline__ u64 imle_key_words(u32 n) { return ((n + 3u) & ~3u) + (n + 31u) / 32u; }

// This block's key region, or null when keys are recomputed.
__device__ __forceinline__ u32* imle_key_region(u32 keys, u32* shared, u32* scratch, u32 n) {
  if (keys == IMLE_KEYS_SHARED) return shared;
  if (keys == IMLE_KEYS_SCRATCH) return scratch + (u64)blockIdx.x * imle_key_words(n);
  return 0;
}

// Fills the key cache (shared or scratch) with the keys of `in`.
__device__ void imle_fill_cache(const NoiseParams& np, const RowInput& in, u32 n, u32* cache) {
  const u32 quads = (n + 3u) / 4u;
  for (u32 q = threadIdx.x; q < quads; q += IMLE_THREADS) {
    u32 kq[4];
    const u32 valid = imle_input_keys(np, in, n, q, kq);
    for (u32 j = 0; j < valid; ++j) cache[4u * q + j] = kq[j];
  }
  __syncthreads();
}

// Selects the top k of `in`: the cut, with the keys in `cache`, or recomputed at every pass
// when `cache` is null.
__device__ Cut imle_select_row(const NoiseParams& np, const RowInput& in, u32 n, u32 k, u32* cache,
                               SelectShared& sh) {
  if (cache) {
    imle_fill_cache(np, in, n, cache);
    CachedKeys keys;
    keys.keys = cache;
    keys.n = n;
    return imle_select(keys, n, k, sh);
  }
  ComputedKeys keys;
  keys.np = &np;
  keys.in = in;
  keys.n = n;
  return imle_select(keys, n, k, sh);
}

// ---------------------------------------------------------------------------------------
// Forward: z = topk(theta + tau * eps) per (instance, sample), or its mean over the samples.
// The layout of these params is mirrored by `ForwardParams` in cuda/params.rs.

struct ForwardParams {
  u32 batch, n, k, samples;
  u32 draws;           // rows of explicit noise per instance (S * M)
  float tau;           // sign * tau
  float inv_samples;   // 1 / S, for the mean
  u32 noisy;
  u32 keys;            // where a selection keeps its keys: IMLE_KEYS_*
  u32 mean;
  u32 s_begin, s_end;  // the samples of this launch (all: 0, S)
};

extern "C" __global__ void imle_forward(NoiseParams np, ForwardParams p, const float* theta,
                                        const float* explicit_noise, u32* scratch, float* out,
                                        u32* bad) {
  __shared__ SelectShared sh;
  IMLE_DYNAMIC_SHARED(u32, shared_keys);
  u32* cache = imle_key_region(p.keys, shared_keys, scratch, p.n);
  // Without the mean, a unit is an (instance, sample) row, and out has the launch's rows
  // b * (s_end - s_begin) + (s - s_begin); with it, a unit is an instance.
  const u32 chunk = p.s_end - p.s_begin;
  const u64 units = p.mean ? (u64)p.batch : (u64)p.batch * chunk;
  const u32 quads = (p.n + 3u) / 4u;
  for (u64 unit = blockIdx.x; unit < units; unit += gridDim.x) {
    const u32 s_begin = p.mean ? 0u : p.s_begin + (u32)(unit % chunk);
    const u32 s_end = p.mean ? p.samples : s_begin + 1u;
    const u32 b = (u32)(p.mean ? unit : unit / chunk);
    float* z = out + (u64)unit * p.n;
    for (u32 s = s_begin; s < s_end; ++s) {
      RowInput in;
      in.theta = theta + (u64)b * p.n;
      in.g = 0;
      in.eps = explicit_noise ? explicit_noise + ((u64)b * p.draws + s) * p.n : 0;
      in.alpha = 1.0f;
      in.step = 0.0f;
      in.tau = p.tau;
      in.instance = b;
      in.stream = s;
      in.noisy = p.noisy != 0u;
      in.bad = bad;
      const Cut cut = imle_select_row(np, in, p.n, p.k, cache, sh);
      ComputedKeys computed;
      computed.np = &np;
      computed.in = in;
      computed.n = p.n;
      for (u32 q = threadIdx.x; q < quads; q += IMLE_THREADS) {
        u32 kq[4];
        const u32 valid = cache ? CachedKeys{cache, p.n}.quad(q, kq) : computed.quad(q, kq);
        for (u32 j = 0; j < valid; ++j) {
          const u32 e = 4u * q + j;
          const float chosen = imle_selected(cut, kq[j], e) ? 1.0f : 0.0f;
          if (!p.mean) {
            z[e] = chosen;
          } else {
            // The CPU's mean: a sum from 0 in sample order, then times 1/S.
            float acc = s == 0u ? 0.0f : z[e];
            acc += chosen;
            z[e] = s + 1u == p.samples ? acc * p.inv_samples : acc;
          }
        }
      }
      __syncthreads();  // the cache is refilled by the next sample
    }
  }
}

// The mean over samples in two phases, for few instances with many samples: imle_forward
// (without the mean) writes the solutions of samples s_begin .. s_end - 1, and this adds
// them per element in sample order (from 0 when s_begin = 0), times 1/S after the last:
// the CPU's mean, in its order. One thread per (instance, element).
extern "C" __global__ void imle_mean_rows(ForwardParams p, const float* rows, float* out) {
  const u32 chunk = p.s_end - p.s_begin;
  const u64 total = (u64)p.batch * p.n;
  const u64 stride = (u64)gridDim.x * blockDim.x;
  for (u64 i = (u64)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += stride) {
    const u32 b = (u32)(i / p.n), e = (u32)(i % p.n);
    float acc = p.s_begin == 0u ? 0.0f : out[i];
    for (u32 s = 0; s < chunk; ++s) acc += rows[((u64)b * chunk + s) * p.n + e];
    out[i] = p.s_end == p.samples ? acc * p.inv_samples : acc;
  }
}

// ---------------------------------------------------------------------------------------
// Backward: per instance b, over its D = S * M draws d in order,
//   gradient_b += coefficient_d * (plus_d - minus_d),
// minus_d = topk(alpha theta + step_d g + tau' eps_d) with step_d = -sign * lambda_d, and
// plus_d = the forward solution (read from z when the output holds it), or recomputed as
// topk(theta + tau eps_d), or, for the central difference, topk(alpha theta - step_d g +
// tau' eps_d). The same eps_d is regenerated for both. Mirrors `Pass::backward` in op/cpu.rs.
// The layout of these params is mirrored by `BackwardParams` in cuda/params.rs.

struct BackwardParams {
  u32 batch, n, k, samples, draws;
  u32 grad_per_instance;  // rows of the incoming gradient per instance (S, or 1)
  float alpha, sign;
  float tau;              // sign * tau (the forward's)
  float target_tau;       // sign * tau'
  float lambda;           // used when row_lambda is null
  u32 noisy;
  u32 keys;               // where a selection keeps its keys: IMLE_KEYS_*
  u32 symmetric, scale_by_lambda;
  u32 plus_from_output;   // z holds the per-sample forward solutions (rows b * S + s)
};

// The row of the incoming gradient that draw d of instance b uses, and its lambda.
__device__ __forceinline__ u32 imle_grad_row(const BackwardParams& p, u32 b, u32 d) {
  return b * p.grad_per_instance + (d % p.samples) % p.grad_per_instance;
}

__device__ __forceinline__ float imle_draw_lambda(const BackwardParams& p, const float* row_lambda,
                                                  u32 b, u32 d) {
  return row_lambda ? row_lambda[imle_grad_row(p, b, d)] : p.lambda;
}

// The weight of draw d's difference in the gradient: sign / D, halved for the central
// difference, divided by lambda with scale_by_lambda (0 where lambda = 0, as g = 0 there).
__device__ __forceinline__ float imle_coefficient(const BackwardParams& p, float lambda) {
  float coefficient = p.sign / (float)p.draws;
  if (p.symmetric) coefficient *= 0.5f;
  if (p.scale_by_lambda) coefficient = lambda > 0.0f ? coefficient / lambda : 0.0f;
  return coefficient;
}

// Draw d of instance b: solves the plus and minus sides and calls emit(e, plus - minus) for
// each element e of the row (every thread for its own elements, the same ones at every
// draw). Returns this thread's count of non-zero differences.
template <class Emit>
__device__ u64 imle_backward_draw(const NoiseParams& np, const BackwardParams& p, u32 b, u32 d,
                                  const float* theta, const float* z, const float* grad,
                                  const float* row_lambda, const float* explicit_noise, u32* bad,
                                  u32* cache, SelectShared& sh, Emit& emit) {
  // After the keys, 16-byte aligned; only when there are keys in memory.
  u32* plus_bits = cache ? cache + ((p.n + 3u) & ~3u) : 0;
  const u32 quads = (p.n + 3u) / 4u;
  const float lambda = imle_draw_lambda(p, row_lambda, b, d);

  RowInput minus;
  minus.theta = theta + (u64)b * p.n;
  minus.g = grad + (u64)imle_grad_row(p, b, d) * p.n;
  minus.eps = explicit_noise ? explicit_noise + ((u64)b * p.draws + d) * p.n : 0;
  minus.alpha = p.alpha;
  minus.step = -1.0f * p.sign * lambda;
  minus.tau = p.target_tau;
  minus.instance = b;
  minus.stream = d;
  minus.noisy = p.noisy != 0u;
  minus.bad = bad;

  // The plus side, unless it is read from z.
  const bool plus_read = !p.symmetric && p.plus_from_output && d < p.samples;
  RowInput plus = minus;
  if (p.symmetric) {
    plus.step = 1.0f * p.sign * lambda;
  } else {
    plus.g = 0;
    plus.alpha = 1.0f;
    plus.step = 0.0f;
    plus.tau = p.tau;
  }
  const float* plus_z = plus_read ? z + ((u64)b * p.samples + d) * p.n : 0;
  Cut plus_cut;
  plus_cut.prefix = plus_cut.mask = plus_cut.last_tie = 0u;
  if (!plus_read) {
    plus_cut = imle_select_row(np, plus, p.n, p.k, cache, sh);
    if (cache) {
      // Keep the plus solution as bits: the cache is about to hold the minus keys.
      const u32 words = (p.n + 31u) / 32u;
      for (u32 i = threadIdx.x; i < words; i += IMLE_THREADS) plus_bits[i] = 0u;
      __syncthreads();
      for (u32 q = threadIdx.x; q < quads; q += IMLE_THREADS) {
        u32 kq[4];
        const u32 valid = CachedKeys{cache, p.n}.quad(q, kq);
        for (u32 j = 0; j < valid; ++j) {
          const u32 e = 4u * q + j;
          if (imle_selected(plus_cut, kq[j], e)) atomicOr(&plus_bits[e >> 5], 1u << (e & 31u));
        }
      }
      __syncthreads();
    }
  }
  const Cut minus_cut = imle_select_row(np, minus, p.n, p.k, cache, sh);

  ComputedKeys plus_keys;
  plus_keys.np = &np;
  plus_keys.in = plus;
  plus_keys.n = p.n;
  ComputedKeys minus_keys = plus_keys;
  minus_keys.in = minus;
  u64 nonzeros = 0u;
  for (u32 q = threadIdx.x; q < quads; q += IMLE_THREADS) {
    u32 km[4], kp[4];
    const u32 valid = cache ? CachedKeys{cache, p.n}.quad(q, km) : minus_keys.quad(q, km);
    if (!plus_read && !cache) plus_keys.quad(q, kp);
    for (u32 j = 0; j < valid; ++j) {
      const u32 e = 4u * q + j;
      float plus_value;
      if (plus_read) {
        plus_value = plus_z[e];
      } else if (cache) {
        plus_value = (plus_bits[e >> 5] >> (e & 31u)) & 1u ? 1.0f : 0.0f;
      } else {
        plus_value = imle_selected(plus_cut, kp[j], e) ? 1.0f : 0.0f;
      }
      const float minus_value = imle_selected(minus_cut, km[j], e) ? 1.0f : 0.0f;
      const float difference = plus_value - minus_value;
      nonzeros += difference != 0.0f ? 1u : 0u;
      emit(e, difference);
    }
  }
  __syncthreads();  // the cache and plus_bits are reused by the next draw
  return nonzeros;
}

// Adds a block's non-zero count to the global one (if it is kept). 64-bit: B * D * n can
// exceed 2^32.
__device__ void imle_add_nonzeros(u64 mine, u64* nonzeros, SelectShared& sh) {
  if (!nonzeros) return;  // uniform: every thread returns
  if (threadIdx.x == 0) sh.count = 0u;
  __syncthreads();
  atomicAdd(&sh.count, mine);
  __syncthreads();
  if (threadIdx.x == 0) atomicAdd(nonzeros, sh.count);
  __syncthreads();
}

// gradient_b += coefficient * difference, from 0 at draw 0: the CPU's sum, in its order.
struct Accumulate {
  float* acc;
  float coefficient;
  bool first;
  __device__ void operator()(u32 e, float difference) {
    float a = first ? 0.0f : acc[e];
    a += coefficient * difference;
    acc[e] = a;
  }
};

// The backward in one pass: one block per instance, its draws in order.
extern "C" __global__ void imle_backward(NoiseParams np, BackwardParams p, const float* theta,
                                         const float* z, const float* grad,
                                         const float* row_lambda, const float* explicit_noise,
                                         u32* scratch, float* gradient, u64* nonzeros,
                                         u32* bad) {
  __shared__ SelectShared sh;
  IMLE_DYNAMIC_SHARED(u32, shared_keys);
  u32* cache = imle_key_region(p.keys, shared_keys, scratch, p.n);
  for (u64 unit = blockIdx.x; unit < p.batch; unit += gridDim.x) {
    const u32 b = (u32)unit;
    u64 my_nonzeros = 0u;
    for (u32 d = 0; d < p.draws; ++d) {
      Accumulate emit;
      emit.acc = gradient + (u64)b * p.n;
      emit.coefficient = imle_coefficient(p, imle_draw_lambda(p, row_lambda, b, d));
      emit.first = d == 0u;
      my_nonzeros += imle_backward_draw(np, p, b, d, theta, z, grad, row_lambda, explicit_noise,
                                        bad, cache, sh, emit);
    }
    imle_add_nonzeros(my_nonzeros, nonzeros, sh);
  }
}

// The differences of a draw as bytes (-1, 0, 1).
struct StoreDifference {
  signed char* row;
  __device__ void operator()(u32 e, float difference) { row[e] = (signed char)difference; }
};

// The backward in two phases, for few instances with many draws (one block per instance
// would leave most of the GPU idle). Phase 1: one block per (instance, draw d) with
// d_begin <= d < d_end writes the draw's differences to `differences`, rows
// b * (d_end - d_begin) + (d - d_begin).
extern "C" __global__ void imle_backward_rows(NoiseParams np, BackwardParams p, u32 d_begin,
                                              u32 d_end, const float* theta, const float* z,
                                              const float* grad, const float* row_lambda,
                                              const float* explicit_noise, u32* scratch,
                                              signed char* differences, u64* nonzeros,
                                              u32* bad) {
  __shared__ SelectShared sh;
  IMLE_DYNAMIC_SHARED(u32, shared_keys);
  u32* cache = imle_key_region(p.keys, shared_keys, scratch, p.n);
  const u32 chunk = d_end - d_begin;
  const u64 units = (u64)p.batch * chunk;
  for (u64 unit = blockIdx.x; unit < units; unit += gridDim.x) {
    const u32 b = (u32)(unit / chunk), d = d_begin + (u32)(unit % chunk);
    StoreDifference emit;
    emit.row = differences + (u64)unit * p.n;
    const u64 mine = imle_backward_draw(np, p, b, d, theta, z, grad, row_lambda, explicit_noise,
                                        bad, cache, sh, emit);
    imle_add_nonzeros(mine, nonzeros, sh);
  }
}

// Phase 2: gradient_b[e] += coefficient_d * difference for d = d_begin .. d_end - 1 in order
// (from 0 when d_begin = 0): one thread per (instance, element).
extern "C" __global__ void imle_backward_sum(BackwardParams p, u32 d_begin, u32 d_end,
                                             const float* row_lambda,
                                             const signed char* differences, float* gradient) {
  const u32 chunk = d_end - d_begin;
  const u64 total = (u64)p.batch * p.n;
  const u64 stride = (u64)gridDim.x * blockDim.x;
  for (u64 i = (u64)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += stride) {
    const u32 b = (u32)(i / p.n), e = (u32)(i % p.n);
    float acc = d_begin == 0u ? 0.0f : gradient[i];
    for (u32 d = d_begin; d < d_end; ++d) {
      const float coefficient = imle_coefficient(p, imle_draw_lambda(p, row_lambda, b, d));
      const float difference = (float)differences[((u64)b * chunk + (d - d_begin)) * p.n + e];
      acc += coefficient * difference;
    }
    gradient[i] = acc;
  }
}

// AIMLE's per-row lambda: beta * |theta_b| / |g_row| (0 where g_row = 0), each norm a
// sequential sum of squares from 0 in element order, as `row_lambdas` in target.rs.
extern "C" __global__ void imle_row_lambdas(const float* theta, const float* grad, u32 batch,
                                            u32 n, u32 grad_per_instance, float beta,
                                            float* out) {
  const u64 rows = (u64)batch * grad_per_instance;
  for (u64 row = (u64)blockIdx.x * blockDim.x + threadIdx.x; row < rows;
       row += (u64)gridDim.x * blockDim.x) {
    const float* t = theta + (u64)(row / grad_per_instance) * n;
    const float* g = grad + (u64)row * n;
    float theta_sq = 0.0f, grad_sq = 0.0f;
    for (u32 i = 0; i < n; ++i) theta_sq += t[i] * t[i];
    for (u32 i = 0; i < n; ++i) grad_sq += g[i] * g[i];
    const float theta_norm = sqrtf(theta_sq), grad_norm = sqrtf(grad_sq);
    out[row] = grad_norm > 0.0f ? beta * theta_norm / grad_norm : 0.0f;
  }
}
