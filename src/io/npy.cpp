#include "eqntk/io/npy.hpp"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <limits>
#include <memory>
#include <optional>

#include "eqntk/error.hpp"
#include "eqntk/io/atomic_file.hpp"
#include "file_bytes.hpp"

namespace eqntk::io {
namespace {

using detail::fail;

constexpr std::string_view kMagic = "\x93NUMPY";
constexpr std::int64_t kAlign = 64;                 // numpy's ARRAY_ALIGN
constexpr std::int64_t kGrowthAxisMaxDigits = 21;   // numpy's GROWTH_AXIS_MAX_DIGITS
constexpr std::int64_t kMaxHeaderLength = 1 << 20;  // far above anything numpy writes for our dtypes
constexpr std::string_view kSupported = "<f4 <f8 |i1 <i2 <i4 <i8 |u1 <u2 <u4 <u8 |b1 <c16";

// The fixed-size part before the header text.
struct Preamble {
  int major = 1;
  std::int64_t prefix_length = 10;  // magic + version + header-length field
  std::int64_t header_length = 0;
};

Preamble parse_preamble(std::span<const std::byte> head, std::int64_t total, std::string_view name) {
  const std::size_t n = std::min(head.size(), kMagic.size());
  for (std::size_t i = 0; i < n; ++i) {
    if (head[i] != static_cast<std::byte>(kMagic[i])) fail(name, "not a .npy file (bad magic; expected \\x93NUMPY)");
  }
  if (total < 10) fail(name, "truncated .npy header (file has only " + std::to_string(total) + " bytes)");
  Preamble p;
  p.major = static_cast<int>(head[6]);
  const int minor = static_cast<int>(head[7]);
  if (p.major < 1 || p.major > 3 || minor != 0) {
    fail(name, "unsupported .npy format version " + std::to_string(p.major) + "." + std::to_string(minor) +
                   " (supported: 1.0, 2.0, 3.0)");
  }
  if (p.major == 1) {
    p.header_length = detail::load_scalar<std::uint16_t>(head.data() + 8, std::endian::little);
  } else {
    p.prefix_length = 12;
    if (total < 12) fail(name, "truncated .npy header (file has only " + std::to_string(total) + " bytes)");
    p.header_length = detail::load_scalar<std::uint32_t>(head.data() + 8, std::endian::little);
  }
  if (p.header_length > kMaxHeaderLength) {
    fail(name, "implausible .npy header length " + std::to_string(p.header_length) + " (limit " +
                   std::to_string(kMaxHeaderLength) + ")");
  }
  if (p.prefix_length + p.header_length > total) {
    fail(name, "truncated .npy header (header length field says " + std::to_string(p.header_length) +
                   " bytes, but the file has only " + std::to_string(total - p.prefix_length) + " after the preamble)");
  }
  return p;
}

// One value of the header dict: a string, True/False, or a tuple of integers.
struct Value {
  enum class Kind { string, boolean, tuple } kind = Kind::string;
  std::string text;
  bool flag = false;
  std::vector<std::int64_t> ints;
};

// Parser for the Python dict literal numpy writes: {'key': value, ...} with optional trailing comma,
// followed by padding whitespace. Only the three keys numpy writes are accepted, each exactly once.
class HeaderParser {
 public:
  HeaderParser(std::string_view text, std::string_view name) : s_(text), name_(name) {}

