// Codes of 16-bit floats (bf16, fp16) looked up instead of computed: such a weight takes one of
// 65,536 bit patterns, so a table holding quantize_value of each pattern gives the same codes, and
// a lookup (AVX-512: 16 gathered a time) costs less than the subtraction, division, clamps and
// rounding it replaces (AVX-512, bf16 in cache: 1.2 -> 0.85 ms for 4M weights; benchmarks/RESULTS.md).
// Filling the table costs ~20 us, so it pays only for large matrices.
#pragma once

#include <cstdint>
#include <cstring>
#include <vector>

#include "isa.h"

#if defined(QUBD_X86_ISAS)
#include <immintrin.h>
#endif

namespace qubd::cpu {

// Below this many weights, the codes are computed.
constexpr int64_t kCodeTableMinWeights = int64_t(1) << 20;

// Byte codes of every 16-bit pattern; 3 bytes of padding, since a gather reads 4 bytes per lane.
class CodeTable {
 public:
  static constexpr int64_t kPatterns = int64_t(1) << 16;

  // quantize_codes(patterns, n, out) quantises n stored values (as their bit patterns) into out.
  template <typename QuantizeCodes>
  explicit CodeTable(QuantizeCodes&& quantize_codes) : codes_(size_t(kPatterns + 3)) {
    std::vector<uint16_t> patterns(static_cast<size_t>(kPatterns));
    for (int64_t p = 0; p < kPatterns; ++p) patterns[size_t(p)] = uint16_t(p);
    quantize_codes(patterns.data(), kPatterns, codes_.data());
  }
  const uint8_t* data() const { return codes_.data(); }

 private:
  std::vector<uint8_t> codes_;
};

inline void baseline_look_up_codes(const uint16_t* patterns, int64_t first, int64_t n, const uint8_t* table,
                                   uint8_t* out) {
  for (int64_t i = first; i < n; ++i) out[i] = table[patterns[i]];
}

#if defined(QUBD_X86_ISAS)
QUBD_TARGET_AVX512 inline void avx512_look_up_codes(const uint16_t* patterns, int64_t n, const uint8_t* table,
                                                    uint8_t* out) {
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m512i index = _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(patterns + i)));
    const __m512i codes = _mm512_i32gather_epi32(index, table, 1);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + i), _mm512_cvtepi32_epi8(codes));
  }
  baseline_look_up_codes(patterns, i, n, table, out);
}
#endif

// out[i] = table[patterns[i]] for i < n. AVX2's 8-lane gathers were no faster than the scalar loop
// (nor than computing the codes: bf16 8192^2 45 ms either way); AVX-512's 16 are.
template <Isa isa>
void look_up_codes(const uint16_t* patterns, int64_t n, const uint8_t* table, uint8_t* out) {
#if defined(QUBD_X86_ISAS)
  if constexpr (isa == Isa::Avx512) return avx512_look_up_codes(patterns, n, table, out);
#endif
  baseline_look_up_codes(patterns, 0, n, table, out);
}

}  // namespace qubd::cpu
