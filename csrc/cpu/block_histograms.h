// Per-plane histograms of 4x4 block codes, one pass over a matrix of integer codes.
//
// The matrix is walked in bands of 4 rows, a chunk of columns at a time: a RowSource yields each
// row's codes (read in place, or quantised from weights into a scratch row, so nothing of matrix
// size is materialised), the chunk's blocks get their codes for every plane at once
// (plane_codes.h), and then each plane's codes are counted. Each thread counts into its own
// counters, which are summed at the end.
#pragma once

#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>
#include <type_traits>
#include <vector>

#include "isa.h"
#include "plane_codes.h"
#include "qubd/block_code.h"

namespace qubd::cpu {

// Below this many blocks per thread, spreading the work costs more than it saves (each thread
// zeroes and sums `planes` x 65536 counters); below it on one thread, blocks are
// counted straight into the output.
constexpr int64_t kMinBlocksPerThread = 1 << 15;
// Columns of a band handled per step (4 scratch rows of this many codes per thread).
constexpr int64_t kChunkCols = 1 << 12;
// The threads' private counters (2 threads x 8 planes: 4 MiB) are kept from one call
// to the next by the calling thread, up to this size: allocated afresh, such a buffer is mapped
// and unmapped by malloc every call and costs a page fault per 4 KiB (measured: ~2 ms a call at
// 1024x1024). The memory stays with each thread that has called (one buffer per counter width)
// until it exits.
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

// One counter per code and plane, in 32 bits: 8 planes fit a 2 MiB L2 cache. Tried and dropped:
// two interleaved copies (so that runs of one code in the high planes do not wait on the previous
// store), which doubled the footprint and the counting time; prefetching the counters.
template <typename Counter>
inline void count_codes(const uint16_t* codes, int64_t n, Counter* counts) {
  for (int64_t j = 0; j < n; ++j) ++counts[codes[j]];
}

// One thread's buffers for a chunk: 4 rows of codes, 4 rows of one byte slice of them (codes
// wider than 8 bits), and the chunk's block codes, plane after plane.
template <typename Code>
struct ChunkBuffers {
  ChunkBuffers(int64_t chunk, int planes)
      : code_rows(size_t(kBlockSide * chunk)),
        byte_rows(std::is_same_v<Code, uint8_t> ? 0 : size_t(kBlockSide * chunk)),
        block_codes(size_t(planes) * size_t(chunk / kBlockSide)) {}
  std::vector<Code> code_rows;
  std::vector<uint8_t> byte_rows;
  std::vector<uint16_t> block_codes;
};

// RowSource: `const Code* operator()(isa, int64_t r, int64_t c0, int64_t n, Code* scratch) const`
// returns the codes of row r, columns c0 .. c0 + n - 1 (written into `scratch` if they are
// computed); isa is a std::integral_constant<Isa, ...> naming the instruction set to use.
//
// BandWalk yields the block codes of bands of such a matrix, a chunk of columns at a time.
template <typename Code, typename RowSource>
class BandWalk {
 public:
  BandWalk(int64_t rows, int64_t cols, int planes, const RowSource& source)
      : bands(rows / kBlockSide),
        used_cols(cols / kBlockSide * kBlockSide),
        blocks(bands * (used_cols / kBlockSide)),
        chunk_blocks(std::min(kChunkCols, used_cols) / kBlockSide),
        planes_(planes),
        source_(source) {}

  ChunkBuffers<Code> buffers() const { return ChunkBuffers<Code>(chunk_blocks * kBlockSide, planes_); }

