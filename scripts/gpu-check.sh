#!/usr/bin/env bash
# Builds shrink against a CUDA LibTorch and runs every stage kind on the GPU (training in fp32,
# bf16 and fp16, pruning, distillation, QAT), then prints accuracy and training samples/s, beside
# PyTorch's own training rate on the same shapes and precisions when python3 has torch, each run
# alternated with PyTorch's twice; then data-parallel training over NCCL on two GPUs where there are. For a machine with no package access: Debian packages
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
mkdir -p "$runs"
# PyTorch's own loop on the model shapes, precision and batch of a shrink run, random data, on the
# same device: prints its samples/s over the second of two epochs (the first warms up).
cat >"$runs/pytorch_rate.py" <<'PY'
import sys, time, torch
from torch import nn
device, model, precision = torch.device(sys.argv[1]), sys.argv[2], sys.argv[3]
torch.manual_seed(0)
if model == "mlp":  # recipes/quickstart.yaml
    m = nn.Sequential(nn.Flatten(), nn.Linear(784, 300), nn.ReLU(), nn.Linear(300, 100), nn.ReLU(), nn.Linear(100, 10))
else:  # recipes/fmnist/convnet.yaml: batch norm, dropout
    m = nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Dropout(0.25), nn.Linear(3136, 256), nn.ReLU(), nn.Dropout(0.25), nn.Linear(256, 10))
m = m.to(device)
x = torch.randn(54000, 1, 28, 28, device=device)
y = torch.randint(0, 10, (54000,), device=device)
opt = torch.optim.SGD(m.parameters(), lr=0.05, momentum=0.9, nesterov=True, weight_decay=5e-4)
dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
scaler = torch.amp.GradScaler(device.type) if precision == "fp16" else None
for epoch in range(2):
    if device.type == "cuda": torch.cuda.synchronize()
    t = time.perf_counter()
    perm = torch.randperm(54000, device=device)
    for i in range(0, 54000, 128):
        idx = perm[i:i + 128]
        opt.zero_grad()
        with torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
            loss = nn.functional.cross_entropy(m(x[idx]), y[idx], label_smoothing=0.1)
        if scaler:
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
        else:
            loss.backward()
            opt.step()
    if device.type == "cuda": torch.cuda.synchronize()
print(f"{54000 / (time.perf_counter() - t):.0f}")
PY
last_rate() {  # the first stage's last epoch's samples/s in a run's report
  python3 -c 'import json, sys; print(round(json.load(open(sys.argv[1]))["stages"][0]["training"]["epochs"][-1]["samples_per_s"]))' \
    "$1/report.json"
}

# Every stage kind on the device: training in fp32, bf16 and fp16 (the quickstart and the convnet
# at --epochs, their rates set beside PyTorch's below), gradual pruning, channel pruning,
# distillation with pruning and QAT modifiers, and the convnet's QAT with BN folding. The long
# recipes are shortened by overrides; all are validated first, so a bad override costs no training.
# A fourth field names the PyTorch loop of the same shapes: those runs alternate with it.
E=$epochs
plan=(
  "quickstart|recipes/quickstart.yaml|stages.0.train.epochs=$E|mlp fp32"
  "convnet|recipes/fmnist/convnet.yaml|stages.0.train.epochs=$E|convnet fp32"
  "convnet_bf16|recipes/fmnist/convnet.yaml|stages.0.train.epochs=$E stages.0.train.precision=bf16|convnet bf16"
  "convnet_fp16|recipes/fmnist/convnet.yaml|stages.0.train.epochs=$E stages.0.train.precision=fp16|convnet fp16"
  "prune90|recipes/fmnist/lenet300_prune90.yaml|stages.0.train.epochs=$E stages.1.prune.finetune.epochs=4 stages.1.prune.schedule.end_epoch=3|"
  "convnet_channels|recipes/fmnist/convnet_channels.yaml|stages.0.train.epochs=$E stages.1.prune.finetune.epochs=3 stages.1.prune.schedule.end_epoch=2|"
  "distill_prune_quant|recipes/fmnist/distill_prune_quant.yaml|stages.0.train.epochs=2 stages.1.distill.epochs=2 stages.2.train.epochs=3 stages.2.train.modifiers.1.prune.schedule.end_epoch=2 stages.3.train.epochs=2 stages.3.train.modifiers.2.qat.freeze_observers_epoch=1|"
  "convnet_qat|recipes/fmnist/convnet_qat.yaml|stages.0.train.epochs=2 stages.1.train.epochs=2 stages.1.train.modifiers.0.qat.freeze_observers_epoch=1 stages.1.train.modifiers.0.qat.freeze_bn_epoch=1|"
)
overrides() {  # the plan entry's overrides as --set arguments, the device and data root first
  local sets=(--set device="$device" --set data.root="$data_root") kv
  for kv in $1; do sets+=(--set "$kv"); done
  printf '%s\n' "${sets[@]}"
}
for entry in "${plan[@]}"; do
  IFS='|' read -r name recipe sets pytorch <<<"$entry"
  mapfile -t args < <(overrides "$sets")
  "$build/shrink" validate "$recipe" "${args[@]}" >/dev/null || { echo "gpu-check: $name does not validate" >&2; exit 2; }
