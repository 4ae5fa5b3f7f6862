#!/usr/bin/env bash
# Run on a Debian 12 machine with package access: downloads what a GPU machine without package
# access needs to build and run shrink against its own CUDA LibTorch (scripts/gpu-check.sh), as
# .deb files into DIR. Copy DIR beside the checkout there; nothing is installed here.
set -euo pipefail
dir=${1:?usage: scripts/fetch-gpu-deps.sh DIR}
mkdir -p "$dir"
cd "$dir"
# Headers and libraries shrink links besides LibTorch, and the dataset the recipes train on.
packages=(
  libboost-program-options-dev libboost-program-options1.74-dev libboost-program-options1.74.0 libboost1.74-dev
  libyaml-cpp-dev libyaml-cpp0.7
  nlohmann-json3-dev
  libhdf5-dev libhdf5-103-1 libhdf5-hl-100 libsz2 libaec0 libaec-dev
  zlib1g-dev
  libre2-dev libre2-9
  libonnx-dev libonnx1 libonnxifi libprotobuf-dev libprotobuf32 libprotobuf-lite32
  libgloo-dev              # headers only: c10d's Gloo backend (the wheel links Gloo in)
  dataset-fashion-mnist
)
apt-get download "${packages[@]}"
ls -l "$dir"
