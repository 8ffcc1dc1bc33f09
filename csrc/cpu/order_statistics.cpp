// Exact order statistics by radix selection. Values map to unsigned keys whose integer order is
// their numeric order. A first pass histograms the top bits of every key (sign, exponent and two
// mantissa bits, which also reveals NaN/Inf); while the bucket holding a wanted rank is large, a
// further pass histograms the next bits of the keys in it; then one pass gathers the bucket's keys
// and nth_element picks the rank among them. Usually two passes over the data; no copy, no sort.
#include <omp.h>

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "dispatch.h"
#include "kernels.h"

namespace qubd::cpu {
namespace {

constexpr int kDigitBits = 11;              // bits resolved by each pass after the first
constexpr int64_t kGatherLimit = 1 << 21;  // a bucket this small is gathered and selected in memory
constexpr int kCopies = 4;                  // histogram copies per thread (see count_first_digit)
constexpr int kFastSlots = 4;               // wanted buckets tested without branches (gather_and_select)
constexpr int64_t kSpan = 64;               // keys tested together (gather_and_select)

template <typename Compute>
struct KeyOf;
template <>
struct KeyOf<float> {
  using Key = uint32_t;
  static constexpr int kFirstDigitBits = 1 + 8 + 2;
  static Key of(float v) {
    uint32_t u;
    std::memcpy(&u, &v, sizeof u);
    return u ^ (uint32_t(-int32_t(u >> 31)) | 0x80000000u);  // negative: ~u; positive: set the sign bit
  }
  static float value(Key k) { return bits_to_float((k & 0x80000000u) ? (k & 0x7FFFFFFFu) : ~k); }
  static bool finite(Key k) { return ((k & 0x80000000u) ? (k >> 23) & 0xFFu : (~k >> 23) & 0xFFu) != 0xFFu; }
};
template <>
struct KeyOf<double> {
  using Key = uint64_t;
  static constexpr int kFirstDigitBits = 1 + 11 + 2;
  static Key of(double v) {
    uint64_t u;
    std::memcpy(&u, &v, sizeof u);
    return u ^ (uint64_t(-int64_t(u >> 63)) | (uint64_t(1) << 63));
  }
  static double value(Key k) {
    const uint64_t u = (k >> 63) ? (k & ~(uint64_t(1) << 63)) : ~k;
    double v;
    std::memcpy(&v, &u, sizeof v);
    return v;
  }
  static bool finite(Key k) { return ((((k >> 63) ? k : ~k) >> 52) & 0x7FFu) != 0x7FFu; }
};

template <typename Stored>
class RadixSelect {
  using Compute = typename Element<Stored>::Compute;
  using Keys = KeyOf<Compute>;
  using Key = typename Keys::Key;
  static constexpr int kKeyBits = 8 * sizeof(Key);

 public:
  RadixSelect(const Stored* data, int64_t n) : data_(data), n_(n) {}

