#!/usr/bin/env bash
# Builds shrink against a CUDA LibTorch and runs the quickstart, the convnet and a pruning recipe
# on the GPU, then prints accuracy and training samples/s, beside PyTorch's own training rate on
# the same shapes when python3 has torch. For a machine with no package access: Debian packages
# fetched elsewhere by scripts/fetch-gpu-deps.sh are unpacked into the build folder (--deps).
#
#   scripts/gpu-check.sh --torch-dir "$(python3 -c 'import torch; print(torch.utils.cmake_prefix_path)')" \
#     [--deps DIR] [--device cuda] [--epochs N] [--build build-gpu] [--python python3]
set -euo pipefail

torch_dir="" deps="" device=cuda epochs=2 build=build-gpu python=python3
while (($#)); do
  case $1 in
    --torch-dir) torch_dir=$2; shift 2 ;;
    --deps) deps=$2; shift 2 ;;
    --device) device=$2; shift 2 ;;
    --epochs) epochs=$2; shift 2 ;;
    --build) build=$2; shift 2 ;;
    --python) python=$2; shift 2 ;;
    *) echo "gpu-check: unknown argument $1" >&2; exit 2 ;;
  esac
done

prefix=()
[[ -n $torch_dir ]] && prefix+=("$torch_dir")
data_root=/usr/share/datasets/fashion-mnist
if [[ -n $deps ]]; then
  root=$(realpath -m "$build")/deps
  mkdir -p "$root"
  for deb in "$deps"/*.deb; do dpkg-deb -x "$deb" "$root"; done
  prefix+=("$root/usr")
  export LD_LIBRARY_PATH=$root/usr/lib/x86_64-linux-gnu:${LD_LIBRARY_PATH:-}
  [[ -d $root$data_root ]] && data_root=$root$data_root
fi
[[ -d $data_root ]] || { echo "gpu-check: no Fashion-MNIST at $data_root (fetch dataset-fashion-mnist with the deps)" >&2; exit 1; }

start=$(date +%s)
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF -DCMAKE_PREFIX_PATH="$(IFS=';'; echo "${prefix[*]}")"
cmake --build "$build" -j "$(nproc)" --target shrink
echo "gpu-check: built in $(($(date +%s) - start)) s"

# Accuracy and the last epoch's samples/s of each stage, from the run's report.json.
summarise() {
  python3 - "$1" <<'PY'
import json, sys
report = json.load(open(sys.argv[1] + "/report.json"))
for s in report["stages"]:
    epochs = (s.get("training") or {}).get("epochs") or [{}]
    rate = epochs[-1].get("samples_per_s")
    rate = f"{rate:.0f} samples/s" if rate else "no training"
    print(f"  {s['kind']} {s['model']}: accuracy {s['metrics']['accuracy']:.4f}, sparsity {s['metrics'].get('sparsity', 0):.3f}, {rate}")
PY
}

run() {  # recipe, out folder, extra --set arguments
  local recipe=$1 out=$2; shift 2
  echo "gpu-check: $recipe on $device"
  "$build/shrink" run "$recipe" --out "$out" --force --no-progress --set device="$device" \
    --set data.root="$data_root" "$@"
  summarise "$out"
}

runs=$build/gpu-check-runs
run recipes/quickstart.yaml "$runs/quickstart" --set stages.0.train.epochs="$epochs"
run recipes/fmnist/convnet.yaml "$runs/convnet" --set stages.0.train.epochs="$epochs"
run recipes/fmnist/lenet300_prune90.yaml "$runs/prune90"

# PyTorch's rate on the same model shapes and batch, random data, on the same device.
if ! "$python" -c 'import torch' 2>/dev/null; then
  echo "gpu-check: $python has no torch; PyTorch's rate skipped (--python PATH names another)"
else
  echo "gpu-check: PyTorch on $device, same shapes, batch 128, random data"
  "$python" - "$device" <<'PY'
import sys, time, torch
from torch import nn
device = torch.device(sys.argv[1])
models = {
    "quickstart mlp": nn.Sequential(nn.Flatten(), nn.Linear(784, 300), nn.ReLU(), nn.Linear(300, 100), nn.ReLU(), nn.Linear(100, 10)),
    "convnet (bn, dropout)": nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Dropout(0.25), nn.Linear(3136, 256), nn.ReLU(), nn.Dropout(0.25), nn.Linear(256, 10)),
}
x = torch.randn(54000, 1, 28, 28, device=device)
y = torch.randint(0, 10, (54000,), device=device)
for name, m in models.items():
    m = m.to(device)
    opt = torch.optim.SGD(m.parameters(), lr=0.05, momentum=0.9, nesterov=True, weight_decay=5e-4)
    for epoch in range(2):  # the first warms up
        if device.type == "cuda": torch.cuda.synchronize()
        t = time.perf_counter()
        perm = torch.randperm(54000, device=device)
        for i in range(0, 54000, 128):
            idx = perm[i:i + 128]
            opt.zero_grad()
            loss = nn.functional.cross_entropy(m(x[idx]), y[idx], label_smoothing=0.1)
            loss.backward()
            opt.step()
        if device.type == "cuda": torch.cuda.synchronize()
    print(f"  pytorch {torch.__version__} {name}: {54000 / (time.perf_counter() - t):.0f} samples/s")
PY
fi
