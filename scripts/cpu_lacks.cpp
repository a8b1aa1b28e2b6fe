// SPDX-License-Identifier: MIT
// cpu_lacks FEATURE...: prints those of the given x86 features, named as /proc/cpuinfo names
// them, that this CPU or its operating system lacks, one line, space-separated; exit 2 on a
// name it does not know. scripts/setup.sh (march_missing) builds and runs it before a build
// for another -march. It reads CPUID itself because /proc/cpuinfo may leave features out: on
// an AMD EPYC Zen 5 under KVM (Linux 6.18) it listed no `abm` (LZCNT), which CPUID reported
// and which ran, so x86-64-v3 code looked unrunnable there.
#include <cpuid.h>

#include <cstdio>
#include <cstring>

namespace {

struct Feature {
  const char* name;         // as /proc/cpuinfo spells it
  unsigned leaf, reg, bit;  // CPUID leaf (subleaf 0), register (0 eax .. 3 edx), bit
  bool avx512;  // needs the AVX-512 register state, else AVX's if it uses ymm (avx*, fma, f16c)
};

constexpr unsigned kEbx = 1, kEcx = 2;
constexpr Feature kFeatures[] = {
    {"pni", 1, kEcx, 0, false},      {"ssse3", 1, kEcx, 9, false},
    {"fma", 1, kEcx, 12, false},     {"sse4_1", 1, kEcx, 19, false},
    {"sse4_2", 1, kEcx, 20, false},  {"movbe", 1, kEcx, 22, false},
    {"popcnt", 1, kEcx, 23, false},  {"avx", 1, kEcx, 28, false},
    {"f16c", 1, kEcx, 29, false},    {"bmi1", 7, kEbx, 3, false},
    {"avx2", 7, kEbx, 5, false},     {"bmi2", 7, kEbx, 8, false},
    {"avx512f", 7, kEbx, 16, true},  {"avx512dq", 7, kEbx, 17, true},
    {"avx512cd", 7, kEbx, 28, true}, {"avx512bw", 7, kEbx, 30, true},
    {"avx512vl", 7, kEbx, 31, true}, {"abm", 0x80000001, kEcx, 5, false},
};

bool cpuid_bit(unsigned leaf, unsigned reg, unsigned bit) {
  unsigned r[4] = {0, 0, 0, 0};
  // unsigned: clang's cpuid.h returns int, g++'s unsigned
  if (static_cast<unsigned>(__get_cpuid_max(leaf & 0x80000000u, nullptr)) < leaf) return false;
  __cpuid_count(leaf, 0, r[0], r[1], r[2], r[3]);
  return (r[reg] >> bit) & 1u;
}

// The register state the operating system saves (XCR0): ymm needs bits 1-2, zmm also 5-7.
unsigned long long saved_state() {
  if (!cpuid_bit(1, kEcx, 27)) return 0;  // OSXSAVE: XGETBV is allowed
  unsigned lo = 0, hi = 0;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return (static_cast<unsigned long long>(hi) << 32) | lo;
}

bool uses_ymm(const char* name) {
  return std::strncmp(name, "avx", 3) == 0 || !std::strcmp(name, "fma") ||
         !std::strcmp(name, "f16c");
}

}  // namespace

int main(int argc, char** argv) {
  const unsigned long long state = saved_state();
  const bool ymm = (state & 0x6) == 0x6, zmm = ymm && (state & 0xE0) == 0xE0;
  const char* sep = "";
  for (int i = 1; i < argc; ++i) {
    const Feature* f = nullptr;
    for (const Feature& k : kFeatures)
      if (!std::strcmp(k.name, argv[i])) f = &k;
    if (!f) {
      std::fprintf(stderr, "cpu_lacks: unknown feature '%s'\n", argv[i]);
      return 2;
    }
    const bool os = f->avx512 ? zmm : !uses_ymm(f->name) || ymm;
    if (!cpuid_bit(f->leaf, f->reg, f->bit) || !os) {
      std::printf("%s%s", sep, f->name);
      sep = " ";
    }
  }
  std::printf("\n");
  return 0;
}
