// One step of a radix selection whose counts are summed over processes (a tensor sharded over ranks,
// qubd/distributed/order_statistics.py): the counts of the next digit of the order-preserving keys
// (float_keys.h) among the keys whose higher digits equal a prefix. The first digit (no prefix) is
// a histogram of every key, in per-thread 32-bit counters, two copies in turn: weights crowd into a
// few buckets, and back-to-back increments of one counter would each wait for the last. A later
// digit's keys are a sliver of the data: the keys with a wanted prefix are flagged, branch-free and
// vectorised per instruction set, and only those are counted.
#include <omp.h>

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "dispatch.h"
#include "float_keys.h"
#include "isa.h"
#include "kernels.h"

namespace qubd::cpu {
namespace {

constexpr int kCopies = 2;                    // first-digit counter copies per thread
constexpr int kTestedPrefixes = 4;            // at most this many prefixes take the vectorised span test
constexpr int64_t kSpan = 64;                 // keys tested together
constexpr int64_t kFlush = int64_t(1) << 31;  // keys counted into 32-bit counters between merges

// flags[i] = whether key i of bits[0, len) has its high bits (above `low_bits`) equal to one of
// `wanted`; returns whether any has. Branch-free, so the compiler vectorises it.
template <typename Stored>
struct FlagPrefixed {
  using Key = typename FloatKeys<Stored>::Key;
  [[gnu::always_inline]] static bool run(const Key* bits, int64_t len, int low_bits, const Key* wanted,
                                         uint8_t* flags) {
    uint8_t any = 0;
    for (int64_t i = 0; i < len; ++i) {
      const Key high = Key(FloatKeys<Stored>::of_bits(bits[i]) >> low_bits);
      uint8_t hit = 0;
      for (int s = 0; s < kTestedPrefixes; ++s) hit |= uint8_t(high == wanted[s]);
      flags[i] = hit;
      any |= hit;
    }
    return any != 0;
  }
};

template <typename Stored>
class DigitCounter {
  using Keys = FloatKeys<Stored>;
  using Key = typename Keys::Key;

 public:
  // `prefixes`: distinct and ascending, at least one (all 0 when fixed_bits == 0).
  DigitCounter(const void* data, int64_t n, std::vector<Key> prefixes, int fixed_bits, int digit_bits)
      : bits_(static_cast<const Key*>(data)),
        n_(n),
        prefixes_(std::move(prefixes)),
        fixed_bits_(fixed_bits),
        shift_(Keys::kBits - fixed_bits - digit_bits),
        bins_(size_t(1) << digit_bits) {}

  // int64 [prefixes x 2**digit_bits], row s for prefixes[s].
  std::vector<int64_t> count() const {
    const size_t rows = prefixes_.size(), copies = fixed_bits_ == 0 ? kCopies : 1;
    const size_t local_size = copies * rows * bins_;
    std::vector<int64_t> counts(rows * bins_, 0);
    const int threads = omp_get_max_threads();
    // Allocated outside the parallel region: an exception inside one would terminate the process.
    std::vector<uint32_t> locals(size_t(threads) * local_size, 0);
#pragma omp parallel num_threads(threads)
    {
      const int t = omp_get_thread_num(), team = omp_get_num_threads();
      uint32_t* local = locals.data() + size_t(t) * local_size;
      const int64_t chunk = (n_ + team - 1) / team;
      const int64_t begin = std::min(n_, chunk * t), end = std::min(n_, begin + chunk);
      for (int64_t start = begin; start < end; start += kFlush) {
        const int64_t stop = std::min(end, start + kFlush);
        if (fixed_bits_ == 0)
          count_first(start, stop, local);
        else
          count_prefixed(start, stop, local);
#pragma omp critical
        for (size_t c = 0; c < copies; ++c)
          for (size_t i = 0; i < rows * bins_; ++i) counts[i] += local[c * rows * bins_ + i];
        std::fill(local, local + local_size, 0u);
      }
    }
    return counts;
  }

 private:
  void count_first(int64_t begin, int64_t end, uint32_t* local) const {
    int64_t i = begin;
    for (; i + kCopies <= end; i += kCopies)
      for (int c = 0; c < kCopies; ++c) ++local[size_t(c) * bins_ + size_t(Keys::of_bits(bits_[i + c]) >> shift_)];
    for (; i < end; ++i) ++local[size_t(Keys::of_bits(bits_[i]) >> shift_)];
  }

