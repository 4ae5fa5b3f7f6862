"""PyTorch's side of bench/bench_bert.cpp: transformers' BertModel at all-MiniLM-L6-v2's size
(seeded weights), fp32 and torch.ao's quantize_dynamic int8 (its Linear layers), timed on the same
batch sizes, sequence lengths and threads. Prints one line per case: mode batch len p50_ms.

usage: bert_pytorch.py [--threads T] [--seconds S]   (in the venv scripts/install-minilm.sh fills)
"""
import argparse
import statistics
import time

import torch
from transformers import BertConfig, BertModel

ap = argparse.ArgumentParser()
ap.add_argument("--threads", type=int, default=1)
ap.add_argument("--seconds", type=float, default=2.0)
a = ap.parse_args()
torch.set_num_threads(a.threads)
torch.manual_seed(0)
config = BertConfig(vocab_size=30522, hidden_size=384, num_hidden_layers=6, num_attention_heads=12,
                    intermediate_size=1536, max_position_embeddings=512)
fp32 = BertModel(config, add_pooling_layer=False).eval()
int8 = torch.ao.quantization.quantize_dynamic(BertModel(config, add_pooling_layer=False).eval(), {torch.nn.Linear},
                                              dtype=torch.qint8)


def embed(model, ids):
    mask = torch.ones_like(ids)
    tokens = model(input_ids=ids, attention_mask=mask).last_hidden_state
    m = mask.unsqueeze(-1).float()
    return torch.nn.functional.normalize((tokens * m).sum(1) / m.sum(1), p=2, dim=1)


with torch.no_grad():
    for batch in (1, 32):
        for length in (32, 128):
            ids = torch.randint(1, 30522, (batch, length))
            for mode, model in (("fp32", fp32), ("int8", int8)):
                for _ in range(3):
                    embed(model, ids)
                times, end = [], time.perf_counter() + a.seconds
                while time.perf_counter() < end or len(times) < 5:
                    start = time.perf_counter()
                    embed(model, ids)
                    times.append(time.perf_counter() - start)
                print(f"pytorch {mode} batch {batch} len {length} p50 {1000 * statistics.median(times):.3f} ms", flush=True)
