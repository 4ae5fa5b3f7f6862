#!/usr/bin/env bash
# The test program removes its scratch folder after a run that passed, and keeps it, saying where,
# after one that failed or when SHRINK_KEEP_TEST_FILES is set.
#
#   tests/check_scratch_files.sh SHRINK_TESTS
set -euo pipefail
bin=${1:?usage: tests/check_scratch_files.sh SHRINK_TESTS}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "check_scratch_files: $*" >&2; exit 1; }
passing=ScratchFiles.AFolderIsEmptyEachTimeItIsAskedForAndLiesUnderTheProcesssRoot
mkdir "$tmp/passed" "$tmp/failed" "$tmp/kept"

TMPDIR=$tmp/passed "$bin" --gtest_filter=$passing >/dev/null || fail "$passing failed"
[[ -z $(ls -A "$tmp/passed") ]] || fail "a run that passed left $(ls -A "$tmp/passed") in TMPDIR"

if out=$(TMPDIR=$tmp/failed "$bin" --gtest_also_run_disabled_tests \
           --gtest_filter=ScratchFiles.DISABLED_FailsWithAFileInItsFolder 2>&1); then
  fail "the test that fails on purpose passed"
fi
compgen -G "$tmp/failed/shrink-test-*/scratch_kept/evidence.txt" >/dev/null || fail "a failed run's files are gone"
grep -q "the tests' files are kept in $tmp/failed/shrink-test-" <<<"$out" ||
  fail "a failed run does not say where its files are: $out"

SHRINK_KEEP_TEST_FILES=1 TMPDIR=$tmp/kept "$bin" --gtest_filter=$passing >/dev/null || fail "$passing failed"
compgen -G "$tmp/kept/shrink-test-*/scratch_fresh" >/dev/null || fail "SHRINK_KEEP_TEST_FILES=1 did not keep the files"
echo "check_scratch_files: ok"
