// Exact order statistics of a large tensor in one vectorised pass, when a sample brackets them.
//
// A sample of the keys (runs of kRun neighbours spread over the data) gives, for each wanted rank,
// a key interval [a, b] that holds it with a wide margin. One pass then counts, per interval, the
// keys below a, takes the min and max key (the finite check) and flags the keys inside an interval
// (one flat branch-free loop per chunk, vectorised per instruction set); the flagged keys, a few
// per thousand, are gathered from the flags 64 at a time (AVX-512 and AVX2: straight from the
// comparison masks, in the same loop; float32 8192^2 17.4 -> 12.6 ms and bf16 12.5 -> 9.7 with
// AVX-512, 27-31 -> 17-20 and 18 -> 11-12 with AVX2). A rank r lies in its
// interval exactly when below <= r < below + inside, which the counts prove; nth_element among the
// gathered keys then gives it exactly. Where the counts do not prove it (a sample unlike the rest of
// the data), or an interval would gather too many keys, the caller falls back to radix selection:
// the sample affects the speed, never the answer.
#pragma once

#include <omp.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <optional>
#include <stdexcept>
#include <type_traits>
#include <vector>

#include "float_keys.h"
#include "isa.h"

#if defined(__SSE2__)
#include <emmintrin.h>
#endif
#if defined(QUBD_X86_ISAS)
#include <immintrin.h>
#endif

