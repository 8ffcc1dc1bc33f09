// Instruction sets chosen at run time: the default build targets the baseline of its architecture
// (SSE2 on x86-64), and the hot loops are also compiled for AVX2 and AVX-512 (target attributes on
// the functions that use them, never -march), so one build runs on any x86-64 and fast where it can.
#pragma once

#include <string>
#include <type_traits>
#include <vector>

namespace qubd::cpu {

// Baseline: whatever the build targets (SSE2 on x86-64, plain C++ elsewhere).
enum class Isa { Baseline, Avx2, Avx512 };

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define QUBD_X86_ISAS 1
#define QUBD_TARGET_AVX2 __attribute__((target("avx2,bmi2")))
#define QUBD_TARGET_AVX512 __attribute__((target("avx2,bmi2,avx512f,avx512bw,avx512vl,prefer-vector-width=512")))
#endif

// The instruction set the kernels use now: the best this CPU has, unless set_isa chose another.
Isa active_isa();
// Names of the instruction sets this CPU can run ("baseline" first), and choosing one by name
// (std::invalid_argument for one the CPU lacks or an unknown name). For tests and benchmarks.
std::vector<std::string> supported_isas();
void set_isa(const std::string& name);

// Calls fn(std::integral_constant<Isa, active_isa()>{}).
template <typename Fn>
auto dispatch_isa(Fn&& fn) {
#if defined(QUBD_X86_ISAS)
  switch (active_isa()) {
    case Isa::Avx512: return fn(std::integral_constant<Isa, Isa::Avx512>{});
    case Isa::Avx2: return fn(std::integral_constant<Isa, Isa::Avx2>{});
    default: break;
  }
#endif
  return fn(std::integral_constant<Isa, Isa::Baseline>{});
}

}  // namespace qubd::cpu
