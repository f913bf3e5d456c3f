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

// The bytes of one selected row land in `out` while the content streams past: rows sorted increasing.
class RowCollector {
 public:
  RowCollector(ArrayRows& out, std::int64_t data_start) : out_(out), start_(data_start) {
    row_bytes_ = out.row_bytes();
    out_.bytes.resize(static_cast<std::size_t>(row_bytes_ * static_cast<std::int64_t>(out.rows.size())));
  }
  // Content bytes [pos, pos + n) are in `chunk`.
  void take(const std::byte* chunk, std::int64_t pos, std::int64_t n) {
    while (next_ < out_.rows.size()) {
      const std::int64_t r0 = start_ + out_.rows[next_] * row_bytes_, r1 = r0 + row_bytes_;
      const std::int64_t a = std::max(r0, pos), b = std::min(r1, pos + n);
      if (a >= pos + n) return;  // the row starts after this chunk
      if (a < b)
        std::memcpy(out_.bytes.data() + static_cast<std::int64_t>(next_) * row_bytes_ + (a - r0), chunk + (a - pos),
                    static_cast<std::size_t>(b - a));
      if (r1 > pos + n) return;  // the row continues in the next chunk
      ++next_;
    }
  }

 private:
  ArrayRows& out_;
  std::int64_t start_, row_bytes_ = 0;
  std::size_t next_ = 0;
};

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

GzipReader::GzipReader(const std::filesystem::path& path) : name_(path.string()) {
  file_size_ = check_regular_file(path);
  file_ = open_for_reading(path).release();
  auto* zs = new z_stream{};
  zs_ = zs;
  if (inflateInit2(zs, 15 + 16) != Z_OK) fail(name_, "cannot initialise zlib");  // 15+16: gzip wrapper only
  in_.resize(std::size_t{1} << 20);
}

GzipReader::~GzipReader() {
  auto* zs = static_cast<z_stream*>(zs_);
  inflateEnd(zs);
  delete zs;
  if (file_ != nullptr) std::fclose(file_);
}

// Moves unread input to the front of the buffer and tops it up from the file. False at end of file.
bool GzipReader::refill() {
  auto* zs = static_cast<z_stream*>(zs_);
  if (input_eof_) return false;
  const std::size_t keep = zs->avail_in;
  if (keep > 0) std::memmove(in_.data(), zs->next_in, keep);
  const std::size_t got = std::fread(in_.data() + keep, 1, in_.size() - keep, file_);
  if (std::ferror(file_)) fail(name_, "read error");
  if (got == 0) input_eof_ = true;
  zs->next_in = reinterpret_cast<Bytef*>(in_.data());
  zs->avail_in = static_cast<uInt>(keep + got);
  return got > 0;
}

std::size_t GzipReader::read(std::byte* dst, std::size_t n) {
  auto* zs = static_cast<z_stream*>(zs_);
  std::size_t filled = 0;
  while (filled < n && !done_) {
    if (zs->avail_in == 0) refill();
    zs->next_out = reinterpret_cast<Bytef*>(dst + filled);
    zs->avail_out = static_cast<uInt>(std::min<std::size_t>(n - filled, std::size_t{1} << 30));
    const uInt in_before = zs->avail_in;
    const int ret = inflate(zs, Z_NO_FLUSH);
    consumed_ += in_before - zs->avail_in;
    filled = static_cast<std::size_t>(reinterpret_cast<std::byte*>(zs->next_out) - dst);
    if (ret == Z_STREAM_END) {
      // Concatenated gzip members form one valid stream (as gzip -d accepts); anything else is not data.
      if (zs->avail_in < 2) refill();
      if (zs->avail_in == 0) {
        done_ = true;
        break;
      }
      const std::span<const std::byte> rest(reinterpret_cast<const std::byte*>(zs->next_in), zs->avail_in);
      if (has_gzip_magic(rest)) {
        inflateReset(zs);
        continue;
      }
      fail(name_, "unexpected bytes after the end of the gzip stream (at compressed offset " + std::to_string(consumed_) +
                      " of " + std::to_string(file_size_) + ")");
    }
    if (ret == Z_OK) continue;
    if (ret == Z_BUF_ERROR) {
      if (zs->avail_in == 0 && !refill())
        fail(name_, "truncated gzip stream (compressed data ends before the end of the stream)");
      continue;
    }
    if (ret == Z_MEM_ERROR) fail(name_, "out of memory while decompressing gzip data");
    fail(name_, std::string("corrupt gzip data: ") + (zs->msg != nullptr ? zs->msg : "invalid stream"));
  }
  return filled;
}

void read_rows_at(const std::filesystem::path& path, std::int64_t data_offset, ArrayRows& out) {
  auto f = open_for_reading(path);
  const std::int64_t row_bytes = out.row_bytes();
  out.bytes.resize(static_cast<std::size_t>(row_bytes * static_cast<std::int64_t>(out.rows.size())));
  for (std::size_t r = 0; r < out.rows.size(); ++r) {
    const std::int64_t at = data_offset + out.rows[r] * row_bytes;
    if (::fseeko(f.get(), static_cast<off_t>(at), SEEK_SET) != 0 ||
        std::fread(out.bytes.data() + static_cast<std::int64_t>(r) * row_bytes, 1, static_cast<std::size_t>(row_bytes),
                   f.get()) != static_cast<std::size_t>(row_bytes))
      fail(path.string(), "read error at byte " + std::to_string(at) + " (file changed while being read?)");
  }
}

std::int64_t collect_rows(GzipReader& z, std::vector<std::byte>& chunk, std::size_t got, std::int64_t data_offset,
                          ArrayRows& out) {
  RowCollector collect(out, data_offset);
  std::int64_t pos = 0;
  while (got > 0) {
    collect.take(chunk.data(), pos, static_cast<std::int64_t>(got));
    pos += static_cast<std::int64_t>(got);
    got = z.read(chunk.data(), chunk.size());
  }
  return pos;
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
