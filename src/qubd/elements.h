// Loading one stored weight into the compute type (float32; float64 for double weights).
// bf16 and fp16 are upcast exactly, element by element.
#pragma once

#include <cstdint>
#include <cstring>

namespace qubd {

// Storage dtypes as numbered by the Python side (qubd/backends/native.py).
enum class DType : int { F32 = 0, F16 = 1, BF16 = 2, F64 = 3, U8 = 4, I32 = 5, I16 = 6, I64 = 7, BOOL = 8 };

inline float bits_to_float(uint32_t u) {
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

inline float bf16_to_float(uint16_t h) { return bits_to_float(uint32_t(h) << 16); }

inline uint32_t float_to_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return u;
}

// IEEE binary16 -> binary32, exact for every finite input and infinities (NaNs stay NaN), without
// branches (Maratyszcza's FP16 method, as in PyTorch's c10): a normal half is its bits moved into
// place with the exponent rebiased by a power-of-two scaling; a subnormal is its mantissa placed
// under the exponent of 0.5, minus 0.5. Every step is exact.
inline float half_to_float(uint16_t h) {
  const uint32_t w = uint32_t(h) << 16;
  const uint32_t sign = w & 0x80000000u;
  const uint32_t two_w = w + w;  // exponent and mantissa, sign shifted out
  const float normal = bits_to_float((two_w >> 4) + (0xE0u << 23)) * 0x1.0p-112f;
  const float subnormal = bits_to_float((two_w >> 17) | (126u << 23)) - 0.5f;
  return bits_to_float(sign | float_to_bits(two_w < (1u << 27) ? subnormal : normal));
}

template <typename Stored>
struct Element;  // Element<Stored>::Compute, Element<Stored>::load(Stored) -> Compute

template <>
struct Element<float> {
  using Compute = float;
  static float load(float v) { return v; }
};
template <>
struct Element<double> {
  using Compute = double;
  static double load(double v) { return v; }
};
struct Half { uint16_t bits; };
struct BFloat16 { uint16_t bits; };
template <>
struct Element<Half> {
  using Compute = float;
  static float load(Half v) { return half_to_float(v.bits); }
};
template <>
struct Element<BFloat16> {
  using Compute = float;
  static float load(BFloat16 v) { return bf16_to_float(v.bits); }
};

}  // namespace qubd
