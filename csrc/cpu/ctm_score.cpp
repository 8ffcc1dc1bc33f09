#include "ctm_terms.h"
#include "kernels.h"
#include "qubd/block_code.h"

namespace qubd::cpu {

void ctm_score(const int64_t* histograms, int planes, const double* ctm16, double* scores) {
  const std::vector<double>& log2_small = log2_table();
#pragma omp parallel for schedule(static) if (planes > 1)
  for (int p = 0; p < planes; ++p) {
    const int64_t* counts = histograms + int64_t(p) * kBlockCodes;
    double sum = 0.0;
    for (int code = 0; code < kBlockCodes; ++code)
      if (counts[code] > 0) sum += block_term(ctm16, log2_small, code, counts[code]);
    scores[p] = sum;
  }
}

}  // namespace qubd::cpu
