#include "eqntk/io/array.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>

#include "eqntk/error.hpp"
#include "eqntk/io/idx.hpp"
#include "eqntk/io/npy.hpp"
#include "file_bytes.hpp"

namespace eqntk::io {
namespace {

constexpr std::string_view kNpyMagic = "\x93NUMPY";

bool starts_with_npy_magic(std::span<const std::byte> bytes) {
  if (bytes.size() < kNpyMagic.size()) return false;
  for (std::size_t i = 0; i < kNpyMagic.size(); ++i) {
    if (bytes[i] != static_cast<std::byte>(kNpyMagic[i])) return false;
  }
  return true;
}

bool starts_with_idx_magic(std::span<const std::byte> bytes) {
  return bytes.size() >= 2 && bytes[0] == std::byte{0} && bytes[1] == std::byte{0};
}

std::string hex_prefix(std::span<const std::byte> bytes) {
  std::string s;
  for (std::size_t i = 0; i < bytes.size() && i < 4; ++i) {
    char buf[4];
    std::snprintf(buf, sizeof buf, "%02x", static_cast<unsigned>(bytes[i]));
    if (i > 0) s += ' ';
    s += buf;
  }
  return s;
}

}  // namespace

std::int64_t itemsize(DType dtype) {
  switch (dtype) {
    case DType::i1:
    case DType::u1:
    case DType::b1:
      return 1;
    case DType::i2:
    case DType::u2:
      return 2;
    case DType::f4:
    case DType::i4:
    case DType::u4:
      return 4;
    case DType::f8:
    case DType::i8:
    case DType::u8:
      return 8;
    case DType::c16:
      return 16;
  }
  throw InvalidArgument("unknown DType");
}

bool is_integer(DType dtype) {
  return dtype != DType::f4 && dtype != DType::f8 && dtype != DType::c16;
}

bool is_complex(DType dtype) {
  return dtype == DType::c16;
}

std::string_view npy_descr(DType dtype) {
  switch (dtype) {
    case DType::f4:
      return "<f4";
    case DType::f8:
      return "<f8";
    case DType::i1:
      return "|i1";
    case DType::i2:
      return "<i2";
    case DType::i4:
      return "<i4";
    case DType::i8:
      return "<i8";
    case DType::u1:
      return "|u1";
    case DType::u2:
      return "<u2";
    case DType::u4:
      return "<u4";
    case DType::u8:
      return "<u8";
    case DType::b1:
      return "|b1";
    case DType::c16:
      return "<c16";
  }
  throw InvalidArgument("unknown DType");
}

std::int64_t element_count(std::span<const std::int64_t> shape) {
  std::int64_t n = 1;
  for (const std::int64_t d : shape) {
    if (d < 0) throw InvalidArgument("shape " + detail::shape_text(shape) + " has a negative dimension");
    if (!detail::checked_mul(n, d, n)) {
      throw InvalidArgument("shape " + detail::shape_text(shape) + " has more elements than fit in int64");
    }
  }
  return n;
}

std::vector<double> Array::to_real() const {
  if (is_complex()) throw InvalidArgument("complex (" + std::string(npy_descr(dtype)) + ") values cannot be used as real values");
  if (!is_integer()) return real;
  constexpr std::int64_t kExact = std::int64_t{1} << 53;  // every integer up to 2^53 is a double
  std::vector<double> out;
  out.reserve(integer.size());
  for (const std::int64_t v : integer) {
    if (v > kExact || v < -kExact) {
      throw InvalidArgument("integer value " + std::to_string(v) + " cannot be converted to double exactly");
    }
    out.push_back(static_cast<double>(v));
  }
  return out;
}

Array load_array(const std::filesystem::path& path) {
  const auto head = detail::read_file_prefix(path, 8);
  if (starts_with_npy_magic(head)) return read_npy(path);
  if (detail::has_gzip_magic(head)) {
    const std::string name = path.string();
    const auto bytes = detail::gunzip(detail::read_file_bytes(path), name);
    if (starts_with_npy_magic(bytes)) return parse_npy(bytes, name);
    if (starts_with_idx_magic(bytes)) return parse_idx(bytes, name);
    detail::fail(name, bytes.empty()
                           ? "gzip stream decompresses to nothing; expected IDX or .npy content"
                           : "gzip content is neither IDX nor .npy (leading bytes " + hex_prefix(bytes) + ")");
  }
  if (starts_with_idx_magic(head)) return read_idx(path);
  detail::fail(path.string(), head.empty() ? "empty file; expected a .npy or IDX file"
                                           : "not a .npy, IDX or gzip file (leading bytes " + hex_prefix(head) + ")");
}

std::int64_t ArrayRows::row_elements() const {
  std::int64_t n = 1;
  for (std::size_t d = 1; d < shape.size(); ++d) n *= shape[d];
  return n;
}

ArrayRows ArrayRows::select(const Shape& shape, DType dtype, std::endian order, std::span<const std::int64_t> rows,
                            std::string_view name) {
  if (shape.empty()) throw InvalidArgument(detail::quoted(name) + " holds a scalar, not rows");
  for (std::size_t r = 0; r < rows.size(); ++r)
    if (rows[r] < 0 || rows[r] >= shape[0] || (r > 0 && rows[r] <= rows[r - 1]))
      throw InvalidArgument(detail::quoted(name) + ": row selection must be increasing within [0, " +
                            std::to_string(shape[0]) + "), got " + std::to_string(rows[r]) + " at position " +
                            std::to_string(r));
  ArrayRows a;
  a.shape = shape;
  a.dtype = dtype;
  a.order = order;
  a.rows.assign(rows.begin(), rows.end());
  return a;
}

void ArrayRows::decode_row(std::size_t r, double* out) const {
  const std::int64_t n = row_elements();
  Array tmp;
  tmp.dtype = dtype;
  const std::span<const std::byte> row(bytes.data() + static_cast<std::int64_t>(r) * row_bytes(),
                                       static_cast<std::size_t>(row_bytes()));
  detail::decode_elements(row, dtype, order, tmp, "row data");
  tmp.shape = {n};
  const std::vector<double> v = tmp.to_real();
  std::copy(v.begin(), v.end(), out);
}

ArrayInfo peek_array(const std::filesystem::path& path) {
  const auto head = detail::read_file_prefix(path, 8);
  if (starts_with_npy_magic(head)) {
    const NpyHeader h = read_npy_header(path);
    return {h.shape, h.dtype};
  }
  if (detail::has_gzip_magic(head)) {
    detail::GzipReader z(path);
    std::vector<std::byte> inner(8);
    inner.resize(z.read(inner.data(), inner.size()));
    if (starts_with_npy_magic(inner)) {
      const ArrayRows none = read_npy_rows(path, {});
      return {none.shape, none.dtype};
    }
    if (starts_with_idx_magic(inner)) {
      const IdxHeader h = read_idx_header(path);
      return {h.shape, h.dtype};
    }
    detail::fail(path.string(), inner.empty()
                                    ? "gzip stream decompresses to nothing; expected IDX or .npy content"
                                    : "gzip content is neither IDX nor .npy (leading bytes " + hex_prefix(inner) + ")");
  }
  if (starts_with_idx_magic(head)) {
    const IdxHeader h = read_idx_header(path);
    return {h.shape, h.dtype};
  }
  detail::fail(path.string(), head.empty() ? "empty file; expected a .npy or IDX file"
                                           : "not a .npy, IDX or gzip file (leading bytes " + hex_prefix(head) + ")");
}

ArrayRows load_array_rows(const std::filesystem::path& path, std::span<const std::int64_t> rows) {
  const auto head = detail::read_file_prefix(path, 8);
  bool npy = starts_with_npy_magic(head), idx = starts_with_idx_magic(head);
  if (detail::has_gzip_magic(head)) {
    detail::GzipReader z(path);
    std::vector<std::byte> inner(8);
    inner.resize(z.read(inner.data(), inner.size()));
    npy = starts_with_npy_magic(inner);
    idx = starts_with_idx_magic(inner);
  }
  if (npy) return read_npy_rows(path, rows);
  if (idx) return read_idx_rows(path, rows);
  (void)peek_array(path);  // throws the message that names what the content is
  detail::fail(path.string(), "unreadable content");
}

}  // namespace eqntk::io
