#!/usr/bin/env bash
# Installs PyPI's torch (a CUDA build whose wheel carries LibTorch 2.x for C++) into a venv, for
# building shrink against LibTorch 2.x beside Debian's 1.13 (`make test-torch2`). Prints nothing
# else on success but the LibTorch prefix to give CMake (TORCH_DIR).
#
#   scripts/install-torch2.sh [VENV]      (TORCH2_VERSION overrides the pin)
#
# The default venv lies outside the checkout, under ~/.cache/shrink, so that clones (CI's among
# them) share one copy of its ~5 GB instead of each downloading its own.
set -euo pipefail
version=${TORCH2_VERSION:-2.15.0}
venv=${1:-${XDG_CACHE_HOME:-$HOME/.cache}/shrink/torch-$version}
python=${PYTHON:-python3}

if [[ ! -x $venv/bin/python ]]; then
  mkdir -p "$(dirname "$venv")"
  "$python" -m venv "$venv" >&2
fi
have=$("$venv/bin/python" -W ignore -c 'import torch; print(torch.__version__)' 2>/dev/null || true)
if [[ ${have%%+*} != "$version" ]]; then
  echo "torch2: installing torch==$version into $venv (a CUDA build with its nvidia wheels: several GB)" >&2
  "$venv/bin/python" -m pip install -q --disable-pip-version-check "torch==$version" >&2
fi
# -W ignore: the wheel warns at import that NumPy is missing, which LibTorch for C++ does not need.
"$venv/bin/python" -W ignore -c 'import torch; print(torch.utils.cmake_prefix_path)'