  std::vector<double> select(const std::vector<int64_t>& ranks) {
    // Per wanted rank: the key bits fixed so far (`fixed_` of them), the rank left within the
    // keys that share them, and how many keys do.
    std::vector<Target> targets;
    for (int64_t r : ranks) targets.push_back({0, r, n_});
    while (fixed_ < kKeyBits && (fixed_ == 0 || largest_bucket(targets) > kGatherLimit)) refine(targets);
    if (fixed_ < kKeyBits) gather_and_select(targets);
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

  Key key(int64_t i) const { return Keys::of(Element<Stored>::load(data_[i])); }
  // The fixed high bits of a key (0 before the first pass).
  Key high(Key k) const { return fixed_ == 0 ? Key(0) : Key(k >> (kKeyBits - fixed_)); }

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

  // The first digit of every key in [begin, end), counted into kCopies histograms in turn: weights
  // crowd into a few exponents, and back-to-back increments of one counter would each wait for
  // the last (a store-to-load dependency), which made this pass several times slower than a read.
  void count_first_digit(int64_t begin, int64_t end, int shift, int64_t bins, int64_t* hist) const {
    int64_t i = begin;
    for (; i + kCopies <= end; i += kCopies)
      for (int c = 0; c < kCopies; ++c) ++hist[c * bins + int64_t(key(i + c) >> shift)];
    for (; i < end; ++i) ++hist[key(i) >> shift];
  }

  // One pass: histogram the next digit of the keys in each wanted bucket; narrow every target.
  void refine(std::vector<Target>& targets) {
    const int digit_bits = fixed_ == 0 ? Keys::kFirstDigitBits : std::min(kDigitBits, kKeyBits - fixed_);
    const int shift = kKeyBits - fixed_ - digit_bits;
    const int64_t bins = int64_t(1) << digit_bits;
    const std::vector<Key> prefixes = distinct_prefixes(targets);
    const int slots = int(prefixes.size());
    std::vector<int64_t> counts(size_t(slots * bins), 0);
    // Allocated outside the parallel region: an exception inside one would terminate the process.
    const int threads = n_ > (1 << 16) ? omp_get_max_threads() : 1;
    std::vector<int64_t> locals(size_t(threads) * kCopies * counts.size(), 0);

#pragma omp parallel num_threads(threads)
    {
      // Split by the team OpenMP actually started, which may be smaller than asked for.
      const int t = omp_get_thread_num(), team = omp_get_num_threads();
      int64_t* local = locals.data() + size_t(t) * kCopies * counts.size();
      const int64_t chunk = (n_ + team - 1) / team;
      const int64_t begin = std::min(n_, chunk * t), end = std::min(n_, begin + chunk);
      if (fixed_ == 0)
        count_first_digit(begin, end, shift, bins, local);
      else
        for (int64_t i = begin; i < end; ++i) {
          const Key k = key(i);
          const Key h = high(k);
          const size_t digit = size_t((k >> shift) & Key(bins - 1));
          for (int s = 0; s < slots; ++s)
            if (h == prefixes[s]) ++local[size_t(s) * bins + digit];
        }
#pragma omp critical
      for (int c = 0; c < kCopies; ++c)
        for (size_t i = 0; i < counts.size(); ++i) counts[i] += local[c * counts.size() + i];
    }

    if (fixed_ == 0)  // the first digit holds sign and exponent: a bucket is all finite or not
      for (int64_t b = 0; b < bins; ++b)
        if (counts[b] > 0 && !Keys::finite(Key(b) << shift)) throw std::domain_error("weights contain NaN or Inf values");

    for (Target& t : targets) {
      const int64_t* hist = counts.data() + size_t(slot(prefixes, t.prefix)) * bins;
      int64_t digit = 0;
      while (t.rank >= hist[digit]) t.rank -= hist[digit++];
      t.prefix = (t.prefix << digit_bits) | Key(digit);
      t.bucket = hist[digit];
    }
    fixed_ += digit_bits;
  }

  // One pass: gather every key of the wanted buckets, then select each rank among them.
  void gather_and_select(std::vector<Target>& targets) {
    const std::vector<Key> prefixes = distinct_prefixes(targets);
    const int slots = int(prefixes.size());
    // Each bucket's size is known from the last histogram: fill preallocated buckets (the keys
    // that match are few, so the shared fill counters see little contention).
    std::vector<std::vector<Key>> buckets(slots);
    for (const Target& t : targets) buckets[slot(prefixes, t.prefix)].resize(size_t(t.bucket));
    std::vector<int64_t> filled(slots, 0);

    // Locals, not members: the loop must not reload them around the stores into the buckets.
    const Stored* data = data_;
    const int64_t n = n_;
    const int low_bits = kKeyBits - fixed_;  // > 0: select() refines at least once first
    auto insert = [&](int64_t i) {
      const Key k = Keys::of(Element<Stored>::load(data[i]));
      const int s = slot(prefixes, k >> low_bits);
      if (s == slots || prefixes[size_t(s)] != k >> low_bits) return;
      int64_t at;
#pragma omp atomic capture
      at = filled[s]++;
      buckets[s][size_t(at)] = k;
    };
    // Up to kFastSlots prefixes, a span of keys is first tested with a branch-free (vectorised)
    // comparison; the few spans holding a wanted key are then gathered one key at a time.
    Key fast[kFastSlots];
    for (int s = 0; s < kFastSlots; ++s) fast[s] = prefixes[std::min(s, slots - 1)];
    const int64_t spans = (n + kSpan - 1) / kSpan;
#pragma omp parallel for schedule(static) if (n > (1 << 16))
    for (int64_t span = 0; span < spans; ++span) {
      const int64_t begin = span * kSpan, end = std::min(n, begin + kSpan);
      Key hits = slots > kFastSlots;  // too many prefixes for the fast test: look at every key
      if (!hits)
        for (int64_t i = begin; i < end; ++i) {
          const Key h = Keys::of(Element<Stored>::load(data[i])) >> low_bits;
          Key hit = 0;
          for (int s = 0; s < kFastSlots; ++s) hit |= Key(h == fast[s]);
          hits += hit;
        }
      if (hits)
        for (int64_t i = begin; i < end; ++i) insert(i);
    }

    for (Target& t : targets) {
      std::vector<Key>& keys = buckets[slot(prefixes, t.prefix)];
      std::nth_element(keys.begin(), keys.begin() + t.rank, keys.end());
      t.prefix = keys[t.rank];
    }
    fixed_ = kKeyBits;
  }

  const Stored* data_;
  int64_t n_;
  int fixed_ = 0;
};

}  // namespace

std::vector<double> order_statistics(const void* values, DType dtype, int64_t n, const std::vector<int64_t>& ranks) {
  if (ranks.empty()) return {};
  for (int64_t r : ranks)
    if (r < 0 || r >= n) throw std::out_of_range("rank " + std::to_string(r) + " outside 0.." + std::to_string(n - 1));
  return dispatch_float(dtype, [&](auto stored) {
    return RadixSelect<decltype(stored)>(static_cast<const decltype(stored)*>(values), n).select(ranks);
  });
}

}  // namespace qubd::cpu