namespace qubd::cpu {
namespace bracket {

constexpr int64_t kMinSize = int64_t(1) << 20;  // below this, radix selection is cheap enough
constexpr int kMaxIntervals = 2;                 // clipping wants two: one per tail
constexpr int64_t kSample = 1 << 15;
constexpr int64_t kRun = 16;                     // neighbours sampled together (a cache line of float32)
constexpr int64_t kChunk = 1 << 14;              // keys per scheduling chunk
constexpr uint64_t kCountedSpan = 1 << 16;       // intervals spanning fewer keys are counted, not selected

template <typename Key>
struct Interval {
  Key a = 1, b = 0;  // empty: no key is in [1, 0]
};

template <typename Key>
struct ChunkCounts {
  uint32_t below[kMaxIntervals] = {};
  Key lo = std::numeric_limits<Key>::max(), hi = 0;
};

// The branch-free part of the pass over a chunk of at most kChunk keys: the keys below each
// interval, min and max, and inside[i] = whether key i is inside an interval. Compared as signed
// integers (key ^ sign bit), which every instruction set compares natively; one flat loop, so the
// reductions stay in vector registers until its end.
template <typename Stored>
struct ScanChunk {
  using Key = typename FloatKeys<Stored>::Key;
  [[gnu::always_inline]] static ChunkCounts<Key> run(const Key* bits, int64_t len, const Interval<Key>* intervals,
                                                     uint8_t* inside) {
    using Signed = std::make_signed_t<Key>;
    constexpr Key kSign = FloatKeys<Stored>::kSign;
    constexpr int kShift = FloatKeys<Stored>::kBits - 1;
    const Signed a0 = Signed(intervals[0].a ^ kSign), b0 = Signed(intervals[0].b ^ kSign);
    const Signed a1 = Signed(intervals[1].a ^ kSign), b1 = Signed(intervals[1].b ^ kSign);
    // Counters as wide as the keys (one vector width throughout): a chunk's counts fit in 16 bits.
    static_assert(kChunk < (int64_t(1) << 16), "a chunk's counts must fit in a 16-bit key");
    Key below0 = 0, below1 = 0;
    Signed lo = std::numeric_limits<Signed>::max(), hi = std::numeric_limits<Signed>::min();
    for (int64_t i = 0; i < len; ++i) {
      const Key u = bits[i];
      const Signed k = Signed(u ^ Key(Key(Signed(u) >> kShift) >> 1));  // a negative value's magnitude flipped
      below0 += Key(k < a0);
      below1 += Key(k < a1);
      inside[i] = uint8_t(((k >= a0) & (k <= b0)) | ((k >= a1) & (k <= b1)));
      lo = k < lo ? k : lo;
      hi = k > hi ? k : hi;
    }
    ChunkCounts<Key> counts;
    counts.below[0] = below0;
    counts.below[1] = below1;
    counts.lo = Key(Key(lo) ^ kSign);
    counts.hi = Key(Key(hi) ^ kSign);
    return counts;
  }
};

#if defined(QUBD_X86_ISAS)
// Vector lanes of 32- or 16-bit keys, compared as signed integers as in ScanChunk, for
// scan_and_stage: AVX-512 compares into bit masks, AVX2 into vectors whose movemask gives
// kBitsPerLane bits a lane. Every intrinsic is behind a member with its target, so the one
// always-inline body below compiles into each ISA's wrapper.
template <typename Key>
struct Avx512Lanes;
template <>
struct Avx512Lanes<uint32_t> {
  using Vec = __m512i;
  using Cmp = __mmask16;
  static constexpr int kCount = 16, kBitsPerLane = 1;
  QUBD_TARGET_AVX512 static Vec set1(uint32_t k) { return _mm512_set1_epi32(int(k)); }
  QUBD_TARGET_AVX512 static Vec signed_keys(const void* p) {
    const Vec u = _mm512_loadu_si512(p);
    return _mm512_xor_si512(u, _mm512_srli_epi32(_mm512_srai_epi32(u, 31), 1));
  }
  QUBD_TARGET_AVX512 static Cmp less(Vec a, Vec b) { return _mm512_cmplt_epi32_mask(a, b); }
  QUBD_TARGET_AVX512 static Cmp inside(Cmp under, Vec k, Vec b) {
    return _mm512_mask_cmple_epi32_mask(Cmp(~under), k, b);
  }
  QUBD_TARGET_AVX512 static Vec count(Vec c, Cmp m) { return _mm512_mask_sub_epi32(c, m, c, _mm512_set1_epi32(-1)); }
  QUBD_TARGET_AVX512 static uint64_t hits(Cmp m) { return m; }
  QUBD_TARGET_AVX512 static Vec min(Vec a, Vec b) { return _mm512_min_epi32(a, b); }
  QUBD_TARGET_AVX512 static Vec max(Vec a, Vec b) { return _mm512_max_epi32(a, b); }
  QUBD_TARGET_AVX512 static void store(uint32_t* out, Vec v) { _mm512_store_si512(out, v); }
};
template <>
struct Avx512Lanes<uint16_t> {
  using Vec = __m512i;
  using Cmp = __mmask32;
  static constexpr int kCount = 32, kBitsPerLane = 1;
  QUBD_TARGET_AVX512 static Vec set1(uint16_t k) { return _mm512_set1_epi16(short(k)); }
  QUBD_TARGET_AVX512 static Vec signed_keys(const void* p) {
    const Vec u = _mm512_loadu_si512(p);
    return _mm512_xor_si512(u, _mm512_srli_epi16(_mm512_srai_epi16(u, 15), 1));
  }
  QUBD_TARGET_AVX512 static Cmp less(Vec a, Vec b) { return _mm512_cmplt_epi16_mask(a, b); }
  QUBD_TARGET_AVX512 static Cmp inside(Cmp under, Vec k, Vec b) {
    return _mm512_mask_cmple_epi16_mask(Cmp(~under), k, b);
  }
  QUBD_TARGET_AVX512 static Vec count(Vec c, Cmp m) { return _mm512_mask_sub_epi16(c, m, c, _mm512_set1_epi16(-1)); }
  QUBD_TARGET_AVX512 static uint64_t hits(Cmp m) { return m; }
  QUBD_TARGET_AVX512 static Vec min(Vec a, Vec b) { return _mm512_min_epi16(a, b); }
  QUBD_TARGET_AVX512 static Vec max(Vec a, Vec b) { return _mm512_max_epi16(a, b); }
  QUBD_TARGET_AVX512 static void store(uint16_t* out, Vec v) { _mm512_store_si512(out, v); }
};

template <typename Key>
struct Avx2Lanes;
template <>
struct Avx2Lanes<uint32_t> {
  using Vec = __m256i;
  using Cmp = __m256i;
  static constexpr int kCount = 8, kBitsPerLane = 1;
  QUBD_TARGET_AVX2 static Vec set1(uint32_t k) { return _mm256_set1_epi32(int(k)); }
  QUBD_TARGET_AVX2 static Vec signed_keys(const void* p) {
    const Vec u = _mm256_loadu_si256(static_cast<const __m256i*>(p));
    return _mm256_xor_si256(u, _mm256_srli_epi32(_mm256_srai_epi32(u, 31), 1));
  }
  QUBD_TARGET_AVX2 static Cmp less(Vec a, Vec b) { return _mm256_cmpgt_epi32(b, a); }
  QUBD_TARGET_AVX2 static Cmp inside(Cmp under, Vec k, Vec b) {  // neither below a nor above b
    return _mm256_xor_si256(_mm256_or_si256(under, _mm256_cmpgt_epi32(k, b)), _mm256_set1_epi32(-1));
  }
  QUBD_TARGET_AVX2 static Vec count(Vec c, Cmp m) { return _mm256_sub_epi32(c, m); }
  QUBD_TARGET_AVX2 static uint64_t hits(Cmp m) { return uint32_t(_mm256_movemask_ps(_mm256_castsi256_ps(m))); }
  QUBD_TARGET_AVX2 static Vec min(Vec a, Vec b) { return _mm256_min_epi32(a, b); }
  QUBD_TARGET_AVX2 static Vec max(Vec a, Vec b) { return _mm256_max_epi32(a, b); }
  QUBD_TARGET_AVX2 static void store(uint32_t* out, Vec v) { _mm256_store_si256(reinterpret_cast<__m256i*>(out), v); }
};
template <>
struct Avx2Lanes<uint16_t> {
  using Vec = __m256i;
  using Cmp = __m256i;
  static constexpr int kCount = 16, kBitsPerLane = 2;  // movemask: a bit per byte
  QUBD_TARGET_AVX2 static Vec set1(uint16_t k) { return _mm256_set1_epi16(short(k)); }
  QUBD_TARGET_AVX2 static Vec signed_keys(const void* p) {
    const Vec u = _mm256_loadu_si256(static_cast<const __m256i*>(p));
    return _mm256_xor_si256(u, _mm256_srli_epi16(_mm256_srai_epi16(u, 15), 1));
  }
  QUBD_TARGET_AVX2 static Cmp less(Vec a, Vec b) { return _mm256_cmpgt_epi16(b, a); }
  QUBD_TARGET_AVX2 static Cmp inside(Cmp under, Vec k, Vec b) {
    return _mm256_xor_si256(_mm256_or_si256(under, _mm256_cmpgt_epi16(k, b)), _mm256_set1_epi16(-1));
  }
  QUBD_TARGET_AVX2 static Vec count(Vec c, Cmp m) { return _mm256_sub_epi16(c, m); }
  QUBD_TARGET_AVX2 static uint64_t hits(Cmp m) { return uint32_t(_mm256_movemask_epi8(m)) & 0x55555555u; }
  QUBD_TARGET_AVX2 static Vec min(Vec a, Vec b) { return _mm256_min_epi16(a, b); }
  QUBD_TARGET_AVX2 static Vec max(Vec a, Vec b) { return _mm256_max_epi16(a, b); }
  QUBD_TARGET_AVX2 static void store(uint16_t* out, Vec v) { _mm256_store_si256(reinterpret_cast<__m256i*>(out), v); }
};

// ScanChunk and the staging of the keys inside the intervals in one pass: the comparisons give
// lane masks, so the few keys inside are staged from the vector that holds them (no flags written
// and read again). staged[j * kChunk + staged_count[j]] takes the keys of interval j; len is a
// multiple of the lane count. (gcc warns that the lane members return vectors across a call
// without the ISA's target: the body is only ever inlined into the wrappers below.)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wpsabi"
template <typename Lanes, typename Key>
[[gnu::always_inline]] inline ChunkCounts<Key> scan_and_stage(const Key* bits, int64_t len,
                                                              const Interval<Key>* intervals, Key* staged,
                                                              int64_t* staged_count) {
  using Vec = typename Lanes::Vec;
  using Signed = std::make_signed_t<Key>;
  constexpr Key kSign = Key(Key(1) << (8 * sizeof(Key) - 1));
  const Vec a0 = Lanes::set1(Key(intervals[0].a ^ kSign)), b0 = Lanes::set1(Key(intervals[0].b ^ kSign));
  const Vec a1 = Lanes::set1(Key(intervals[1].a ^ kSign)), b1 = Lanes::set1(Key(intervals[1].b ^ kSign));
  Vec below0 = Lanes::set1(0), below1 = Lanes::set1(0);
  Vec lo = Lanes::set1(Key(std::numeric_limits<Signed>::max())), hi = Lanes::set1(kSign);
  for (int64_t i = 0; i < len; i += Lanes::kCount) {
    const Vec k = Lanes::signed_keys(bits + i);
    const auto under0 = Lanes::less(k, a0), under1 = Lanes::less(k, a1);
    below0 = Lanes::count(below0, under0);
    below1 = Lanes::count(below1, under1);
    lo = Lanes::min(lo, k);
    hi = Lanes::max(hi, k);
    const uint64_t in0 = Lanes::hits(Lanes::inside(under0, k, b0)), in1 = Lanes::hits(Lanes::inside(under1, k, b1));
    if ((in0 | in1) == 0) continue;
    alignas(64) Key keys[Lanes::kCount];
    Lanes::store(keys, k);
    for (uint64_t m = in0; m != 0; m &= m - 1)
      staged[staged_count[0]++] = Key(keys[__builtin_ctzll(m) / Lanes::kBitsPerLane] ^ kSign);
    for (uint64_t m = in1; m != 0; m &= m - 1)
      staged[kChunk + staged_count[1]++] = Key(keys[__builtin_ctzll(m) / Lanes::kBitsPerLane] ^ kSign);
  }
  alignas(64) Key lanes[4][Lanes::kCount];
  Lanes::store(lanes[0], below0);
  Lanes::store(lanes[1], below1);
  Lanes::store(lanes[2], lo);
  Lanes::store(lanes[3], hi);
  ChunkCounts<Key> counts;
  Signed least = std::numeric_limits<Signed>::max(), most = std::numeric_limits<Signed>::min();
  for (int l = 0; l < Lanes::kCount; ++l) {
    counts.below[0] += lanes[0][l];
    counts.below[1] += lanes[1][l];
    least = std::min(least, Signed(lanes[2][l]));
    most = std::max(most, Signed(lanes[3][l]));
  }
  counts.lo = Key(Key(least) ^ kSign);
  counts.hi = Key(Key(most) ^ kSign);
  return counts;
}
#pragma GCC diagnostic pop

template <typename Key>
QUBD_TARGET_AVX512 ChunkCounts<Key> avx512_scan_and_stage(const Key* bits, int64_t len, const Interval<Key>* intervals,
                                                          Key* staged, int64_t* staged_count) {
  return scan_and_stage<Avx512Lanes<Key>>(bits, len, intervals, staged, staged_count);
}
template <typename Key>
QUBD_TARGET_AVX2 ChunkCounts<Key> avx2_scan_and_stage(const Key* bits, int64_t len, const Interval<Key>* intervals,
                                                      Key* staged, int64_t* staged_count) {
  return scan_and_stage<Avx2Lanes<Key>>(bits, len, intervals, staged, staged_count);
}
#endif

// Sorts unsigned keys, least significant byte first, one counting pass per byte: std::sort of the
// 32,768 sampled keys took ~0.9 ms, a sixth of a 4096^2 bf16 selection.
template <typename Key>
void sort_keys(std::vector<Key>& keys) {
  std::vector<Key> sorted(keys.size());
  for (int shift = 0; shift < int(8 * sizeof(Key)); shift += 8) {
    size_t starts[257] = {};
    for (Key k : keys) ++starts[((k >> shift) & 0xFF) + 1];
    for (int b = 0; b < 256; ++b) starts[b + 1] += starts[b];
    for (Key k : keys) sorted[starts[(k >> shift) & 0xFF]++] = k;
    keys.swap(sorted);
  }
}

// Bit i set where flags[i] (0 or 1) is 1, for 64 flags: one branch per 64 keys instead of per 8
// (4096^2 bf16 order statistics: 6.5 -> 4.7 ms).
inline uint64_t nonzero_flags(const uint8_t* flags) {
  uint64_t bits = 0;
#if defined(__SSE2__)
  const __m128i zero = _mm_setzero_si128();
  for (int k = 0; k < 4; ++k) {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(flags + 16 * k));
    bits |= uint64_t(uint32_t(_mm_movemask_epi8(_mm_cmpgt_epi8(v, zero)))) << (16 * k);
  }
#else
  for (int i = 0; i < 64; ++i) bits |= uint64_t(flags[i] != 0) << i;
#endif
  return bits;
}

// The wanted ranks' values (in the order of `ranks`), or nothing where the sample's intervals
// cannot be proven to hold them. Throws std::domain_error if the data hold NaN or Inf.
template <typename Stored>
std::optional<std::vector<double>> select(const void* data, int64_t n, const std::vector<int64_t>& ranks) {
  using Keys = FloatKeys<Stored>;
  using Key = typename Keys::Key;
  if (n < kMinSize) return std::nullopt;
  const Key* bits = static_cast<const Key*>(data);

  // The sample: kSample / kRun runs of kRun neighbours, evenly spread.
  std::vector<Key> sample;
  sample.reserve(size_t(kSample));
  const int64_t runs = kSample / kRun, stride = n / runs;
  for (int64_t r = 0; r < runs; ++r)
    for (int64_t i = 0; i < kRun; ++i) sample.push_back(Keys::of_bits(bits[r * stride + i]));
  sort_keys(sample);

  // Each rank's interval: its sample position widened by 8 standard deviations of the sampled
  // count (as if the sample were independent draws) and one run; overlapping ones merge.
  std::vector<int64_t> sorted_ranks = ranks;
  std::sort(sorted_ranks.begin(), sorted_ranks.end());
  std::vector<Interval<Key>> intervals;
  for (int64_t r : sorted_ranks) {
    const double p = (double(r) + 0.5) / double(n);
    const double margin = 8.0 * std::sqrt(double(kSample) * p * (1 - p)) + kRun;
    const int64_t first = int64_t(std::floor(p * kSample - margin)), last = int64_t(std::ceil(p * kSample + margin));
    Interval<Key> interval;
    interval.a = first <= 0 ? Key(0) : sample[size_t(first)];
    interval.b = last >= kSample - 1 ? std::numeric_limits<Key>::max() : sample[size_t(last)];
    if (!intervals.empty() && interval.a <= intervals.back().b)
      intervals.back().b = std::max(intervals.back().b, interval.b);
    else
      intervals.push_back(interval);
  }
  if (intervals.size() > size_t(kMaxIntervals)) return std::nullopt;
  const int used = int(intervals.size());
  intervals.resize(kMaxIntervals);
  const Interval<Key>* in = intervals.data();

  // Every thread's keys inside interval j go to gathered[j], which holds at most gather_limit: an
  // interval holding more of the data is not worth gathering (the caller's radix selection is then
  // cheaper). A thread stages a chunk's keys, then claims their places with one atomic add per
  // interval. All is allocated here, before the parallel region: an exception inside it would end
  // the process.
  const int64_t gather_limit = std::max<int64_t>(n / 64, 1 << 16);
  std::vector<std::unique_ptr<Key[]>> gathered;
  for (int j = 0; j < used; ++j) gathered.emplace_back(new Key[size_t(gather_limit)]);
  const int threads = omp_get_max_threads();
  const std::unique_ptr<Key[]> staging(new Key[size_t(threads) * kMaxIntervals * kChunk]);
  std::atomic<int64_t> filled[kMaxIntervals]{};
  std::atomic<bool> overflow{false};
  std::vector<int64_t> below(kMaxIntervals, 0);
  Key lo = std::numeric_limits<Key>::max(), hi = 0;
  // A chunk's staged keys claim their places with one atomic add per interval.
  auto claim_staged = [&](const Key* staged, const int64_t* staged_count) {
    for (int j = 0; j < used; ++j) {
      if (staged_count[j] == 0) continue;
      const int64_t at = filled[j].fetch_add(staged_count[j], std::memory_order_relaxed);
      if (at + staged_count[j] > gather_limit)
        overflow.store(true, std::memory_order_relaxed);
      else
        std::copy_n(staged + j * kChunk, staged_count[j], gathered[size_t(j)].get() + at);
    }
  };
  dispatch_isa([&](auto isa) {
    constexpr Isa kIsa = decltype(isa)::value;
#pragma omp parallel num_threads(threads)
    {
      Key* staged = staging.get() + size_t(omp_get_thread_num()) * kMaxIntervals * kChunk;  // kChunk per interval
      int64_t my_below[kMaxIntervals] = {};
      Key my_lo = std::numeric_limits<Key>::max(), my_hi = 0;
      uint8_t inside[kChunk + 64] = {};  // 64 flags read at a time: those past `len` are masked off
      // One chunk's counts, with its keys inside the intervals staged: from the comparison masks
      // (AVX-512 and AVX2, keys up to 32 bits, whole vectors), else from the flags ScanChunk writes.
      auto scan_chunk = [&](int64_t start, int64_t len, int64_t* staged_count) -> ChunkCounts<Key> {
#if defined(QUBD_X86_ISAS)
        if constexpr (kIsa != Isa::Baseline && sizeof(Key) <= 4) {
          constexpr bool kAvx512 = kIsa == Isa::Avx512;
          constexpr int64_t kLanes = kAvx512 ? Avx512Lanes<Key>::kCount : Avx2Lanes<Key>::kCount;
          if (len % kLanes == 0)
            return kAvx512 ? avx512_scan_and_stage(bits + start, len, in, staged, staged_count)
                           : avx2_scan_and_stage(bits + start, len, in, staged, staged_count);
        }
#endif
        const ChunkCounts<Key> c = run_for_isa<kIsa, ScanChunk<Stored>>(bits + start, len, in, inside);
        // The flags 64 at a time; the few keys inside are staged by interval. Meanwhile the next
        // chunk is prefetched into L2, a cache line per line of keys read here: this loop makes no
        // memory traffic of its own (float32 8192^2: 60 -> 45 ms).
        const char* ahead = reinterpret_cast<const char*>(bits + std::min(start + kChunk, n));
        const char* const ahead_end = reinterpret_cast<const char*>(bits + n);
        for (int64_t i = 0; i < len; i += 64) {
          for (size_t line = 0; line < sizeof(Key) && ahead < ahead_end; ++line, ahead += 64)
            __builtin_prefetch(ahead, 0, 2);
          uint64_t hits = nonzero_flags(inside + i);
          if (len - i < 64) hits &= (uint64_t(1) << (len - i)) - 1;
          for (; hits != 0; hits &= hits - 1) {
            const Key k = Keys::of_bits(bits[start + i + __builtin_ctzll(hits)]);
            for (int j = 0; j < used; ++j)
              if (k >= in[j].a && k <= in[j].b) staged[j * kChunk + staged_count[j]++] = k;
          }
        }
        return c;
      };
#pragma omp for schedule(static)
      for (int64_t start = 0; start < n; start += kChunk) {
        if (overflow.load(std::memory_order_relaxed)) continue;  // the answer comes from radix selection
        const int64_t len = std::min(kChunk, n - start);
        int64_t staged_count[kMaxIntervals] = {};
        const ChunkCounts<Key> c = scan_chunk(start, len, staged_count);
        for (int j = 0; j < kMaxIntervals; ++j) my_below[j] += c.below[j];
        my_lo = std::min(my_lo, c.lo);
        my_hi = std::max(my_hi, c.hi);
        claim_staged(staged, staged_count);
      }
#pragma omp critical
      {
        for (int j = 0; j < kMaxIntervals; ++j) below[size_t(j)] += my_below[j];
        lo = std::min(lo, my_lo);
        hi = std::max(hi, my_hi);
      }
    }
    return 0;
  });
  if (overflow) return std::nullopt;  // counts are partial: prove nothing from them
  if (!Keys::finite(lo) || !Keys::finite(hi)) throw std::domain_error("weights contain NaN or Inf values");

  // Each rank from its interval's keys: by counting them where the interval spans few keys (16-bit
  // floats' tails; bf16 8192^2 clipping: nth_element took ~2 of 9.7 ms, the counts are not seen in
  // a profile), else by nth_element.
  std::vector<double> values;
  std::vector<std::vector<uint32_t>> key_counts(static_cast<size_t>(kMaxIntervals));
  for (int64_t r : ranks) {
    int j = 0;
    while (j < used && !(r >= below[size_t(j)] && r < below[size_t(j)] + filled[j])) ++j;
    if (j == used) return std::nullopt;
    Key* keys = gathered[size_t(j)].get();
    const int64_t inside_rank = r - below[size_t(j)];
    const uint64_t span = uint64_t(in[j].b) - uint64_t(in[j].a);
    if (span >= kCountedSpan) {
      std::nth_element(keys, keys + inside_rank, keys + filled[j]);
      values.push_back(double(Keys::value(keys[inside_rank])));
      continue;
    }
    std::vector<uint32_t>& counts = key_counts[size_t(j)];
    if (counts.empty()) {
      counts.assign(size_t(span) + 1, 0);
      for (int64_t i = 0; i < filled[j]; ++i) ++counts[size_t(keys[i] - in[j].a)];
    }
    int64_t seen = 0;
    size_t offset = 0;
    while (seen + counts[offset] <= inside_rank) seen += counts[offset++];
    values.push_back(double(Keys::value(Key(in[j].a + offset))));
  }
  return values;
}

}  // namespace bracket
}  // namespace qubd::cpu
