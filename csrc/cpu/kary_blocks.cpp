// k-ary 1D BDM with the ignore partition: count the raw blocks, normalise their codes, look the
// normalised codes up in a hash table of a CTM table. A block of `length` symbols is the base-k
// integer with its first symbol most significant (qubd/bdm/blocks.py).
#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <type_traits>
#include <vector>

#include "kernels.h"

namespace qubd::cpu {
namespace {

constexpr int kMaxSymbols = 16;
constexpr int kMaxLength = 16;  // normalise() keeps a block in a 64-bit word, 4 bits a position

void check_alphabet(int length, int nsymbols) {
  if (nsymbols < 2 || nsymbols > kMaxSymbols || length < 1 || length > kMaxLength ||
      std::pow(double(nsymbols), length) >= std::pow(2.0, 63)) {
    throw std::invalid_argument("k-ary block kernels need 2 <= nsymbols <= 16, length <= 16, codes < 2**63");
  }
}

// Number of bits of the largest key.
int key_bits(const std::vector<uint64_t>& keys) {
  uint64_t top = 0;
  for (uint64_t key : keys) top |= key;
  int bits = 0;
  while (top >> bits) ++bits;
  return bits;
}

// fn(std::integral_constant<int, K>) with K = nsymbols for the alphabets of the CTM tables (the
// compiler then divides and multiplies by a constant), K = 0 for others.
template <typename Fn>
void with_alphabet(int nsymbols, Fn&& fn) {
  switch (nsymbols) {
    case 2: return fn(std::integral_constant<int, 2>{});
    case 4: return fn(std::integral_constant<int, 4>{});
    case 5: return fn(std::integral_constant<int, 5>{});
    case 6: return fn(std::integral_constant<int, 6>{});
    case 9: return fn(std::integral_constant<int, 9>{});
    default: return fn(std::integral_constant<int, 0>{});
  }
}

// codes[b] = the base-k code of block b of `data`.
inline void encode(const uint8_t* data, int64_t blocks, int length, uint64_t k, std::vector<uint64_t>& codes) {
  for (int64_t b = 0; b < blocks; ++b) {
    const uint8_t* block = data + b * length;
    uint64_t code = 0;
    for (int i = 0; i < length; ++i) code = code * k + block[i];
    codes[b] = code;
  }
}

// LSD radix sort in as few passes of at most 12 bits as the largest key needs.
void radix_sort(std::vector<uint64_t>& keys) {
  constexpr int kMaxRadixBits = 12;
  const int bits = key_bits(keys);
  const int passes = (bits + kMaxRadixBits - 1) / kMaxRadixBits;
  const int width = passes > 0 ? (bits + passes - 1) / passes : 1;
  const uint64_t digit = (uint64_t(1) << width) - 1;
  std::vector<uint64_t> sorted(keys.size());
  std::vector<size_t> start(digit + 2);
  for (int shift = 0; shift < bits; shift += width) {
    std::fill(start.begin(), start.end(), 0);
    for (uint64_t key : keys) ++start[(key >> shift & digit) + 1];
    for (uint64_t d = 0; d <= digit; ++d) start[d + 1] += start[d];
    for (uint64_t key : keys) sorted[start[key >> shift & digit]++] = key;
    keys.swap(sorted);
  }
}

// A block held as one nibble per position (position i in nibble i).
constexpr uint64_t kNibbleOnes = 0x1111111111111111ull;
constexpr uint64_t kNibbleLows = 0x7777777777777777ull;
constexpr uint64_t kNibbleHighs = 0x8888888888888888ull;

// Codes and nibble blocks convert three positions at a time, through two small tables.
constexpr int kChunk = 3;
struct ChunkTables {
  std::vector<uint16_t> nibbles;  // [k**3]: the 3 digits of a value, its first (top) digit in the low nibble
  std::vector<uint16_t> values;   // [16**3]: the inverse (entries with a nibble >= k are unused)
};

ChunkTables chunk_tables(uint64_t k) {
  ChunkTables t{std::vector<uint16_t>(k * k * k), std::vector<uint16_t>(1 << 4 * kChunk)};
  for (uint64_t value = 0; value < k * k * k; ++value) {
    t.nibbles[value] = uint16_t(value / (k * k) | (value / k % k) << 4 | (value % k) << 8);
    t.values[t.nibbles[value]] = uint16_t(value);
  }
  return t;
}

// Relabel the symbols of each code in order of first appearance. K > 0 fixes the alphabet at
// compile time (division by a constant, unrolled loops); K == 0 takes `nsymbols` at run time.
// In registers, without branches (whether a symbol is new is unpredictable): `where` marks the
// positions of symbol s (the high bit of their nibbles), its lowest bit s's first appearance, and
// s's label is the number of first appearances before that.
template <int K>
void normalise(const int64_t* codes, int64_t count, int length, int nsymbols, int64_t* out) {
  const uint64_t k = K > 0 ? uint64_t(K) : uint64_t(nsymbols), k3 = k * k * k;
  const ChunkTables tables = chunk_tables(k);
  const uint64_t valid = length == kMaxLength ? kNibbleHighs : kNibbleHighs & ((uint64_t(1) << 4 * length) - 1);
  for (int64_t u = 0; u < count; ++u) {
    uint64_t code = uint64_t(codes[u]), block = 0;
    for (int end = length; end > 0; end -= kChunk) {  // positions [end - 3, end), the first maybe < 0
      const uint64_t nibbles = tables.nibbles[code % k3];
      code /= k3;
      const int at = 4 * (end - kChunk);
      block |= at >= 0 ? nibbles << at : nibbles >> -at;
    }
    uint64_t where[kMaxSymbols], firsts = 0;
    for (uint64_t s = 0; s < k; ++s) {
      const uint64_t x = block ^ (s * kNibbleOnes);  // nibbles holding s are 0
      where[s] = ~(((x & kNibbleLows) + kNibbleLows) | x) & valid;
      firsts |= where[s] & -where[s];
    }
    uint64_t relabelled = 0;
    for (uint64_t s = 0; s < k; ++s) {  // (an absent s has where[s] == 0 and adds nothing)
      const uint64_t first = where[s] & -where[s];
      const uint64_t label = ((firsts & (first - 1)) >> 3) * kNibbleOnes >> 60;  // sum of the nibbles
      relabelled += label * (where[s] >> 3);
    }
    uint64_t normalised = 0, place = 1;
    for (int end = length; end > 0; end -= kChunk, place *= k3) {
      const int at = 4 * (end - kChunk);
      normalised += tables.values[(at >= 0 ? relabelled >> at : relabelled << -at) & 0xfff] * place;
    }
    out[u] = int64_t(normalised);
  }
}

// Slot of a key in the CTM hash table (Fibonacci hashing).
inline uint64_t home_slot(uint64_t key, int log2_slots) {
  return (key * 0x9E3779B97F4A7C15ull) >> (64 - log2_slots);
}

}  // namespace

int64_t kary_block_counts(const uint8_t* data, int64_t n, int length, int nsymbols, int64_t* codes,
                          int64_t* counts) {
  check_alphabet(length, nsymbols);
  const int64_t blocks = n / length;
  std::vector<uint64_t> raw(blocks);
  with_alphabet(nsymbols, [&](auto fixed) { encode(data, blocks, length, fixed ? fixed : nsymbols, raw); });
  radix_sort(raw);
  int64_t distinct = 0;
  for (int64_t i = 0; i < blocks;) {
    int64_t j = i + 1;
    while (j < blocks && raw[j] == raw[i]) ++j;
    codes[distinct] = int64_t(raw[i]);
    counts[distinct] = j - i;
    ++distinct;
    i = j;
  }
  return distinct;
}

void normalise_kary_codes(const int64_t* codes, int64_t count, int length, int nsymbols, int64_t* out) {
  check_alphabet(length, nsymbols);
  with_alphabet(nsymbols, [&](auto fixed) { normalise<fixed.value>(codes, count, length, nsymbols, out); });
}

void build_ctm_hash(const int64_t* keys, const uint16_t* value_ids, int64_t size, int log2_slots,
                    uint64_t* slots) {
  const uint64_t mask = (uint64_t(1) << log2_slots) - 1;
  std::fill(slots, slots + mask + 1, 0);
  for (int64_t j = 0; j < size; ++j) {
    uint64_t at = home_slot(uint64_t(keys[j]), log2_slots);
    while (slots[at] != 0) at = (at + 1) & mask;
    slots[at] = (uint64_t(keys[j]) + 1) << 16 | value_ids[j];
  }
}

void ctm_hash_lookup(const uint64_t* slots, int log2_slots, const double* palette, const int64_t* queries,
                     int64_t count, double* out) {
  const uint64_t mask = (uint64_t(1) << log2_slots) - 1;
  constexpr int64_t kAhead = 16;  // slots are cache misses: fetch those of later queries meanwhile
  for (int64_t i = 0; i < count; ++i) {
    if (i + kAhead < count) __builtin_prefetch(slots + home_slot(uint64_t(queries[i + kAhead]), log2_slots));
    const uint64_t key = uint64_t(queries[i]);
    uint64_t at = home_slot(key, log2_slots), slot;
    while ((slot = slots[at]) != 0 && slot >> 16 != key + 1) at = (at + 1) & mask;
    out[i] = slot != 0 ? palette[slot & 0xffff] : std::numeric_limits<double>::quiet_NaN();
  }
}

}  // namespace qubd::cpu
