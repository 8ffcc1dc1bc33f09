#include "isa.h"

#include <atomic>
#include <stdexcept>

namespace qubd::cpu {
namespace {

const char* const kNames[] = {"baseline", "avx2", "avx512"};

bool cpu_has(Isa isa) {
#if defined(QUBD_X86_ISAS)
  switch (isa) {
    case Isa::Avx512:
      return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
             __builtin_cpu_supports("avx512vl") && cpu_has(Isa::Avx2);
    case Isa::Avx2:
      return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("bmi2") && __builtin_cpu_supports("f16c");
    default: return true;
  }
#else
  return isa == Isa::Baseline;
#endif
}

Isa best_isa() {
  for (Isa isa : {Isa::Avx512, Isa::Avx2})
    if (cpu_has(isa)) return isa;
  return Isa::Baseline;
}

std::atomic<Isa>& chosen() {
  static std::atomic<Isa> isa{best_isa()};
  return isa;
}

}  // namespace

Isa active_isa() { return chosen().load(std::memory_order_relaxed); }

std::vector<std::string> supported_isas() {
  std::vector<std::string> names;
  for (Isa isa : {Isa::Baseline, Isa::Avx2, Isa::Avx512})
    if (cpu_has(isa)) names.push_back(kNames[int(isa)]);
  return names;
}

void set_isa(const std::string& name) {
  for (Isa isa : {Isa::Baseline, Isa::Avx2, Isa::Avx512})
    if (name == kNames[int(isa)]) {
      if (!cpu_has(isa)) throw std::invalid_argument("this CPU cannot run the " + name + " kernels");
      chosen().store(isa);
      return;
    }
  throw std::invalid_argument("unknown instruction set '" + name + "' (expected baseline, avx2 or avx512)");
}

}  // namespace qubd::cpu
