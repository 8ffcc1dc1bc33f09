// The BDM term of one distinct block: CTM(code) + log2(count).
#pragma once

#include <cmath>
#include <cstdint>
#include <vector>

namespace qubd::cpu {

// log2 of small counts, tabulated once (the same values std::log2 returns): most counts in the
// low planes are tiny, and the call would cost more than the rest of the sum.
constexpr int64_t kTabulatedCounts = 4096;

inline const std::vector<double>& log2_table() {
  static const std::vector<double> table = [] {
    std::vector<double> t(kTabulatedCounts);
    for (int64_t n = 1; n < kTabulatedCounts; ++n) t[n] = std::log2(double(n));
    return t;
  }();
  return table;
}

inline double block_term(const double* ctm16, const std::vector<double>& log2_small, int code, int64_t n) {
  return ctm16[code] + (n < kTabulatedCounts ? log2_small[n] : std::log2(double(n)));
}

}  // namespace qubd::cpu
