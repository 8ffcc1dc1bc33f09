// Calling a kernel template with the C++ type of a storage dtype.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>

#include "qubd/elements.h"

namespace qubd::cpu {

template <typename Fn>
auto dispatch_float(DType dtype, Fn&& fn) {
  switch (dtype) {
    case DType::F32: return fn(float{});
    case DType::F64: return fn(double{});
    case DType::F16: return fn(Half{});
    case DType::BF16: return fn(BFloat16{});
    default: throw std::invalid_argument("expected a floating dtype, got dtype code " + std::to_string(int(dtype)));
  }
}

template <typename Fn>
auto dispatch_integer(DType dtype, Fn&& fn) {
  switch (dtype) {
    case DType::U8:
    case DType::BOOL: return fn(uint8_t{});
    case DType::I16: return fn(int16_t{});
    case DType::I32: return fn(int32_t{});
    case DType::I64: return fn(int64_t{});
    default: throw std::invalid_argument("expected an integer dtype, got dtype code " + std::to_string(int(dtype)));
  }
}

}  // namespace qubd::cpu
