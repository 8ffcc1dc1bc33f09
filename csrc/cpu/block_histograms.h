// Per-plane histograms of 4x4 block codes, one pass over a matrix of integer codes.
//
// The matrix is walked in bands of 4 rows; a RowSource yields each row's codes (read in place, or
// quantised from weights into a scratch row, so nothing of matrix size is materialised). Each
// thread counts into its own histograms, which are summed at the end.
#pragma once

#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "plane_codes.h"
#include "qubd/block_code.h"

namespace qubd::cpu {

// Below this many blocks per thread, spreading the work costs more than it saves (each thread
// zeroes and sums `planes` x 65536 counters).
constexpr int64_t kMinBlocksPerThread = 1 << 15;

template <typename Code>
inline uint32_t load_byte_slice(const Code* row, int shift) {
  uint32_t packed = 0;
  for (int c = 0; c < kBlockSide; ++c) packed |= uint32_t((row[c] >> shift) & 0xFF) << (8 * c);
  return packed;
}

template <>
inline uint32_t load_byte_slice<uint8_t>(const uint8_t* row, int) {
  uint32_t packed;
  std::memcpy(&packed, row, sizeof packed);
  return packed;
}

template <typename Code, typename Counter>
inline void count_block(const Code* const rows[4], int64_t col, int planes, Counter* counts) {
  uint16_t codes[16];
  for (int slice = 0; slice * 8 < planes; ++slice) {
    const uint32_t bytes[4] = {load_byte_slice(rows[0] + col, 8 * slice), load_byte_slice(rows[1] + col, 8 * slice),
                               load_byte_slice(rows[2] + col, 8 * slice), load_byte_slice(rows[3] + col, 8 * slice)};
    plane_codes(bytes, std::min(8, planes - 8 * slice), codes + 8 * slice);
  }
  for (int p = 0; p < planes; ++p) ++counts[int64_t(p) * kBlockCodes + codes[p]];
}

// RowSource: `const Code* operator()(int64_t r, Code* scratch) const` returns the first `cols`
// codes of row r (written into `scratch` if they are computed).
template <typename Code, typename RowSource>
void block_histograms(int64_t rows, int64_t cols, int planes, const RowSource& source, int64_t* histograms) {
  const int64_t band_count = rows / kBlockSide;
  const int64_t block_cols = cols / kBlockSide;
  const int64_t used_cols = block_cols * kBlockSide;
  const int64_t bins = int64_t(planes) * kBlockCodes;
  std::fill(histograms, histograms + bins, int64_t{0});
  if (band_count == 0 || block_cols == 0) return;

  const int64_t blocks = band_count * block_cols;
  const int threads = int(std::clamp<int64_t>(blocks / kMinBlocksPerThread, 1, omp_get_max_threads()));

  auto count_bands = [&](int64_t first, int64_t last, auto* counts) {
    std::vector<Code> scratch(kBlockSide * used_cols);
    for (int64_t band = first; band < last; ++band) {
      const Code* band_rows[4];
      for (int r = 0; r < kBlockSide; ++r)
        band_rows[r] = source(band * kBlockSide + r, scratch.data() + r * used_cols);
      for (int64_t col = 0; col < used_cols; col += kBlockSide) count_block(band_rows, col, planes, counts);
    }
  };

  if (threads == 1) {
    count_bands(0, band_count, histograms);
    return;
  }
  auto count_in_threads = [&](auto counter) {
    using Counter = decltype(counter);
#pragma omp parallel num_threads(threads)
    {
      std::vector<Counter> counts(bins, 0);
      const int t = omp_get_thread_num(), n = omp_get_num_threads();
      count_bands(band_count * t / n, band_count * (t + 1) / n, counts.data());
#pragma omp critical
      for (int64_t i = 0; i < bins; ++i) histograms[i] += int64_t(counts[i]);
    }
  };
  // 32-bit counters halve the cache footprint, when no thread can count 2^32 blocks.
  if (blocks / threads + block_cols < int64_t(UINT32_MAX))
    count_in_threads(uint32_t{});
  else
    count_in_threads(int64_t{});
}

}  // namespace qubd::cpu
