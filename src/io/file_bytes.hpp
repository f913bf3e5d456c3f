// Private helpers of the io module: whole-file reads, gzip inflation, error messages, byte decoding.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "eqntk/io/array.hpp"

namespace eqntk::io::detail {

/// "'<name>'", the form in which files appear in messages.
[[nodiscard]] std::string quoted(std::string_view name);
[[nodiscard]] std::string quoted(const std::filesystem::path& path);

/// Throws IoError "'<name>': <problem>".
[[noreturn]] void fail(std::string_view name, const std::string& problem);

/// Throws IoError unless `path` is an existing regular file (after symlinks); returns its size.
std::int64_t check_regular_file(const std::filesystem::path& path);

/// The whole content of a regular file. Throws IoError naming the file on any failure.
[[nodiscard]] std::vector<std::byte> read_file_bytes(const std::filesystem::path& path);

/// Up to `n` leading bytes of a regular file (fewer if the file is shorter).
[[nodiscard]] std::vector<std::byte> read_file_prefix(const std::filesystem::path& path, std::size_t n);

[[nodiscard]] inline bool has_gzip_magic(std::span<const std::byte> bytes) {
  return bytes.size() >= 2 && bytes[0] == std::byte{0x1f} && bytes[1] == std::byte{0x8b};
}

/// Decompresses a complete gzip stream (one or more members). Throws IoError naming `name` if the
/// data is corrupt, truncated, or followed by non-gzip bytes.
[[nodiscard]] std::vector<std::byte> gunzip(std::span<const std::byte> bytes, std::string_view name);

/// Streams the decompressed content of a gzip file (one or more members) without holding it: read()
/// fills up to n bytes and returns fewer only at the end of the stream. Throws IoError naming the file
/// for corrupt or truncated data or non-gzip bytes after a member (the checks of gunzip()).
class GzipReader {
 public:
  explicit GzipReader(const std::filesystem::path& path);
  ~GzipReader();
  GzipReader(const GzipReader&) = delete;
  GzipReader& operator=(const GzipReader&) = delete;
  std::size_t read(std::byte* dst, std::size_t n);

 private:
  bool refill();
  std::string name_;
  std::FILE* file_ = nullptr;
  void* zs_ = nullptr;  // z_stream (zlib.h stays out of this header)
  std::vector<std::byte> in_;
  std::int64_t consumed_ = 0, file_size_ = 0;
  bool done_ = false, input_eof_ = false;
};

/// Fills out.bytes with the selected rows of an uncompressed file whose data (C order) starts at byte
/// data_offset, reading each row in place (pread). The file size must have been checked.
void read_rows_at(const std::filesystem::path& path, std::int64_t data_offset, ArrayRows& out);

/// Streams the content of `z` whose first `got` bytes are already in `chunk` (the buffer it reuses),
/// copying the selected rows of the C-order data that starts at data_offset into out.bytes (sized here).
/// Returns the total size of the content, for the caller's size check.
std::int64_t collect_rows(GzipReader& z, std::vector<std::byte>& chunk, std::size_t got, std::int64_t data_offset,
                          ArrayRows& out);

/// "(2, 3)" — a shape written as in numpy messages.
[[nodiscard]] std::string shape_text(std::span<const std::int64_t> shape);

/// a × b, or false if it overflows std::int64_t (a, b ≥ 0).
[[nodiscard]] inline bool checked_mul(std::int64_t a, std::int64_t b, std::int64_t& out) {
  return !__builtin_mul_overflow(a, b, &out);
}

/// Reads a T stored with the given byte order at `p` (no alignment needed).
template <typename T>
[[nodiscard]] inline T load_scalar(const std::byte* p, std::endian order) {
  static_assert(std::endian::native == std::endian::little || std::endian::native == std::endian::big);
  unsigned char raw[sizeof(T)];
  std::memcpy(raw, p, sizeof(T));
  if (order != std::endian::native) {
    for (std::size_t i = 0; i < sizeof(T) / 2; ++i) std::swap(raw[i], raw[sizeof(T) - 1 - i]);
  }
  T value;
  std::memcpy(&value, raw, sizeof(T));
  return value;
}

/// Decodes bytes.size() / itemsize(dtype) elements stored with byte order `order` and appends them to
/// out.real, out.integer or out.complex (by dtype). Throws IoError naming `name` for a u8 value above INT64_MAX or
/// a bool byte other than 0/1. bytes.size() must be a multiple of itemsize(dtype).
void decode_elements(std::span<const std::byte> bytes, DType dtype, std::endian order, Array& out,
                     std::string_view name);

}  // namespace eqntk::io::detail
