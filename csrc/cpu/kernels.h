// The native CPU kernels behind qubd's primitive ops. Tensors arrive as raw, contiguous buffers.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "qubd/elements.h"

namespace qubd::cpu {

// codes[i] = quantised weights[i]; `codes` is uint8 when bits <= 8, else int32.
void quantize_to_grid(const void* weights, DType dtype, int64_t n, double lo, double delta, int bits, void* codes);

// int64 [bits, 65536] histograms of the 4x4 block codes of each bit-plane, for a rows x cols matrix
// of weights quantised on the fly, or of integer codes.
void weight_histograms(const void* weights, DType dtype, int64_t rows, int64_t cols, double lo, double delta,
                       int bits, int64_t* histograms);
// scores = ctm_score(weight_histograms(...)), the same doubles, computed without dense histograms
// for matrices of few blocks (the many small tensors of conv nets and mixture-of-experts models).
// Unless `ones` is null, ones[p] = the ones of plane p over the whole matrix (edge cells included).
void weight_scores(const void* weights, DType dtype, int64_t rows, int64_t cols, double lo, double delta, int bits,
                   const double* ctm16, double* scores, int64_t* ones);
void code_histograms(const void* codes, DType dtype, int64_t rows, int64_t cols, int bits, int64_t* histograms);

// scores[p] = sum over codes with n = histograms[p][code] > 0 of ctm16[code] + log2(n).
void ctm_score(const int64_t* histograms, int planes, const double* ctm16, double* scores);

// lo_hi = {smallest, largest} of n values as doubles, zeros as +0.0, in one pass. NaN sorts beyond
// the infinities, so both bounds are finite exactly when every value is.
void value_bounds(const void* values, DType dtype, int64_t n, double* lo_hi);

// Sorted values at the given 0-based ranks (exact: bracketed by a sample and proven by counts, or by
// radix selection over the float bits), in the
// compute type (float values of float32/bf16/fp16 data, double of float64 data).
// Throws std::domain_error if the data hold NaN or Inf.
std::vector<double> order_statistics(const void* values, DType dtype, int64_t n, const std::vector<int64_t>& ranks);
// order_statistics of each tensor t (counts[t] values) at ranks[t], as doubles, one tensor after
// another into `out` (room for every rank); NaN at every rank of a tensor holding NaN or Inf.
void order_statistics_batched(const std::vector<const void*>& values, const std::vector<DType>& dtypes,
                              const std::vector<int64_t>& counts, const std::vector<std::vector<int64_t>>& ranks,
                              double* out);

// counts[i][d] = how many of the n values' order-preserving keys (float_keys.h: 16, 32 or 64 bits
// by dtype) have their top fixed_bits equal to prefixes[i] and the next digit_bits (1..16) equal to
// d: one step of a radix selection over values held by many processes, whose counts add up.
void radix_digit_counts(const void* values, DType dtype, int64_t n, const std::vector<int64_t>& prefixes,
                        int fixed_bits, int digit_bits, int64_t* counts);

// k-ary blocks of `length` symbols as base-`nsymbols` codes, first symbol most significant.
// kary_block_counts: the distinct codes (ascending) of the n / length non-overlapping blocks of
// `data`, and how often each occurs, into `codes` and `counts` (room for n / length each); returns
// how many are distinct.
int64_t kary_block_counts(const uint8_t* data, int64_t n, int length, int nsymbols, int64_t* codes,
                          int64_t* counts);
// out[u] = codes[u] with its symbols relabelled 0, 1, ... in order of first appearance.
void normalise_kary_codes(const int64_t* codes, int64_t count, int length, int nsymbols, int64_t* out);
// Open-addressing hash table of a CTM table (linear probing, 2**log2_slots slots, a few times
// `size`): slot = (key + 1) << 16 | value_ids[j] for keys[j] < 2**47, 0 where empty.
void build_ctm_hash(const int64_t* keys, const uint16_t* value_ids, int64_t size, int log2_slots,
                    uint64_t* slots);
// out[i] = palette[value id of queries[i]] (queries >= 0), NaN for queries absent from the table.
void ctm_hash_lookup(const uint64_t* slots, int log2_slots, const double* palette, const int64_t* queries,
                     int64_t count, double* out);

// Each row of a rows x cols matrix of doubles as text: pieces[0], the first number, pieces[1], ...,
// the last number, pieces[cols]; each number written as Python's repr() writes it (json.dumps
// too), NaN as null. The rows one after another in `text`, row r ending at ends[r]. Throws
// std::domain_error at an infinity.
void repr_rows(const double* values, int64_t rows, int64_t cols, const std::vector<std::string>& pieces,
               std::string& text, std::vector<int64_t>& ends);

}  // namespace qubd::cpu
