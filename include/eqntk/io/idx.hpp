// IDX files (the MNIST / Fashion-MNIST format), plain or gzip-compressed.
//
// Layout: 00 00 <type> <ndims>, then ndims big-endian int32 dimensions, then the elements in C order,
// big-endian. Types: 0x08 ubyte (DType::u1), 0x09 signed byte (i1), 0x0B int16 (i2), 0x0C int32 (i4),
// 0x0D float32 (f4), 0x0E float64 (f8).
// Example: t10k-labels-idx1-ubyte is 00 00 08 01 | 00 00 27 10 | 10000 label bytes → shape {10000}, u1;
// t10k-images-idx3-ubyte has ndims 3 → shape {10000, 28, 28}.
//
// Gzip is recognised by content (the 1f 8b magic), never by the file name; multi-member gzip streams
// are accepted.
#pragma once

#include <cstddef>
#include <filesystem>
#include <span>
#include <string_view>

#include "eqntk/io/array.hpp"

namespace eqntk::io {

/// Reads an IDX file, decompressing it first if it starts with the gzip magic. Not collective.
/// Throws IoError naming the file and the problem: missing/unreadable file, corrupt or truncated gzip
/// stream, bad magic (first two bytes not zero), unknown type code, zero dimensions, a negative or
/// overflowing dimension, truncated data, or trailing bytes after the data.
[[nodiscard]] Array read_idx(const std::filesystem::path& path);

/// What an IDX header declares.
struct IdxHeader {
  DType dtype = DType::u1;
  Shape shape;
  std::int64_t header_bytes = 0;  ///< 4 + 4·ndims: the data starts here
  std::int64_t data_bytes = 0;    ///< element_count(shape) × itemsize(dtype)
};

/// The header of an IDX file (plain or gzip). A plain file's size is checked against it here, a gzip
/// file's when its data is read. Throws IoError as read_idx.
[[nodiscard]] IdxHeader read_idx_header(const std::filesystem::path& path);

/// Only the selected rows of an IDX file (plain: read in place; gzip: decompressed as a stream, keeping
/// the selected rows), with every check of read_idx. Rows must be strictly increasing and in range.
[[nodiscard]] ArrayRows read_idx_rows(const std::filesystem::path& path, std::span<const std::int64_t> rows);

/// As read_idx for content already in memory (plain or gzip); `name` stands for the file in messages.
[[nodiscard]] Array parse_idx(std::span<const std::byte> bytes, std::string_view name);

}  // namespace eqntk::io