  // Calls consume(codes, n_blocks, stride) for each chunk of bands [first, last), with the code of
  // plane p of the chunk's block j at codes[p * stride + j].
  template <Isa isa, typename Consume>
  void walk(int64_t first, int64_t last, ChunkBuffers<Code>& work, Consume&& consume) const {
    const int64_t chunk = chunk_blocks * kBlockSide;
    uint16_t* codes = work.block_codes.data();
    const std::integral_constant<Isa, isa> isa_tag;
    for (int64_t band = first; band < last; ++band)
      for (int64_t c0 = 0; c0 < used_cols; c0 += chunk) {
        const int64_t n = std::min(chunk, used_cols - c0), n_blocks = n / kBlockSide;
        const Code* band_rows[kBlockSide];
        for (int r = 0; r < kBlockSide; ++r)
          band_rows[r] = source_(isa_tag, band * kBlockSide + r, c0, n, work.code_rows.data() + r * chunk);
        if constexpr (std::is_same_v<Code, uint8_t>) {
          band_plane_codes<isa>(band_rows, n_blocks, planes_, codes, chunk_blocks);
        } else {
          const uint8_t* byte_rows[kBlockSide];
          for (int slice = 0; slice * 8 < planes_; ++slice) {
            for (int r = 0; r < kBlockSide; ++r) {
              uint8_t* bytes = work.byte_rows.data() + r * chunk;
              for (int64_t i = 0; i < n; ++i) bytes[i] = uint8_t(band_rows[r][i] >> (8 * slice));
              byte_rows[r] = bytes;
            }
            band_plane_codes<isa>(byte_rows, n_blocks, std::min(8, planes_ - 8 * slice),
                                  codes + 8 * slice * chunk_blocks, chunk_blocks);
          }
        }
        consume(static_cast<const uint16_t*>(codes), n_blocks, chunk_blocks);
      }
  }

  const int64_t bands, used_cols, blocks, chunk_blocks;

 private:
  const int planes_;
  const RowSource& source_;
};

template <typename Code, typename RowSource>
void block_histograms(int64_t rows, int64_t cols, int planes, const RowSource& source, int64_t* histograms) {
  const BandWalk<Code, RowSource> bands(rows, cols, planes, source);
  const int64_t bins = int64_t(planes) * kBlockCodes;
  if (bands.blocks == 0) {
    std::fill(histograms, histograms + bins, int64_t{0});
    return;
  }
  const int threads = int(std::clamp<int64_t>(bands.blocks / kMinBlocksPerThread, 1,
                                              std::min<int64_t>(omp_get_max_threads(), bands.bands)));

  dispatch_isa([&](auto isa) {
    constexpr Isa kIsa = decltype(isa)::value;
    // Counts the blocks of bands [first, last) into counts[p][code].
    auto count_bands = [&](int64_t first, int64_t last, ChunkBuffers<Code>& work, auto* counts) {
      bands.template walk<kIsa>(first, last, work, [&](const uint16_t* codes, int64_t n_blocks, int64_t stride) {
        for (int p = 0; p < planes; ++p) count_codes(codes + p * stride, n_blocks, counts + size_t(p) * kBlockCodes);
      });
    };

    // Everything a thread needs is allocated here, outside the parallel region: an exception
    // thrown inside one would terminate the process.
    std::vector<ChunkBuffers<Code>> work(size_t(threads), bands.buffers());
    if (threads == 1 && bands.blocks < kMinBlocksPerThread) {
      std::fill(histograms, histograms + bins, int64_t{0});
      count_bands(0, bands.bands, work[0], histograms);
      return;
    }
    auto count_in_threads = [&](auto counter) {
      using Counter = decltype(counter);
      const size_t per_thread = size_t(bins);
      const ThreadCounters<Counter> counts(size_t(threads) * per_thread);  // each thread zeroes its own
#pragma omp parallel num_threads(threads)
      {
        const int t = omp_get_thread_num(), n = omp_get_num_threads();
        Counter* own = counts.data() + size_t(t) * per_thread;
        std::fill(own, own + per_thread, Counter{0});
        count_bands(bands.bands * t / n, bands.bands * (t + 1) / n, work[size_t(t)], own);
#pragma omp barrier
        // Each thread writes one slice of the bins, summed over every thread's counts.
        for (int64_t i = bins * t / n; i < bins * (t + 1) / n; ++i) {
          int64_t sum = 0;
          for (int c = 0; c < n; ++c) sum += int64_t(counts.data()[size_t(c) * per_thread + size_t(i)]);
          histograms[i] = sum;
        }
      }
    };
    // 32-bit counters halve the cache footprint, when no thread can count 2^32 blocks (whatever
    // team OpenMP starts).
    if (bands.blocks < int64_t(UINT32_MAX))
      count_in_threads(uint32_t{});
    else
      count_in_threads(int64_t{});
  });
}

}  // namespace qubd::cpu
