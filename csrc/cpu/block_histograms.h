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
// zeroes and sums `planes` x 65536 counters); below it on one thread, blocks are counted straight
// into the output.
constexpr int64_t kMinBlocksPerThread = 1 << 15;
// Columns of a band handled per step (4 scratch rows of this many codes per thread).
constexpr int64_t kChunkCols = 1 << 12;
// The threads' private counters (2 threads x 8 planes: 1 MiB) are kept from one call to the next
// by the calling thread, up to this size: allocated afresh, such a buffer is mapped and unmapped by
// malloc every call and costs a page fault per 4 KiB (measured: ~2 ms a call at 1024x1024 with
// 32-bit counters). The memory stays with each thread that has called until it exits.
constexpr size_t kRetainedCounterBytes = size_t(16) << 20;

class ThreadCounters {
 public:
  explicit ThreadCounters(size_t n) {
    static thread_local std::vector<uint8_t> retained;
    if (n > kRetainedCounterBytes) {
      own_.reset(new uint8_t[n]);
      data_ = own_.get();
      return;
    }
    if (retained.size() < n) retained.resize(n);
    data_ = retained.data();
  }
  uint8_t* data() const { return data_; }

 private:
  std::unique_ptr<uint8_t[]> own_;
  uint8_t* data_;
};

// Memory to read soon, prefetched a cache line at a time into L2 while the blocks are counted
// (the counting makes no memory traffic of its own, so the next batch's weights arrive meanwhile).
class LinePrefetch {
 public:
  LinePrefetch() = default;
  LinePrefetch(const char* first, const char* end) : next_(first), end_(end) {}
  void step() {
    if (next_ < end_) {
      __builtin_prefetch(next_, 0, 2);
      next_ += 64;
    }
  }

 private:
  const char* next_ = nullptr;
  const char* end_ = nullptr;
};

// Blocks are counted in 8-bit counters, one per code and plane, and each time a counter wraps, the
// bin's index is noted (at most one note per 256 increments) and 256 added when the counters are
// summed. The increments scatter over planes x 65,536 bins: in 8 bits those (512 KiB for 8
// planes) stay in the L2 cache, where 32-bit counters (2 MiB) did not: 1.55 -> 0.70 ns an
// increment (benchmarks/RESULTS.md). Tried and dropped with 32-bit counters: two interleaved
// copies (so that runs of one code in the high planes do not wait on the previous store), which
// doubled the footprint and the counting time; prefetching the counters.
inline uint32_t* count_code(uint16_t code, uint8_t* counts, uint32_t first_bin, uint32_t* wraps) {
  if (++counts[code] == 0) *wraps++ = first_bin + code;
  return wraps;
}

inline uint32_t* count_codes(const uint16_t* codes, int64_t n, uint8_t* counts, uint32_t first_bin, uint32_t* wraps,
                             LinePrefetch& ahead) {
  int64_t j = 0;
  for (; j + 4 <= n; j += 4) {
    ahead.step();
    for (int64_t k = j; k < j + 4; ++k) wraps = count_code(codes[k], counts, first_bin, wraps);
  }
  for (; j < n; ++j) wraps = count_code(codes[j], counts, first_bin, wraps);
  return wraps;
}

// One thread's buffers: 4 rows of codes, 4 rows of one byte slice of them (codes wider than 8
// bits), and a batch of block codes, plane after plane.
template <typename Code>
struct ChunkBuffers {
  ChunkBuffers(int64_t chunk, int planes, int64_t batch_blocks)
      : code_rows(size_t(kBlockSide * chunk)),
        byte_rows(std::is_same_v<Code, uint8_t> ? 0 : size_t(kBlockSide * chunk)),
        block_codes(size_t(planes) * size_t(batch_blocks)) {}
  std::vector<Code> code_rows;
  std::vector<uint8_t> byte_rows;
  std::vector<uint16_t> block_codes;
};

// Block codes are handed on in batches of up to this many blocks per plane: counting one plane's
// codes for longer keeps more of its counters in the L1 cache (0.73 ns an increment in runs of
// 1,024 codes, 0.42 in runs of 16,384), and the next batch's weights (256 KiB of float32) are
// prefetched while one is counted; 4,096 was the fastest with prefetching (benchmarks/RESULTS.md).
constexpr int64_t kBatchBlocks = 1 << 12;