  NpyHeader parse() {
    std::optional<Value> descr, fortran, shape;
    skip_ws();
    expect('{');
    skip_ws();
    while (peek() != '}') {
      const std::string key = parse_string("a quoted key");
      skip_ws();
      expect(':');
      skip_ws();
      std::optional<Value>* slot = key == "descr"           ? &descr
                                   : key == "fortran_order" ? &fortran
                                   : key == "shape"         ? &shape
                                                            : nullptr;
      if (slot == nullptr) bad("unexpected key '" + key + "' (expected descr, fortran_order, shape)");
      if (slot->has_value()) bad("duplicate key '" + key + "'");
      *slot = parse_value(key);
      skip_ws();
      if (peek() == ',') {
        ++i_;
        skip_ws();
      } else if (peek() != '}') {
        bad("expected ',' or '}'");
      }
    }
    ++i_;
    skip_ws();
    if (i_ != s_.size()) bad("unexpected text after the closing '}'");
    if (!descr) bad("missing key 'descr'");
    if (!fortran) bad("missing key 'fortran_order'");
    if (!shape) bad("missing key 'shape'");

    NpyHeader h;
    if (descr->kind != Value::Kind::string) bad("'descr' must be a string");
    h.dtype = parse_descr(descr->text);
    if (fortran->kind != Value::Kind::boolean) bad("'fortran_order' must be True or False");
    if (fortran->flag) {
      fail(name_,
           "Fortran-ordered arrays (fortran_order: True) are not supported; save a C-ordered array "
           "(np.ascontiguousarray)");
    }
    if (shape->kind != Value::Kind::tuple) bad("'shape' must be a tuple such as (2, 3) or (5,)");
    h.shape = shape->ints;
    return h;
  }

 private:
  [[noreturn]] void bad(const std::string& what) const {
    std::string shown(s_.substr(0, 200));
    while (!shown.empty() && (shown.back() == '\n' || shown.back() == ' ')) shown.pop_back();
    for (char& c : shown) {
      if (c == '\n' || c == '\r') c = ' ';
    }
    fail(name_, "malformed .npy header: " + what + " at offset " + std::to_string(i_) + " in \"" + shown + "\"");
  }

  char peek() const { return i_ < s_.size() ? s_[i_] : '\0'; }
  void skip_ws() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\n' || s_[i_] == '\r')) ++i_;
  }
  void expect(char c) {
    if (peek() != c) bad(std::string("expected '") + c + "'");
    ++i_;
  }

  std::string parse_string(const char* what) {
    const char quote = peek();
    if (quote != '\'' && quote != '"') bad(std::string("expected ") + what);
    const std::size_t start = ++i_;
    while (i_ < s_.size() && s_[i_] != quote) {
      if (s_[i_] == '\\' || s_[i_] == '\n') bad("unsupported character in string");
      ++i_;
    }
    if (i_ == s_.size()) bad("unterminated string");
    return std::string(s_.substr(start, i_++ - start));
  }

  bool keyword(std::string_view word) {
    if (s_.substr(i_, word.size()) != word) return false;
    i_ += word.size();
    return true;
  }

  std::int64_t parse_int() {
    const bool negative = peek() == '-';
    if (negative) ++i_;
    if (!std::isdigit(static_cast<unsigned char>(peek()))) bad("expected an integer");
    std::int64_t v = 0;
    while (std::isdigit(static_cast<unsigned char>(peek()))) {
      if (!detail::checked_mul(v, 10, v) || __builtin_add_overflow(v, s_[i_] - '0', &v)) {
        fail(name_, "shape dimension does not fit in int64 in .npy header");
      }
      ++i_;
    }
    if (peek() == 'L') ++i_;  // Python 2 long literal, as old numpy wrote it
    return negative ? -v : v;
  }

  Value parse_value(const std::string& key) {
    Value v;
    const char c = peek();
    if (c == '\'' || c == '"') {
      v.kind = Value::Kind::string;
      v.text = parse_string("a string");
    } else if (keyword("True")) {
      v.kind = Value::Kind::boolean;
      v.flag = true;
    } else if (keyword("False")) {
      v.kind = Value::Kind::boolean;
      v.flag = false;
    } else if (c == '(') {
      v.kind = Value::Kind::tuple;
      ++i_;
      skip_ws();
      bool trailing_comma = false;
      while (peek() != ')') {
        v.ints.push_back(parse_int());
        skip_ws();
        trailing_comma = peek() == ',';
        if (trailing_comma) {
          ++i_;
          skip_ws();
        } else if (peek() != ')') {
          bad("expected ',' or ')' in tuple");
        }
      }
      ++i_;
      // In Python "(5)" is the integer 5, not a tuple.
      if (v.ints.size() == 1 && !trailing_comma) bad("'shape' must be a tuple such as (5,), not (5)");
    } else if (c == '[' && key == "descr") {
      fail(name_, "structured dtypes (a list 'descr') are not supported; supported dtypes: " + std::string(kSupported));
    } else {
      bad("unsupported value for '" + key + "'");
    }
    return v;
  }

