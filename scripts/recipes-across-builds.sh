#!/usr/bin/env bash
# Runs recipes with the shrink of two build folders (Debian's LibTorch 1.13 and the wheel's 2.x,
# say) and prints each stage's accuracy side by side with the difference in points; a stage scored
# by fidelity (the text recipes, which have no labels) by its embeddings' mean cosine instead.
#
#   scripts/recipes-across-builds.sh OUT BUILD_A BUILD_B RECIPE... [-- --set key=value ...]
#
# Runs go to OUT/<build>/<recipe name>; a run already complete there is kept (shrink run --resume).
set -euo pipefail
out=${1:?usage: scripts/recipes-across-builds.sh OUT BUILD_A BUILD_B RECIPE... [-- --set k=v ...]}
a=${2:?} b=${3:?}
shift 3
recipes=() sets=()
while (($#)); do
  if [[ $1 == -- ]]; then shift; sets=("$@"); break; fi
  recipes+=("$1"); shift
done
for build in "$a" "$b"; do
  for recipe in "${recipes[@]}"; do
    run=$out/$(basename "$build")/$(basename "$recipe" .yaml)
    echo "recipes-across-builds: $build/shrink run $recipe" >&2
    if [[ -f $run/report.json ]]; then
      "$build/shrink" run "$recipe" --out "$run" --resume --no-progress "${sets[@]}" >&2
    else
      "$build/shrink" run "$recipe" --out "$run" --force --no-progress "${sets[@]}" >&2
    fi
  done
done
python3 - "$out" "$(basename "$a")" "$(basename "$b")" "${recipes[@]}" <<'PY'
import json, os, sys
out, a, b, recipes = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
def stages(build, recipe):
    report = json.load(open(os.path.join(out, build, os.path.splitext(os.path.basename(recipe))[0], "report.json")))
    return report["environment"].get("torch_version", "?"), report["stages"]
def score(stage):  # a stage without labels (text) is scored by its fidelity's mean cosine
    f = stage["metrics"].get("fidelity")
    return (f["mean_cosine"], " (mean cosine)") if f else (stage["metrics"]["accuracy"], "")
print(f"| recipe | stage | {a} | {b} | Δ pt |")
print("|---|---|---|---|---|")
for recipe in recipes:
    (va, sa), (vb, sb) = stages(a, recipe), stages(b, recipe)
    if recipe == recipes[0]: print(f"| LibTorch | | {va} | {vb} | |")
    for x, y in zip(sa, sb):
        (ax, what), (ay, _) = score(x), score(y)
        print(f"| {os.path.basename(recipe)} | {x['index']} {x['kind']}{what} | {ax:.4f} | {ay:.4f} | {100 * (ay - ax):+.2f} |")
PY
