#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# This tree's detail::gemm against another git revision's, alternating in one process
# (ab_gemm.cpp): Linear's three products at the reference models' shapes, us per call, the
# median ratio base / ours, and whether the results are the same bits.
#
# Usage: benchmarks/ab_gemm.sh [REV] [--march M] [ab_gemm options]   (Linux: GNU sed)
#   REV          the base revision (default HEAD: the working tree's change against it)
#   --march M    -march for both sides (default native; x86-64-v3 for the AVX2 kernel)
#   ab_gemm options: --batch N (default 64 and 256), --rounds R (31); one thread only (each
#                version has its own thread pool, and two pools would compete for the cores)
# Environment: CXX, a compiler's path or name (default clang++ if present, else g++).
# Example: benchmarks/ab_gemm.sh 34e9e7e --march x86-64-v3 --batch 64
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
rev="" march=native args=()
usage() { echo "ab_gemm.sh: $* (try --help)" >&2; exit 2; }
while (($#)); do
  case $1 in
    --march|--batch|--rounds)
      (($# >= 2)) || usage "$1 needs a value"
      if [[ $1 == --march ]]; then march=$2; else args+=("$1" "$2"); fi
      shift ;;
    -h|--help) sed -n '3,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    -*) usage "unknown argument $1" ;;
    *) [[ -z $rev ]] || usage "one revision only (got $rev and $1)"; rev=$1 ;;
  esac
  shift
done
rev=${rev:-HEAD}
die() { echo "ab_gemm.sh: $*" >&2; exit 1; }
cxx=${CXX:-$(command -v clang++ || command -v g++ || true)}
[[ -n $cxx ]] || die "no C++ compiler (set CXX)"
commit=$(git -C "$repo" rev-parse --short "$rev^{commit}" 2>/dev/null) ||
  die "$rev is not a revision of $repo"

work=$(mktemp -d -t ab_gemm.XXXXXX)
trap 'rm -rf "$work"' EXIT
# The base's headers under $work/base/backprop, in namespace backprop_base: both versions'
# templates and inline functions then have different names, and the program holds both.
# Macros (BACKPROP_GEMM_KERNEL) are not renamed: both versions must define them alike.
mkdir -p "$work/base"
git -C "$repo" archive "$commit" include/backprop |
  tar -x -C "$work/base" --strip-components=1 || die "could not extract include/backprop at $commit"
grep -rlZ 'backprop' "$work/base/backprop" | xargs -0 -r sed -i \
  's/namespace backprop\b/namespace backprop_base/g; s/\bbackprop::/backprop_base::/g'

echo "ab_gemm.sh: base $commit, ours the working tree" \
  "($(git -C "$repo" describe --always --dirty)), $cxx -march=$march"
eigen=$(pkg-config --cflags eigen3 2>/dev/null || echo -I/usr/include/eigen3)
# shellcheck disable=SC2086  # $eigen is a list of flags
"$cxx" -std=c++17 -O3 -DNDEBUG -march="$march" -pthread $eigen -I "$repo/include" -I "$work" \
  -I "$repo/benchmarks" "$repo/benchmarks/ab_gemm.cpp" -o "$work/ab_gemm" || die "building ab_gemm failed (did the base's gemm.hpp interface change?)"
"$work/ab_gemm" ${args[@]+"${args[@]}"}
