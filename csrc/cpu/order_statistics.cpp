// Exact order statistics. Past 2**20 values, clipping's few ranks usually come from one pass over
// intervals a sample gives (bracket_select.h); otherwise, and as its fallback, radix selection over
// the order-preserving keys of the stored bits (float_keys.h). Its first pass histograms the top 16 bits of every key, with per-thread counters
// merged at the end; it also reveals NaN/Inf (their buckets hold nothing else). A bf16/fp16 key IS
// 16 bits, so one pass answers. A float32 key's low 16 bits come from one filtered pass: only the
// keys of the wanted buckets are counted, the rest are skipped by a vectorised prefix test. Wider
// keys (float64), or many wanted buckets, go on by smaller digits until the buckets are small,
// then gather those keys and nth_element picks each rank. No copy of the data, no sort. A small
// tensor (the many of conv nets and mixture-of-experts models) is copied as keys and nth_element
// picks each rank: microseconds, where the radix pass's 65,536 counters alone would cost more.
#include <omp.h>

#include <algorithm>
#include <limits>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "bracket_select.h"
#include "dispatch.h"
#include "float_keys.h"
#include "isa.h"
#include "kernels.h"

namespace qubd::cpu {
namespace {

constexpr int kFirstDigitBits = 16;
constexpr int kWideDigitBits = 16;          // a later digit, while few buckets are wanted
constexpr int kNarrowDigitBits = 11;        // a later digit, for many wanted buckets (memory)
constexpr int kWideDigitSlots = 4;          // at most this many wanted buckets take the wide digit
constexpr int64_t kGatherLimit = 1 << 21;   // buckets this small are gathered and selected in memory
constexpr int kCopies = 2;                  // first-pass counter copies per thread (see count_first_digit)
constexpr int kFastSlots = 4;               // wanted buckets tested without branches (span_has_prefix)
constexpr int64_t kSpan = 64;               // keys tested together (span_has_prefix)
constexpr int64_t kFlush = int64_t(1) << 31;  // keys counted into 32-bit counters between merges
// At most this many values: copied keys and nth_element (radix selection only above it). The same
// size as qubd/range.py's BATCHED_SELECT_MAX, the largest tensor selected in a batch.
constexpr int64_t kSmallSelect = 1 << 16;

// Whether any of `len` keys of bits has its high bits (above `low_bits`) in `fast`: branch-free,
// so the compiler vectorises it for each instruction set.
template <typename Stored>
struct SpanHasPrefix {
  using Key = typename FloatKeys<Stored>::Key;
  [[gnu::always_inline]] static bool run(const Key* bits, int64_t len, int low_bits, const Key* fast) {
    Key hits = 0;
    for (int64_t i = 0; i < len; ++i) {
      const Key h = Key(FloatKeys<Stored>::of_bits(bits[i]) >> low_bits);
      Key hit = 0;
      for (int s = 0; s < kFastSlots; ++s) hit |= Key(h == fast[s]);
      hits |= hit;
    }
    return hits != 0;
  }
};

template <typename Stored>
class RadixSelect {
  using Keys = FloatKeys<Stored>;
  using Key = typename Keys::Key;
  static constexpr int kKeyBits = Keys::kBits;

 public:
  RadixSelect(const void* data, int64_t n)
      : bits_(static_cast<const Key*>(data)), n_(n), threads_(omp_get_max_threads()) {}  // n > kSmallSelect

  std::vector<double> select(const std::vector<int64_t>& ranks) {
    // Per wanted rank: the key bits fixed so far (`fixed_` of them), the rank left within the
    // keys that share them, and how many keys do.
    std::vector<Target> targets;
    for (int64_t r : ranks) targets.push_back({0, r, n_});
    refine(targets);
    while (fixed_ < kKeyBits) {
      const int slots = int(distinct_prefixes(targets).size());
      const int digit_bits = std::min(kKeyBits - fixed_, slots <= kWideDigitSlots ? kWideDigitBits : kNarrowDigitBits);
      if (largest_bucket(targets) <= kGatherLimit && digit_bits < kKeyBits - fixed_) {
        gather_and_select(targets);
        break;
      }
      refine(targets, digit_bits);
    }
    std::vector<double> values;
    for (const Target& t : targets) values.push_back(double(Keys::value(t.prefix)));
    return values;
  }

 private:
  struct Target {
    Key prefix;
    int64_t rank;
    int64_t bucket;
  };

  static int64_t largest_bucket(const std::vector<Target>& targets) {
    int64_t most = 0;
    for (const Target& t : targets) most = std::max(most, t.bucket);
    return most;
  }

  static std::vector<Key> distinct_prefixes(const std::vector<Target>& targets) {
    std::vector<Key> prefixes;
    for (const Target& t : targets) prefixes.push_back(t.prefix);
    std::sort(prefixes.begin(), prefixes.end());
    prefixes.erase(std::unique(prefixes.begin(), prefixes.end()), prefixes.end());
    return prefixes;
  }

