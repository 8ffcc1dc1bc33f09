// The bit-plane codes of the 4x4 blocks along a band of 4 rows of byte codes, all planes at once.
//
// Each block's 16 cells are put into the 16 bytes of a vector, cell k = 4r + c in byte 15 - k;
// plane p's code is then the top bit of every byte (movemask) after a left shift by 7 - p, or the
// AVX-512 byte test against 1 << p. Vectors of 2 (AVX2) or 4 (AVX-512) blocks give 2 or 4 codes
// per instruction, in block order.
#pragma once

#include <cstdint>
#include <cstring>

#include "isa.h"
#include "qubd/block_code.h"

#if defined(__SSE2__)
#include <emmintrin.h>
#endif
#if defined(QUBD_X86_ISAS)
#include <immintrin.h>
#endif

namespace qubd::cpu {

// Block j of the band: bytes 4j..4j+3 of each of the 4 rows. Writes plane p's code to out[p * stride].
inline void one_block_plane_codes(const uint8_t* const rows[4], int64_t j, int planes, uint16_t* out, int64_t stride) {
  uint32_t words[4];
  for (int r = 0; r < kBlockSide; ++r) std::memcpy(&words[r], rows[r] + 4 * j, 4);
#if defined(__SSE2__)
  const __m128i cells = _mm_set_epi32(int(__builtin_bswap32(words[0])), int(__builtin_bswap32(words[1])),
                                      int(__builtin_bswap32(words[2])), int(__builtin_bswap32(words[3])));
  for (int p = 0; p < planes; ++p)
    out[p * stride] = uint16_t(_mm_movemask_epi8(_mm_sll_epi16(cells, _mm_cvtsi32_si128(7 - p))));
#else
  uint32_t cell_values[kBlockCells];
  for (int r = 0; r < kBlockSide; ++r)
    for (int c = 0; c < kBlockSide; ++c) cell_values[kBlockSide * r + c] = (words[r] >> (8 * c)) & 0xFFu;
  for (int p = 0; p < planes; ++p) out[p * stride] = uint16_t(plane_code(cell_values, p));
#endif
}

inline void baseline_plane_codes(const uint8_t* const rows[4], int64_t first, int64_t blocks, int planes,
                                 uint16_t* out, int64_t stride) {
  for (int64_t j = first; j < blocks; ++j) one_block_plane_codes(rows, j, planes, out + j, stride);
}

#if defined(QUBD_X86_ISAS)
// 8 blocks from 32 bytes of each row: a 4x4 transpose of 32-bit words within each 128-bit lane
// gives the blocks as [0|4], [1|5], [2|6], [3|7]; lanes are regrouped to [0|1] .. [6|7] and each
// block's bytes reversed.
QUBD_TARGET_AVX2 inline void avx2_plane_codes(const uint8_t* const rows[4], int64_t blocks, int planes, uint16_t* out,
                                              int64_t stride) {
  const __m256i reverse = _mm256_set_epi8(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 0, 1, 2, 3, 4, 5, 6,
                                          7, 8, 9, 10, 11, 12, 13, 14, 15);
  int64_t j = 0;
  for (; j + 8 <= blocks; j += 8) {
    __m256i r[4];
    for (int k = 0; k < 4; ++k) r[k] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(rows[k] + 4 * j));
    const __m256i t0 = _mm256_unpacklo_epi32(r[0], r[1]), t1 = _mm256_unpacklo_epi32(r[2], r[3]);
    const __m256i t2 = _mm256_unpackhi_epi32(r[0], r[1]), t3 = _mm256_unpackhi_epi32(r[2], r[3]);
    const __m256i b04 = _mm256_unpacklo_epi64(t0, t1), b15 = _mm256_unpackhi_epi64(t0, t1);
    const __m256i b26 = _mm256_unpacklo_epi64(t2, t3), b37 = _mm256_unpackhi_epi64(t2, t3);
    const __m256i pairs[4] = {
        _mm256_shuffle_epi8(_mm256_permute2x128_si256(b04, b15, 0x20), reverse),
        _mm256_shuffle_epi8(_mm256_permute2x128_si256(b26, b37, 0x20), reverse),
        _mm256_shuffle_epi8(_mm256_permute2x128_si256(b04, b15, 0x31), reverse),
        _mm256_shuffle_epi8(_mm256_permute2x128_si256(b26, b37, 0x31), reverse)};
    for (int p = 0; p < planes; ++p) {
      const __m128i shift = _mm_cvtsi32_si128(7 - p);
      for (int k = 0; k < 4; ++k) {
        const uint32_t codes = uint32_t(_mm256_movemask_epi8(_mm256_sll_epi16(pairs[k], shift)));
        std::memcpy(out + p * stride + j + 2 * k, &codes, sizeof codes);
      }
    }
  }
  baseline_plane_codes(rows, j, blocks, planes, out, stride);
}

