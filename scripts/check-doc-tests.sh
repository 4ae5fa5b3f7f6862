#!/usr/bin/env bash
# Fails when a Markdown file names a test of TEST_BINARY (`Suite.Name`, or `Suite.Prefix…`,
# `Suite.…Middle…`) that the binary does not have: the docs cite tests as evidence, and a renamed
# or removed test would leave them citing nothing. Only names of the binary's suites are checked.
# Usage: check-doc-tests.sh TEST_BINARY FILE_OR_FOLDER...
set -euo pipefail
(($# >= 2)) || { echo "usage: check-doc-tests.sh TEST_BINARY FILE_OR_FOLDER..." >&2; exit 2; }
binary=$1
shift

tests=$("$binary" --gtest_list_tests | awk '/^[^ ]/ { suite = $1 } /^  / { print suite $1 }')
[[ -n $tests ]] || { echo "check-doc-tests: $binary lists no tests" >&2; exit 2; }
declare -A suites
while IFS=. read -r suite _; do suites[$suite]=1; done <<<"$tests"

bad=0
checked=0
while IFS= read -r -d '' file; do
  while IFS=: read -r lineno token; do
    name=${token//\`/}
    suite=${name%%.*}
    [[ -n ${suites[$suite]:-} ]] || continue
    rest=${name#*.}
    # "…" before or after a name stands for the part of it left out.
    core=${rest#…}
    core=${core%…}
    case "$rest" in
      …*…) pattern="^$suite\\.[^.]*$core" ;;
      …*) pattern="^$suite\\.[^.]*$core\$" ;;
      *…) pattern="^$suite\\.$core" ;;
      *) pattern="^$suite\\.$core\$" ;;
    esac
    checked=$((checked + 1))
    if ! grep -qE "$pattern" <<<"$tests"; then
      echo "$file:$lineno: $token names no test of $(basename "$binary")"
      bad=1
    fi
  done < <(grep -n -o -E '`[A-Z][A-Za-z0-9_]*\.(…)?[A-Za-z0-9_]+(…)?`' "$file" || true)
done < <(find "$@" -type f -name '*.md' -print0 | sort -z)

if ((bad)); then
  echo "check-doc-tests: the names above are not tests of $binary" >&2
  exit 1
fi
echo "check-doc-tests: all $checked test names in $* are tests of $(basename "$binary")"
