// Ones per bit-plane of a quantised matrix, for the closed-form "expected" baseline: those inside
// the complete 4x4 blocks (from the block codes or their histograms: popcount(code) per block) and
// those in the edge cells no complete block covers (the last rows % 4 rows and cols % 4 columns).
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "isa.h"
#include "qubd/block_code.h"

namespace qubd::cpu {

// ones[p] += sum over codes of histograms[p][code] * popcount(code).
inline void add_histogram_ones(const int64_t* histograms, int planes, int64_t* ones) {
  for (int p = 0; p < planes; ++p) {
    const int64_t* counts = histograms + int64_t(p) * kBlockCodes;
    int64_t sum = 0;
    for (int code = 0; code < kBlockCodes; ++code) sum += counts[code] * __builtin_popcount(unsigned(code));
    ones[p] += sum;
  }
}

// ones[p] += the ones of plane p in the edge cells of a rows x cols matrix of codes from `source`
// (a RowSource, block_histograms.h).
template <typename Code, typename RowSource>
void add_edge_ones(int64_t rows, int64_t cols, int planes, const RowSource& source, int64_t* ones) {
  const int64_t covered_rows = rows / kBlockSide * kBlockSide, covered_cols = cols / kBlockSide * kBlockSide;
  if (covered_rows == rows && covered_cols == cols) return;
  std::vector<Code> scratch(size_t(std::max<int64_t>(cols, 1)));
  dispatch_isa([&](auto isa) {
    auto count_cells = [&](int64_t r, int64_t c0, int64_t n) {
      const Code* codes = source(isa, r, c0, n, scratch.data());
      for (int64_t i = 0; i < n; ++i)
        for (int p = 0; p < planes; ++p) ones[p] += (codes[i] >> p) & 1;
    };
    if (covered_cols < cols)
      for (int64_t r = 0; r < covered_rows; ++r) count_cells(r, covered_cols, cols - covered_cols);
    for (int64_t r = covered_rows; r < rows; ++r) count_cells(r, 0, cols);
    return 0;
  });
}

}  // namespace qubd::cpu