// 16 blocks from 64 bytes of each row: the same transpose within each 128-bit lane gives
// [0|4|8|12] .. [3|7|11|15]; a 4x4 transpose of the lanes makes [0..3] .. [12..15].
QUBD_TARGET_AVX512 inline void avx512_plane_codes(const uint8_t* const rows[4], int64_t blocks, int planes,
                                                  uint16_t* out, int64_t stride) {
  const __m512i reverse = _mm512_broadcast_i32x4(_mm_set_epi8(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15));
  int64_t j = 0;
  for (; j + 16 <= blocks; j += 16) {
    __m512i r[4];
    for (int k = 0; k < 4; ++k) r[k] = _mm512_loadu_si512(rows[k] + 4 * j);
    const __m512i t0 = _mm512_unpacklo_epi32(r[0], r[1]), t1 = _mm512_unpacklo_epi32(r[2], r[3]);
    const __m512i t2 = _mm512_unpackhi_epi32(r[0], r[1]), t3 = _mm512_unpackhi_epi32(r[2], r[3]);
    const __m512i b0 = _mm512_unpacklo_epi64(t0, t1), b1 = _mm512_unpackhi_epi64(t0, t1);
    const __m512i b2 = _mm512_unpacklo_epi64(t2, t3), b3 = _mm512_unpackhi_epi64(t2, t3);
    const __m512i s0 = _mm512_shuffle_i64x2(b0, b1, 0x44), s1 = _mm512_shuffle_i64x2(b2, b3, 0x44);
    const __m512i s2 = _mm512_shuffle_i64x2(b0, b1, 0xEE), s3 = _mm512_shuffle_i64x2(b2, b3, 0xEE);
    const __m512i quads[4] = {_mm512_shuffle_epi8(_mm512_shuffle_i64x2(s0, s1, 0x88), reverse),
                              _mm512_shuffle_epi8(_mm512_shuffle_i64x2(s0, s1, 0xDD), reverse),
                              _mm512_shuffle_epi8(_mm512_shuffle_i64x2(s2, s3, 0x88), reverse),
                              _mm512_shuffle_epi8(_mm512_shuffle_i64x2(s2, s3, 0xDD), reverse)};
    for (int p = 0; p < planes; ++p) {
      const __m512i bit = _mm512_set1_epi8(char(1 << p));
      for (int k = 0; k < 4; ++k) {
        const uint64_t codes = _mm512_test_epi8_mask(quads[k], bit);
        std::memcpy(out + p * stride + j + 4 * k, &codes, sizeof codes);
      }
    }
  }
  baseline_plane_codes(rows, j, blocks, planes, out, stride);
}
#endif

// Plane p's code of block j (columns 4j..4j+3 of `rows`) into out[p * stride + j], for planes
// 0..planes-1 (at most 8) and blocks 0..blocks-1.
template <Isa isa>
void band_plane_codes(const uint8_t* const rows[4], int64_t blocks, int planes, uint16_t* out, int64_t stride) {
#if defined(QUBD_X86_ISAS)
  if constexpr (isa == Isa::Avx512) return avx512_plane_codes(rows, blocks, planes, out, stride);
  if constexpr (isa == Isa::Avx2) return avx2_plane_codes(rows, blocks, planes, out, stride);
#endif
  baseline_plane_codes(rows, 0, blocks, planes, out, stride);
}

}  // namespace qubd::cpu
