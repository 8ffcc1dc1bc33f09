// 4x4 block codes of bit-planes (docs/design.md 1.1).
// Cell (r, c) of a block is bit 15 - (4r + c) of its 16-bit code, so the code written in binary is
// pybdm's row-major key string. Plane p of a block's 16 quantised cells is the code of bit p.
#pragma once

#include <cstdint>

#include "qubd/elements.h"

namespace qubd {

constexpr int kBlockSide = 4;
constexpr int kBlockCells = 16;
constexpr int kBlockCodes = 1 << 16;

// Code of bit-plane `plane` for a block whose cells (row-major, k = 4r + c) hold `cells[k]`.
inline uint32_t plane_code(const uint32_t* cells, int plane) {
  uint32_t code = 0;
  for (int k = 0; k < kBlockCells; ++k) code |= ((cells[k] >> plane) & 1u) << (kBlockCells - 1 - k);
  return code;
}

}  // namespace qubd
