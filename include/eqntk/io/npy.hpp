// NumPy .npy files (format versions 1.0, 2.0, 3.0): reading into an Array, writing f8/i8 arrays.
//
// Layout of a .npy file (numpy.lib.format):
//   "\x93NUMPY" <major> <minor> <header length: uint16 LE (v1) or uint32 LE (v2, v3)>
//   <header: Python dict literal {'descr': '<f8', 'fortran_order': False, 'shape': (2, 3), }
//            padded with spaces and ended by '\n' so that the data starts at a multiple of 64>
//   <data: shape product × itemsize bytes, C order>
// Example: np.save of np.zeros((2, 3)) is a 128-byte header followed by 48 data bytes.
//
// Supported on reading: C order only; byte order '<' (or '|' / any for 1-byte types); dtypes
// <f4 <f8 |i1 <i2 <i4 <i8 |u1 <u2 <u4 <u8 |b1 <c16 (complex128, into Array::complex). Everything else is
// rejected with IoError.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>

#include "eqntk/io/array.hpp"

namespace eqntk::io {

/// What a .npy header says about the data that follows it.
struct NpyHeader {
  int major_version = 1;  // 1, 2 or 3
  DType dtype = DType::f8;
  Shape shape;
  std::int64_t data_offset = 0;  // bytes from the start of the file to the first element
};

/// Reads and validates only the header of a .npy file, and checks that the file size equals
/// data_offset + element_count(shape) × itemsize(dtype). Not collective.
/// Throws IoError (message names the file and the problem) for: missing/unreadable file, bad magic
/// (not a .npy file), unsupported version, malformed or oversized header, unsupported dtype,
/// big-endian data, fortran_order=True, negative or overflowing shape, truncated data, trailing bytes.
[[nodiscard]] NpyHeader read_npy_header(const std::filesystem::path& path);

/// Reads a whole .npy file; see the file comment for what is supported and read_npy_header for the
/// errors. A u8 value above INT64_MAX or a bool byte other than 0/1 is also an IoError. Not collective.
[[nodiscard]] Array read_npy(const std::filesystem::path& path);

/// Only the selected rows of a .npy file, plain (read in place) or gzip-compressed (streamed), with every
/// check of read_npy. Rows must be strictly increasing and in range.
[[nodiscard]] ArrayRows read_npy_rows(const std::filesystem::path& path, std::span<const std::int64_t> rows);

/// As read_npy, for .npy content already in memory; `name` stands for the file in error messages.
[[nodiscard]] Array parse_npy(std::span<const std::byte> bytes, std::string_view name);

/// The exact header bytes np.save writes for a C-order array of `shape` and `dtype` (version 1.0,
/// or 2.0 if the header would exceed 65535 bytes, as numpy does), including numpy's spare space
/// for growing the first axis; size is a multiple of 64. The element with row-major flat index k
/// then starts at byte header.size() + k × itemsize(dtype) — rank 0 writes this header and every
/// rank writes its own elements at those offsets in collective MPI-IO writes.
/// Throws InvalidArgument for a negative or overflowing shape.
[[nodiscard]] std::string npy_header(std::span<const std::int64_t> shape, DType dtype);

/// Writes `data` (row-major, data.size() == element_count(shape)) as a '<f8' .npy file at `path`,
/// atomically (through `<path>.partial`, see AtomicFile). Not collective.
/// Throws InvalidArgument for a bad shape or a size mismatch, IoError if the file cannot be written.
void write_npy(const std::filesystem::path& path, std::span<const std::int64_t> shape, std::span<const double> data);

/// As above for '<i8' data.
void write_npy(const std::filesystem::path& path, std::span<const std::int64_t> shape,
               std::span<const std::int64_t> data);

}  // namespace eqntk::io