  DType parse_descr(const std::string& d) const {
    struct Named {
      std::string_view code;
      DType dtype;
    };
    constexpr Named kCodes[] = {{"f4", DType::f4}, {"f8", DType::f8}, {"i1", DType::i1}, {"i2", DType::i2},
                                {"i4", DType::i4}, {"i8", DType::i8}, {"u1", DType::u1}, {"u2", DType::u2},
                                {"u4", DType::u4}, {"u8", DType::u8}, {"b1", DType::b1},
                                {"c16", DType::c16}};
    const std::string_view code = d.size() >= 1 ? std::string_view(d).substr(1) : std::string_view();
    const char order = d.empty() ? '\0' : d[0];
    const auto it = std::find_if(std::begin(kCodes), std::end(kCodes), [&](const Named& n) { return n.code == code; });
    if (std::string_view("<>|=").find(order) == std::string_view::npos || order == '\0' || it == std::end(kCodes)) {
      fail(name_, "unsupported dtype '" + d + "' (supported: " + std::string(kSupported) + ")");
    }
    // A single byte has no byte order; for wider types only little-endian is accepted.
    if (itemsize(it->dtype) > 1) {
      if (order == '>') {
        fail(name_,
             "big-endian dtype '" + d + "' is not supported; convert with arr.astype('<" + std::string(code) + "')");
      }
      if (order != '<')
        fail(name_,
             "dtype '" + d + "' has no explicit little-endian byte order; expected '<" + std::string(code) + "'");
    }
    return it->dtype;
  }