done
have_torch=1
if ! "$python" -c 'import torch' 2>/dev/null; then
  have_torch=0
  echo "gpu-check: $python has no torch; PyTorch's rate skipped (--python PATH names another)"
fi
ratios=()
for entry in "${plan[@]}"; do
  IFS='|' read -r name recipe sets pytorch <<<"$entry"
  mapfile -t args < <(overrides "$sets")
  # A run compared with PyTorch goes twice, each time right before PyTorch's loop: shrink, PyTorch,
  # shrink, PyTorch, so a machine that speeds up or slows down mid-check shows in both.
  rounds=1
  [[ -n $pytorch && $have_torch == 1 ]] && rounds=2
  for ((round = 1; round <= rounds; round++)); do
    label=""
    ((rounds == 2)) && label=", round $round of 2"
    echo "gpu-check: $name ($recipe${sets:+, $sets}) on $device$label"
    t=$(date +%s)
    "$build/shrink" run "$recipe" --out "$runs/$name" --force --no-progress "${args[@]}"
    summarise "$runs/$name"
    echo "  took $(($(date +%s) - t)) s"
    if ((rounds == 2)); then
      ours=$(last_rate "$runs/$name")
      # shellcheck disable=SC2086 # "model precision": two arguments
      theirs=$("$python" "$runs/pytorch_rate.py" "$device" $pytorch)
      line="$name round $round: shrink $ours samples/s, PyTorch $theirs ($("$python" -c 'import torch; print(torch.__version__)')), $(python3 -c "print(f'{$ours / $theirs:.2f}')")x"
      echo "  $line"
      ratios+=("$line")
    fi
  done
done
if ((${#ratios[@]})); then
  echo "gpu-check: training rates, shrink beside PyTorch (batch 128, last epoch; alternated)"
  printf '  %s\n' "${ratios[@]}"
fi

# Data parallelism on the GPUs: each of N ranks on its own GPU (cuda:LOCAL_RANK), gradients over
# NCCL. With one GPU, --nproc 2 must be refused before any rank starts.
gpus=$(python3 -c 'import subprocess; print(len(subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True).stdout.splitlines()))' 2>/dev/null || echo 0)
if [[ $device == cuda* ]]; then
  if ((gpus >= 2)); then
    for nproc in 1 2; do
      echo "gpu-check: quickstart, --nproc $nproc on $device (NCCL)"
      "$build/shrink" run recipes/quickstart.yaml --out "$runs/dp$nproc" --force --no-progress --nproc "$nproc" \
        --set device=cuda --set data.root="$data_root" --set stages.0.train.epochs="$E"
      summarise "$runs/dp$nproc"
    done
  else
    echo "gpu-check: $gpus GPU: --nproc 2 on cuda is refused (NCCL needs a GPU a rank), not run"
    rc=0
    "$build/shrink" run recipes/quickstart.yaml --out "$runs/dp_refused" --force --no-progress --nproc 2 \
      --set device=cuda --set data.root="$data_root" 2>"$runs/dp_refused.txt" || rc=$?
    if ((rc != 2)); then
      echo "gpu-check: --nproc 2 on one GPU exited $rc, not 2 (a usage error)" >&2
      exit 1
    fi
    sed 's/^/  /' "$runs/dp_refused.txt"
  fi
fi
