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

#include <bit>
#include <complex>
#include <cstddef>
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

/// Selected rows (slices along the first axis) of an array file, kept compact in the file's element type
/// and byte order until decoded: a 500-image subset of a 60 000-image uint8 file holds 500 × 784 bytes.
struct ArrayRows {
  Shape shape;  ///< of the whole array in the file
  DType dtype = DType::f8;
  std::endian order = std::endian::little;
  std::vector<std::int64_t> rows;  ///< the selected rows, strictly increasing
  std::vector<std::byte> bytes;    ///< rows.size() × row_bytes(), in file order
  /// Elements per row: the product of shape[1..] (1 for a 1-D array).
  [[nodiscard]] std::int64_t row_elements() const;
  [[nodiscard]] std::int64_t row_bytes() const { return row_elements() * itemsize(dtype); }
  /// Decodes selected row r (an index into `rows`) into row_elements() doubles: floats widened exactly,
  /// integers converted. Throws InvalidArgument for complex data or an integer beyond 2^53.
  void decode_row(std::size_t r, double* out) const;
  /// Empty rows of an array of `shape`/`dtype`, with the selection checked: rank ≥ 1, rows strictly
  /// increasing and in [0, shape[0]). Throws InvalidArgument naming `name` otherwise.
  [[nodiscard]] static ArrayRows select(const Shape& shape, DType dtype, std::endian order,
                                        std::span<const std::int64_t> rows, std::string_view name);
};

/// Shape and element type of a .npy or IDX file (plain or gzip), from its header; the whole file is
/// validated when its rows are read. Not collective. Throws IoError as load_array.
struct ArrayInfo {
  Shape shape;
  DType dtype = DType::f8;
};
[[nodiscard]] ArrayInfo peek_array(const std::filesystem::path& path);

/// Reads only the selected rows of a .npy or IDX file (plain or gzip), streaming: memory is the selected
/// rows plus a 1 MiB buffer, never the whole file. Validates the file as load_array does (header,
/// truncation, trailing bytes) and throws the same errors, plus InvalidArgument for a bad selection.
[[nodiscard]] ArrayRows load_array_rows(const std::filesystem::path& path, std::span<const std::int64_t> rows);

/// Loads a .npy file or an IDX file (plain or gzip-compressed), recognised by its content (magic
/// bytes), never by its name: "\x93NUMPY" → .npy; 1f 8b → gzip, whose decompressed content must be
/// IDX or .npy; 00 00 <type> <ndims> → IDX. Not collective (call it on one rank and broadcast).
/// Throws IoError naming the file and the problem: missing or unreadable file, unknown content,
/// and every error of read_npy / read_idx.
[[nodiscard]] Array load_array(const std::filesystem::path& path);

}  // namespace eqntk::io
