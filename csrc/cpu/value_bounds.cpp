// The range pass: the smallest and largest key of every value in one read, vectorised per
// instruction set. Keys order NaN beyond the infinities, so the bounds are finite exactly when
// every value is: the finite check costs nothing extra.
#include <omp.h>

#include <algorithm>
#include <limits>
#include <type_traits>

#include "dispatch.h"
#include "float_keys.h"
#include "isa.h"
#include "kernels.h"

namespace qubd::cpu {
namespace {

template <typename Key>
struct KeyBounds {
  Key lo = std::numeric_limits<Key>::max();
  Key hi = 0;
};

// The bounds of n keys, compared as signed integers (key ^ sign bit): SSE2 compares those natively
// (and has the 16-bit min/max), so even the baseline build vectorises the min/max reduction.
template <typename Stored>
struct ScanKeyBounds {
  using Key = typename FloatKeys<Stored>::Key;
  [[gnu::always_inline]] static KeyBounds<Key> run(const Key* bits, int64_t n) {
    using Signed = std::make_signed_t<Key>;
    constexpr Key kSign = FloatKeys<Stored>::kSign;
    Signed lo = std::numeric_limits<Signed>::max(), hi = std::numeric_limits<Signed>::min();
    for (int64_t i = 0; i < n; ++i) {
      const Key u = bits[i];
      // A negative value's magnitude flipped.
      const Signed k = Signed(u ^ Key(Key(Signed(u) >> (FloatKeys<Stored>::kBits - 1)) >> 1));
      lo = k < lo ? k : lo;
      hi = k > hi ? k : hi;
    }
    return {Key(Key(lo) ^ kSign), Key(Key(hi) ^ kSign)};
  }
};

template <typename Stored>
void bounds_of(const void* values, int64_t n, double* lo_hi) {
  using Keys = FloatKeys<Stored>;
  using Key = typename Keys::Key;
  const Key* bits = static_cast<const Key*>(values);
  constexpr int64_t kChunk = 1 << 16;
  Key lo = std::numeric_limits<Key>::max(), hi = 0;
  dispatch_isa([&](auto isa) {
    constexpr Isa kIsa = decltype(isa)::value;
#pragma omp parallel for schedule(static) reduction(min : lo) reduction(max : hi) if (n > 4 * kChunk)
    for (int64_t start = 0; start < n; start += kChunk) {
      const KeyBounds<Key> part = run_for_isa<kIsa, ScanKeyBounds<Stored>>(bits + start, std::min(kChunk, n - start));
      lo = std::min(lo, part.lo);
      hi = std::max(hi, part.hi);
    }
    return 0;
  });
  // + 0.0 turns -0.0 into +0.0, as the torch reference does: a zero bound carries no sign.
  lo_hi[0] = double(Keys::value(lo)) + 0.0;
  lo_hi[1] = double(Keys::value(hi)) + 0.0;
}

}  // namespace

void value_bounds(const void* values, DType dtype, int64_t n, double* lo_hi) {
  dispatch_float(dtype, [&](auto stored) {
    bounds_of<decltype(stored)>(values, n, lo_hi);
    return 0;
  });
}

}  // namespace qubd::cpu
