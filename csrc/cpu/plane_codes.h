// All bit-plane codes of one 4x4 block at once, from 8-bit slices of its cells' codes.
#pragma once

#include <cstdint>

#include "qubd/block_code.h"

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace qubd::cpu {

// `rows[r]` holds cells (r, 0..3) of the block as bytes, in memory order (cell c at byte c).
// Writes the codes of the slice's planes 0..planes-1 to `out`.
inline void plane_codes(const uint32_t rows[4], int planes, uint16_t* out) {
#if defined(__SSE2__)
  // Put cell k = 4r + c into byte lane 15 - k: movemask then gathers bit 7 of each lane into bit
  // 15 - k of the code, and a left shift by 7 - p first brings plane p to bit 7.
  const __m128i cells = _mm_set_epi32(int(__builtin_bswap32(rows[0])), int(__builtin_bswap32(rows[1])),
                                      int(__builtin_bswap32(rows[2])), int(__builtin_bswap32(rows[3])));
  for (int p = 0; p < planes; ++p)
    out[p] = uint16_t(_mm_movemask_epi8(_mm_sll_epi16(cells, _mm_cvtsi32_si128(7 - p))));
#else
  uint32_t cell_values[kBlockCells];
  for (int r = 0; r < kBlockSide; ++r)
    for (int c = 0; c < kBlockSide; ++c) cell_values[kBlockSide * r + c] = (rows[r] >> (8 * c)) & 0xFFu;
  for (int p = 0; p < planes; ++p) out[p] = uint16_t(plane_code(cell_values, p));
#endif
}

}  // namespace qubd::cpu
