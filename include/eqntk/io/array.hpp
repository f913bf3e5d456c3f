// In-memory n-dimensional arrays read from data files (.npy, IDX), and content-based loading.
//
// An Array is a shape plus row-major (C order) values: the last index varies fastest, so element
// (i0, ..., i{n-1}) sits at flat index ((i0 * s1 + i1) * s2 + ...) * s{n-1} + i{n-1}.
// Floating dtypes (f4, f8) are stored widened to double in `real`; integer and bool dtypes in
// `integer` (bool as 0/1); complex128 (c16, .npy only) in `complex`. Exactly one of the vectors is filled;
// its length is size().
//
// Example: np.save("x.npy", np.arange(6, dtype=np.uint8).reshape(2, 3)) loads as
//   shape = {2, 3}, dtype = DType::u1, integer = {0, 1, 2, 3, 4, 5}, real = {}.
#pragma once

#include <complex>
#include <cstdint>
#include <filesystem>
#include <span>
#include <string_view>
#include <vector>

namespace eqntk::io {

/// Element types of the supported file formats, named like NumPy's (kind + bytes per element).
enum class DType { f4, f8, i1, i2, i4, i8, u1, u2, u4, u8, b1, c16 };

/// Dimensions, outermost first. A 0-d array (scalar) has an empty shape and one element.
using Shape = std::vector<std::int64_t>;

/// Bytes per element in the file: 1, 2, 4, 8 or 16.
[[nodiscard]] std::int64_t itemsize(DType dtype);
/// True for the integer and bool dtypes (values go to Array::integer), false for f4/f8/c16.
[[nodiscard]] bool is_integer(DType dtype);
/// True for c16 (values go to Array::complex).
[[nodiscard]] bool is_complex(DType dtype);
/// NumPy's little-endian descr for `dtype`, as written in .npy headers: "<f8", "|u1", "|b1", ...
[[nodiscard]] std::string_view npy_descr(DType dtype);

/// Number of elements of `shape` (1 for an empty shape). Throws InvalidArgument if a dimension is
/// negative or the product does not fit in std::int64_t.
[[nodiscard]] std::int64_t element_count(std::span<const std::int64_t> shape);

/// A dense row-major array; see the file comment for the layout.
struct Array {
  Shape shape;
  DType dtype = DType::f8;
  std::vector<double> real;           // f4, f8 (widened exactly to double)
  std::vector<std::int64_t> integer;  // i1..i8, u1..u8, b1 (0/1)
  std::vector<std::complex<double>> complex;  // c16

  [[nodiscard]] bool is_integer() const { return io::is_integer(dtype); }
  [[nodiscard]] bool is_complex() const { return io::is_complex(dtype); }
  /// Number of elements, the product of `shape`.
  [[nodiscard]] std::int64_t size() const { return element_count(shape); }
  /// The values as doubles: `real` itself, or `integer` converted. Throws InvalidArgument if an
  /// integer has magnitude above 2^53 (it would not convert exactly) or the array is complex.
  [[nodiscard]] std::vector<double> to_real() const;
};

/// Loads a .npy file or an IDX file (plain or gzip-compressed), recognised by its content (magic
/// bytes), never by its name: "\x93NUMPY" → .npy; 1f 8b → gzip, whose decompressed content must be
/// IDX or .npy; 00 00 <type> <ndims> → IDX. Not collective (call it on one rank and broadcast).
/// Throws IoError naming the file and the problem: missing or unreadable file, unknown content,
/// and every error of read_npy / read_idx.
[[nodiscard]] Array load_array(const std::filesystem::path& path);

}  // namespace eqntk::io
