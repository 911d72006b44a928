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
dirs=$(for lib in libnvrtc.so.13 libcublas.so.13 libcublasLt.so.13 libcurand.so.10 libcudart.so.13; do
  found=$(find / -name "$lib" -not -path '/proc/*' 2>/dev/null | head -1)
  [ -n "$found" ] && dirname "$found"
done | sort -u | paste -sd:)
export LD_LIBRARY_PATH=$dirs:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.memory --format=csv | tee "$out/gpu.txt"
.gpu/cuda_tests --test-threads=1 --nocapture 2>&1 | tee "$out/cuda_tests.log"
tests_status=${PIPESTATUS[0]}
IMLE_TORCH_PYTHON=${IMLE_TORCH_PYTHON:-python3} .gpu/cuda_bench --json 2>&1 | tee "$out/cuda_bench.log"
echo "tests exit status: $tests_status" | tee -a "$out/cuda_tests.log"
exit "$tests_status"
