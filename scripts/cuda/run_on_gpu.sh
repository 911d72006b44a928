#!/usr/bin/env bash
# Runs the packed CUDA checks (scripts/cuda/package.sh) on a GPU machine, from the repository
# root: the CPU/CUDA cross-check tests, then the benchmark beside PyTorch on the same card.
# Logs go to $OUT (or ./gpu-out).
set -uo pipefail
out=${OUT:-gpu-out}
mkdir -p "$out"
for f in .gpu/*.xz; do xz -dkf "$f"; done
chmod +x .gpu/cuda_tests .gpu/cuda_bench
# The binaries link libcuda (driver) and candle's CUDA libraries dynamically.
# One pass over the file system for all of them.
dirs=$(find / -path /proc -prune -o \( -name libnvrtc.so.13 -o -name libcublas.so.13 \
  -o -name libcublasLt.so.13 -o -name libcurand.so.10 -o -name libcudart.so.13 \) -print \
  2>/dev/null | xargs -r -n1 dirname | sort -u | paste -sd:)
echo "CUDA libraries in: $dirs" | tee "$out/libraries.txt"
export LD_LIBRARY_PATH=$dirs:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.memory --format=csv | tee "$out/gpu.txt"
# A dry run (the CPU standing in for the GPU) would pass without touching the GPU.
unset IMLE_CUDA_TESTS_ON_CPU
.gpu/cuda_tests --test-threads=1 --nocapture 2>&1 | tee "$out/cuda_tests.log"
tests_status=${PIPESTATUS[0]}
# Nothing may pass without checking: any skip, a dry run, or no test at all is a failure.
if grep -qiE 'skipped|dry run' "$out/cuda_tests.log" \
  || ! grep -qE '^test result: ok\. [1-9][0-9]* passed' "$out/cuda_tests.log"; then
  echo "the CUDA tests skipped something or ran none" | tee -a "$out/cuda_tests.log"
  [ "$tests_status" -ne 0 ] || tests_status=1
fi
IMLE_TORCH_PYTHON=${IMLE_TORCH_PYTHON:-python3} .gpu/cuda_bench --json 2>&1 | tee "$out/cuda_bench.log"
echo "tests exit status: $tests_status" | tee -a "$out/cuda_tests.log"
exit "$tests_status"
