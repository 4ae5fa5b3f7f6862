"""shrink against ONNX Runtime on the same models, interleaved: latency ratios at each batch size.

usage: $(scripts/install-onnxruntime.sh) bench/onnx_vs_shrink.py FILE... [--shrink build/shrink]
       [--batch 1,64] [--threads 1] [--rounds 5] [--budget 2] [--length 128]
Each FILE is a model file shrink wrote (.pt/.h5/.pth); it is exported to ONNX beside it
(FILE.onnx) first. A text model (a bert: int64 token ids) gets sentences of --length tokens, no
padding, in both (shrink bench's --length); other models get N(0, 1) noise in both (shrink bench's
--inputs noise: shrink's int8 layers are slower on values past their calibrated range, so this
understates them beside `shrink bench`'s default, the test data). Each round times every model at every batch size with
`shrink bench` (its p50, on its fastest path) and then with ONNX Runtime (the same thread count, all graph optimizations, p50 over
`budget` seconds), so both see the same machine state; the ratios are medians over the rounds.
>1 means shrink is faster.
"""
import argparse
import json
import os
import statistics
import subprocess
import tempfile
import time

import numpy as np
import onnxruntime as ort

ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
ap.add_argument("files", nargs="+")
ap.add_argument("--shrink", default="build/shrink")
ap.add_argument("--batch", default="1,64")
ap.add_argument("--threads", type=int, default=1)
ap.add_argument("--rounds", type=int, default=5)
ap.add_argument("--budget", type=float, default=2.0)
ap.add_argument("--length", type=int, default=128, help="tokens a sentence, for text models")
args = ap.parse_args()
batches = [int(b) for b in args.batch.split(",")]


def ort_p50(session, shape, text, budget):
    if text:
        x = np.ones(shape, dtype=np.int64)  # shrink bench's stand-in: a real token everywhere
    else:
        x = np.random.default_rng(0).standard_normal(shape, dtype=np.float32)
    feed, outputs = {session.get_inputs()[0].name: x}, [session.get_outputs()[0].name]
    for _ in range(3):
        session.run(outputs, feed)
    times, end = [], time.perf_counter() + budget
    while time.perf_counter() < end or len(times) < 10:
        t0 = time.perf_counter()
        session.run(outputs, feed)
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3


models = []
for f in args.files:
    onnx_path = f + ".onnx"
    subprocess.run([args.shrink, "export", f, "--format", "onnx", "--out", onnx_path], check=True,
                   stdout=subprocess.DEVNULL)
    options = ort.SessionOptions()
    options.intra_op_num_threads = args.threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = ort.InferenceSession(onnx_path, options, providers=["CPUExecutionProvider"])
    sample = [d if isinstance(d, int) else args.length for d in session.get_inputs()[0].shape[1:]]
    text = session.get_inputs()[0].type == "tensor(int64)"
    models.append((f, session, sample, text))

ratios = {(f, b): [] for f, _, _, _ in models for b in batches}
rows = {(f, b): {"shrink": [], "ort": []} for f, _, _, _ in models for b in batches}
with tempfile.TemporaryDirectory() as tmp:
    for r in range(args.rounds):
        for f, session, sample, text in models:
            out = os.path.join(tmp, "bench.json")
            subprocess.run([args.shrink, "bench", f, "--batch", args.batch, "--threads", str(args.threads),
                            "--budget", str(args.budget * len(batches)), "--json", out, "--no-progress",
                            "--inputs", "noise"]
                           + (["--length", str(args.length)] if text else []),
                           check=True, stdout=subprocess.DEVNULL)
            shrink_p50 = {row["batch"]: row["p50_ms"] for row in json.load(open(out))["results"]}
            for b in batches:
                o = ort_p50(session, [b] + sample, text, args.budget)
                rows[(f, b)]["shrink"].append(shrink_p50[b])
                rows[(f, b)]["ort"].append(o)
                ratios[(f, b)].append(o / shrink_p50[b])

print(f"{'model':50} {'batch':>5} {'shrink p50 ms':>14} {'ORT p50 ms':>11} {'ORT/shrink':>10}")
for (f, b), rs in ratios.items():
    print(f"{f:50} {b:5d} {statistics.median(rows[(f, b)]['shrink']):14.4f} "
          f"{statistics.median(rows[(f, b)]['ort']):11.4f} {statistics.median(rs):9.2f}x")
print(f"threads {args.threads}, {args.rounds} rounds, ONNX Runtime {ort.__version__}; >1x: shrink faster")