  std::string_view s_;
  std::string_view name_;
  std::size_t i_ = 0;
};

void check_data_size(const NpyHeader& h, std::int64_t total, std::string_view name);

// Parses the header and, with check_size, checks that `total` (the file size) is exactly header + data.
NpyHeader parse_header(std::span<const std::byte> head, const Preamble& p, std::int64_t total, std::string_view name,
                       bool check_size = true) {
  const auto* text = reinterpret_cast<const char*>(head.data() + p.prefix_length);
  NpyHeader h = HeaderParser(std::string_view(text, static_cast<std::size_t>(p.header_length)), name).parse();
  h.major_version = p.major;
  h.data_offset = p.prefix_length + p.header_length;

  std::int64_t count = 1;
  for (const std::int64_t d : h.shape) {
    if (d < 0) fail(name, "negative dimension in shape " + detail::shape_text(h.shape));
    if (!detail::checked_mul(count, d, count)) {
      fail(name, "shape " + detail::shape_text(h.shape) + " has more elements than fit in int64");
    }
  }
  if (!check_size) return h;
  check_data_size(h, total, name);
  return h;
}

void check_data_size(const NpyHeader& h, std::int64_t total, std::string_view name) {
  const std::int64_t count = element_count(h.shape);
  std::int64_t data_bytes = 0;
  const bool overflow = !detail::checked_mul(count, itemsize(h.dtype), data_bytes);
  const std::int64_t have = total - h.data_offset;
  if (overflow || have < data_bytes) {
    fail(name, "truncated data: shape " + detail::shape_text(h.shape) + " of " + std::string(npy_descr(h.dtype)) +
                   " needs " + (overflow ? std::string("more than 2^63") : std::to_string(data_bytes)) +
                   " data bytes, but the file has only " + std::to_string(have) + " after the " +
                   std::to_string(h.data_offset) + "-byte header");
  }
  if (have > data_bytes) {
    fail(name, std::to_string(have - data_bytes) + " unexpected trailing bytes after the " +
                   std::to_string(data_bytes) + " data bytes of shape " + detail::shape_text(h.shape) + " of " +
                   std::string(npy_descr(h.dtype)));
  }
}

Array empty_array(const NpyHeader& h) {
  Array a;
  a.shape = h.shape;
  a.dtype = h.dtype;
  const std::int64_t count = element_count(h.shape);
  if (is_integer(h.dtype)) {
    a.integer.reserve(static_cast<std::size_t>(count));
  } else if (is_complex(h.dtype)) {
    a.complex.reserve(static_cast<std::size_t>(count));
  } else {
    a.real.reserve(static_cast<std::size_t>(count));
  }
  return a;
}

struct FileCloser {
  void operator()(std::FILE* f) const { std::fclose(f); }
};

template <typename T>
void write_npy_impl(const std::filesystem::path& path, std::span<const std::int64_t> shape, std::span<const T> data,
                    DType dtype) {
  const std::int64_t count = element_count(shape);
  if (static_cast<std::int64_t>(data.size()) != count) {
    throw InvalidArgument("cannot write " + detail::quoted(path) + ": data has " + std::to_string(data.size()) +
                          " elements but shape " + detail::shape_text(shape) + " has " + std::to_string(count));
  }
  const std::string header = npy_header(shape, dtype);
  AtomicFile out(path);
  out.write(header);
  if constexpr (std::endian::native == std::endian::little) {
    out.write(std::as_bytes(data));
  } else {
    constexpr std::size_t kChunk = 1 << 16;
    std::vector<std::byte> buf;
    for (std::size_t start = 0; start < data.size(); start += kChunk) {
      const std::size_t n = std::min(kChunk, data.size() - start);
      buf.resize(n * sizeof(T));
      for (std::size_t i = 0; i < n; ++i) {
        // load_scalar with the opposite order swaps the native bytes into little-endian ones.
        const T v = detail::load_scalar<T>(reinterpret_cast<const std::byte*>(&data[start + i]), std::endian::little);
        std::memcpy(buf.data() + i * sizeof(T), &v, sizeof(T));
      }
      out.write(buf);
    }
  }
  out.commit();
}

}  // namespace

NpyHeader read_npy_header(const std::filesystem::path& path) {
  const std::string name = path.string();
  const std::int64_t total = detail::check_regular_file(path);
  const Preamble p = parse_preamble(detail::read_file_prefix(path, 12), total, name);
  const auto head = detail::read_file_prefix(path, static_cast<std::size_t>(p.prefix_length + p.header_length));
  if (static_cast<std::int64_t>(head.size()) != p.prefix_length + p.header_length) {
    fail(name, "file changed while being read");
  }
  return parse_header(head, p, total, name);
}

Array read_npy(const std::filesystem::path& path) {
  const std::string name = path.string();
  const NpyHeader h = read_npy_header(path);
  Array a = empty_array(h);

  errno = 0;
  std::unique_ptr<std::FILE, FileCloser> f(std::fopen(path.c_str(), "rb"));
  if (!f) fail(name, std::string("cannot open for reading: ") + std::strerror(errno));
  if (std::fseek(f.get(), static_cast<long>(h.data_offset), SEEK_SET) != 0) fail(name, "cannot seek to the data");

  // Read in chunks (a whole number of elements each) so that memory stays at the size of the result.
  const std::int64_t item = itemsize(h.dtype);
  const std::int64_t chunk_elems = std::int64_t{1} << 19;
  std::vector<std::byte> buf;
  for (std::int64_t left = element_count(h.shape); left > 0;) {
    const std::int64_t n = std::min(left, chunk_elems);
    buf.resize(static_cast<std::size_t>(n * item));
    if (std::fread(buf.data(), 1, buf.size(), f.get()) != buf.size()) {
      fail(name, std::ferror(f.get()) ? "read error in the data" : "file changed while being read (short data)");
    }
    detail::decode_elements(buf, h.dtype, std::endian::little, a, name);
    left -= n;
  }
  return a;
}

