#!/usr/bin/env bash
# Installs PyPI's onnxruntime (and numpy) into a venv for the ONNX parity tests and the ONNX Runtime
# side of `make bench`; prints nothing else on success but the venv's python, which the tests take
# from $SHRINK_ORT_PYTHON.
#
#   scripts/install-onnxruntime.sh [VENV]      (ORT_VERSION overrides the pin)
#
# The venv lies outside the checkout, under ~/.cache/shrink, so clones (CI's among them) share it.
set -euo pipefail
version=${ORT_VERSION:-1.32.0}
venv=${1:-${XDG_CACHE_HOME:-$HOME/.cache}/shrink/onnxruntime-$version}
python=${PYTHON:-/usr/bin/python3}

if [[ ! -x $venv/bin/python ]]; then
  mkdir -p "$(dirname "$venv")"
  "$python" -m venv "$venv" >&2
fi
have=$("$venv/bin/python" -c 'import onnxruntime, numpy; print(onnxruntime.__version__)' 2>/dev/null || true)
if [[ $have != "$version" ]]; then
  echo "onnxruntime: installing onnxruntime==$version and numpy into $venv" >&2
  "$venv/bin/python" -m pip install -q --disable-pip-version-check "onnxruntime==$version" numpy >&2
fi
echo "$venv/bin/python"
