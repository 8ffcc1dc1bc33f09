// fp16 weights quantised through floats converted by F16C (AVX2 and AVX-512 CPUs have it): one
// instruction per 8 or 16 values, exact for every half (subnormals included), where the portable
// conversion (qubd/elements.h) takes a dozen: fp16 4096^2 histograms now cost what bf16's do
// (AVX-512 5.9-6.2 ms against bf16's 5.9-6.0, AVX2 8.4-8.7 against 8.2-8.4; were 1.15x and 1.23x).
#pragma once

#include <algorithm>
#include <cstdint>

#include "isa.h"
#include "qubd/elements.h"

#if defined(QUBD_X86_ISAS)
#include <immintrin.h>
#endif

namespace qubd::cpu {

// Halves converted and quantised this many at a time, through a float buffer on the stack.
constexpr int64_t kHalfBatch = 1024;

#if defined(QUBD_X86_ISAS)
QUBD_TARGET_AVX2 inline void avx2_halves_to_floats(const Half* in, int64_t n, float* out) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(out + i, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(in + i))));
  for (; i < n; ++i) out[i] = half_to_float(in[i].bits);
}

QUBD_TARGET_AVX512 inline void avx512_halves_to_floats(const Half* in, int64_t n, float* out) {
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    _mm512_storeu_ps(out + i, _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(in + i))));
  for (; i < n; ++i) out[i] = half_to_float(in[i].bits);
}

// Loop::run(floats, m, args..., out + j) for each batch of m <= kHalfBatch of the n halves at `in`
// (from j on), converted to floats: Loop writes its output through its last argument.
template <Isa isa, typename Loop, typename Out, typename... Args>
void run_on_half_floats(const Half* in, int64_t n, Out* out, Args... args) {
  static_assert(isa != Isa::Baseline, "the portable conversion has no F16C");
  float floats[kHalfBatch];
  for (int64_t j = 0; j < n; j += kHalfBatch) {
    const int64_t m = std::min(kHalfBatch, n - j);
    if constexpr (isa == Isa::Avx512)
      avx512_halves_to_floats(in + j, m, floats);
    else
      avx2_halves_to_floats(in + j, m, floats);
    run_for_isa<isa, Loop>(static_cast<const float*>(floats), m, args..., out + j);
  }
}
#endif

}  // namespace qubd::cpu
