#include <cmath>
#include <vector>

#include "kernels.h"
#include "qubd/block_code.h"

namespace qubd::cpu {
namespace {

// log2 of small counts, tabulated once (the same values std::log2 returns): most counts in the
// low planes are tiny, and the call would cost more than the rest of the sum.
constexpr int64_t kTabulatedCounts = 4096;

const std::vector<double>& log2_table() {
  static const std::vector<double> table = [] {
    std::vector<double> t(kTabulatedCounts);
    for (int64_t n = 1; n < kTabulatedCounts; ++n) t[n] = std::log2(double(n));
    return t;
  }();
  return table;
}

}  // namespace

void ctm_score(const int64_t* histograms, int planes, const double* ctm16, double* scores) {
  const std::vector<double>& log2_small = log2_table();
#pragma omp parallel for schedule(static) if (planes > 1)
  for (int p = 0; p < planes; ++p) {
    const int64_t* counts = histograms + int64_t(p) * kBlockCodes;
    double sum = 0.0;
    for (int code = 0; code < kBlockCodes; ++code) {
      const int64_t n = counts[code];
      if (n > 0) sum += ctm16[code] + (n < kTabulatedCounts ? log2_small[n] : std::log2(double(n)));
    }
    scores[p] = sum;
  }
}

}  // namespace qubd::cpu
