#include "eqntk/io/idx.hpp"

#include <cstdio>
#include <string>

#include "eqntk/error.hpp"
#include "file_bytes.hpp"

namespace eqntk::io {
namespace {

using detail::fail;

std::string hex_byte(std::byte b) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "0x%02X", static_cast<unsigned>(b));
  return buf;
}

// Parses uncompressed IDX content. `where` is "file" or "decompressed content", for messages.
Array parse_plain_idx(std::span<const std::byte> bytes, std::string_view name, const std::string& where) {
  const auto total = static_cast<std::int64_t>(bytes.size());
  if ((total >= 1 && bytes[0] != std::byte{0}) || (total >= 2 && bytes[1] != std::byte{0})) {
    fail(name, "not an IDX file (bad magic: the first two bytes must be 00 00)");
  }
  if (total < 4) fail(name, "truncated IDX header (" + where + " has only " + std::to_string(total) + " bytes)");

  Array a;
  const std::byte type = bytes[2];
  switch (static_cast<unsigned>(type)) {
    case 0x08:
      a.dtype = DType::u1;
      break;
    case 0x09:
      a.dtype = DType::i1;
      break;
    case 0x0B:
      a.dtype = DType::i2;
      break;
    case 0x0C:
      a.dtype = DType::i4;
      break;
    case 0x0D:
      a.dtype = DType::f4;
      break;
    case 0x0E:
      a.dtype = DType::f8;
      break;
    default:
      fail(name, "unknown IDX type code " + hex_byte(type) + " (expected 0x08, 0x09, 0x0B, 0x0C, 0x0D or 0x0E)");
  }
  const int ndims = static_cast<int>(bytes[3]);
  if (ndims == 0) fail(name, "IDX header declares 0 dimensions");
  const std::int64_t header = 4 + 4 * std::int64_t{ndims};
  if (total < header) {
    fail(name, "truncated IDX header (" + std::to_string(ndims) + " dimensions need " + std::to_string(header) +
                   " header bytes, " + where + " has only " + std::to_string(total) + ")");
  }

  std::int64_t count = 1;
  bool overflow = false;
  for (int d = 0; d < ndims; ++d) {
    // The format says "32-bit integer, MSB first"; a set top bit is no plausible size, so read it signed.
    const auto dim = detail::load_scalar<std::int32_t>(bytes.data() + 4 + 4 * d, std::endian::big);
    a.shape.push_back(dim);
    if (dim < 0) overflow = true;
    if (!overflow && !detail::checked_mul(count, dim, count)) overflow = true;
  }
  for (const std::int64_t dim : a.shape) {
    if (dim < 0) fail(name, "negative dimension in IDX shape " + detail::shape_text(a.shape));
  }
  std::int64_t data_bytes = 0;
  if (overflow || !detail::checked_mul(count, itemsize(a.dtype), data_bytes)) {
    fail(name, "IDX shape " + detail::shape_text(a.shape) + " has more elements than fit in int64");
  }
  const std::int64_t have = total - header;
  if (have < data_bytes) {
    fail(name, "truncated IDX data: shape " + detail::shape_text(a.shape) + " of " + std::string(npy_descr(a.dtype)) +
                   " needs " + std::to_string(data_bytes) + " data bytes, but the " + where + " has only " +
                   std::to_string(have) + " after the " + std::to_string(header) + "-byte header");
  }
  if (have > data_bytes) {
    fail(name, "size mismatch: " + std::to_string(have - data_bytes) + " unexpected trailing bytes after the " +
                   std::to_string(data_bytes) + " data bytes of IDX shape " + detail::shape_text(a.shape));
  }

  if (a.is_integer()) {
    a.integer.reserve(static_cast<std::size_t>(count));
  } else {
    a.real.reserve(static_cast<std::size_t>(count));
  }
  detail::decode_elements(bytes.subspan(static_cast<std::size_t>(header)), a.dtype, std::endian::big, a, name);
  return a;
}

}  // namespace

Array parse_idx(std::span<const std::byte> bytes, std::string_view name) {
  if (detail::has_gzip_magic(bytes)) return parse_plain_idx(detail::gunzip(bytes, name), name, "decompressed content");
  return parse_plain_idx(bytes, name, "file");
}

Array read_idx(const std::filesystem::path& path) {
  return parse_idx(detail::read_file_bytes(path), path.string());
}

}  // namespace eqntk::io
