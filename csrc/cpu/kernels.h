// The native CPU kernels behind qubd's primitive ops. Tensors arrive as raw, contiguous buffers.
#pragma once

#include <cstdint>
#include <vector>

#include "qubd/elements.h"

namespace qubd::cpu {

// codes[i] = quantised weights[i]; `codes` is uint8 when bits <= 8, else int32.
void quantize_to_grid(const void* weights, DType dtype, int64_t n, double lo, double delta, int bits, void* codes);

// int64 [bits, 65536] histograms of the 4x4 block codes of each bit-plane, for a rows x cols matrix
// of weights quantised on the fly, or of integer codes.
void weight_histograms(const void* weights, DType dtype, int64_t rows, int64_t cols, double lo, double delta,
                       int bits, int64_t* histograms);
void code_histograms(const void* codes, DType dtype, int64_t rows, int64_t cols, int bits, int64_t* histograms);

// scores[p] = sum over codes with n = histograms[p][code] > 0 of ctm16[code] + log2(n).
void ctm_score(const int64_t* histograms, int planes, const double* ctm16, double* scores);

// Sorted values at the given 0-based ranks (exact, by radix selection over the float bits), in the
// compute type (float values of float32/bf16/fp16 data, double of float64 data).
// Throws std::domain_error if the data hold NaN or Inf.
std::vector<double> order_statistics(const void* values, DType dtype, int64_t n, const std::vector<int64_t>& ranks);

}  // namespace qubd::cpu