  static int slot(const std::vector<Key>& prefixes, Key prefix) {
    return int(std::lower_bound(prefixes.begin(), prefixes.end(), prefix) - prefixes.begin());
  }

  // Runs count(begin, end, local) over the keys split among the threads, each counting into its
  // own `copies` x `bins` 32-bit counters, and returns the `bins` sums. Counters are merged (and
  // cleared) every kFlush keys, so no 32-bit counter can overflow.
  template <typename Count>
  std::vector<int64_t> count_pass(size_t bins, int copies, Count&& count) const {
    std::vector<int64_t> counts(bins, 0);
    // Allocated outside the parallel region: an exception inside one would terminate the process.
    std::vector<uint32_t> locals(size_t(threads_) * copies * bins, 0);
#pragma omp parallel num_threads(threads_)
    {
      // Split by the team OpenMP actually started, which may be smaller than asked for.
      const int t = omp_get_thread_num(), team = omp_get_num_threads();
      uint32_t* local = locals.data() + size_t(t) * copies * bins;
      const int64_t chunk = (n_ + team - 1) / team;
      const int64_t begin = std::min(n_, chunk * t), end = std::min(n_, begin + chunk);
      for (int64_t start = begin; start < end; start += kFlush) {
        count(start, std::min(end, start + kFlush), local);
#pragma omp critical
        for (int c = 0; c < copies; ++c)
          for (size_t i = 0; i < bins; ++i) counts[i] += local[c * bins + i];
        std::fill(local, local + copies * bins, 0u);
      }
    }
    return counts;
  }

  // Narrows every target by the next `digit_bits` bits of its keys (the first digit: of all keys).
  void refine(std::vector<Target>& targets, int digit_bits = std::min(kFirstDigitBits, kKeyBits)) {
    const int shift = kKeyBits - fixed_ - digit_bits;
    const size_t bins = size_t(1) << digit_bits;
    const std::vector<Key> prefixes = distinct_prefixes(targets);
    std::vector<int64_t> counts = fixed_ == 0 ? count_pass(bins, kCopies,
                                                           [&](int64_t begin, int64_t end, uint32_t* local) {
                                                             count_first_digit(begin, end, shift, bins, local);
                                                           })
                                              : count_pass(prefixes.size() * bins, 1,
                                                           [&](int64_t begin, int64_t end, uint32_t* local) {
                                                             count_next_digit(begin, end, prefixes, shift, bins, local);
                                                           });
    if (fixed_ == 0)  // a first-digit bucket holds only finite keys or only NaN/Inf
      for (size_t b = 0; b < bins; ++b)
        if (counts[b] > 0 && !Keys::finite(Key(Key(b) << shift))) throw std::domain_error("weights contain NaN or Inf values");

    for (Target& t : targets) {
      const int64_t* hist = counts.data() + size_t(slot(prefixes, t.prefix)) * bins;
      size_t digit = 0;
      while (t.rank >= hist[digit]) t.rank -= hist[digit++];
      t.prefix = Key((fixed_ == 0 ? Key(0) : Key(t.prefix << digit_bits)) | Key(digit));
      t.bucket = hist[digit];
    }
    fixed_ += digit_bits;
  }

  // The first digit of every key in [begin, end), counted into kCopies histograms in turn: weights
  // crowd into a few buckets, and back-to-back increments of one counter would each wait for the
  // last (a store-to-load dependency).
  void count_first_digit(int64_t begin, int64_t end, int shift, size_t bins, uint32_t* local) const {
    const Key* bits = bits_;
    int64_t i = begin;
    for (; i + kCopies <= end; i += kCopies)
      for (int c = 0; c < kCopies; ++c) ++local[c * bins + size_t(Keys::of_bits(bits[i + c]) >> shift)];
    for (; i < end; ++i) ++local[size_t(Keys::of_bits(bits[i]) >> shift)];
  }

  // The next digit of the keys in [begin, end) whose fixed bits are one of `prefixes`, into one
  // histogram per prefix. Spans without such a key are skipped after a vectorised test.
  void count_next_digit(int64_t begin, int64_t end, const std::vector<Key>& prefixes, int shift, size_t bins,
                        uint32_t* local) const {
    for_keys_with_prefix(begin, end, prefixes, [&](Key k, int s) {
      ++local[size_t(s) * bins + size_t((k >> shift) & Key(bins - 1))];
    });
  }

