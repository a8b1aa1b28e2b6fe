#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Compares per-step training losses: PyTorch's against ours.
#
#   compare_losses.sh TORCH_LOSSES OUR_LOSSES_CSV REL_TOL
#
#   TORCH_LOSSES     one loss per line (tests/fixtures/torch_bn_mlp_first100_losses.txt,
#                    written by tests/reference/mnist_torch.py --export-parity)
#   OUR_LOSSES_CSV   the example's losses.csv: header "iteration,loss", one row per step
#   REL_TOL          the largest allowed |ours - torch| / |torch| for any step
#
# Exit 0 when both files have the same number of steps and every step is within REL_TOL;
# otherwise exit 1, printing the first mismatch. Always prints the max relative error.
# Exit 2 on bad usage or unreadable files. Needs only bash and awk (no python in CI).
#
# Used by the CTests "mnist:parity_first_100_losses" (the example's float run, 1e-3) and
# "mnist:parity_f64_first_100_losses" (the library in double, 1e-10); each tolerance is
# explained beside its test in examples/mnist/tests/run.sh. For scale (float, seen on one
# build): an lr 1% off (--lr 0.0101) moves step 1 by 3.5e-5 and reaches 3.5e-3, momentum 0.49
# reaches 6.8e-3, a missed epoch-0 lr decay 3.1e-2 at step 1, batch 65 fails at step 0.
set -euo pipefail

if [ $# -ne 3 ]; then
  echo "usage: $0 TORCH_LOSSES OUR_LOSSES_CSV REL_TOL" >&2
  exit 2
fi
torch_file=$1 ours_file=$2 tol=$3
for f in "$torch_file" "$ours_file"; do
  [ -r "$f" ] || { echo "$f: cannot read" >&2; exit 2; }
done

awk -v tol="$tol" -v tf="$torch_file" -v of="$ours_file" '
  BEGIN { nt = 0; no = 0 }
  function abs(x) { return x < 0 ? -x : x }
  # A finite decimal number? (nan, inf and garbage count as a mismatch: awk compares NaN
  # inconsistently, mawk says nan == nan.)
  function num(s) { return s ~ /^[-+]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?$/ }
  FNR == NR { if (NF) { tok[nt] = num($1); torch[nt++] = $1 + 0 }; next }  # one loss a line
  FNR == 1 {                                                # file 2: CSV header
    if ($0 != "iteration,loss") { printf "%s: header is \"%s\", expected \"iteration,loss\"\n", of, $0; bad = 2; exit }
    next
  }
  NF { split($0, f, ","); ook[no] = num(f[2]); ours[no++] = f[2] + 0 }
  END {
    if (bad) exit bad
    if (nt == 0) { printf "%s: no losses\n", tf; exit 1 }
    if (no != nt) { printf "FAIL: %s has %d steps, %s has %d\n", tf, nt, of, no }
    n = no < nt ? no : nt
    max = 0; at = 0; first = -1
    for (i = 0; i < n; i++) {
      t = torch[i]; o = ours[i]
      d = abs(o - t); den = abs(t)
      r = den > 0 ? d / den : (d > 0 ? 1e300 : 0)
      if (!tok[i] || !ook[i]) r = 1e300                   # nan, inf, not a number
      if (r > max) { max = r; at = i }
      if (!(r <= tol) && first < 0) {
        first = i
        printf "FAIL: step %d: torch %.9g, ours %.9g, relative error %.3g > %g\n", i, t, o, r, tol
      }
    }
    printf "max relative error %.3g at step %d over %d steps (tolerance %g)\n", max, at, n, tol
    exit (first >= 0 || no != nt) ? 1 : 0
  }
' "$torch_file" "$ours_file"
