#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# A save that cannot be written is a clear one-line error and a non-zero exit, and the last
# good checkpoint stays byte for byte as it was. CTest tests reliability:save_<case>.
#   write_errors.sh MNIST KIT WORK file_size_limit|dir_missing
#   file_size_limit  the checkpoint would exceed `ulimit -f` (a short write, as on a full disk)
#   dir_missing      --save names a directory that does not exist
set -euo pipefail
[ $# = 4 ] || { echo "usage: $0 MNIST KIT WORK file_size_limit|dir_missing" >&2; exit 2; }
mnist=$1 kit=$2 work=$3 case_name=$4
rm -rf "$work" && mkdir -p "$work" && cd "$work"

fail() { echo "FAIL: $*" >&2; exit 1; }

"$kit" synthetic data 64 1
args=(--preset bn-mlp --data-dir data --batch-size 64 --test-batch-size 64 --lr-step 0 --out out)
"$mnist" "${args[@]}" --epochs 1 --save good.safetensors >/dev/null 2>&1 || fail "the first run failed"
cp good.safetensors before.safetensors
[ "$("$kit" check-checkpoint bn-mlp good.safetensors)" = 1 ] || fail "the good checkpoint is not epoch 1"

set +e
case $case_name in
  file_size_limit)
    # 1 MiB (1024 blocks of 1 KiB): the csv files fit, the 2 MB checkpoint does not. Without
    # the writer's SIGXFSZ handling the process would die of the signal (exit 153).
    (ulimit -f 1024 && exec "$mnist" "${args[@]}" --epochs 2 --resume good.safetensors \
      --save good.safetensors >stdout.txt 2>stderr.txt)
    status=$?
    pattern="^mnist: error: good\.safetensors: cannot write temporary file 'good\.safetensors\.tmp\.[0-9]+\.[0-9]+': File too large$"
    ;;
  dir_missing)
    "$mnist" "${args[@]}" --epochs 2 --resume good.safetensors \
      --save no/such/dir/ckpt.safetensors >stdout.txt 2>stderr.txt
    status=$?
    # Refused before training: a save that could only fail would cost the epoch.
    pattern="^mnist: error: no/such/dir: no such directory \(--save no/such/dir/ckpt\.safetensors\)$"
    ;;
  *) fail "unknown case '$case_name'" ;;
esac
set -e

echo "mnist (case $case_name) -> exit $status: $(cat stderr.txt)"
[ "$status" = 1 ] || fail "expected exit status 1, got $status"
[ "$(wc -l <stderr.txt)" = 1 ] || fail "expected one line on stderr"
grep -Eq "$pattern" stderr.txt || fail "stderr does not match: $pattern"
cmp -s before.safetensors good.safetensors || fail "the last good checkpoint changed"
[ "$("$kit" check-checkpoint bn-mlp good.safetensors)" = 1 ] || fail "the last good checkpoint no longer loads"
shopt -s nullglob
left=(good.safetensors.tmp.*)
[ ${#left[@]} = 0 ] || fail "temp files left behind: ${left[*]}"
[ ! -e no ] || fail "the missing directory was created"
echo "ok: save_$case_name"