  // Few prefixes: each span's keys are flagged (vectorised), and only the flagged ones, found 8 flags
  // at a time, are counted. Many: every key's prefix is looked up.
  void count_prefixed(int64_t begin, int64_t end, uint32_t* local) const {
    const int low_bits = Keys::kBits - fixed_bits_;
    const int rows = int(prefixes_.size());
    const auto count = [&](Key k, size_t row) { ++local[row * bins_ + size_t((k >> shift_) & Key(bins_ - 1))]; };
    if (rows > kTestedPrefixes) {
      for (int64_t i = begin; i < end; ++i) {
        const Key k = Keys::of_bits(bits_[i]), high = Key(k >> low_bits);
        const auto at = std::lower_bound(prefixes_.begin(), prefixes_.end(), high);
        if (at != prefixes_.end() && *at == high) count(k, size_t(at - prefixes_.begin()));
      }
      return;
    }
    Key tested[kTestedPrefixes];
    for (int s = 0; s < kTestedPrefixes; ++s) tested[s] = prefixes_[size_t(std::min(s, rows - 1))];
    dispatch_isa([&](auto isa) {
      constexpr Isa kIsa = decltype(isa)::value;
      uint8_t flags[kSpan] = {};
      for (int64_t start = begin; start < end; start += kSpan) {
        const int64_t len = std::min(kSpan, end - start);
        if (!run_for_isa<kIsa, FlagPrefixed<Stored>>(bits_ + start, len, low_bits, tested, flags)) continue;
        for (int64_t i = 0; i < len; i += 8) {
          uint64_t word;
          std::memcpy(&word, flags + i, 8);
          if (i + 8 > len) word &= (uint64_t(1) << (8 * (len - i))) - 1;
          for (; word != 0; word &= word - 1) {
            const Key k = Keys::of_bits(bits_[start + i + __builtin_ctzll(word) / 8]), high = Key(k >> low_bits);
            int row = 0;
            while (prefixes_[size_t(row)] != high) ++row;
            count(k, size_t(row));
          }
        }
      }
      return 0;
    });
  }

  const Key* bits_;
  int64_t n_;
  std::vector<Key> prefixes_;
  int fixed_bits_, shift_;
  size_t bins_;
};

}  // namespace

void radix_digit_counts(const void* values, DType dtype, int64_t n, const std::vector<int64_t>& prefixes,
                        int fixed_bits, int digit_bits, int64_t* counts) {
  dispatch_float(dtype, [&](auto stored) {
    using Stored = decltype(stored);
    using Key = typename FloatKeys<Stored>::Key;
    constexpr int kKeyBits = FloatKeys<Stored>::kBits;
    if (digit_bits < 1 || digit_bits > 16 || fixed_bits < 0 || fixed_bits + digit_bits > kKeyBits)
      throw std::invalid_argument("digit of " + std::to_string(digit_bits) + " bits after " +
                                  std::to_string(fixed_bits) + " outside a " + std::to_string(kKeyBits) + "-bit key");
    for (int64_t p : prefixes)
      if (p < 0 || (fixed_bits < 63 && p >= (int64_t(1) << fixed_bits)))
        throw std::invalid_argument("prefix " + std::to_string(p) + " has more than " + std::to_string(fixed_bits) +
                                    " bits");
    if (prefixes.empty()) return 0;
    std::vector<Key> distinct(prefixes.begin(), prefixes.end());
    std::sort(distinct.begin(), distinct.end());
    distinct.erase(std::unique(distinct.begin(), distinct.end()), distinct.end());
    const size_t bins = size_t(1) << digit_bits;
    const std::vector<int64_t> found = DigitCounter<Stored>(values, n, distinct, fixed_bits, digit_bits).count();
    for (size_t i = 0; i < prefixes.size(); ++i) {
      const size_t row = size_t(std::lower_bound(distinct.begin(), distinct.end(), Key(prefixes[i])) - distinct.begin());
      std::copy_n(found.begin() + ptrdiff_t(row * bins), bins, counts + i * bins);
    }
    return 0;
  });
}

}  // namespace qubd::cpu
