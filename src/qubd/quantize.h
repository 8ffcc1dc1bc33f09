// The per-element quantiser (docs/design.md 1.2 step 3); the Triton kernels re-implement it and the tests
// check that the two agree:
//   code = clamp(round_half_even((w - lo) / delta), 0, max_code)
// in the compute type, with a correctly rounded division. Build without fast-math: contracting or
// reassociating these operations moves weights across rounding boundaries.
#pragma once

#include <cstdint>

#include "qubd/elements.h"

namespace qubd {

// Adding and subtracting 2^(mantissa bits) rounds to an integer, ties to even, in the default
// rounding mode (compilers keep both operations unless fast-math allows reassociation). Exact for 0 <= x < 2^23 (float) / 2^52 (double); callers clamp to max_code first.
template <typename T>
struct RoundingShift;
template <>
struct RoundingShift<float> {
  static constexpr float value = 8388608.0f;  // 2^23
};
template <>
struct RoundingShift<double> {
  static constexpr double value = 4503599627370496.0;  // 2^52
};

template <typename T>
inline uint32_t quantize_value(T w, T lo, T delta, T max_code) {
  T x = (w - lo) / delta;
  // Clamping before rounding equals clamping after: 0 and max_code are integers.
  x = x > T(0) ? x : T(0);  // also maps -0 and the 0/inf of a constant tensor to 0
  x = x < max_code ? x : max_code;
  // Through int32 (x <= max_code < 2^16): x86 before AVX-512 converts only to signed integers in SIMD.
  return static_cast<uint32_t>(static_cast<int32_t>((x + RoundingShift<T>::value) - RoundingShift<T>::value));
}

}  // namespace qubd
