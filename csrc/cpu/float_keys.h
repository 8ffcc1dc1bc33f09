// Order-preserving integer keys of stored floating values: the key's unsigned order is the values'
// numeric order (-0.0 just below +0.0), with NaNs beyond the infinities (negative NaNs below -Inf,
// positive ones above +Inf). Keys are taken from the stored bits (16-bit keys for bf16 and fp16),
// so the range pass and radix selection never convert a value until they return one.
#pragma once

#include <cstdint>
#include <cstring>
#include <type_traits>

#include "qubd/elements.h"

namespace qubd::cpu {

template <typename Stored>
struct StoredBits;
template <>
struct StoredBits<float> {
  using Key = uint32_t;
  static constexpr Key kPositiveInf = 0x7F800000u;
};
template <>
struct StoredBits<double> {
  using Key = uint64_t;
  static constexpr Key kPositiveInf = 0x7FF0000000000000ull;
};
template <>
struct StoredBits<Half> {
  using Key = uint16_t;
  static constexpr Key kPositiveInf = 0x7C00u;
};
template <>
struct StoredBits<BFloat16> {
  using Key = uint16_t;
  static constexpr Key kPositiveInf = 0x7F80u;
};

template <typename Stored>
struct FloatKeys {
  using Key = typename StoredBits<Stored>::Key;
  using Compute = typename Element<Stored>::Compute;
  static constexpr int kBits = 8 * sizeof(Key);
  static constexpr Key kSign = Key(Key(1) << (kBits - 1));
  static constexpr Key kLowestFinite = Key(~(StoredBits<Stored>::kPositiveInf | kSign)) + 1;  // key(-Inf) + 1
  static constexpr Key kHighestFinite = (StoredBits<Stored>::kPositiveInf | kSign) - 1;        // key(+Inf) - 1

  // Negative values: all bits flipped; positive: the sign bit set. Branch-free, so loops vectorise.
  static Key of_bits(Key u) {
    using Signed = std::make_signed_t<Key>;
    return Key(u ^ (Key(Signed(u) >> (kBits - 1)) | kSign));
  }
  static Key bits_of(Key k) { return (k & kSign) ? Key(k & ~kSign) : Key(~k); }
  static bool finite(Key k) { return k >= kLowestFinite && k <= kHighestFinite; }
  static Compute value(Key k) {
    Stored stored;
    const Key u = bits_of(k);
    std::memcpy(&stored, &u, sizeof stored);
    return Element<Stored>::load(stored);
  }
};

}  // namespace qubd::cpu
