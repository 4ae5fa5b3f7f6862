#!/usr/bin/env bash
# Fails when a C++ source of the checkout differs from what clang-format makes of it with the
# committed .clang-format (`make format` rewrites them). Exit 77 (skipped) without clang-format.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v clang-format >/dev/null; then
  echo "check-format: skipped: no clang-format on this machine (Debian: apt-get install clang-format)"
  exit 77
fi
if ! git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  echo "check-format: skipped: not a git checkout (the files to check are git's)"
  exit 77
fi
mapfile -t files < <(git ls-files '*.cpp' '*.h' | grep -v '^tests/data/')
if clang-format --dry-run --Werror --style=file "${files[@]}" 2>/tmp/check-format.$$; then
  rm -f /tmp/check-format.$$
  echo "check-format: ${#files[@]} files follow .clang-format"
else
  grep -E '^[^ ].*(warning|error):' /tmp/check-format.$$ | cut -d: -f1 | sort -u | sed 's/^/not formatted: /'
  rm -f /tmp/check-format.$$
  echo "check-format: run \`make format\`" >&2
  exit 1
fi
