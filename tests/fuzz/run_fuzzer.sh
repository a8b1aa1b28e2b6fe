#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Runs one libFuzzer program for a bounded time, as the CTest test fuzz:<target>:
#   run_fuzzer.sh FUZZER SECONDS WORK_DIR DICT CORPUS_DIR...
# New inputs go to WORK_DIR/corpus (emptied first), so the committed CORPUS_DIRs are only
# read; those that do not exist are skipped. Fails on any crash, leak, sanitizer report,
# timeout or oversized allocation; the input that caused it is saved in WORK_DIR/artifacts/.
set -euo pipefail
[ $# -ge 5 ] || { echo "usage: $0 FUZZER SECONDS WORK_DIR DICT CORPUS_DIR..." >&2; exit 2; }
fuzzer=$1 seconds=$2 work=$3 dict=$4
shift 4
rm -rf "$work" && mkdir -p "$work/corpus" "$work/artifacts"
inputs=()
for dir in "$@"; do  # regressions/<target>/ exists only once a finding is kept
  if [ -d "$dir" ]; then inputs+=("$dir"); fi
done

# -timeout: one input may take 10 s (a slow machine under ASan); -rss_limit_mb: the whole
# process; -malloc_limit_mb: any single allocation above it is a finding, because the
# readers promise memory bounded by the input's real size and inputs here are a few KB.
set +e
"$fuzzer" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=1024 -malloc_limit_mb=128 \
  -print_final_stats=1 -dict="$dict" -artifact_prefix="$work/artifacts/" \
  "$work/corpus" "${inputs[@]}" >"$work/log.txt" 2>&1
status=$?
set -e
# The progress lines are many; show the start, the end and the final stats.
grep -v -e '^#[0-9]' -e 'NEW_FUNC' -e '^"' "$work/log.txt" | head -n 40 || true
grep '^#[0-9]' "$work/log.txt" | tail -n 3 || true
units=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/log.txt" | tail -n 1)
echo "fuzz: $(basename "$fuzzer"): exit $status, ${units:-?} inputs in $seconds s, log $work/log.txt"
if [ "$status" != 0 ]; then
  tail -n 100 "$work/log.txt"
  echo "FAIL: the fuzzer found a problem; the input is in $work/artifacts/:" >&2
  ls -l "$work/artifacts/" >&2
  echo "Reproduce: $fuzzer $work/artifacts/<file>. If it is a bug of a reader, fix it and add" \
    "the file to tests/fuzz/regressions/<target>/ (tests/fuzz/README.md)." >&2
  exit 1
fi
[ -n "$units" ] && [ "$units" -gt 0 ] || { echo "FAIL: no inputs were run" >&2; exit 1; }
