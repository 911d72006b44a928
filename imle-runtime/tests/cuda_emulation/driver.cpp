// C entry points that run the kernels of src/cuda/kernels.cu under the host emulation; built
// into a shared library by tests/cuda_emulation.rs.
#include "emulation.h"
#include "../../src/cuda/kernels.cu"

extern "C" void emu_noise(NoiseParams p, u32 n, u32 draws, u64 rows, float* out, u32 grid,
                          u32 block) {
  emu_launch(grid, block, 0, [&] { imle_noise(p, n, draws, rows, out); });
}

extern "C" void emu_forward(NoiseParams np, ForwardParams p, const float* theta,
                            const float* explicit_noise, u32* scratch, float* out, u32* bad,
                            u32 grid, u32 shared_bytes) {
  emu_launch(grid, IMLE_THREADS, shared_bytes,
             [&] { imle_forward(np, p, theta, explicit_noise, scratch, out, bad); });
}

extern "C" void emu_backward(NoiseParams np, BackwardParams p, const float* theta, const float* z,
                             const float* grad, const float* row_lambda,
                             const float* explicit_noise, u32* scratch, float* gradient,
                             u64* nonzeros, u32* bad, u32 grid, u32 shared_bytes) {
  emu_launch(grid, IMLE_THREADS, shared_bytes, [&] {
    imle_backward(np, p, theta, z, grad, row_lambda, explicit_noise, scratch, gradient, nonzeros,
                  bad);
  });
}

extern "C" void emu_row_lambdas(const float* theta, const float* grad, u32 batch, u32 n,
                                u32 grad_per_instance, float beta, float* out, u32 grid,
                                u32 block) {
  emu_launch(grid, block, 0, [&] {
    imle_row_lambdas(theta, grad, batch, n, grad_per_instance, beta, out);
  });
}

// Sizes of the parameter structs, compared with their Rust mirrors.
extern "C" u32 emu_sizeof_params(u32 which) {
  switch (which) {
    case 0: return sizeof(NoiseParams);
    case 1: return sizeof(ForwardParams);
    default: return sizeof(BackwardParams);
  }
}

extern "C" void emu_backward_rows(NoiseParams np, BackwardParams p, u32 d_begin, u32 d_end,
                                  const float* theta, const float* z, const float* grad,
                                  const float* row_lambda, const float* explicit_noise,
                                  u32* scratch, signed char* differences, u64* nonzeros, u32* bad,
                                  u32 grid, u32 shared_bytes) {
  emu_launch(grid, IMLE_THREADS, shared_bytes, [&] {
    imle_backward_rows(np, p, d_begin, d_end, theta, z, grad, row_lambda, explicit_noise,
                       scratch, differences, nonzeros, bad);
  });
}

extern "C" void emu_backward_sum(BackwardParams p, u32 d_begin, u32 d_end,
                                 const float* row_lambda, const signed char* differences,
                                 float* gradient, u32 grid, u32 block) {
  emu_launch(grid, block, 0, [&] {
    imle_backward_sum(p, d_begin, d_end, row_lambda, differences, gradient);
  });
}

extern "C" void emu_mean_rows(ForwardParams p, const float* rows, float* out, u32 grid,
                              u32 block) {
  emu_launch(grid, block, 0, [&] { imle_mean_rows(p, rows, out); });
}
