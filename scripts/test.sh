#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Installs what is missing, fetches MNIST, builds and runs the whole test suite with CTest.
#
#   ./scripts/test.sh                  Release build in build/ (the default: clang if installed, else g++)
#   ./scripts/test.sh --sanitize       AddressSanitizer + UBSan build in build-sanitize/
#   ./scripts/test.sh --compiler gcc   a given compiler (gcc or clang), in build-gcc/ or build-clang/
#   ./scripts/test.sh --no-openmp      without OpenMP, in build[-...]-no-openmp/
#   ./scripts/test.sh --march x86-64-v3   for another -march than native (x86-64-v2: SSE4.2,
#                                      x86-64-v3: AVX2 + FMA; this CPU must have them), in
#                                      build[-...]-x86-64-v3/
#   ./scripts/test.sh --portable       without any -march (the compiler's default, SSE2)
#   ./scripts/test.sh --compiler clang --fuzz   also the libFuzzer targets, each fuzzing for
#                                      FUZZ_SECONDS (default 60) as tests fuzz:idx, fuzz:safetensors
#   ./scripts/test.sh --tsan           also the thread pool's tests under ThreadSanitizer
#   ./scripts/test.sh --mpi            with MPI (Open MPI installed if missing): backprop::mpi
#                                      and the 2-rank tests, in build[-...]-mpi/; without
#                                      --mpi they are built and run when MPI is installed
#   extra arguments after -- go to ctest, e.g. ./scripts/test.sh -- -R core:
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"

usage() { sed -n '3,19p' "$0" | sed 's/^# \{0,1\}//'; }

compiler=$(default_compiler) compiler_given=0 sanitize=0 openmp=ON march=native mpi=OFF mpi_found=OFF fuzz=OFF tsan=OFF ctest_args=()
while [ $# -gt 0 ]; do
  case $1 in
    --sanitize) sanitize=1 ;;
    --compiler) [ $# -ge 2 ] || die "--compiler needs gcc or clang"; compiler=$2 compiler_given=1; shift ;;
    --no-openmp) openmp=OFF ;;
    --march) [ $# -ge 2 ] || die "--march needs a value, e.g. x86-64-v3"; march=$2; shift ;;
    --march=*) march=${1#--march=} ;;
    --portable) march= ;;
    --mpi) mpi=ON ;;
    --fuzz) fuzz=ON ;;
    --tsan) tsan=ON ;;
    -h|--help) usage; exit 0 ;;
    --) shift; ctest_args=("$@"); break ;;
    *) die "unknown option '$1' (see --help)" ;;
  esac
  shift
done

[[ $march =~ ^[A-Za-z0-9_.-]*$ ]] || die "--march takes a name like native or x86-64-v3, got '$march'"

extra_packages=()
case $compiler in
  gcc) cxx=$(cxx_of gcc) ;;
  clang) cxx=$(cxx_of clang); extra_packages=("clang:/usr/bin/clang++" "libomp-dev:/usr/lib/llvm-*/lib/libomp.so") ;;
  *) die "--compiler takes gcc or clang, got '$compiler'" ;;
esac
if [ $fuzz = ON ]; then
  [ "$compiler" = clang ] || die "--fuzz needs --compiler clang (libFuzzer is clang's)"
  extra_packages+=("libclang-rt-14-dev:/usr/lib/clang/14/lib/linux/libclang_rt.fuzzer-x86_64.a")
fi
if [ $tsan = ON ]; then
  [ $sanitize = 0 ] || die "--tsan and --sanitize need separate builds"
  case $compiler in
    clang) extra_packages+=("libclang-rt-14-dev:/usr/lib/clang/14/lib/linux/libclang_rt.tsan-x86_64.a") ;;
    gcc) extra_packages+=("libtsan2:/usr/lib/x86_64-linux-gnu/libtsan.so.2") ;;
  esac
fi
[ $mpi = OFF ] || extra_packages+=("libopenmpi-dev:/usr/bin/mpicxx" "openmpi-bin:/usr/bin/mpirun")
# Without --mpi, MPI is used when it is there (it is optional: the core never needs it).
[ $mpi = ON ] || { [ -x /usr/bin/mpicxx ] && [ -x /usr/bin/mpirun ] && [ $sanitize = 0 ] && mpi_found=ON; } || true
ensure_packages "${extra_packages[@]}"
if [ -n "$march" ] && [ "$march" != native ]; then
  missing=$(march_missing "$cxx" "$march")
  [ -z "$missing" ] || die "this CPU lacks $missing, which code built for -march=$march uses: \
the tests would stop on an illegal instruction. Build for this CPU (the default) or test on one that has them"
fi
"$repo_root/scripts/fetch-mnist.sh" >&2

dir=$repo_root/build
[ $compiler_given = 0 ] || dir+="-$compiler"
[ $sanitize = 0 ] || dir+="-sanitize"
[ $openmp = ON ] || dir+="-no-openmp"
case $march in native) ;; "") dir+="-portable" ;; *) dir+="-$march" ;; esac
[ $mpi = OFF ] || dir+="-mpi"
[ $sanitize = 0 ] || export BUILD_TYPE=RelWithDebInfo

configure_and_build "$dir" "" -DCMAKE_CXX_COMPILER="$cxx" -DBACKPROP_USE_OPENMP=$openmp \
  -DBACKPROP_MARCH="$march" -DBACKPROP_USE_MPI=$([ $mpi = ON ] || [ $mpi_found = ON ] && echo ON || echo OFF) -DBACKPROP_SANITIZE=$([ $sanitize = 1 ] && echo ON || echo OFF) \
  -DBACKPROP_FUZZ=$fuzz -DBACKPROP_TSAN_TESTS=$tsan -DBACKPROP_FUZZ_SECONDS="${FUZZ_SECONDS:-60}" \
  -DBACKPROP_MNIST_DIR="$repo_root/data/mnist"

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
cd "$dir"
ctest --output-on-failure -j "$(nproc 2>/dev/null || echo 2)" "${ctest_args[@]}"
