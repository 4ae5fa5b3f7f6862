#!/usr/bin/env bash
# Installs shrink's Debian build and test dependencies, only those not already present.
set -euo pipefail

packages=(
  build-essential cmake ccache pkg-config
  libtorch-dev
  libopenblas0-openmp      # without it LibTorch falls back to reference BLAS (~20x slower matmul)
  libhdf5-dev
  libboost-program-options-dev
  libyaml-cpp-dev
  nlohmann-json3-dev
  libgtest-dev libgmock-dev
  libbenchmark-dev
  zlib1g-dev
  libonnx-dev libprotobuf-dev  # ONNX export: protobuf types, onnx::checker and shape inference
  libgloo-dev              # data-parallel training: the Gloo headers c10d's ProcessGroupGloo.hpp includes
  libre2-dev               # user patterns: linear-time regexes, no recursion (std::regex overflowed the stack)
  dataset-fashion-mnist
  python3-torch            # tests only: checks that .pth files load in PyTorch
  chromium                 # tests only: report.html renders in a headless browser with no console errors
  clang-format             # tests only: sources follow .clang-format (ctest style.*)
)

# `--sanitize`: also clang and its runtimes, for `make test-sanitize` and `make fuzz`.
if [[ ${1:-} == --sanitize ]]; then
  packages+=(clang libclang-rt-14-dev)
fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

if ((${#missing[@]} == 0)); then
  echo "deps: all ${#packages[@]} packages present"
  exit 0
fi

echo "deps: installing ${missing[*]}"
sudo=""
if [[ $(id -u) != 0 ]]; then sudo="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -q
$sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
