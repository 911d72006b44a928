// Host emulation of the few CUDA built-ins that src/cuda/kernels.cu uses, so the kernels can
// run on a CPU in tests: one std::thread per CUDA thread of a block, __syncthreads as a
// std::barrier, __shared__ variables as statics (blocks run one after another, launches one
// at a time), dynamic shared memory as a buffer per launch. IEEE f32 arithmetic on x86-64
// (SSE, compiled with -ffp-contract=off) rounds like the GPU's non-fused operations.
#pragma once

#include <barrier>
#include <cstdint>
#include <cstring>
#include <cmath>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#define IMLE_HOST_EMULATION 1

typedef uint32_t u32;
typedef int32_t i32;
typedef unsigned long long u64;

struct EmuDim3 {
  u32 x, y, z;
};

inline thread_local EmuDim3 threadIdx = {0, 0, 0};
inline thread_local EmuDim3 blockIdx = {0, 0, 0};
inline EmuDim3 blockDim = {1, 1, 1};
inline EmuDim3 gridDim = {1, 1, 1};
inline std::barrier<>* emu_barrier = nullptr;
// Warp shuffles: each lane posts its value, the warp meets, each reads its source lane's.
inline std::vector<std::unique_ptr<std::barrier<>>> emu_warp_barriers;
inline std::vector<u32> emu_warp_exchange;
inline unsigned char* emu_dynamic_shared = nullptr;
// One launch at a time: the globals above (and the kernels' static "shared" variables) belong
// to the running launch. A single mutex for all kernels, not one per template instance.
inline std::mutex emu_one_launch_at_a_time;

#define __global__
#define __device__
#define __forceinline__ inline
#define __shared__ static
#define IMLE_DYNAMIC_SHARED(type, name) type* name = reinterpret_cast<type*>(emu_dynamic_shared)

inline void __syncthreads() { emu_barrier->arrive_and_wait(); }
inline float __uint_as_float(u32 u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
inline u32 __float_as_uint(float f) {
  u32 u;
  std::memcpy(&u, &f, 4);
  return u;
}
// The float4 vector type and the read-only-cache load (here an ordinary load).
struct float4 {
  float x, y, z, w;
};
inline float4 __ldg(const float4* p) { return *p; }
inline u32 __umulhi(u32 a, u32 b) { return (u32)(((u64)a * (u64)b) >> 32); }
// __shfl_up_sync with all 32 lanes taking part (the only way the kernels use it): lane l
// gets lane l - delta's value, or keeps its own when l < delta.
inline u32 __shfl_up_sync(u32 /*mask*/, u32 value, u32 delta) {
  const u32 t = threadIdx.x, lane = t & 31u;
  std::barrier<>& warp = *emu_warp_barriers[t >> 5];
  emu_warp_exchange[t] = value;
  warp.arrive_and_wait();
  const u32 got = lane >= delta ? emu_warp_exchange[t - delta] : value;
  warp.arrive_and_wait();  // the exchange slots are free again
  return got;
}
inline u32 atomicAdd(u32* p, u32 v) { return __atomic_fetch_add(p, v, __ATOMIC_RELAXED); }
inline u64 atomicAdd(u64* p, u64 v) { return __atomic_fetch_add(p, v, __ATOMIC_RELAXED); }
inline u32 atomicOr(u32* p, u32 v) { return __atomic_fetch_or(p, v, __ATOMIC_RELAXED); }

// Runs `kernel()` as a grid of `grid` blocks of `block` threads with `shared_bytes` of dynamic
// shared memory. Blocks run in order; the threads of a block run concurrently.
template <class Kernel>
void emu_launch(u32 grid, u32 block, size_t shared_bytes, Kernel kernel) {
  std::lock_guard<std::mutex> lock(emu_one_launch_at_a_time);
  std::vector<unsigned char> dynamic_shared(shared_bytes + 16);
  emu_dynamic_shared = dynamic_shared.data();
  gridDim = {grid, 1, 1};
  blockDim = {block, 1, 1};
  std::barrier<> barrier((std::ptrdiff_t)block);
  emu_barrier = &barrier;
  // Whole warps only (the kernels' blocks are multiples of 32 threads).
  emu_warp_barriers.clear();
  for (u32 w = 0; w < (block + 31) / 32; ++w) {
    const u32 lanes = block - 32 * w < 32 ? block - 32 * w : 32;
    emu_warp_barriers.push_back(std::make_unique<std::barrier<>>((std::ptrdiff_t)lanes));
  }
  emu_warp_exchange.assign(block, 0u);
  std::vector<std::thread> threads;
  threads.reserve(block);
  for (u32 t = 0; t < block; ++t) {
    threads.emplace_back([&, t] {
      threadIdx = {t, 0, 0};
      for (u32 b = 0; b < grid; ++b) {
        blockIdx = {b, 0, 0};
        kernel();
        barrier.arrive_and_wait();  // the block ends before the next one starts
      }
    });
  }
  for (auto& thread : threads) thread.join();
  emu_barrier = nullptr;
  emu_dynamic_shared = nullptr;
}
