#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "block_histograms.h"
#include "dispatch.h"
#include "half_rows.h"
#include "isa.h"
#include "kernels.h"
#include "qubd/quantize.h"
#include "plane_ones.h"
#include "sparse_scores.h"

namespace qubd::cpu {
namespace {

// n weights quantised to codes (the compiler vectorises the loop for each instruction set).
struct QuantizeRow {
  template <typename Stored, typename Code>
  [[gnu::always_inline]] static void run(const Stored* weights, int64_t n, typename Element<Stored>::Compute lo,
                                         typename Element<Stored>::Compute delta,
                                         typename Element<Stored>::Compute max_code, Code* out) {
    for (int64_t i = 0; i < n; ++i)
      out[i] = Code(quantize_value(Element<Stored>::load(weights[i]), lo, delta, max_code));
  }
};

void check_bits(int bits) {
  if (bits < 1 || bits > 16) throw std::invalid_argument("bits must be in 1..16, got " + std::to_string(bits));
}

// Codes of up to 8 bits are handled as bytes, wider ones as 16-bit words.
template <typename Fn>
void dispatch_code_width(int bits, Fn&& fn) {
  check_bits(bits);
  if (bits <= 8)
    fn(uint8_t{});
  else
    fn(uint16_t{});
}

}  // namespace

void quantize_to_grid(const void* weights, DType dtype, int64_t n, double lo, double delta, int bits, void* codes) {
  check_bits(bits);
  dispatch_float(dtype, [&](auto stored) {
    using Stored = decltype(stored);
    using Compute = typename Element<Stored>::Compute;
    const auto* w = static_cast<const Stored*>(weights);
    const Compute max_code = Compute((1u << bits) - 1);
    constexpr int64_t kChunk = 1 << 16;
    return dispatch_isa([&](auto isa) {
      constexpr Isa kIsa = decltype(isa)::value;
#pragma omp parallel for schedule(static) if (n > 4 * kChunk)
      for (int64_t start = 0; start < n; start += kChunk) {
        const int64_t len = std::min(kChunk, n - start);
        if (bits <= 8)
          run_for_isa<kIsa, QuantizeRow>(w + start, len, Compute(lo), Compute(delta), max_code,
                                         static_cast<uint8_t*>(codes) + start);
        else
          run_for_isa<kIsa, QuantizeRow>(w + start, len, Compute(lo), Compute(delta), max_code,
                                         static_cast<int32_t*>(codes) + start);
      }
      return 0;
    });
  });
}

namespace {

// Calls fn(Code{}, source, memory) with a RowSource of the rows x cols `weights` quantised to codes
// of type Code, and where the weights lie.
template <typename Fn>
void with_quantised_rows(const void* weights, DType dtype, int64_t cols, double lo, double delta,
                         int bits, Fn&& fn) {
  dispatch_code_width(bits, [&](auto code) {
    using Code = decltype(code);
    dispatch_float(dtype, [&](auto stored) {
      using Stored = decltype(stored);
      using Compute = typename Element<Stored>::Compute;
      const auto* w = static_cast<const Stored*>(weights);
      const Compute max_code = Compute((1u << bits) - 1);
      auto quantised_row = [=](auto isa, int64_t r, int64_t c0, int64_t n, Code* scratch) -> const Code* {
        constexpr Isa kIsa = decltype(isa)::value;
#if defined(QUBD_X86_ISAS)
        if constexpr (std::is_same_v<Stored, Half> && kIsa != Isa::Baseline) {
          run_on_half_floats<kIsa, QuantizeRow>(w + r * cols + c0, n, scratch, Compute(lo), Compute(delta), max_code);
          return scratch;
        }
#endif
        run_for_isa<kIsa, QuantizeRow>(w + r * cols + c0, n, Compute(lo), Compute(delta), max_code, scratch);
        return scratch;
      };
      fn(code, quantised_row, MatrixMemory{weights, int64_t(sizeof(Stored))});
      return 0;
    });
  });
}

}  // namespace

void weight_histograms(const void* weights, DType dtype, int64_t rows, int64_t cols, double lo, double delta,
                       int bits, int64_t* histograms) {
  with_quantised_rows(weights, dtype, cols, lo, delta, bits, [&](auto code, const auto& source, MatrixMemory memory) {
    block_histograms<decltype(code)>(rows, cols, bits, source, memory, histograms);
  });
}

void weight_scores(const void* weights, DType dtype, int64_t rows, int64_t cols, double lo, double delta, int bits,
                   const double* ctm16, double* scores, int64_t* ones) {
  const bool sparse = (rows / kBlockSide) * (cols / kBlockSide) <= kSparseBlocks;
  if (!sparse) {
    std::vector<int64_t> histograms(size_t(bits) * kBlockCodes);
    weight_histograms(weights, dtype, rows, cols, lo, delta, bits, histograms.data());
    ctm_score(histograms.data(), bits, ctm16, scores);
    if (ones != nullptr) {
      std::fill(ones, ones + bits, int64_t{0});
      add_histogram_ones(histograms.data(), bits, ones);
    }
  }
  with_quantised_rows(weights, dtype, cols, lo, delta, bits, [&](auto code, const auto& source, MatrixMemory) {
    using Code = decltype(code);
    if (sparse) sparse_block_scores<Code>(rows, cols, bits, source, ctm16, scores, ones);
    if (ones != nullptr) add_edge_ones<Code>(rows, cols, bits, source, ones);
  });
}

void code_histograms(const void* codes, DType dtype, int64_t rows, int64_t cols, int bits, int64_t* histograms) {
  dispatch_code_width(bits, [&](auto code) {
    using Code = decltype(code);
    dispatch_integer(dtype, [&](auto stored) {
      using Stored = decltype(stored);
      const auto* q = static_cast<const Stored*>(codes);
      auto code_row = [=](auto, int64_t r, int64_t c0, int64_t n, Code* scratch) -> const Code* {
        const Stored* row = q + r * cols + c0;
        if constexpr (std::is_same_v<Stored, Code>) return row;  // already the right width: read in place
        for (int64_t c = 0; c < n; ++c) scratch[c] = Code(row[c]);
        return scratch;
      };
      block_histograms<Code>(rows, cols, bits, code_row, MatrixMemory{codes, int64_t(sizeof(Stored))}, histograms);
      return 0;
    });
  });
}

}  // namespace qubd::cpu
