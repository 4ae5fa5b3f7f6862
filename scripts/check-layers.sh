#!/usr/bin/env bash
# Fails when a file under SRC (default: src/) includes a header of a folder above its own in
# SRC/layers.txt, or of a sibling on the same line; prints each such include as file:line.
set -euo pipefail
src=${1:-"$(dirname "$0")/../src"}
order="$src/layers.txt"
[[ -f $order ]] || { echo "check-layers: no $order" >&2; exit 2; }

declare -A rank
n=0
while read -r line; do
  line=${line%%#*}
  [[ -z ${line// } ]] && continue
  for folder in $line; do rank[$folder]=$n; done
  n=$((n + 1))
done <"$order"

# The folder a path under src/ belongs to: the longest listed prefix ("compress/prune" before "compress").
folder_of() {
  local p=$1 best=""
  for f in "${!rank[@]}"; do
    if [[ $p == "$f"/* && ${#f} -gt ${#best} ]]; then best=$f; fi
  done
  echo "$best"
}

bad=0
while IFS= read -r -d '' file; do
  rel=${file#"$src"/}
  own=$(folder_of "$rel")
  if [[ -z $own ]]; then
    echo "$rel: its folder is not listed in layers.txt"
    bad=1
    continue
  fi
  while IFS=: read -r lineno header; do
    target=$(folder_of "$header")
    [[ -z $target || $target == "$own" ]] && continue
    if ((rank[$target] >= rank[$own])); then
      echo "$rel:$lineno: includes \"$header\" ($target may not be included from $own)"
      bad=1
    fi
  done < <(grep -n -o -E '^#include "[^"]+"' "$file" | sed -E 's/^([0-9]+):#include "(.*)"$/\1:\2/')
done < <(find "$src" -type f \( -name '*.h' -o -name '*.cpp' \) -print0 | sort -z)

if ((bad)); then
  echo "check-layers: includes against $order (lowest first) found above" >&2
  exit 1
fi
echo "check-layers: every include of $src follows $order"