// RowSource: `const Code* operator()(isa, int64_t r, int64_t c0, int64_t n, Code* scratch) const`
// returns the codes of row r, columns c0 .. c0 + n - 1 (written into `scratch` if they are
// computed); isa is a std::integral_constant<Isa, ...> naming the instruction set to use.
//
// BandWalk yields the block codes of bands of such a matrix, a chunk of columns at a time, in
// batches of whole chunks.
template <typename Code, typename RowSource>
class BandWalk {
 public:
  BandWalk(int64_t rows, int64_t cols, int planes, const RowSource& source)
      : bands(rows / kBlockSide),
        used_cols(cols / kBlockSide * kBlockSide),
        blocks_per_band(used_cols / kBlockSide),
        blocks(bands * blocks_per_band),
        chunk_blocks(std::min(kChunkCols, used_cols) / kBlockSide),
        batch_blocks(std::max(chunk_blocks, std::min(kBatchBlocks, blocks))),
        planes_(planes),
        source_(source) {}

  ChunkBuffers<Code> buffers() const { return ChunkBuffers<Code>(chunk_blocks * kBlockSide, planes_, batch_blocks); }

  // Calls consume(codes, n_blocks, stride, next) for each batch of blocks of bands [first, last),
  // with the code of plane p of the batch's block j at codes[p * stride + j]; next is the index
  // (band * blocks per band + column / 4) of the block the next batch starts at, or -1 after the last.
  template <Isa isa, typename Consume>
  void walk(int64_t first, int64_t last, ChunkBuffers<Code>& work, Consume&& consume) const {
    const int64_t chunk = chunk_blocks * kBlockSide;
    uint16_t* const batch = work.block_codes.data();
    int64_t filled = 0;
    const std::integral_constant<Isa, isa> isa_tag;
    for (int64_t band = first; band < last; ++band)
      for (int64_t c0 = 0; c0 < used_cols; c0 += chunk) {
        const int64_t n = std::min(chunk, used_cols - c0), n_blocks = n / kBlockSide;
        if (filled + n_blocks > batch_blocks) {
          consume(static_cast<const uint16_t*>(batch), filled, batch_blocks, band * blocks_per_band + c0 / kBlockSide);
          filled = 0;
        }
        uint16_t* codes = batch + filled;
        const Code* band_rows[kBlockSide];
        for (int r = 0; r < kBlockSide; ++r)
          band_rows[r] = source_(isa_tag, band * kBlockSide + r, c0, n, work.code_rows.data() + r * chunk);
        if constexpr (std::is_same_v<Code, uint8_t>) {
          band_plane_codes<isa>(band_rows, n_blocks, planes_, codes, batch_blocks);
        } else {
          const uint8_t* byte_rows[kBlockSide];
          for (int slice = 0; slice * 8 < planes_; ++slice) {
            for (int r = 0; r < kBlockSide; ++r) {
              uint8_t* bytes = work.byte_rows.data() + r * chunk;
              for (int64_t i = 0; i < n; ++i) bytes[i] = uint8_t(band_rows[r][i] >> (8 * slice));
              byte_rows[r] = bytes;
            }
            band_plane_codes<isa>(byte_rows, n_blocks, std::min(8, planes_ - 8 * slice),
                                  codes + 8 * slice * batch_blocks, batch_blocks);
          }
        }
        filled += n_blocks;
      }
    if (filled > 0) consume(static_cast<const uint16_t*>(batch), filled, batch_blocks, int64_t{-1});
  }

  const int64_t bands, used_cols, blocks_per_band, blocks, chunk_blocks, batch_blocks;

 private:
  const int planes_;
  const RowSource& source_;
};

// Where the row-major matrix behind a RowSource lies (element (r, c) at data + (r * cols + c) *
// element_bytes), for prefetching.
struct MatrixMemory {
  const void* data;
  int64_t element_bytes;
};

