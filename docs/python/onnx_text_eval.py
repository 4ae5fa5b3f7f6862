"""Sentence embeddings of a bert shrink exported to ONNX, run in ONNX Runtime, scored against a
reference ONNX file's on the same sentences as shrink's report scores a stage: mean, 5th-percentile
and least cosine, and the Spearman rank agreement of the sentences' pairwise similarities.

usage: onnx_text_eval.py MODEL.onnx IDS.npy [--reference REF.onnx|REF.npy] [--threads 1]
IDS.npy holds int64 token ids [N, L] padded with 0, e.g. the data script's test sentences:
  ~/.cache/shrink/torch-2.15.0/bin/python -c "import h5py, numpy; \\
    numpy.save('/tmp/test_ids.npy', h5py.File('runs/minilm/text.h5')['test_ids'][:])"
REF is another ONNX file run on the same ids, or the reference embeddings [N, D] themselves
(PyTorch's, from docs/python/minilm_sentences.py's "embeddings"). Without --reference it prints
the embeddings' shape and the seconds they took. Needs onnxruntime
and numpy (scripts/install-onnxruntime.sh makes a venv with both).
"""
import argparse
import time

import numpy as np
import onnxruntime as ort


def embed(path, ids, threads):
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    source, output = session.get_inputs()[0].name, session.get_outputs()[0].name
    # Batches of 32 cut to their longest sentence, as shrink skips trailing padding.
    parts = []
    for i in range(0, len(ids), 32):
        batch = ids[i:i + 32]
        width = int((batch != 0).any(0).nonzero()[0].max()) + 1
        parts.append(session.run([output], {source: batch[:, :width]})[0])
    return np.concatenate(parts).astype(np.float64)


def ranks(v):
    # Ranks 1..n, ties given the mean of the ranks they span (as shrink's embedding_fidelity).
    order = np.argsort(v, kind="stable")
    sorted_v = v[order]
    r = np.empty(len(v))
    start = 0
    while start < len(v):
        end = start + 1
        while end < len(v) and sorted_v[end] == sorted_v[start]:
            end += 1
        r[order[start:end]] = 0.5 * (start + end - 1) + 1
        start = end
    return r


def pairwise(x):
    unit = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    return (unit @ unit.T)[np.triu_indices(len(x), 1)]


ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
ap.add_argument("model")
ap.add_argument("ids")
ap.add_argument("--reference")
ap.add_argument("--threads", type=int, default=1)
args = ap.parse_args()

ids = np.load(args.ids).astype(np.int64)
t0 = time.perf_counter()
e = embed(args.model, ids, args.threads)
seconds = time.perf_counter() - t0
if not args.reference:
    print(f"embeddings {e.shape[0]} x {e.shape[1]} in {seconds:.1f} s")
else:
    r = np.load(args.reference).astype(np.float64) if args.reference.endswith(".npy") else embed(
        args.reference, ids, args.threads)
    cos = np.sort((e * r).sum(1) / np.maximum(np.linalg.norm(e, axis=1) * np.linalg.norm(r, axis=1), 1e-12))
    at5 = 0.05 * (len(cos) - 1)
    lo = int(np.floor(at5))
    p5 = cos[lo] + (at5 - lo) * (cos[min(lo + 1, len(cos) - 1)] - cos[lo])
    a, b = ranks(pairwise(e)), ranks(pairwise(r))
    spearman = np.corrcoef(a, b)[0, 1]
    print(f"{len(cos)} sentences: mean cosine {cos.mean():.4f}, p5 {p5:.4f}, min {cos[0]:.4f}, "
          f"Spearman {spearman:.4f} (to {args.reference})")