Array parse_npy(std::span<const std::byte> bytes, std::string_view name) {
  const auto total = static_cast<std::int64_t>(bytes.size());
  const Preamble p = parse_preamble(bytes, total, name);
  const NpyHeader h = parse_header(bytes, p, total, name);
  Array a = empty_array(h);
  detail::decode_elements(bytes.subspan(static_cast<std::size_t>(h.data_offset)), h.dtype, std::endian::little, a,
                          name);
  return a;
}

ArrayRows read_npy_rows(const std::filesystem::path& path, std::span<const std::int64_t> rows) {
  const std::string name = path.string();
  if (!detail::has_gzip_magic(detail::read_file_prefix(path, 2))) {
    const NpyHeader h = read_npy_header(path);  // size checked
    ArrayRows out = ArrayRows::select(h.shape, h.dtype, std::endian::little, rows, name);
    detail::read_rows_at(path, h.data_offset, out);
    return out;
  }
  detail::GzipReader z(path);
  std::vector<std::byte> chunk(static_cast<std::size_t>(12 + kMaxHeaderLength));  // holds any valid header
  const std::size_t got = z.read(chunk.data(), chunk.size());
  const std::span<const std::byte> head(chunk.data(), got);
  const Preamble p = parse_preamble(head, static_cast<std::int64_t>(got), name);
  const NpyHeader h = parse_header(head, p, static_cast<std::int64_t>(got), name, false);
  ArrayRows out = ArrayRows::select(h.shape, h.dtype, std::endian::little, rows, name);
  check_data_size(h, detail::collect_rows(z, chunk, got, h.data_offset, out), name);
  return out;
}

std::string npy_header(std::span<const std::int64_t> shape, DType dtype) {
  (void)element_count(shape);  // validates: no negative dimension, no overflow

  // Byte-for-byte what numpy.lib.format._write_array_header produces (keys sorted, repr of values).
  std::string dict = "{'descr': '" + std::string(npy_descr(dtype)) +
                     "', 'fortran_order': False, 'shape': " + detail::shape_text(shape) + ", }";
  if (!shape.empty()) {
    dict.append(static_cast<std::size_t>(kGrowthAxisMaxDigits - std::to_string(shape[0]).size()), ' ');
  }

  // _wrap_header: pad with spaces so that magic + version + length field + header + '\n' is a multiple
  // of 64 (a full 64 extra when already aligned, as numpy does); version 2.0 if too long for uint16.
  for (const int major : {1, 2}) {
    const std::int64_t field = major == 1 ? 2 : 4;
    const auto hlen = static_cast<std::int64_t>(dict.size()) + 1;
    const std::int64_t pad = kAlign - ((static_cast<std::int64_t>(kMagic.size()) + 2 + field + hlen) % kAlign);
    const std::int64_t total_len = hlen + pad;
    if (major == 1 && total_len > std::numeric_limits<std::uint16_t>::max()) continue;
    std::string out(kMagic);
    out += static_cast<char>(major);
    out += '\0';
    for (std::int64_t b = 0; b < field; ++b) out += static_cast<char>((total_len >> (8 * b)) & 0xff);
    out += dict;
    out.append(static_cast<std::size_t>(pad), ' ');
    out += '\n';
    return out;
  }
  throw InvalidArgument("npy header for shape " + detail::shape_text(shape) + " is too long");
}

void write_npy(const std::filesystem::path& path, std::span<const std::int64_t> shape, std::span<const double> data) {
  write_npy_impl(path, shape, data, DType::f8);
}

void write_npy(const std::filesystem::path& path, std::span<const std::int64_t> shape,
               std::span<const std::int64_t> data) {
  write_npy_impl(path, shape, data, DType::i8);
}

}  // namespace eqntk::io
