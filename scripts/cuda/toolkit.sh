#!/usr/bin/env bash
# A CUDA 13.0 toolkit for building imle's `cuda` feature on a machine without one (no GPU,
# no CUDA packages): NVIDIA's toolkit wheels from PyPI, gathered into one root folder, plus
# a stub libcuda.so to link against. Source it from the repository root:
#
#   source scripts/cuda/toolkit.sh               # first time: a few minutes, ~1 GB from PyPI
#   cargo build --release --features cuda        # candle's CUDA kernels: ~8 min on 2 cores
#
# Exports CUDA_ROOT (default /opt/imle-cuda-13.0; set it first to choose), CUDA_PATH,
# CUDA_HOME, PATH, LIBRARY_PATH, RUSTFLAGS and CUDA_COMPUTE_CAP (default 90: H100/H200).
# The stub libcuda only satisfies the linker: a binary built here runs on a GPU machine
# against that machine's own driver (scripts/cuda/run_on_gpu.sh finds it there).
set -u

imle_cuda_fail() {
  echo "toolkit.sh: $*" >&2
  return 1
}

imle_cuda_build_root() {
  local root=$1 venv=$1/venv site dir file name
  mkdir -p "$root/bin" "$root/include" "$root/lib64/stubs" || imle_cuda_fail "cannot create $root" || return 1
  python3 -m venv "$venv" || imle_cuda_fail "python3 -m venv failed" || return 1
  # The versions of one CUDA 13.0 release, so that headers, compiler and libraries agree.
  "$venv/bin/pip" install -q --disable-pip-version-check \
    nvidia-cuda-nvcc==13.0.88 nvidia-cuda-crt==13.0.88 nvidia-nvvm==13.0.88 \
    nvidia-cuda-runtime==13.0.96 nvidia-cuda-cccl==13.0.85 nvidia-cuda-nvrtc==13.0.88 \
    nvidia-cublas==13.0.2.14 nvidia-curand==10.4.0.35 ||
    imle_cuda_fail "pip could not install the CUDA wheels" || return 1
  site=$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
  # Each wheel brings its own bin/include/lib under nvidia/<component>/: link them into the
  # single layout that nvcc, candle's build script and the linker expect.
  while IFS= read -r dir; do
    case "$dir" in
      */nvvm) ln -sfn "$dir" "$root/nvvm" ;;
      */bin) for file in "$dir"/*; do ln -sfn "$file" "$root/bin/"; done ;;
      */include) for file in "$dir"/*; do ln -sfn "$file" "$root/include/"; done ;;
      */lib) for file in "$dir"/*; do ln -sfn "$file" "$root/lib64/"; done ;;
    esac
  done < <(find "$site/nvidia" -mindepth 1 -maxdepth 3 -type d \
    \( -name bin -o -name include -o -name lib -o -name nvvm \))
  # The wheels ship libX.so.N only; `-lX` needs libX.so.
  for file in "$root"/lib64/lib*.so.*; do
    name=${file##*/}
    [ -e "$root/lib64/${name%%.so.*}.so" ] || ln -sfn "$file" "$root/lib64/${name%%.so.*}.so"
  done
  # libcuda comes with the driver, not the toolkit: link against a stub that defines every
  # cu* symbol of cuda.h (each returns an error if it were ever called).
  local stub
  stub=$(mktemp -d)
  gcc -E -P -I"$root/include" "$root/include/cuda.h" 2>/dev/null |
    grep -oE '\bcu[A-Z][A-Za-z0-9_]*[[:space:]]*\(' | tr -d '( \t' | sort -u |
    awk '{ print "int " $1 "(void) { return 999; }" }' >"$stub/libcuda_stub.c"
  gcc -shared -fPIC -Wl,-soname,libcuda.so.1 -o "$root/lib64/stubs/libcuda.so.1" \
    "$stub/libcuda_stub.c" || { rm -rf "$stub"; imle_cuda_fail "could not build the libcuda stub"; return 1; }
  ln -sfn libcuda.so.1 "$root/lib64/stubs/libcuda.so"
  rm -rf "$stub"
}

CUDA_ROOT=${CUDA_ROOT:-/opt/imle-cuda-13.0}
if [ ! -x "$CUDA_ROOT/bin/nvcc" ]; then
  imle_cuda_build_root "$CUDA_ROOT" || return 1 2>/dev/null || exit 1
fi
export CUDA_ROOT CUDA_PATH="$CUDA_ROOT" CUDA_HOME="$CUDA_ROOT"
export CUDA_COMPUTE_CAP=${CUDA_COMPUTE_CAP:-90}
export PATH="$CUDA_ROOT/bin:$PATH"
export LIBRARY_PATH="$CUDA_ROOT/lib64:$CUDA_ROOT/lib64/stubs${LIBRARY_PATH:+:$LIBRARY_PATH}"
export RUSTFLAGS="${RUSTFLAGS:-} -L $CUDA_ROOT/lib64 -L $CUDA_ROOT/lib64/stubs"
nvcc --version | tail -n 2
