// The pybind11 module qubd._C: the native CPU kernels over raw buffers (no torch at build time).
// qubd/backends/native.py passes contiguous tensors' data pointers and dtype codes.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <omp.h>

#include <cstring>

#include "cpu/isa.h"
#include "cpu/kernels.h"

namespace py = pybind11;
using qubd::DType;

namespace {

template <typename T>
T* ptr(uintptr_t address) {
  return reinterpret_cast<T*>(address);
}

}  // namespace

PYBIND11_MODULE(_C, m) {
  m.doc() = "qubd native CPU kernels";
  py::register_exception<std::domain_error>(m, "NonFiniteError", PyExc_ValueError);
  auto release = py::call_guard<py::gil_scoped_release>();

  m.def(
      "quantize_to_grid",
      [](uintptr_t weights, int dtype, int64_t n, double lo, double delta, int bits, uintptr_t codes) {
        qubd::cpu::quantize_to_grid(ptr<const void>(weights), DType(dtype), n, lo, delta, bits, ptr<void>(codes));
      },
      release);
  m.def(
      "weight_histograms",
      [](uintptr_t weights, int dtype, int64_t rows, int64_t cols, double lo, double delta, int bits,
         uintptr_t histograms) {
        qubd::cpu::weight_histograms(ptr<const void>(weights), DType(dtype), rows, cols, lo, delta, bits,
                                     ptr<int64_t>(histograms));
      },
      release);
  m.def(
      "weight_scores",
      [](uintptr_t weights, int dtype, int64_t rows, int64_t cols, double lo, double delta, int bits, uintptr_t ctm16,
         uintptr_t scores, uintptr_t ones) {  // ones: 0 for none
        qubd::cpu::weight_scores(ptr<const void>(weights), DType(dtype), rows, cols, lo, delta, bits,
                                 ptr<const double>(ctm16), ptr<double>(scores), ptr<int64_t>(ones));
      },
      release);
  m.def(
      "code_histograms",
      [](uintptr_t codes, int dtype, int64_t rows, int64_t cols, int bits, uintptr_t histograms) {
        qubd::cpu::code_histograms(ptr<const void>(codes), DType(dtype), rows, cols, bits, ptr<int64_t>(histograms));
      },
      release);
  m.def(
      "value_bounds",
      [](const std::vector<uintptr_t>& values, const std::vector<int>& dtypes, const std::vector<int64_t>& counts,
         uintptr_t out) {
        for (size_t i = 0; i < values.size(); ++i)
          qubd::cpu::value_bounds(ptr<const void>(values[i]), DType(dtypes.at(i)), counts.at(i), ptr<double>(out) + 2 * i);
      },
      release);
  m.def(
      "order_statistics",
      [](uintptr_t values, int dtype, int64_t n, const std::vector<int64_t>& ranks) {
        return qubd::cpu::order_statistics(ptr<const void>(values), DType(dtype), n, ranks);
      },
      release);
  m.def(
      "order_statistics_batched",
      [](const std::vector<uintptr_t>& values, const std::vector<int>& dtypes, const std::vector<int64_t>& counts,
         const std::vector<std::vector<int64_t>>& ranks, uintptr_t out) {
        std::vector<const void*> pointers;
        std::vector<DType> types;
        for (uintptr_t v : values) pointers.push_back(ptr<const void>(v));
        for (int d : dtypes) types.push_back(DType(d));
        qubd::cpu::order_statistics_batched(pointers, types, counts, ranks, ptr<double>(out));
      },
      release);
  m.def(
      "radix_digit_counts",
      [](uintptr_t values, int dtype, int64_t n, const std::vector<int64_t>& prefixes, int fixed_bits,
         int digit_bits, uintptr_t counts) {
        qubd::cpu::radix_digit_counts(ptr<const void>(values), DType(dtype), n, prefixes, fixed_bits, digit_bits,
                                      ptr<int64_t>(counts));
      },
      release);
  m.def(
      "ctm_score",
      [](uintptr_t histograms, int planes, uintptr_t ctm16, uintptr_t scores) {
        qubd::cpu::ctm_score(ptr<const int64_t>(histograms), planes, ptr<const double>(ctm16), ptr<double>(scores));
      },
      release);
  m.def(
      "kary_block_counts",
      [](uintptr_t data, int64_t n, int length, int nsymbols, uintptr_t codes, uintptr_t counts) {
        return qubd::cpu::kary_block_counts(ptr<const uint8_t>(data), n, length, nsymbols, ptr<int64_t>(codes),
                                            ptr<int64_t>(counts));
      },
      release);
  m.def(
      "normalise_kary_codes",
      [](uintptr_t codes, int64_t count, int length, int nsymbols, uintptr_t out) {
        qubd::cpu::normalise_kary_codes(ptr<const int64_t>(codes), count, length, nsymbols, ptr<int64_t>(out));
      },
      release);
  m.def(
      "build_ctm_hash",
      [](uintptr_t keys, uintptr_t value_ids, int64_t size, int log2_slots, uintptr_t slots) {
        qubd::cpu::build_ctm_hash(ptr<const int64_t>(keys), ptr<const uint16_t>(value_ids), size, log2_slots,
                                  ptr<uint64_t>(slots));
      },
      release);
  m.def(
      "ctm_hash_lookup",
      [](uintptr_t slots, int log2_slots, uintptr_t palette, uintptr_t queries, int64_t count, uintptr_t out) {
        qubd::cpu::ctm_hash_lookup(ptr<const uint64_t>(slots), log2_slots, ptr<const double>(palette),
                                   ptr<const int64_t>(queries), count, ptr<double>(out));
      },
      release);
  m.def(
      "repr_rows",
      [](uintptr_t values, int64_t rows, int64_t cols, const std::vector<std::string>& pieces) {
        for (const std::string& piece : pieces)
          for (unsigned char c : piece)
            if (c >= 0x80) throw std::invalid_argument("the pieces must be ASCII");
        std::string text;
        std::vector<int64_t> ends;
        qubd::cpu::repr_rows(ptr<const double>(values), rows, cols, pieces, text, ends);
        py::list out(rows);
        int64_t start = 0;
        for (int64_t r = 0; r < rows; ++r) {  // ASCII: copied as it is, not decoded as UTF-8
          PyObject* row = PyUnicode_New(static_cast<Py_ssize_t>(ends[r] - start), 127);
          if (row == nullptr) throw py::error_already_set();
          std::memcpy(PyUnicode_1BYTE_DATA(row), text.data() + start, ends[r] - start);
          out[r] = py::reinterpret_steal<py::str>(row);
          start = ends[r];
        }
        return out;
      });
  m.def("supported_isas", &qubd::cpu::supported_isas,
        "Instruction sets this CPU can run the kernels with, 'baseline' first and the best last.");
  m.def("set_isa", &qubd::cpu::set_isa,
        "Run the kernels with this instruction set (one of supported_isas(); for tests and benchmarks).");
  m.def("get_num_threads", []() { return omp_get_max_threads(); });
  m.def("set_num_threads", [](int n) { omp_set_num_threads(n); });
}
