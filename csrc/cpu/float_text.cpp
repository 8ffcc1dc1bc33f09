// Python's repr() of doubles, for JSON reports of many small tensors (qubd/report/tensor_json.py):
// CPython's dtoa costs ~0.35 us a double, std::to_chars (shortest round-trip digits) a tenth of it.
#include <charconv>
#include <cmath>
#include <cstring>
#include <stdexcept>

#include "cpu/kernels.h"

namespace qubd::cpu {

namespace {

constexpr int kMaxRepr = 32;  // "-d.dddddddddddddddde-308" and positional forms up to 1e16 fit

// repr(x) of a finite x, written at `out`; returns the end. The shortest digits that round-trip
// (the same digits as CPython's repr, which also picks the shortest, the one nearest x on a tie),
// laid out as CPython does: d.ddde+XX when the decimal exponent is < -4 or >= 16, else positional
// with at least one digit after the point.
char* write_repr(char* out, double x) {
  char buf[kMaxRepr];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), x, std::chars_format::scientific);
  if (ec != std::errc()) throw std::runtime_error("to_chars failed");
  const char* p = buf;
  if (*p == '-') *out++ = *p++;
  const char* e = static_cast<const char*>(std::memchr(p, 'e', end - p));
  int exponent = 0;
  std::from_chars(e + (e[1] == '+' ? 2 : 1), end, exponent);
  if (exponent < -4 || exponent >= 16) {  // to_chars writes the exponent as repr does: sign, >= 2 digits
    std::memcpy(out, p, end - p);
    return out + (end - p);
  }
  char digits[24];
  int n = 0;
  for (const char* c = p; c < e; ++c)
    if (*c != '.') digits[n++] = *c;
  int point = exponent + 1;  // digits before the decimal point
  if (point <= 0) {
    *out++ = '0';
    *out++ = '.';
    for (int i = 0; i < -point; ++i) *out++ = '0';
    std::memcpy(out, digits, n);
    return out + n;
  }
  if (point < n) {
    std::memcpy(out, digits, point);
    out[point] = '.';
    std::memcpy(out + point + 1, digits + point, n - point);
    return out + n + 1;
  }
  std::memcpy(out, digits, n);
  out += n;
  for (int i = n; i < point; ++i) *out++ = '0';
  *out++ = '.';
  *out++ = '0';
  return out;
}

}  // namespace

void repr_rows(const double* values, int64_t rows, int64_t cols, const std::vector<std::string>& pieces,
               std::string& text, std::vector<int64_t>& ends) {
  if (static_cast<int64_t>(pieces.size()) != cols + 1) throw std::invalid_argument("need cols + 1 pieces");
  size_t piece_chars = 0;
  for (const std::string& piece : pieces) piece_chars += piece.size();
  text.resize(static_cast<size_t>(rows) * (cols * kMaxRepr + piece_chars));
  ends.resize(rows);
  char* start = text.data();
  char* out = start;
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c <= cols; ++c) {
      std::memcpy(out, pieces[c].data(), pieces[c].size());
      out += pieces[c].size();
      if (c == cols) break;
      double x = values[r * cols + c];
      if (std::isnan(x)) {
        std::memcpy(out, "null", 4);
        out += 4;
      } else if (std::isinf(x)) {
        throw std::domain_error("an infinite value has no JSON number");
      } else {
        out = write_repr(out, x);
      }
    }
    ends[r] = out - start;
  }
  text.resize(out - start);
}

}  // namespace qubd::cpu
