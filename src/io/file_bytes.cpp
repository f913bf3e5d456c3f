#include "file_bytes.hpp"

#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <limits>
#include <memory>
#include <system_error>

#include "eqntk/error.hpp"

namespace eqntk::io::detail {
namespace {

struct FileCloser {
  void operator()(std::FILE* f) const { std::fclose(f); }
};
using FilePtr = std::unique_ptr<std::FILE, FileCloser>;

FilePtr open_for_reading(const std::filesystem::path& path) {
  errno = 0;
  FilePtr f(std::fopen(path.c_str(), "rb"));
  if (!f) fail(path.string(), std::string("cannot open for reading: ") + std::strerror(errno));
  return f;
}

// Appends n elements of file type T (byte order `order`) to dst, converted by `convert`. No reserve here:
// callers decode in chunks and reserve the total once (growing to the exact size per chunk is quadratic).
template <typename T, typename Dst, typename Convert>
void decode_as(std::span<const std::byte> bytes, std::endian order, std::vector<Dst>& dst, Convert convert) {
  const std::size_t n = bytes.size() / sizeof(T);
  for (std::size_t i = 0; i < n; ++i) dst.push_back(convert(load_scalar<T>(bytes.data() + i * sizeof(T), order)));
}

}  // namespace

std::string quoted(std::string_view name) {
  // Appending (rather than "'" + std::string(name)) avoids GCC 12's false -Wrestrict on operator+.
  std::string s;
  s.reserve(name.size() + 2);
  s += '\'';
  s += name;
  s += '\'';
  return s;
}
std::string quoted(const std::filesystem::path& path) {
  return quoted(std::string_view(path.native()));
}

void fail(std::string_view name, const std::string& problem) {
  throw IoError(quoted(name) + ": " + problem);
}

std::int64_t check_regular_file(const std::filesystem::path& path) {
  std::error_code ec;
  const auto st = std::filesystem::status(path, ec);
  if (ec || !std::filesystem::exists(st)) {
    const bool missing = !ec || ec == std::errc::no_such_file_or_directory;
    fail(path.string(), missing ? "no such file" : "cannot access: " + ec.message());
  }
  if (std::filesystem::is_directory(st)) fail(path.string(), "is a directory, not a file");
  if (!std::filesystem::is_regular_file(st)) fail(path.string(), "not a regular file");
  const auto size = std::filesystem::file_size(path, ec);
  if (ec) fail(path.string(), "cannot read the file size: " + ec.message());
  if (size > static_cast<std::uintmax_t>(std::numeric_limits<std::int64_t>::max()))
    fail(path.string(), "file too large");
  return static_cast<std::int64_t>(size);
}

std::vector<std::byte> read_file_bytes(const std::filesystem::path& path) {
  const std::int64_t size = check_regular_file(path);
  if (static_cast<std::uint64_t>(size) > std::numeric_limits<std::size_t>::max()) fail(path.string(), "file too large");
  auto f = open_for_reading(path);
  std::vector<std::byte> bytes(static_cast<std::size_t>(size));
  const std::size_t got = std::fread(bytes.data(), 1, bytes.size(), f.get());
  if (got != bytes.size() || std::ferror(f.get())) {
    fail(path.string(), "read error after " + std::to_string(got) + " of " + std::to_string(size) + " bytes");
  }
  // The file may have grown since its size was taken: that is a changing input, not data to trust.
  if (std::fgetc(f.get()) != EOF) fail(path.string(), "file changed while being read");
  return bytes;
}

std::vector<std::byte> read_file_prefix(const std::filesystem::path& path, std::size_t n) {
  const std::int64_t size = check_regular_file(path);
  auto f = open_for_reading(path);
  std::vector<std::byte> bytes(std::min<std::uint64_t>(n, static_cast<std::uint64_t>(size)));
  const std::size_t got = std::fread(bytes.data(), 1, bytes.size(), f.get());
  if (std::ferror(f.get())) fail(path.string(), "read error");
  bytes.resize(got);
  return bytes;
}

std::vector<std::byte> gunzip(std::span<const std::byte> in, std::string_view name) {
  z_stream zs{};
  if (inflateInit2(&zs, 15 + 16) != Z_OK) fail(name, "cannot initialise zlib");  // 15+16: gzip wrapper only
  struct End {
    z_stream* z;
    ~End() { inflateEnd(z); }
  } end{&zs};

  std::vector<std::byte> out;
  // The gzip trailer holds the uncompressed size mod 2^32; trust it only as far as deflate's maximum
  // ratio (~1032:1) and 1 GiB allow, so a corrupt trailer cannot force a huge allocation.
  if (in.size() >= 18) {
    const auto isize = load_scalar<std::uint32_t>(in.data() + in.size() - 4, std::endian::little);
    const std::uint64_t cap =
        std::min<std::uint64_t>(std::uint64_t{1} << 30, 1032 * static_cast<std::uint64_t>(in.size()));
    out.reserve(static_cast<std::size_t>(std::min<std::uint64_t>(isize, cap)));
  }

  constexpr std::size_t kChunk = std::size_t{1} << 20;
  constexpr std::size_t kMaxFeed = std::size_t{1} << 30;  // avail_in is a 32-bit uInt
  std::size_t fed = 0;                                    // bytes of `in` handed to zlib so far
  while (true) {
    if (zs.avail_in == 0 && fed < in.size()) {
      const std::size_t n = std::min(in.size() - fed, kMaxFeed);
      zs.next_in = reinterpret_cast<Bytef*>(const_cast<std::byte*>(in.data() + fed));
      zs.avail_in = static_cast<uInt>(n);
      fed += n;
    }
    const std::size_t old = out.size();
    out.resize(old + kChunk);
    zs.next_out = reinterpret_cast<Bytef*>(out.data() + old);
    zs.avail_out = static_cast<uInt>(kChunk);
    const int ret = inflate(&zs, Z_NO_FLUSH);
    out.resize(old + kChunk - zs.avail_out);

    const std::size_t consumed = fed - zs.avail_in;
    if (ret == Z_STREAM_END) {
      if (consumed == in.size()) break;
      // Concatenated gzip members form one valid stream (as gzip -d accepts); anything else is not data.
      if (has_gzip_magic(in.subspan(consumed))) {
        inflateReset(&zs);
        continue;
      }
      fail(name, "unexpected bytes after the end of the gzip stream (at compressed offset " + std::to_string(consumed) +
                     " of " + std::to_string(in.size()) + ")");
    }
    if (ret == Z_OK) continue;
    if (ret == Z_BUF_ERROR && zs.avail_in == 0 && fed == in.size()) {
      fail(name, "truncated gzip stream (compressed data ends before the end of the stream)");
    }
    if (ret == Z_BUF_ERROR) continue;
    if (ret == Z_MEM_ERROR) fail(name, "out of memory while decompressing gzip data");
    fail(name, std::string("corrupt gzip data: ") + (zs.msg != nullptr ? zs.msg : "invalid stream"));
  }
  out.shrink_to_fit();
  return out;
}

std::string shape_text(std::span<const std::int64_t> shape) {
  std::string s = "(";
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (i > 0) s += ", ";
    s += std::to_string(shape[i]);
  }
  if (shape.size() == 1) s += ",";
  return s + ")";
}

