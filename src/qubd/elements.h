// Loading one stored weight into the compute type (float32; float64 for double weights).
// bf16 and fp16 are upcast exactly, element by element, on host and device alike.
#pragma once

#include <cstdint>
#include <cstring>

#if defined(__CUDACC__)
#define QUBD_HD __host__ __device__ __forceinline__
#else
#define QUBD_HD inline
#endif

namespace qubd {

// Storage dtypes as numbered by the Python side (qubd/backends/native.py).
enum class DType : int { F32 = 0, F16 = 1, BF16 = 2, F64 = 3, U8 = 4, I32 = 5, I16 = 6, I64 = 7, BOOL = 8 };

QUBD_HD float bits_to_float(uint32_t u) {
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

QUBD_HD float bf16_to_float(uint16_t h) { return bits_to_float(uint32_t(h) << 16); }

// IEEE binary16 -> binary32, exact for every input (subnormals, inf, nan).
QUBD_HD float half_to_float(uint16_t h) {
  const uint32_t sign = uint32_t(h & 0x8000u) << 16;
  uint32_t exponent = (h >> 10) & 0x1Fu;
  uint32_t mantissa = h & 0x3FFu;
  if (exponent == 0x1Fu) return bits_to_float(sign | 0x7F800000u | (mantissa << 13));
  if (exponent == 0) {
    if (mantissa == 0) return bits_to_float(sign);
    // Subnormal: normalise the mantissa.
    exponent = 113;  // 127 - 15 + 1
    while ((mantissa & 0x400u) == 0) {
      mantissa <<= 1;
      --exponent;
    }
    mantissa &= 0x3FFu;
    return bits_to_float(sign | (exponent << 23) | (mantissa << 13));
  }
  return bits_to_float(sign | ((exponent + 112) << 23) | (mantissa << 13));
}

template <typename Stored>
struct Element;  // Element<Stored>::Compute, Element<Stored>::load(Stored) -> Compute

template <>
struct Element<float> {
  using Compute = float;
  static QUBD_HD float load(float v) { return v; }
};
template <>
struct Element<double> {
  using Compute = double;
  static QUBD_HD double load(double v) { return v; }
};
struct Half { uint16_t bits; };
struct BFloat16 { uint16_t bits; };
template <>
struct Element<Half> {
  using Compute = float;
  static QUBD_HD float load(Half v) { return half_to_float(v.bits); }
};
template <>
struct Element<BFloat16> {
  using Compute = float;
  static QUBD_HD float load(BFloat16 v) { return bf16_to_float(v.bits); }
};

}  // namespace qubd
