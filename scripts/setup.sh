# SPDX-License-Identifier: MIT
# Shared by scripts/test.sh and scripts/mnist.sh (sourced, not run): installs what is
# missing on Debian/Ubuntu, fetches MNIST, configures and builds.

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

say() { printf '%s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# Debian packages the build and tests need, and a file that proves each is there (a path,
# or a glob where the path holds a version, e.g. /usr/lib/llvm-*/lib/libomp.so).
required_packages=(
  "cmake:/usr/bin/cmake"
  "g++:/usr/bin/g++"
  "make:/usr/bin/make"
  "libeigen3-dev:/usr/include/eigen3/Eigen/Core"
  "catch2:/usr/include/catch2/catch.hpp"
  "nlohmann-json3-dev:/usr/include/nlohmann/json.hpp"
  "zlib1g-dev:/usr/include/zlib.h"
  "curl:/usr/bin/curl"
  "npm:/usr/bin/npm"
)

# Installs the missing packages (apt-get, as root or through sudo). Quick when all are there.
ensure_packages() {
  local extra=("$@") missing=() entry
  for entry in "${required_packages[@]}" "${extra[@]}"; do
    compgen -G "${entry#*:}" >/dev/null || missing+=("${entry%%:*}")  # a path or a glob
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  command -v apt-get >/dev/null ||
    die "missing ${missing[*]}, and there is no apt-get here: install them by hand"
  local sudo=()
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || die "missing ${missing[*]}: run as root or install sudo"
    sudo=(sudo)
  fi
  say "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  "${sudo[@]}" apt-get update -qq >&2 || die "apt-get update failed"
  "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2 ||
    die "apt-get install ${missing[*]} failed"
}

# The compiler our builds use unless told otherwise: clang when it is installed (its build of
# Eigen's kernels trains the reference models 1.25-1.33x faster than g++ 12's here,
# docs/benchmarks.md), else g++.
default_compiler() { if command -v clang++ >/dev/null; then echo clang; else echo gcc; fi; }
cxx_of() { case $1 in clang) echo clang++ ;; *) echo g++ ;; esac; }

# What code that compiler $1 builds for -march=$2 may use and this CPU lacks: the missing
# extensions as /proc/cpuinfo names them, space-separated, or nothing. Such code stops on an
# illegal instruction, which names no cause. The compiler's predefined macros say what
# -march=$2 enables; CPUID says what the CPU has, read by scripts/cpu_lacks.cpp (built with
# the same compiler for its default target), or, where that cannot be built, the flags in
# /proc/cpuinfo, which may leave some out (cpu_lacks.cpp says where). Says nothing where it
# cannot tell: neither works (not x86 Linux) or a -march the compiler rejects (the build then
# says so itself).
march_missing() {
  local cxx=$1 march=$2 macros entry needed=() probe lacks flags name missing=()
  macros=$(echo | "$cxx" -march="$march" -dM -E -x c++ - 2>/dev/null) || return 0
  for entry in SSE3:pni SSSE3:ssse3 SSE4_1:sse4_1 SSE4_2:sse4_2 POPCNT:popcnt AVX:avx AVX2:avx2 \
    FMA:fma F16C:f16c BMI:bmi1 BMI2:bmi2 LZCNT:abm MOVBE:movbe AVX512F:avx512f \
    AVX512BW:avx512bw AVX512CD:avx512cd AVX512DQ:avx512dq AVX512VL:avx512vl; do
    grep -q "^#define __${entry%%:*}__ " <<<"$macros" && needed+=("${entry#*:}")
  done
  [ ${#needed[@]} -eq 0 ] && return 0
  probe=$(mktemp) || return 0
  if "$cxx" -O1 -o "$probe" "$repo_root/scripts/cpu_lacks.cpp" 2>/dev/null &&
    lacks=$("$probe" "${needed[@]}"); then
    rm -f "$probe"
    echo "$lacks"
    return 0
  fi
  rm -f "$probe"
  flags=$(grep -m1 '^flags' /proc/cpuinfo 2>/dev/null) || return 0
  for name in "${needed[@]}"; do
    [[ "$flags " == *" $name "* ]] || missing+=("$name")
  done
  echo "${missing[*]}"
}

# Configures and builds. Args: build dir, target ("" for all), then extra cmake args.
configure_and_build() {
  local dir=$1 target=$2
  shift 2
  local jobs log
  jobs=$(nproc 2>/dev/null || echo 2)
  mkdir -p "$dir"
  log=$dir/configure.log
  cmake -S "$repo_root" -B "$dir" -DCMAKE_BUILD_TYPE="${BUILD_TYPE:-Release}" "$@" >"$log" 2>&1 ||
    { cat "$log" >&2; die "cmake configure failed (log: $log)"; }
  cmake --build "$dir" -j "$jobs" ${target:+--target "$target"} >&2 || die "build failed in $dir"
}
