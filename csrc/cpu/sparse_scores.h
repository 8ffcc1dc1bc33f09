// BDM scores of a matrix with few blocks, without dense histograms: each plane's block codes are
// sorted and the runs of equal codes summed in ascending order, the order ctm_score sums the
// dense histograms in, so the scores are the same doubles. Dense histograms cost zeroing and
// scanning planes x 65536 counters whatever the matrix size (milliseconds for a 4x4 tensor).
// The same runs give the ones per plane inside the blocks (popcount(code) x run length), if asked.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "block_histograms.h"
#include "ctm_terms.h"

namespace qubd::cpu {

// Up to this many blocks, sorting the codes beats dense counters.
constexpr int64_t kSparseBlocks = 1 << 12;

template <typename Code, typename RowSource>
void sparse_block_scores(int64_t rows, int64_t cols, int planes, const RowSource& source, const double* ctm16,
                         double* scores, int64_t* block_ones) {
  const BandWalk<Code, RowSource> bands(rows, cols, planes, source);
  std::vector<uint16_t> codes(size_t(planes) * size_t(bands.blocks));
  if (bands.blocks > 0) {
    ChunkBuffers<Code> work = bands.buffers();
    int64_t filled = 0;
    dispatch_isa([&](auto isa) {
      bands.template walk<decltype(isa)::value>(
          0, bands.bands, work, [&](const uint16_t* chunk_codes, int64_t n_blocks, int64_t stride, int64_t) {
            for (int p = 0; p < planes; ++p)
              std::copy(chunk_codes + p * stride, chunk_codes + p * stride + n_blocks,
                        codes.begin() + p * bands.blocks + filled);
            filled += n_blocks;
          });
      return 0;
    });
  }
  const std::vector<double>& log2_small = log2_table();
  for (int p = 0; p < planes; ++p) {
    const auto first = codes.begin() + p * bands.blocks, last = first + bands.blocks;
    std::sort(first, last);
    double sum = 0.0;
    int64_t ones = 0;
    for (auto run = first; run != last;) {
      const auto end = std::upper_bound(run, last, *run);
      sum += block_term(ctm16, log2_small, *run, end - run);
      ones += __builtin_popcount(unsigned(*run)) * int64_t(end - run);
      run = end;
    }
    scores[p] = sum;
    if (block_ones != nullptr) block_ones[p] = ones;
  }
}

}  // namespace qubd::cpu
