#!/usr/bin/env bash
# The two-process CPU check of data-parallel training (`shrink run --nproc`), prepared so a session
# spends its minutes measuring: training throughput of 2 processes × 1 thread against 1 process × 2
# threads, and of all-reduce during backward against one all-reduce after it (--bucket-mb 0),
# interleaved, two rounds; then the accuracy of each recipe with 1 and 2 processes at the same
# global batch, in full. Prints one table; the run folders stay under OUT.
#
#   scripts/dp-check.sh [--build build] [--out /tmp/dp-check] [--epochs 2] [--rounds 2] [--full]
#     [--set key=value]... [recipes...]          (--set: passed to every timing run, e.g. data.train_limit=8192)
set -euo pipefail

build=build out=/tmp/dp-check epochs=2 rounds=2 full=0 recipes=() sets=()
while (($#)); do
  case $1 in
    --build) build=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --epochs) epochs=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --full) full=1; shift ;;
    --set) sets+=(--set "$2"); shift 2 ;;
    -*) echo "dp-check: unknown argument $1" >&2; exit 2 ;;
    *) recipes+=("$1"); shift ;;
  esac
done
((${#recipes[@]})) || recipes=(recipes/quickstart.yaml recipes/fmnist/convnet.yaml)
shrink=$build/shrink
[[ -x $shrink ]] || { echo "dp-check: no $shrink (make build first)" >&2; exit 1; }
mkdir -p "$out"
echo "dp-check: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores, $("$shrink" --version | head -1)"

# Training samples/s of a run: the mean over its epochs after the first (warm-up).
rate() {
  python3 - "$1" <<'PY'
import json, sys
stage = json.load(open(sys.argv[1] + "/report.json"))["stages"][0]
epochs = stage["training"]["epochs"]
rates = [e["samples_per_s"] for e in (epochs[1:] or epochs)]
print(f"{sum(rates) / len(rates):.0f}")
PY
}
field() {  # run folder, python expression over the first training stage `s`
  python3 -c "import json,sys; r=json.load(open(sys.argv[1]+'/report.json')); s=r['stages'][-1]; print($2)" "$1"
}
# The launcher's all-reduce line: buckets, MB and the wait after backward.
waited() { sed -n 's/.*all-reduce over \(.*\)$/\1/p' "$1" | head -1; }

for recipe in "${recipes[@]}"; do
  name=$(basename "$recipe" .yaml)
  declare -A sum=()
  for ((r = 1; r <= rounds; r++)); do
    for mode in 1x2 2x1 2x1-after; do
      dir=$out/$name-$mode-$r
      case $mode in
        1x2) args=(--set threads=2) ;;
        2x1) args=(--nproc 2) ;;
        2x1-after) args=(--nproc 2 --bucket-mb 0) ;;
      esac
      "$shrink" run "$recipe" --out "$dir" --force --no-progress --set "stages.0.train.epochs=$epochs" \
        "${args[@]}" ${sets[@]+"${sets[@]}"} >"$dir.log" 2>&1 || { echo "dp-check: $name $mode failed, see $dir.log" >&2; exit 1; }
      value=$(rate "$dir")
      echo "  $name $mode round $r: $value samples/s $( [[ $mode == 2x1* ]] && echo "($(waited "$dir.log"))")"
      sum[$mode]=$(( ${sum[$mode]:-0} + value ))
    done
  done
  echo "$name: 2x1 / 1x2 = $(python3 -c "print(f'{${sum[2x1]}/${sum[1x2]}:.2f}')"), all-reduce during / after backward = $(python3 -c "print(f'{${sum[2x1]}/${sum[2x1-after]}:.2f}')") (training samples/s, $rounds rounds)"
  if ((full)); then
    "$shrink" run "$recipe" --out "$out/$name-full-1" --force --no-progress --set threads=1 >"$out/$name-full-1.log" 2>&1
    "$shrink" run "$recipe" --out "$out/$name-full-2" --force --no-progress --nproc 2 >"$out/$name-full-2.log" 2>&1
    for n in 1 2; do
      echo "  $name, $n process(es): test accuracy $(field "$out/$name-full-$n" "f\"{s['metrics']['accuracy']:.4f}, sparsity {s['metrics']['sparsity']:.3f}\"")"
    done
  fi
done