void decode_elements(std::span<const std::byte> bytes, DType dtype, std::endian order, Array& out,
                     std::string_view name) {
  const auto same = [](auto v) { return v; };
  const auto to_double = [](auto v) { return static_cast<double>(v); };
  const auto to_i64 = [](auto v) { return static_cast<std::int64_t>(v); };
  switch (dtype) {
    case DType::f4:
      return decode_as<float>(bytes, order, out.real, to_double);
    case DType::f8:
      return decode_as<double>(bytes, order, out.real, same);
    case DType::i1:
      return decode_as<std::int8_t>(bytes, order, out.integer, to_i64);
    case DType::i2:
      return decode_as<std::int16_t>(bytes, order, out.integer, to_i64);
    case DType::i4:
      return decode_as<std::int32_t>(bytes, order, out.integer, to_i64);
    case DType::i8:
      return decode_as<std::int64_t>(bytes, order, out.integer, same);
    case DType::u1:
      return decode_as<std::uint8_t>(bytes, order, out.integer, to_i64);
    case DType::u2:
      return decode_as<std::uint16_t>(bytes, order, out.integer, to_i64);
    case DType::u4:
      return decode_as<std::uint32_t>(bytes, order, out.integer, to_i64);
    case DType::u8:
      return decode_as<std::uint64_t>(bytes, order, out.integer, [&](std::uint64_t v) {
        if (v > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
          fail(name, "uint64 value " + std::to_string(v) + " does not fit in int64");
        }
        return static_cast<std::int64_t>(v);
      });
    case DType::b1:
      return decode_as<std::uint8_t>(bytes, order, out.integer, [&](std::uint8_t v) {
        if (v > 1) fail(name, "bool element has byte value " + std::to_string(v) + " (expected 0 or 1)");
        return static_cast<std::int64_t>(v);
      });
    case DType::c16: {
      // Real and imaginary parts are two consecutive doubles, each in `order`.
      const std::size_t n = bytes.size() / 16;
      for (std::size_t i = 0; i < n; ++i)
        out.complex.emplace_back(load_scalar<double>(bytes.data() + 16 * i, order),
                                 load_scalar<double>(bytes.data() + 16 * i + 8, order));
      return;
    }
  }
  fail(name, "internal error: unknown dtype");
}

}  // namespace eqntk::io::detail
