#include "eqntk/io/idx.hpp"

#include <algorithm>
#include <cstdio>
#include <cstring>
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

// The header facts of IDX content whose first bytes are `head` (all of them, or at least the header).
// `where` is "file" or "decompressed content", for messages.
IdxHeader parse_header(std::span<const std::byte> head, std::int64_t total, std::string_view name,
                       const std::string& where) {
  if ((total >= 1 && head[0] != std::byte{0}) || (total >= 2 && head[1] != std::byte{0})) {
    fail(name, "not an IDX file (bad magic: the first two bytes must be 00 00)");
  }
  if (total < 4) fail(name, "truncated IDX header (" + where + " has only " + std::to_string(total) + " bytes)");

  IdxHeader h;
  const std::byte type = head[2];
  switch (static_cast<unsigned>(type)) {
    case 0x08:
      h.dtype = DType::u1;
      break;
    case 0x09:
      h.dtype = DType::i1;
      break;
    case 0x0B:
      h.dtype = DType::i2;
      break;
    case 0x0C:
      h.dtype = DType::i4;
      break;
    case 0x0D:
      h.dtype = DType::f4;
      break;
    case 0x0E:
      h.dtype = DType::f8;
      break;
    default:
      fail(name, "unknown IDX type code " + hex_byte(type) + " (expected 0x08, 0x09, 0x0B, 0x0C, 0x0D or 0x0E)");
  }
  const int ndims = static_cast<int>(head[3]);
  if (ndims == 0) fail(name, "IDX header declares 0 dimensions");
  h.header_bytes = 4 + 4 * std::int64_t{ndims};
  if (total < h.header_bytes) {
    fail(name, "truncated IDX header (" + std::to_string(ndims) + " dimensions need " + std::to_string(h.header_bytes) +
                   " header bytes, " + where + " has only " + std::to_string(total) + ")");
  }

  std::int64_t count = 1;
  bool overflow = false;
  for (int d = 0; d < ndims; ++d) {
    // The format says "32-bit integer, MSB first"; a set top bit is no plausible size, so read it signed.
    const auto dim = detail::load_scalar<std::int32_t>(head.data() + 4 + 4 * d, std::endian::big);
    h.shape.push_back(dim);
    if (dim < 0) overflow = true;
    if (!overflow && !detail::checked_mul(count, dim, count)) overflow = true;
  }
  for (const std::int64_t dim : h.shape) {
    if (dim < 0) fail(name, "negative dimension in IDX shape " + detail::shape_text(h.shape));
  }
  if (overflow || !detail::checked_mul(count, itemsize(h.dtype), h.data_bytes)) {
    fail(name, "IDX shape " + detail::shape_text(h.shape) + " has more elements than fit in int64");
  }
  return h;
}

// Checks that content of `total` bytes holds exactly the header and the data it declares.
void check_size(const IdxHeader& h, std::int64_t total, std::string_view name, const std::string& where) {
  const std::int64_t have = total - h.header_bytes;
  if (have < h.data_bytes) {
    fail(name, "truncated IDX data: shape " + detail::shape_text(h.shape) + " of " + std::string(npy_descr(h.dtype)) +
                   " needs " + std::to_string(h.data_bytes) + " data bytes, but the " + where + " has only " +
                   std::to_string(have) + " after the " + std::to_string(h.header_bytes) + "-byte header");
  }
  if (have > h.data_bytes) {
    fail(name, "size mismatch: " + std::to_string(have - h.data_bytes) + " unexpected trailing bytes after the " +
                   std::to_string(h.data_bytes) + " data bytes of IDX shape " + detail::shape_text(h.shape));
  }
}

// Parses uncompressed IDX content. `where` is "file" or "decompressed content", for messages.
Array parse_plain_idx(std::span<const std::byte> bytes, std::string_view name, const std::string& where) {
  const auto total = static_cast<std::int64_t>(bytes.size());
  const IdxHeader h = parse_header(bytes, total, name, where);
  check_size(h, total, name, where);
  Array a;
  a.dtype = h.dtype;
  a.shape = h.shape;
  const std::int64_t count = element_count(h.shape);
  if (a.is_integer()) {
    a.integer.reserve(static_cast<std::size_t>(count));
  } else {
    a.real.reserve(static_cast<std::size_t>(count));
  }
  detail::decode_elements(bytes.subspan(static_cast<std::size_t>(h.header_bytes)), a.dtype, std::endian::big, a, name);
  return a;
}

}  // namespace

IdxHeader read_idx_header(const std::filesystem::path& path) {
  const std::string name = path.string();
  auto head = detail::read_file_prefix(path, 4 + 4 * 255);
  std::string where = "file";
  std::int64_t total = detail::check_regular_file(path);
  const bool gz = detail::has_gzip_magic(head);
  if (gz) {
    detail::GzipReader z(path);
    head.resize(4 + 4 * 255);
    head.resize(z.read(head.data(), head.size()));
    total = static_cast<std::int64_t>(head.size());  // at least the header, when there is one
    where = "decompressed content";
  }
  IdxHeader h = parse_header(head, total, name, where);
  if (!gz) check_size(h, total, name, where);  // gzip: checked when the data is read
  return h;
}

ArrayRows read_idx_rows(const std::filesystem::path& path, std::span<const std::int64_t> rows) {
  const std::string name = path.string();
  const auto prefix = detail::read_file_prefix(path, 2);
  ArrayRows out;
  if (!detail::has_gzip_magic(prefix)) {
    const IdxHeader h = read_idx_header(path);  // size checked
    out = ArrayRows::select(h.shape, h.dtype, std::endian::big, rows, name);
    detail::read_rows_at(path, h.header_bytes, out);
    return out;
  }
  // Gzip: stream the whole content (the rows may be anywhere), keeping only the selected rows.
  detail::GzipReader z(path);
  std::vector<std::byte> chunk(std::size_t{1} << 20);
  std::size_t got = z.read(chunk.data(), chunk.size());
  const std::string where = "decompressed content";
  const IdxHeader h = parse_header(std::span<const std::byte>(chunk.data(), got), static_cast<std::int64_t>(got), name, where);
  out = ArrayRows::select(h.shape, h.dtype, std::endian::big, rows, name);
  check_size(h, detail::collect_rows(z, chunk, got, h.header_bytes, out), name, where);
  return out;
}

Array parse_idx(std::span<const std::byte> bytes, std::string_view name) {
  if (detail::has_gzip_magic(bytes)) return parse_plain_idx(detail::gunzip(bytes, name), name, "decompressed content");
  return parse_plain_idx(bytes, name, "file");
}

Array read_idx(const std::filesystem::path& path) {
  return parse_idx(detail::read_file_bytes(path), path.string());
}

}  // namespace eqntk::io
