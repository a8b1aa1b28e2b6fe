#!/usr/bin/env bash
# CTest cases of the regression example: test.sh trains|bad_flag. Needs REGRESSION (the
# program) and WORK (a scratch directory).
set -euo pipefail
fail() { echo "FAIL: $*" >&2; exit 1; }
rm -rf "$WORK/$1" && mkdir -p "$WORK/$1" && cd "$WORK/$1"

case "$1" in
trains)
  # 60 epochs of 7 batches: enough to reach the noise floor (final test MSE 0.0093-0.0113 over
  # seeds 0-7), a fraction of the default 300.
  "$REGRESSION" --epochs 60 --seed 3 --out a > a.txt
  "$REGRESSION" --epochs 60 --seed 3 --out b > b.txt
  cat a.txt
  # Same seed, same run: the printed losses and both pictures, byte for byte.
  sed 's| b/| a/|g' b.txt | cmp - a.txt || fail "two runs with --seed 3 print different output"
  for f in fit.svg loss.svg; do
    cmp a/$f b/$f || fail "two runs with --seed 3 write different $f"
    head -c 4 a/$f | grep -q '<svg' || fail "a/$f does not start with <svg"
    tail -n 1 a/$f | grep -qx '</svg>' || fail "a/$f does not end with </svg>"
  done
  # Var(y) = Var(sin x) + 0.1^2 = 1/2 - sin(6)/12 + 0.01 = 0.53 for x ~ U(-3, 3): predicting
  # the mean scores 0.53, the best straight line 0.18. The noise floor is
  # 0.01, and over 200 test points its estimate varies by 0.01 * sqrt(2/200) = 0.001. So 0.02
  # is 25x below Var(y) and ten of those standard deviations above the floor: only a fit of
  # the curve itself passes.
  mse=$(sed -n 's/^final test MSE \([0-9.]*\) .*/\1/p' a.txt)
  [ -n "$mse" ] || fail "no 'final test MSE' line"
  awk -v m="$mse" 'BEGIN { exit !(m < 0.02) }' || fail "final test MSE $mse is not below 0.02"
  echo "final test MSE $mse < 0.02"
  ;;
bad_flag)
  # A bad flag or value: one line on stderr naming it, nothing on stdout, exit 2.
  for args in "--bogus" "--epochs" "--epochs 0" "--epochs 3x" "--lr -1" "--seed -4" "--out"; do
    set +e
    # shellcheck disable=SC2086
    "$REGRESSION" $args > out.txt 2> err.txt
    rc=$?
    set -e
    [ "$rc" -eq 2 ] || fail "'$args' exited with $rc, expected 2"
    lines=$(wc -l < err.txt)
    [ "$lines" -eq 1 ] || fail "'$args' printed $lines lines on stderr, expected 1"
    [ ! -s out.txt ] || fail "'$args' printed on stdout"
    grep -q -- "${args%% *}" err.txt || fail "'$args': the message does not name it: $(cat err.txt)"
    echo "'$args' -> $(cat err.txt)"
  done
  "$REGRESSION" --help | grep -q '^usage: regression' || fail "--help prints no usage line"
  ;;
*) fail "unknown case '$1'" ;;
esac