template <typename Code, typename RowSource>
void block_histograms(int64_t rows, int64_t cols, int planes, const RowSource& source, MatrixMemory memory,
                      int64_t* histograms) {
  const BandWalk<Code, RowSource> bands(rows, cols, planes, source);
  const int64_t bins = int64_t(planes) * kBlockCodes;
  if (bands.blocks == 0) {
    std::fill(histograms, histograms + bins, int64_t{0});
    return;
  }
  const int threads = int(std::clamp<int64_t>(bands.blocks / kMinBlocksPerThread, 1,
                                              std::min<int64_t>(omp_get_max_threads(), bands.bands)));
  // The bytes of the batch that starts at block `next` (see BandWalk::walk), up to band `last`:
  // from its first element to the end of its last band, at most twice the batch's own bytes.
  const char* const matrix = static_cast<const char*>(memory.data);
  const int64_t row_bytes = cols * memory.element_bytes;
  const int64_t most_bytes = 2 * bands.batch_blocks * kBlockCells * memory.element_bytes;
  auto batch_memory = [&](int64_t next, int64_t last) -> LinePrefetch {
    if (next < 0) return {};
    const int64_t band = next / bands.blocks_per_band;
    const int64_t end_band = std::min(last, (next + bands.batch_blocks - 1) / bands.blocks_per_band + 1);
    const int64_t first = band * kBlockSide * row_bytes + (next % bands.blocks_per_band) * kBlockSide * memory.element_bytes;
    const int64_t end = std::min(end_band * kBlockSide * row_bytes, first + most_bytes);
    return {matrix + first, matrix + end};
  };

  dispatch_isa([&](auto isa) {
    constexpr Isa kIsa = decltype(isa)::value;
    if (threads == 1 && bands.blocks < kMinBlocksPerThread) {
      // Few increments: counting straight into the histograms costs less than summing counters.
      std::fill(histograms, histograms + bins, int64_t{0});
      ChunkBuffers<Code> work = bands.buffers();
      bands.template walk<kIsa>(0, bands.bands, work, [&](const uint16_t* codes, int64_t n_blocks, int64_t stride, int64_t) {
        for (int p = 0; p < planes; ++p)
          for (int64_t j = 0; j < n_blocks; ++j) ++histograms[p * kBlockCodes + codes[p * stride + j]];
      });
      return;
    }
    // Everything a thread needs is allocated here, outside the parallel region: an exception
    // thrown inside one would terminate the process. Room for the wraps of every block in each
    // thread (whatever team OpenMP starts); pages never written are never touched.
    const size_t most_wraps = size_t(bands.blocks * planes / 256 + 1);
    std::vector<ChunkBuffers<Code>> work(size_t(threads), bands.buffers());
    const std::unique_ptr<uint32_t[]> wraps(new uint32_t[size_t(threads) * most_wraps]);
    std::vector<size_t> wrap_counts(static_cast<size_t>(threads));
    const ThreadCounters counts(size_t(threads) * size_t(bins));  // each thread zeroes its own
#pragma omp parallel num_threads(threads)
    {
      const int t = omp_get_thread_num(), n = omp_get_num_threads();
      uint8_t* own = counts.data() + size_t(t) * size_t(bins);
      std::fill(own, own + bins, uint8_t{0});
      uint32_t* const first_wrap = wraps.get() + size_t(t) * most_wraps;
      uint32_t* next_wrap = first_wrap;
      const int64_t first_band = bands.bands * t / n, last_band = bands.bands * (t + 1) / n;
      bands.template walk<kIsa>(first_band, last_band, work[size_t(t)],
                                [&](const uint16_t* codes, int64_t n_blocks, int64_t stride, int64_t next) {
                                  LinePrefetch ahead = batch_memory(next, last_band);
                                  for (int p = 0; p < planes; ++p)
                                    next_wrap = count_codes(codes + p * stride, n_blocks,
                                                            own + size_t(p) * kBlockCodes,
                                                            uint32_t(p) * kBlockCodes, next_wrap, ahead);
                                });
      wrap_counts[size_t(t)] = size_t(next_wrap - first_wrap);
#pragma omp barrier
      // Each thread sums every thread's counts and wraps into one slice of the bins.
      const int64_t first = bins * t / n, last = bins * (t + 1) / n;
      for (int64_t i = first; i < last; ++i) histograms[i] = counts.data()[i];
      for (int c = 1; c < n; ++c) {
        const uint8_t* theirs = counts.data() + size_t(c) * size_t(bins);
        for (int64_t i = first; i < last; ++i) histograms[i] += theirs[i];
      }
      for (int c = 0; c < n; ++c)
        for (size_t k = 0; k < wrap_counts[size_t(c)]; ++k) {
          const int64_t bin = wraps[size_t(c) * most_wraps + k];
          if (bin >= first && bin < last) histograms[bin] += 256;
        }
    }
  });
}

}  // namespace qubd::cpu