  // Calls fn(key, slot) for each key in [begin, end) whose high bits (all but the low
  // kKeyBits - fixed_) are prefixes[slot].
  template <typename Fn>
  void for_keys_with_prefix(int64_t begin, int64_t end, const std::vector<Key>& prefixes, Fn&& fn) const {
    const int low_bits = kKeyBits - fixed_;
    const int slots = int(prefixes.size());
    Key fast[kFastSlots];
    for (int s = 0; s < kFastSlots; ++s) fast[s] = prefixes[size_t(std::min(s, slots - 1))];
    const Key* bits = bits_;
    dispatch_isa([&](auto isa) {
      constexpr Isa kIsa = decltype(isa)::value;
      for (int64_t start = begin; start < end; start += kSpan) {
        const int64_t len = std::min(kSpan, end - start);
        // Too many prefixes for the fast test: look at every key.
        if (slots <= kFastSlots && !run_for_isa<kIsa, SpanHasPrefix<Stored>>(bits + start, len, low_bits, fast))
          continue;
        for (int64_t i = start; i < start + len; ++i) {
          const Key k = Keys::of_bits(bits[i]);
          const int s = slot(prefixes, Key(k >> low_bits));
          if (s < slots && prefixes[size_t(s)] == Key(k >> low_bits)) fn(k, s);
        }
      }
      return 0;
    });
  }

  // One pass: gather every key of the wanted buckets, then select each rank among them.
  void gather_and_select(std::vector<Target>& targets) {
    const std::vector<Key> prefixes = distinct_prefixes(targets);
    // Each bucket's size is known from the last histogram: fill preallocated buckets (the keys
    // that match are few, so the shared fill counters see little contention).
    std::vector<std::vector<Key>> buckets(prefixes.size());
    for (const Target& t : targets) buckets[size_t(slot(prefixes, t.prefix))].resize(size_t(t.bucket));
    std::vector<int64_t> filled(prefixes.size(), 0);
#pragma omp parallel num_threads(threads_)
    {
      const int t = omp_get_thread_num(), team = omp_get_num_threads();
      const int64_t chunk = (n_ + team - 1) / team;
      const int64_t begin = std::min(n_, chunk * t), end = std::min(n_, begin + chunk);
      for_keys_with_prefix(begin, end, prefixes, [&](Key k, int s) {
        int64_t at;
#pragma omp atomic capture
        at = filled[size_t(s)]++;
        buckets[size_t(s)][size_t(at)] = k;
      });
    }
    for (Target& t : targets) {
      std::vector<Key>& keys = buckets[size_t(slot(prefixes, t.prefix))];
      std::nth_element(keys.begin(), keys.begin() + t.rank, keys.end());
      t.prefix = keys[size_t(t.rank)];
    }
    fixed_ = kKeyBits;
  }

  const Key* bits_;
  int64_t n_;
  int threads_;
  int fixed_ = 0;
};

// The sorted values of a small tensor at `ranks`: its keys copied, then nth_element for each rank
// in ascending order, each over the keys at or above the last rank found.
template <typename Stored>
std::vector<double> small_select(const void* data, int64_t n, const std::vector<int64_t>& ranks) {
  using Keys = FloatKeys<Stored>;
  using Key = typename Keys::Key;
  const Key* bits = static_cast<const Key*>(data);
  std::vector<Key> keys(static_cast<size_t>(n));
  Key lo = std::numeric_limits<Key>::max(), hi = 0;
  for (int64_t i = 0; i < n; ++i) {
    const Key k = Keys::of_bits(bits[i]);
    keys[size_t(i)] = k;
    lo = std::min(lo, k);
    hi = std::max(hi, k);
  }
  if (!Keys::finite(lo) || !Keys::finite(hi)) throw std::domain_error("weights contain NaN or Inf values");
  std::vector<size_t> order(ranks.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return ranks[a] < ranks[b]; });
  std::vector<double> values(ranks.size());
  auto from = keys.begin();
  for (size_t i : order) {
    const auto nth = keys.begin() + ranks[i];
    std::nth_element(from, nth, keys.end());
    values[i] = double(Keys::value(*nth));
    from = nth;
  }
  return values;
}

}  // namespace

std::vector<double> order_statistics(const void* values, DType dtype, int64_t n, const std::vector<int64_t>& ranks) {
  if (ranks.empty()) return {};
  for (int64_t r : ranks)
    if (r < 0 || r >= n) throw std::out_of_range("rank " + std::to_string(r) + " outside 0.." + std::to_string(n - 1));
  return dispatch_float(dtype, [&](auto stored) {
    using Stored = decltype(stored);
    if (n <= kSmallSelect) return small_select<Stored>(values, n, ranks);
    if (std::optional<std::vector<double>> found = bracket::select<Stored>(values, n, ranks)) return *found;
    return RadixSelect<Stored>(values, n).select(ranks);
  });
}

void order_statistics_batched(const std::vector<const void*>& values, const std::vector<DType>& dtypes,
                              const std::vector<int64_t>& counts, const std::vector<std::vector<int64_t>>& ranks,
                              double* out) {
  for (size_t t = 0; t < values.size(); ++t) {
    const std::vector<int64_t>& wanted = ranks.at(t);
    try {
      const std::vector<double> found = order_statistics(values[t], dtypes.at(t), counts.at(t), wanted);
      out = std::copy(found.begin(), found.end(), out);
    } catch (const std::domain_error&) {  // NaN or Inf: this tensor's values are NaN, the others go on
      out = std::fill_n(out, wanted.size(), std::numeric_limits<double>::quiet_NaN());
    }
  }
}

}  // namespace qubd::cpu
