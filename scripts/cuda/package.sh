#!/usr/bin/env bash
# Builds the CUDA checks here (no GPU needed) and packs them for a GPU machine without a Rust
# toolchain: .gpu/cuda_tests (tests/cuda.rs of imle-runtime) and .gpu/cuda_bench
# (benches/cuda.rs), stripped and xz-compressed. Then, on the GPU machine, from the
# repository root: scripts/cuda/run_on_gpu.sh (README.md, section CUDA).
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/cuda/toolkit.sh
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-target/cuda} CUDA_COMPUTE_CAP=${CUDA_COMPUTE_CAP:-90}
export CUDAFORGE_THREADS=${CUDAFORGE_THREADS:-2}

# The path of the executable cargo reports for the target named $1 (of kind $2).
executable() {
  grep '"executable":"' | python3 -c '
import json, sys
for line in sys.stdin:
    msg = json.loads(line)
    if msg.get("target", {}).get("name") == sys.argv[1] and sys.argv[2] in msg["target"]["kind"]:
        print(msg["executable"])' "$1" "$2"
}

tests=$(cargo test --release -p imle-runtime --features cuda --test cuda --no-run \
  --message-format=json | executable cuda test)
bench=$(cargo bench --features cuda --bench cuda --no-run --message-format=json \
  | executable cuda bench)
grep -qx '/.gpu/' .git/info/exclude 2>/dev/null || echo /.gpu/ >> .git/info/exclude
mkdir -p .gpu
strip -o .gpu/cuda_tests "$tests"
strip -o .gpu/cuda_bench "$bench"
xz -9f .gpu/cuda_tests .gpu/cuda_bench
ls -l .gpu
