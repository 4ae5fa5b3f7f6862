"""Sentence embeddings of a BERT checkpoint by Hugging Face transformers' BertModel, mean-pooled over
the non-padding tokens and L2-normalised (sentence-transformers' Pooling + Normalize), for the C++
test to compare shrink's with.

usage: bert_reference.py CONFIG.json WEIGHTS.safetensors IDS.pth OUT.pth
IDS.pth holds {"ids": int64 [N, L]} (0 = padding); OUT.pth gets {"embeddings": float [N, H]}.
"""
import json
import sys

import torch
from safetensors.torch import load_file
from transformers import BertConfig, BertModel

config_path, weights, ids_path, out = sys.argv[1:5]
config = BertConfig(**json.load(open(config_path)))
model = BertModel(config, add_pooling_layer=False).eval()
missing, unexpected = model.load_state_dict(load_file(weights), strict=False)
assert not missing, missing
ids = torch.load(ids_path)["ids"]
mask = ids.ne(config.pad_token_id).long()
with torch.no_grad():
    tokens = model(input_ids=ids, attention_mask=mask).last_hidden_state
m = mask.unsqueeze(-1).to(tokens.dtype)
pooled = (tokens * m).sum(1) / m.sum(1).clamp(min=1e-9)
torch.save({"embeddings": torch.nn.functional.normalize(pooled, p=2, dim=1)}, out)
print("ok", tuple(ids.shape), "unexpected:", unexpected)
