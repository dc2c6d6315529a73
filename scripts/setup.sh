#!/usr/bin/env bash
# Installs every Debian package moec needs to build and test. Idempotent.
set -euo pipefail

PACKAGES=(
  # toolchain
  build-essential cmake ninja-build ccache git python3
  # MLIR / LLVM 19 (libMLIR.so, libLLVM.so, mlir-tblgen, FileCheck, lit)
  llvm-19-dev libmlir-19-dev mlir-19-tools llvm-19-tools
  # compiler + runtime dependencies
  libflatbuffers-dev flatbuffers-compiler libyaml-cpp-dev nlohmann-json3-dev
  libdnnl-dev libopenmpi-dev openmpi-bin
  # benchmarks: OpenBLAS's GEMM peak, beside the runtime's oneDNN
  libopenblas-dev libopenblas-openmp-dev
  # tests
  libgtest-dev googletest python3-torch python3-numpy python3-yaml
  # the zlib/zstd/ncurses/xml that LLVM's CMake config expects to find
  zlib1g-dev libzstd-dev libedit-dev libxml2-dev libcurl4-openssl-dev libffi-dev
  # scripts/gpu-prepare.sh: the bundle for the GPU machine, zstd-compressed
  zstd
  # test/fuzz: libFuzzer harnesses, built with clang (ASan, UBSan, libFuzzer)
  clang-19 libclang-rt-19-dev
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#PACKAGES[@]} packages already installed"
  exit 0
fi

echo "setup: installing ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
