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
#include <memory>
#include <vector>

#include "plane_codes.h"
#include "qubd/block_code.h"

namespace qubd::cpu {

// Below this many blocks per thread, spreading the work costs more than it saves (each thread
// zeroes and sums `planes` x 65536 counters).
constexpr int64_t kMinBlocksPerThread = 1 << 15;
// Columns of a band handled per step (4 scratch rows of this many codes per thread).
constexpr int64_t kChunkCols = 1 << 14;

// The threads' private counters (2 threads x 8 planes: 4 MiB) are kept from one call to the next
// by the calling thread, up to this size: allocated afresh, such a buffer is mapped and unmapped
// by malloc every call and costs a page fault per 4 KiB (measured: ~2 ms a call at 1024x1024).
// The memory stays with each thread that has called (one buffer per counter width) until it exits.
constexpr size_t kRetainedCounterBytes = size_t(64) << 20;

template <typename Counter>
class ThreadCounters {
 public:
  explicit ThreadCounters(size_t n) {
    static thread_local std::vector<Counter> retained;
    if (n * sizeof(Counter) > kRetainedCounterBytes) {
      own_.reset(new Counter[n]);
      data_ = own_.get();
      return;
    }
    if (retained.size() < n) retained.resize(n);
    data_ = retained.data();
  }
  Counter* data() const { return data_; }

 private:
  std::unique_ptr<Counter[]> own_;
  Counter* data_;
};

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

// RowSource: `const Code* operator()(int64_t r, int64_t c0, int64_t n, Code* scratch) const` returns
// the codes of row r, columns c0 .. c0 + n - 1 (written into `scratch` if they are computed).
template <typename Code, typename RowSource>
void block_histograms(int64_t rows, int64_t cols, int planes, const RowSource& source, int64_t* histograms) {
  const int64_t band_count = rows / kBlockSide;
  const int64_t used_cols = cols / kBlockSide * kBlockSide;
  const int64_t bins = int64_t(planes) * kBlockCodes;
  if (band_count == 0 || used_cols == 0) {
    std::fill(histograms, histograms + bins, int64_t{0});
    return;
  }

  const int64_t blocks = band_count * (used_cols / kBlockSide);
  const int threads = int(std::clamp<int64_t>(blocks / kMinBlocksPerThread, 1,
                                              std::min<int64_t>(omp_get_max_threads(), band_count)));
  // A band is walked in chunks of columns, so a thread's scratch rows stay small whatever the width.
  const int64_t chunk = std::min(kChunkCols, used_cols);

  auto count_bands = [&](int64_t first, int64_t last, Code* scratch, auto* counts) {
    for (int64_t band = first; band < last; ++band)
      for (int64_t c0 = 0; c0 < used_cols; c0 += chunk) {
        const int64_t n = std::min(chunk, used_cols - c0);
        const Code* band_rows[4];
        for (int r = 0; r < kBlockSide; ++r) band_rows[r] = source(band * kBlockSide + r, c0, n, scratch + r * chunk);
        for (int64_t col = 0; col < n; col += kBlockSide) count_block(band_rows, col, planes, counts);
      }
  };

  // Everything a thread needs is allocated here, outside the parallel region: an exception thrown
  // inside one would terminate the process.
  std::vector<Code> scratch(size_t(threads) * kBlockSide * chunk);
  if (threads == 1) {
    std::fill(histograms, histograms + bins, int64_t{0});
    count_bands(0, band_count, scratch.data(), histograms);
    return;
  }
  auto count_in_threads = [&](auto counter) {
    using Counter = decltype(counter);
    const ThreadCounters<Counter> counts(size_t(threads) * bins);  // each thread zeroes its own
#pragma omp parallel num_threads(threads)
    {
      const int t = omp_get_thread_num(), n = omp_get_num_threads();
      Counter* own = counts.data() + size_t(t) * bins;
      std::fill(own, own + bins, Counter{0});
      count_bands(band_count * t / n, band_count * (t + 1) / n, scratch.data() + size_t(t) * kBlockSide * chunk, own);
#pragma omp barrier
      // Each thread writes one slice of the bins, summed over every thread's counts.
      for (int64_t i = bins * t / n; i < bins * (t + 1) / n; ++i) {
        int64_t sum = 0;
        for (int c = 0; c < n; ++c) sum += int64_t(counts.data()[size_t(c) * bins + i]);
        histograms[i] = sum;
      }
    }
  };
  // 32-bit counters halve the cache footprint, when no thread can count 2^32 blocks (whatever
  // team OpenMP starts).
  if (blocks < int64_t(UINT32_MAX))
    count_in_threads(uint32_t{});
  else
    count_in_threads(int64_t{});
}

}  // namespace qubd::cpu
