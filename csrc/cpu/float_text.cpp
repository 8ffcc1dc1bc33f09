// Python's repr() of doubles, for JSON reports of many small tensors (qubd/report/tensor_json.py):
// CPython's dtoa costs ~0.35 us a double, std::to_chars (shortest round-trip digits) a tenth of it.
#include <charconv>
#include <cmath>
#include <cstring>
#include <stdexcept>

#include "cpu/kernels.h"

namespace qubd::cpu {

namespace {

// repr(x) of a finite x, appended to `out`: the shortest digits that round-trip (the same digits
// as CPython's repr, which also picks the shortest, the one nearest x on a tie), laid out as CPython
// does: d.ddde+XX when the decimal exponent is < -4 or >= 16, else positional with at least one
// digit after the point.
void append_repr(std::string& out, double x) {
  char buf[32];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), x, std::chars_format::scientific);
  if (ec != std::errc()) throw std::runtime_error("to_chars failed");
  const char* p = buf;
  if (*p == '-') out.push_back(*p++);
  const char* e = static_cast<const char*>(std::memchr(p, 'e', end - p));
  int exponent = 0;
  std::from_chars(e + (e[1] == '+' ? 2 : 1), end, exponent);
  if (exponent < -4 || exponent >= 16) {  // to_chars writes the exponent as repr does: sign, >= 2 digits
    out.append(p, end - p);
    return;
  }
  char digits[24];
  int n = 0;
  for (const char* c = p; c < e; ++c)
    if (*c != '.') digits[n++] = *c;
  int point = exponent + 1;  // digits before the decimal point
  if (point <= 0) {
    out.append("0.");
    out.append(-point, '0');
    out.append(digits, n);
  } else if (point < n) {
    out.append(digits, point);
    out.push_back('.');
    out.append(digits + point, n - point);
  } else {
    out.append(digits, n);
    out.append(point - n, '0');
    out.append(".0");
  }
}

}  // namespace

std::vector<std::string> repr_rows(const double* values, int64_t rows, int64_t cols) {
  std::vector<std::string> out(rows);
  for (int64_t r = 0; r < rows; ++r) {
    std::string& row = out[r];
    row.reserve(cols * 22);
    for (int64_t c = 0; c < cols; ++c) {
      double x = values[r * cols + c];
      if (c) row.append(", ");
      if (std::isnan(x))
        row.append("null");
      else if (std::isinf(x))
        throw std::domain_error("an infinite value has no JSON number");
      else
        append_repr(row, x);
    }
  }
  return out;
}

}  // namespace qubd::cpu
