// Instruction sets chosen at run time: the default build targets the baseline of its architecture
// (SSE2 on x86-64), and the hot loops are also compiled for AVX2 and AVX-512, both with BMI2 and
// F16C (target attributes on the functions that use them, never -march), so one build runs on any
// x86-64 and fast where it can.
#pragma once

#include <string>
#include <type_traits>
#include <vector>

namespace qubd::cpu {

// Baseline: whatever the build targets (SSE2 on x86-64, plain C++ elsewhere).
enum class Isa { Baseline, Avx2, Avx512 };

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define QUBD_X86_ISAS 1
#define QUBD_TARGET_AVX2 __attribute__((target("avx2,bmi2,f16c")))
#define QUBD_TARGET_AVX512 __attribute__((target("avx2,bmi2,f16c,avx512f,avx512bw,avx512vl,prefer-vector-width=512")))
#endif

// The instruction set the kernels use now: the best this CPU has, unless set_isa chose another.
Isa active_isa();
// Names of the instruction sets this CPU can run ("baseline" first), and choosing one by name
// (std::invalid_argument for one the CPU lacks or an unknown name). For tests and benchmarks.
std::vector<std::string> supported_isas();
void set_isa(const std::string& name);

// One loop compiled for each instruction set, from one body: `Loop` is a type whose static
// `[[gnu::always_inline]] run(...)` has no target attribute of its own, so each wrapper below inlines
// it and the compiler vectorises it for the wrapper's target. run_for_isa<isa, Loop>(args...) calls
// the wrapper of `isa` (an out-of-line call: a target-attributed function is never inlined into a
// baseline caller).
namespace isa_wrappers {
template <typename Loop, typename... Args>
auto baseline(Args... args) {
  return Loop::run(args...);
}
#if defined(QUBD_X86_ISAS)
template <typename Loop, typename... Args>
QUBD_TARGET_AVX2 auto avx2(Args... args) {
  return Loop::run(args...);
}
template <typename Loop, typename... Args>
QUBD_TARGET_AVX512 auto avx512(Args... args) {
  return Loop::run(args...);
}
#endif
}  // namespace isa_wrappers

template <Isa isa, typename Loop, typename... Args>
auto run_for_isa(Args... args) {
#if defined(QUBD_X86_ISAS)
  if constexpr (isa == Isa::Avx512)
    return isa_wrappers::avx512<Loop>(args...);
  else if constexpr (isa == Isa::Avx2)
    return isa_wrappers::avx2<Loop>(args...);
  else
#endif
    return isa_wrappers::baseline<Loop>(args...);
}

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
