#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The MNIST example under MPI, one case per CTest test (examples/mnist/CMakeLists.txt):
#   mnist_two_ranks.sh one_epoch           2 ranks x 64 vs 1 process x 128, one epoch of
#                                          bn-mlp on real MNIST: replicas bit-identical,
#                                          test accuracy within 0.5 points
#   mnist_two_ranks.sh same_as_one_process deep-mlp (no BatchNorm): 2 x 32 and 1 x 64 see the
#                                          same global batches, so the losses agree closely
#   mnist_two_ranks.sh resume_is_exact     2 epochs on 2 ranks = 1 epoch + --resume 1, and
#                                          = 40 steps (inside epoch 1) + --resume, bit for
#                                          bit (on the first 4000 + 1000 samples)
# Environment: MNIST (the program, built with MPI), TESTKIT (mnist_testkit), MNIST_DIR (real
# data), WORK (scratch), MPIEXEC and MPIEXEC_NUMPROC_FLAG (CMake's FindMPI; default mpiexec -n).
set -euo pipefail
: "${MNIST:?}" "${TESTKIT:?}" "${MNIST_DIR:?}" "${WORK:?}"
mpiexec=(${MPIEXEC:-mpiexec} "${MPIEXEC_NUMPROC_FLAG:--n}" 2)
# Open MPI refuses root and more ranks than cores unless told; other MPIs ignore these.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
work=$WORK/distributed_$1
rm -rf "$work" && mkdir -p "$work"
cd "$work"

fail() { echo "FAIL: $*" >&2; exit 1; }
[ -s "$MNIST_DIR/train-images-idx3-ubyte" ] ||
  fail "no MNIST in $MNIST_DIR: run scripts/fetch-mnist.sh (scripts/test.sh does)"
line='^epoch: [0-9]*, Train Loss: [0-9.]*, Train Acc: [0-9.]*, Test Loss: [0-9.]*, Test Acc: [0-9.]*$'
acc() { sed -n 's/.*Test Acc: \([0-9.]*\)$/\1/p' "$1"; }

case $1 in
  one_epoch)
    common=(--data-dir "$MNIST_DIR" --epochs 1 --lr-step 0 --threads 1)
    "$MNIST" "${common[@]}" --batch-size 128 --out single | tee single.txt
    mkdir replicas
    MNIST_SAVE_REPLICAS=$PWD/replicas "${mpiexec[@]}" "$MNIST" --distributed "${common[@]}" \
      --batch-size 64 --out dist >dist.txt 2>dist.err || { cat dist.txt dist.err; fail "mpiexec failed"; }
    cat dist.txt dist.err
    [ "$(grep -c "$line" dist.txt)" = 1 ] && [ "$(wc -l <dist.txt)" = 1 ] ||
      fail "stdout should be rank 0's one line in reference 1's format"
    grep -q "distributed: 2 ranks x batch 64 = global batch 128; .*per step 1 all-reduce call(s), 1.070 MB" dist.err || fail "no summary line"
    [ -s dist/checkpoint.safetensors ] && [ -s dist/metrics.csv ] || fail "rank 0 wrote no checkpoint"
    cmp replicas/replica-0.safetensors replicas/replica-1.safetensors ||
      fail "the replicas' parameters or momentum buffers differ after one epoch"
    echo "replicas: parameters and momentum buffers bit-identical on both ranks"
    a=$(acc single.txt) b=$(acc dist.txt)
    awk -v a="$a" -v b="$b" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(d <= 0.005 && b >= 0.9) }' ||
      fail "test accuracy: 2 ranks $b, 1 process $a (allowed: 0.005 apart)"
    echo "test accuracy: 2 ranks x 64 $b, 1 process x 128 $a"
    ;;
  same_as_one_process)
    # Without BatchNorm the 2 ranks compute the gradient of the same 64 samples as one
    # process, summed in another order: float rounding apart, the same run.
    common=(--preset deep-mlp --data-dir "$MNIST_DIR" --epochs 1 --max-steps 200 --threads 1)
    "$MNIST" "${common[@]}" --batch-size 64 --out single >/dev/null
    "${mpiexec[@]}" "$MNIST" --distributed "${common[@]}" --batch-size 32 --out dist >/dev/null
    paste -d, single/losses.csv dist/losses.csv | awk -F, '
      NR > 1 { d = $2 - $4; if (d < 0) d = -d; if (d > max) max = d; n++ }
      END { printf "%d steps, max |loss difference| %.3g\n", n, max; exit !(n == 200 && max < 1e-4) }' ||
      fail "the losses of 2 x 32 and 1 x 64 differ by more than 1e-4"
    ;;
  resume_is_exact)
    # Rank 0's checkpoint holds its own BatchNorm statistics; on resume every rank loads
    # them, which changes nothing trained: training normalises with batch statistics.
    mkdir d && "$TESTKIT" subset "$MNIST_DIR" d 4000 1000
    common=(--distributed --data-dir d --threads 1)
    "${mpiexec[@]}" "$MNIST" "${common[@]}" --epochs 2 --out straight >/dev/null 2>&1
    "${mpiexec[@]}" "$MNIST" "${common[@]}" --epochs 1 --out split >/dev/null 2>&1
    "${mpiexec[@]}" "$MNIST" "${common[@]}" --epochs 2 --out split \
      --resume split/checkpoint.safetensors >split.txt 2>&1
    grep -q "^epoch: 1," split.txt || fail "the resumed run did not train epoch 1"
    "$TESTKIT" same-tensors straight/checkpoint.safetensors split/checkpoint.safetensors ||
      fail "2 epochs straight and 1 + 1 resumed differ"
    # Stopped inside epoch 1 (32 steps per epoch): the checkpoint records the step.
    "${mpiexec[@]}" "$MNIST" "${common[@]}" --epochs 2 --max-steps 40 --out mid >/dev/null 2>mid.err
    grep -q "^stopped (--max-steps) at epoch 1, step 8 of 32" mid.err || { cat mid.err; fail "no stop line"; }
    grep -q -- "--resume mid/checkpoint.safetensors" mid.err || fail "no command to continue"
    "${mpiexec[@]}" "$MNIST" "${common[@]}" --epochs 2 --resume mid/checkpoint.safetensors >mid.txt 2>&1
    "$TESTKIT" same-tensors straight/checkpoint.safetensors mid/checkpoint.safetensors ||
      fail "2 epochs straight and 40 steps + --resume differ"
    diff <(cut -d, -f1-7 straight/metrics.csv) <(cut -d, -f1-7 mid/metrics.csv) || fail "metrics differ"
    cmp straight/losses.csv mid/losses.csv || fail "losses.csv differ"
    ;;
  *) fail "unknown case '$1'" ;;
esac
echo "ok: $1"
