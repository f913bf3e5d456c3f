// Tests of the io module: .npy and IDX reading, .npy writing, content-based loading, atomic output.
// Fixture files are written byte by byte here (gzip through zlib); nothing depends on Python at test time.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "../support/fixtures.hpp"
#include "eqntk/error.hpp"
#include "eqntk/io/array.hpp"
#include "eqntk/io/atomic_file.hpp"
#include "eqntk/io/dataset.hpp"
#include "eqntk/io/checkpoint.hpp"
#include "eqntk/io/dataset.hpp"
#include "eqntk/io/metrics.hpp"
#include "eqntk/io/idx.hpp"
#include "eqntk/io/npy.hpp"

namespace fs = std::filesystem;
using namespace std::string_literals;
using eqntk::InvalidArgument;
using eqntk::IoError;
using eqntk::io::Array;
using eqntk::io::AtomicFile;
using eqntk::io::DType;
using eqntk::io::Shape;
using eqntk::testing::gzip;

namespace {

// A fresh empty directory per test, removed afterwards.
class TempDir : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::temp_directory_path() /
           ("eqntk-io-" + std::to_string(::getpid()) + "-" + info->test_suite_name() + "-" + info->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  fs::path path(const std::string& name) const { return dir_ / name; }
  fs::path dir_;
};

class NpyHeader : public TempDir {};
class NpyWrite : public TempDir {};
class NpyRead : public TempDir {};
class NpyLoadArray : public TempDir {};
class IdxRead : public TempDir {};
class IdxLoadArray : public TempDir {};
class AtomicFileTest : public TempDir {};
class AtomicFileDirectory : public TempDir {};

void write_file(const fs::path& p, const std::string& bytes) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!out) throw std::runtime_error("test fixture: cannot write " + p.string());
}

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// Raw bytes of values in this (little-endian) machine's order.
template <typename T>
std::string raw(const std::vector<T>& values) {
  static_assert(std::endian::native == std::endian::little, "fixtures assume a little-endian host");
  std::string s(values.size() * sizeof(T), '\0');
  if (!values.empty()) std::memcpy(s.data(), values.data(), s.size());
  return s;
}

// Big-endian bytes of values (IDX payloads and dimensions).
template <typename T>
std::string big_endian(const std::vector<T>& values) {
  std::string s = raw(values);
  for (std::size_t i = 0; i < values.size(); ++i)
    std::reverse(s.begin() + i * sizeof(T), s.begin() + (i + 1) * sizeof(T));
  return s;
}

std::string le_u32(std::uint32_t v) {
  return raw(std::vector<std::uint32_t>{v});
}

// A .npy file of format `major`.0 with the given header dict text, padded as numpy does, then `data`.
std::string npy_file(int major, const std::string& dict, const std::string& data) {
  const std::size_t prefix = major == 1 ? 10 : 12;
  std::string header = dict;
  while ((prefix + header.size() + 1) % 64 != 0) header += ' ';
  header += '\n';
  std::string out = "\x93NUMPY"s + static_cast<char>(major) + '\0';
  if (major == 1) {
    out += static_cast<char>(header.size() & 0xff);
    out += static_cast<char>(header.size() >> 8);
  } else {
    out += le_u32(static_cast<std::uint32_t>(header.size()));
  }
  return out + header + data;
}

std::string f8_dict(const std::string& shape) {
  return "{'descr': '<f8', 'fortran_order': False, 'shape': " + shape + ", }";
}

// An IDX file: 00 00 type ndims, big-endian int32 dims, payload.
std::string idx_file(unsigned char type, const std::vector<std::int32_t>& dims, const std::string& payload) {
  std::string out = "\0\0"s + static_cast<char>(type) + static_cast<char>(dims.size());
  return out + big_endian(dims) + payload;
}

// The message of the IoError thrown by f, or a marker when none was thrown (other exceptions propagate
// and fail the test).
template <typename F>
std::string io_error(F&& f) {
  try {
    f();
  } catch (const IoError& e) {
    return e.what();
  }
  return "<no IoError thrown>";
}

// Checks that an error message names the file and contains the phrase describing the problem.
void expect_names(const std::string& message, const fs::path& file, const std::string& phrase) {
  EXPECT_NE(message.find(file.string()), std::string::npos) << "message does not name the file: " << message;
  EXPECT_NE(message.find(phrase), std::string::npos) << "message lacks '" << phrase << "': " << message;
  EXPECT_EQ(message.find('\n'), std::string::npos) << "message is not one line: " << message;
}

std::vector<unsigned char> pseudo_random_bytes(std::size_t n) {
  std::vector<unsigned char> v(n);
  std::uint32_t x = 12345;
  for (auto& b : v) {
    x = x * 1664525u + 1013904223u;
    b = static_cast<unsigned char>(x >> 24);
  }
  return v;
}

bool same_bits(double a, double b) {
  return std::bit_cast<std::uint64_t>(a) == std::bit_cast<std::uint64_t>(b);
}

}  // namespace

// ---------------------------------------------------------------------------------------------------------------
// .npy header and writing

TEST_F(NpyHeader, MatchesNumpyBytesFor2x3Float64) {
  // np.save(f, np.zeros((2, 3))) — header bytes as written by numpy 1.24.
  const std::string golden =
      "\x93NUMPY\x01\x00v\x00{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3), }"
      "                                                          \n"s;
  ASSERT_EQ(golden.size(), 128u);
  EXPECT_EQ(eqntk::io::npy_header(Shape{2, 3}, DType::f8), golden);
}

TEST_F(NpyHeader, MatchesNumpyBytesFor1dInt64AndScalar) {
  // np.save of np.zeros(5, dtype=np.int64) and of np.float64(0) (0-d array).
  const std::string vector_golden =
      "\x93NUMPY\x01\x00v\x00{'descr': '<i8', 'fortran_order': False, 'shape': (5,), }"
      "                                                            \n"s;
  const std::string scalar_golden =
      "\x93NUMPY\x01\x00v\x00{'descr': '<f8', 'fortran_order': False, 'shape': (), }"
      "                                                              \n"s;
  EXPECT_EQ(eqntk::io::npy_header(Shape{5}, DType::i8), vector_golden);
  EXPECT_EQ(eqntk::io::npy_header(Shape{}, DType::f8), scalar_golden);
}

TEST_F(NpyHeader, SizeIsAMultipleOf64ForEveryRank) {
  // Leading dimensions of 1 to 19 digits (numpy leaves room to grow the first axis), then up to 40 axes.
  for (const std::int64_t first : {1LL, 12345LL, 1000000000000000000LL}) {
    Shape shape;
    for (int ndim = 0; ndim <= 40; ++ndim) {
      const std::string h = eqntk::io::npy_header(shape, DType::f8);
      EXPECT_EQ(h.size() % 64, 0u) << "ndim " << ndim;
      EXPECT_EQ(h.back(), '\n');
      EXPECT_EQ(static_cast<unsigned char>(h[8]) + 256 * static_cast<unsigned char>(h[9]) + 10, h.size());
      shape.push_back(shape.empty() ? first : 1);
    }
  }
}

TEST_F(NpyHeader, RejectsNegativeShape) {
  EXPECT_THROW((void)eqntk::io::npy_header(Shape{2, -1}, DType::f8), InvalidArgument);
}

TEST_F(NpyWrite, Float64RoundTripsBitExactly) {
  const std::vector<double> values = {0.0,
                                      -0.0,
                                      1.5,
                                      -2.25e300,
                                      std::numeric_limits<double>::denorm_min(),
                                      std::numeric_limits<double>::infinity(),
                                      -std::numeric_limits<double>::infinity(),
                                      std::nan("")};
  const auto file = path("x.npy");
  eqntk::io::write_npy(file, Shape{2, 4}, values);

  const Array a = eqntk::io::read_npy(file);
  EXPECT_EQ(a.shape, (Shape{2, 4}));
  EXPECT_EQ(a.dtype, DType::f8);
  EXPECT_FALSE(a.is_integer());
  EXPECT_TRUE(a.integer.empty());
  ASSERT_EQ(a.real.size(), values.size());
  for (std::size_t i = 0; i < values.size(); ++i) EXPECT_TRUE(same_bits(a.real[i], values[i])) << i;
}

TEST_F(NpyWrite, FileIsHeaderThenRowMajorLittleEndianData) {
  const std::vector<double> values = {1, 2, 3, 4, 5, 6};
  const auto file = path("x.npy");
  eqntk::io::write_npy(file, Shape{2, 3}, values);
  const std::string header = eqntk::io::npy_header(Shape{2, 3}, DType::f8);
  EXPECT_EQ(read_file(file), header + raw(values));
  EXPECT_EQ(eqntk::io::read_npy_header(file).data_offset, static_cast<std::int64_t>(header.size()));
}

TEST_F(NpyWrite, Int64RoundTripsExtremes) {
  const std::vector<std::int64_t> values = {std::numeric_limits<std::int64_t>::min(), -1, 0,
                                            std::numeric_limits<std::int64_t>::max()};
  const auto file = path("i.npy");
  eqntk::io::write_npy(file, Shape{4}, values);
  const Array a = eqntk::io::read_npy(file);
  EXPECT_EQ(a.shape, (Shape{4}));
  EXPECT_EQ(a.dtype, DType::i8);
  EXPECT_TRUE(a.is_integer());
  EXPECT_EQ(a.integer, values);
}

TEST_F(NpyWrite, ScalarAndEmptyArraysRoundTrip) {
  eqntk::io::write_npy(path("s.npy"), Shape{}, std::vector<double>{3.25});
  eqntk::io::write_npy(path("e.npy"), Shape{0, 3}, std::vector<double>{});
  const Array s = eqntk::io::read_npy(path("s.npy"));
  const Array e = eqntk::io::read_npy(path("e.npy"));
  EXPECT_TRUE(s.shape.empty());
  EXPECT_EQ(s.real, std::vector<double>{3.25});
  EXPECT_EQ(e.shape, (Shape{0, 3}));
  EXPECT_TRUE(e.real.empty());
}

TEST_F(NpyWrite, RejectsDataSizeMismatchAndWritesNothing) {
  EXPECT_THROW(eqntk::io::write_npy(path("x.npy"), Shape{2, 3}, std::vector<double>(5)), InvalidArgument);
  EXPECT_TRUE(fs::is_empty(dir_));
}

TEST_F(NpyWrite, IntoMissingDirectoryThrowsIoErrorNamingTheFile) {
  const auto file = path("missing/x.npy");
  const std::string msg = io_error([&] { eqntk::io::write_npy(file, Shape{1}, std::vector<double>{1}); });
  expect_names(msg, file, "cannot create");
}

TEST_F(NpyWrite, ReplacesAnExistingFileAndLeavesNoPartial) {
  const auto file = path("x.npy");
  write_file(file, "old");
  eqntk::io::write_npy(file, Shape{1}, std::vector<double>{7});
  EXPECT_EQ(eqntk::io::read_npy(file).real, std::vector<double>{7});
  EXPECT_FALSE(fs::exists(eqntk::io::partial_path(file)));
}

// ---------------------------------------------------------------------------------------------------------------
// .npy reading

TEST_F(NpyRead, ReadsEveryIntegerDtype) {
  struct Case {
    DType dtype;
    std::string data;
    std::vector<std::int64_t> expected;
  };
  const Case cases[] = {
      {DType::u1, raw(std::vector<std::uint8_t>{0, 7, 255}), {0, 7, 255}},
      {DType::i1, raw(std::vector<std::int8_t>{-128, 0, 127}), {-128, 0, 127}},
      {DType::i2, raw(std::vector<std::int16_t>{-32768, 1, 32767}), {-32768, 1, 32767}},
      {DType::u2, raw(std::vector<std::uint16_t>{0, 1, 65535}), {0, 1, 65535}},
      {DType::i4, raw(std::vector<std::int32_t>{-2147483647 - 1, 2, 2147483647}), {-2147483647 - 1, 2, 2147483647}},
      {DType::u4, raw(std::vector<std::uint32_t>{0, 3, 4294967295u}), {0, 3, 4294967295LL}},
      {DType::i8, raw(std::vector<std::int64_t>{-5, 0, 5}), {-5, 0, 5}},
      {DType::u8, raw(std::vector<std::uint64_t>{0, 9, 9223372036854775807ULL}), {0, 9, 9223372036854775807LL}},
      {DType::b1, raw(std::vector<std::uint8_t>{1, 0, 1}), {1, 0, 1}},
  };
  for (const Case& c : cases) {
    const auto file = path("x.npy");
    write_file(file, eqntk::io::npy_header(Shape{3}, c.dtype) + c.data);
    const Array a = eqntk::io::read_npy(file);
    EXPECT_EQ(a.dtype, c.dtype) << eqntk::io::npy_descr(c.dtype);
    EXPECT_EQ(a.shape, (Shape{3}));
    EXPECT_EQ(a.integer, c.expected) << eqntk::io::npy_descr(c.dtype);
    EXPECT_TRUE(a.real.empty());
  }
}

TEST_F(NpyRead, ReadsFloat32WidenedExactly) {
  const std::vector<float> values = {0.1f, -3.5f, 1e-40f};
  const auto file = path("f.npy");
  write_file(file, eqntk::io::npy_header(Shape{1, 3}, DType::f4) + raw(values));
  const Array a = eqntk::io::read_npy(file);
  EXPECT_EQ(a.dtype, DType::f4);
  EXPECT_EQ(a.shape, (Shape{1, 3}));
  ASSERT_EQ(a.real.size(), 3u);
  for (std::size_t i = 0; i < 3; ++i) EXPECT_EQ(a.real[i], static_cast<double>(values[i]));
}

TEST_F(NpyRead, ReadsFormatVersions2And3) {
  const std::string data = raw(std::vector<std::int32_t>{1, 2, 3});
  const std::string dict = "{'descr': '<i4', 'fortran_order': False, 'shape': (3,), }";
  for (const int major : {2, 3}) {
    const auto file = path("v.npy");
    write_file(file, npy_file(major, dict, data));
    const auto h = eqntk::io::read_npy_header(file);
    EXPECT_EQ(h.major_version, major);
    EXPECT_EQ(eqntk::io::read_npy(file).integer, (std::vector<std::int64_t>{1, 2, 3}));
  }
}

TEST_F(NpyRead, AcceptsOtherWritersSpellingOfTheHeader) {
  // Keys in another order, double quotes, no trailing comma, '|' byte order on a 1-byte type, Python 2 long.
  const auto file = path("x.npy");
  write_file(file, npy_file(1, "{\"shape\": (2L,), \"fortran_order\": False, \"descr\": \"<u1\"}",
                            std::string("\x05\x06", 2)));
  const Array a = eqntk::io::read_npy(file);
  EXPECT_EQ(a.shape, (Shape{2}));
  EXPECT_EQ(a.integer, (std::vector<std::int64_t>{5, 6}));
}

TEST_F(NpyRead, ParseFromMemoryMatchesFile) {
  const std::vector<double> values = {1, -2, 3.5};
  eqntk::io::write_npy(path("x.npy"), Shape{3}, values);
  const std::string bytes = read_file(path("x.npy"));
  const Array a = eqntk::io::parse_npy(std::as_bytes(std::span(bytes.data(), bytes.size())), "in-memory");
  EXPECT_EQ(a.real, values);
  EXPECT_EQ(a.shape, (Shape{3}));
}

TEST_F(NpyRead, MissingFileIsNamed) {
  const auto file = path("nope.npy");
  expect_names(io_error([&] { (void)eqntk::io::read_npy(file); }), file, "no such file");
}

TEST_F(NpyRead, DirectoryIsRejected) {
  expect_names(io_error([&] { (void)eqntk::io::read_npy(dir_); }), dir_, "is a directory");
}

TEST_F(NpyRead, BadMagicIsNotAnNpyFile) {
  const auto file = path("x.npy");
  write_file(file, "PK\x03\x04 this is a zip archive, not npy");
  expect_names(io_error([&] { (void)eqntk::io::read_npy(file); }), file, "not a .npy file (bad magic");
}

TEST_F(NpyRead, UnsupportedVersionIsRejected) {
  const auto file = path("x.npy");
  std::string bytes = npy_file(1, f8_dict("(1,)"), raw(std::vector<double>{1}));
  bytes[6] = 4;
  write_file(file, bytes);
  expect_names(io_error([&] { (void)eqntk::io::read_npy(file); }), file, "unsupported .npy format version 4.0");
}

TEST_F(NpyRead, TruncatedHeaderIsRejected) {
  const auto file = path("x.npy");
  const std::string full = npy_file(1, f8_dict("(1,)"), raw(std::vector<double>{1}));
  write_file(file, full.substr(0, 8));
  expect_names(io_error([&] { (void)eqntk::io::read_npy(file); }), file, "truncated .npy header");
  write_file(file, full.substr(0, 40));
  expect_names(io_error([&] { (void)eqntk::io::read_npy(file); }), file, "truncated .npy header");
}

TEST_F(NpyRead, MalformedHeaderIsRejected) {
  const auto file = path("x.npy");
  const std::string headers[] = {
      "{'descr': '<f8', 'fortran_order': False, 'shape': (1,) ",          // no closing brace
      "{'descr': '<f8', 'fortran_order': False}",                         // missing shape
      "{'descr': '<f8', 'fortran_order': False, 'shape': (1,), 'x': 1}",  // extra key
      "{'descr': '<f8', 'fortran_order': 0, 'shape': (1,)}",              // not a bool
      "{'descr': '<f8', 'fortran_order': False, 'shape': (1)}",           // an int, not a tuple
      "{'descr': '<f8', 'fortran_order': False, 'shape': (1,)} junk",     // text after the dict
  };
  for (const std::string& h : headers) {
    write_file(file, npy_file(1, h, raw(std::vector<double>{1})));
    expect_names(io_error([&] { (void)eqntk::io::read_npy(file); }), file, "malformed .npy header");
  }
}

TEST_F(NpyRead, UnsupportedDtypeIsRejected) {
  const auto file = path("x.npy");
  write_file(file, npy_file(1, "{'descr': '<c8', 'fortran_order': False, 'shape': (1,), }", std::string(8, '\0')));
  expect_names(io_error([&] { (void)eqntk::io::read_npy(file); }), file, "unsupported dtype '<c8'");
  write_file(file,
             npy_file(1, "{'descr': [('a', '<f8')], 'fortran_order': False, 'shape': (1,), }", std::string(8, '\0')));
  expect_names(io_error([&] { (void)eqntk::io::read_npy(file); }), file, "structured dtypes");
}

TEST_F(NpyRead, BigEndianIsRejected) {
  const auto file = path("x.npy");
  write_file(file, npy_file(1, "{'descr': '>f8', 'fortran_order': False, 'shape': (1,), }", std::string(8, '\0')));
  expect_names(io_error([&] { (void)eqntk::io::read_npy(file); }), file, "big-endian dtype '>f8'");
}

TEST_F(NpyRead, FortranOrderIsRejected) {
  const auto file = path("x.npy");
  write_file(file, npy_file(1, "{'descr': '<f8', 'fortran_order': True, 'shape': (2, 2), }", std::string(32, '\0')));
  expect_names(io_error([&] { (void)eqntk::io::read_npy(file); }), file, "Fortran-ordered arrays");
}

TEST_F(NpyRead, TruncatedDataIsRejected) {
  const auto file = path("x.npy");
  write_file(file, npy_file(1, f8_dict("(2, 3)"), std::string(40, '\0')));
  const std::string msg = io_error([&] { (void)eqntk::io::read_npy(file); });
  expect_names(msg, file, "truncated data");
  expect_names(msg, file, "needs 48 data bytes, but the file has only 40");
}

TEST_F(NpyRead, TrailingBytesAreRejected) {
  const auto file = path("x.npy");
  write_file(file, npy_file(1, f8_dict("(2, 3)"), std::string(49, '\0')));
  expect_names(io_error([&] { (void)eqntk::io::read_npy(file); }), file, "1 unexpected trailing bytes");
}

TEST_F(NpyRead, NegativeShapeIsRejected) {
  const auto file = path("x.npy");
  write_file(file, npy_file(1, f8_dict("(-1, 3)"), ""));
  expect_names(io_error([&] { (void)eqntk::io::read_npy(file); }), file, "negative dimension");
}

TEST_F(NpyRead, OverflowingShapeIsRejected) {
  const auto file = path("x.npy");
  write_file(file, npy_file(1, f8_dict("(4294967296, 4294967296)"), ""));
  expect_names(io_error([&] { (void)eqntk::io::read_npy(file); }), file, "more elements than fit in int64");
  // The element count fits, the byte count (× 8) does not.
  write_file(file, npy_file(1, f8_dict("(4611686018427387904,)"), ""));
  expect_names(io_error([&] { (void)eqntk::io::read_npy(file); }), file, "more than 2^63");
  write_file(file, npy_file(1, f8_dict("(99999999999999999999,)"), ""));
  expect_names(io_error([&] { (void)eqntk::io::read_npy(file); }), file, "does not fit in int64");
}

TEST_F(NpyRead, InvalidBoolByteIsRejected) {
  const auto file = path("x.npy");
  write_file(file, eqntk::io::npy_header(Shape{2}, DType::b1) + std::string("\x01\x02", 2));
  expect_names(io_error([&] { (void)eqntk::io::read_npy(file); }), file, "bool element has byte value 2");
}

TEST_F(NpyRead, Uint64AboveInt64MaxIsRejected) {
  const auto file = path("x.npy");
  write_file(file, eqntk::io::npy_header(Shape{1}, DType::u8) + raw(std::vector<std::uint64_t>{1ULL << 63}));
  expect_names(io_error([&] { (void)eqntk::io::read_npy(file); }), file, "does not fit in int64");
}

TEST_F(NpyRead, ToRealConvertsIntegersAndRefusesInexactOnes) {
  Array a;
  a.shape = {3};
  a.dtype = DType::i8;
  a.integer = {-3, 0, 1LL << 53};
  EXPECT_EQ(a.to_real(), (std::vector<double>{-3.0, 0.0, 9007199254740992.0}));
  a.integer[2] = (1LL << 53) + 1;
  EXPECT_THROW((void)a.to_real(), InvalidArgument);
}

// ---------------------------------------------------------------------------------------------------------------
// IDX reading

TEST_F(IdxRead, ReadsUbyteImagesInRowMajorOrder) {
  std::string payload;
  for (int i = 0; i < 12; ++i) payload += static_cast<char>(i * 20);
  const auto file = path("images");
  write_file(file, idx_file(0x08, {2, 2, 3}, payload));
  const Array a = eqntk::io::read_idx(file);
  EXPECT_EQ(a.dtype, DType::u1);
  EXPECT_EQ(a.shape, (Shape{2, 2, 3}));
  ASSERT_EQ(a.integer.size(), 12u);
  for (int i = 0; i < 12; ++i) EXPECT_EQ(a.integer[i], i * 20);
}

TEST_F(IdxRead, ReadsSignedAndWideTypesBigEndian) {
  const auto file = path("x");
  write_file(file, idx_file(0x09, {2}, "\xff\x7f"));
  EXPECT_EQ(eqntk::io::read_idx(file).integer, (std::vector<std::int64_t>{-1, 127}));
  write_file(file, idx_file(0x0B, {2}, big_endian(std::vector<std::int16_t>{-2, 300})));
  EXPECT_EQ(eqntk::io::read_idx(file).integer, (std::vector<std::int64_t>{-2, 300}));
  write_file(file, idx_file(0x0C, {1, 2}, "\x01\x02\x03\x04\xff\xff\xff\xfe"s));
  const Array i4 = eqntk::io::read_idx(file);
  EXPECT_EQ(i4.dtype, DType::i4);
  EXPECT_EQ(i4.shape, (Shape{1, 2}));
  EXPECT_EQ(i4.integer, (std::vector<std::int64_t>{0x01020304, -2}));
  write_file(file, idx_file(0x0D, {1}, "\x3f\xc0\x00\x00"s));  // 1.5f
  EXPECT_EQ(eqntk::io::read_idx(file).real, std::vector<double>{1.5});
  write_file(file, idx_file(0x0E, {1}, "\xc0\x04\x00\x00\x00\x00\x00\x00"s));  // -2.5
  const Array f8 = eqntk::io::read_idx(file);
  EXPECT_EQ(f8.dtype, DType::f8);
  EXPECT_EQ(f8.real, std::vector<double>{-2.5});
}

TEST_F(IdxRead, GzipAndPlainAgree) {
  const auto pixels = pseudo_random_bytes(3 * 28 * 28);
  const std::string plain = idx_file(0x08, {3, 28, 28}, std::string(pixels.begin(), pixels.end()));
  // Misleading names on purpose: the format is recognised by content.
  write_file(path("plain.gz"), plain);
  write_file(path("compressed.idx"), gzip(plain));
  const Array a = eqntk::io::read_idx(path("plain.gz"));
  const Array b = eqntk::io::read_idx(path("compressed.idx"));
  EXPECT_EQ(a.shape, (Shape{3, 28, 28}));
  EXPECT_EQ(b.shape, a.shape);
  EXPECT_EQ(b.dtype, a.dtype);
  EXPECT_EQ(b.integer, a.integer);
  EXPECT_EQ(a.integer, std::vector<std::int64_t>(pixels.begin(), pixels.end()));
}

TEST_F(IdxRead, ReadsConcatenatedGzipMembers) {
  const std::string plain = idx_file(0x08, {6}, "abcdef");
  write_file(path("x"), gzip(plain.substr(0, 7)) + gzip(plain.substr(7)));
  EXPECT_EQ(eqntk::io::read_idx(path("x")).integer, (std::vector<std::int64_t>{'a', 'b', 'c', 'd', 'e', 'f'}));
}

TEST_F(IdxRead, MissingFileIsNamed) {
  const auto file = path("t10k-labels-idx1-ubyte");
  expect_names(io_error([&] { (void)eqntk::io::read_idx(file); }), file, "no such file");
}

TEST_F(IdxRead, BadMagicIsRejected) {
  const auto file = path("x");
  write_file(file, "\x01\x00\x08\x01\x00\x00\x00\x01\x05"s);
  expect_names(io_error([&] { (void)eqntk::io::read_idx(file); }), file, "not an IDX file (bad magic");
  write_file(file, gzip("hello, world"));  // valid gzip, content not IDX
  expect_names(io_error([&] { (void)eqntk::io::read_idx(file); }), file, "not an IDX file (bad magic");
}

TEST_F(IdxRead, UnknownTypeCodeIsRejected) {
  const auto file = path("x");
  write_file(file, idx_file(0x0A, {1}, "\x05"));
  expect_names(io_error([&] { (void)eqntk::io::read_idx(file); }), file, "unknown IDX type code 0x0A");
}

TEST_F(IdxRead, ZeroDimensionsAreRejected) {
  const auto file = path("x");
  write_file(file, idx_file(0x08, {}, "\x05"));
  expect_names(io_error([&] { (void)eqntk::io::read_idx(file); }), file, "declares 0 dimensions");
}

TEST_F(IdxRead, TruncatedHeaderIsRejected) {
  const auto file = path("x");
  write_file(file, idx_file(0x08, {10, 28, 28}, "").substr(0, 10));
  expect_names(io_error([&] { (void)eqntk::io::read_idx(file); }), file, "truncated IDX header");
  write_file(file, "\0\0"s);
  expect_names(io_error([&] { (void)eqntk::io::read_idx(file); }), file, "truncated IDX header");
}

TEST_F(IdxRead, TruncatedDataIsRejected) {
  const auto file = path("x");
  write_file(file, idx_file(0x08, {2, 3}, "abcde"));
  expect_names(io_error([&] { (void)eqntk::io::read_idx(file); }), file, "truncated IDX data");
  write_file(file, gzip(idx_file(0x0C, {3}, std::string(11, '\0'))));
  expect_names(io_error([&] { (void)eqntk::io::read_idx(file); }), file, "decompressed content has only 11");
}

TEST_F(IdxRead, TrailingBytesAreASizeMismatch) {
  const auto file = path("x");
  write_file(file, idx_file(0x08, {2, 3}, "abcdefg"));
  expect_names(io_error([&] { (void)eqntk::io::read_idx(file); }), file, "size mismatch: 1 unexpected trailing bytes");
}

TEST_F(IdxRead, NegativeDimensionIsRejected) {
  const auto file = path("x");
  write_file(file, idx_file(0x08, {-1}, ""));
  expect_names(io_error([&] { (void)eqntk::io::read_idx(file); }), file, "negative dimension");
}

TEST_F(IdxRead, OverflowingShapeIsRejected) {
  const auto file = path("x");
  write_file(file, idx_file(0x0E, {2147483647, 2147483647, 2147483647}, ""));
  expect_names(io_error([&] { (void)eqntk::io::read_idx(file); }), file, "more elements than fit in int64");
}

TEST_F(IdxRead, CorruptGzipIsRejected) {
  const auto file = path("x.gz");
  const std::string good = gzip(idx_file(0x08, {100}, std::string(100, 'x')));
  std::string bad_crc = good;
  bad_crc[bad_crc.size() - 8] ^= 0x55;  // CRC-32 in the trailer
  write_file(file, bad_crc);
  expect_names(io_error([&] { (void)eqntk::io::read_idx(file); }), file, "corrupt gzip data");
  std::string bad_method = good;
  bad_method[2] = 0x07;  // compression method must be 8 (deflate)
  write_file(file, bad_method);
  expect_names(io_error([&] { (void)eqntk::io::read_idx(file); }), file, "corrupt gzip data");
}

TEST_F(IdxRead, TruncatedGzipIsRejected) {
  const auto file = path("x.gz");
  const std::string good = gzip(idx_file(0x08, {100}, std::string(100, 'x')));
  write_file(file, good.substr(0, good.size() - 6));
  expect_names(io_error([&] { (void)eqntk::io::read_idx(file); }), file, "truncated gzip stream");
  write_file(file, good.substr(0, 2));
  expect_names(io_error([&] { (void)eqntk::io::read_idx(file); }), file, "truncated gzip stream");
}

TEST_F(IdxRead, GarbageAfterGzipIsRejected) {
  const auto file = path("x.gz");
  write_file(file, gzip(idx_file(0x08, {1}, "x")) + "junk");
  expect_names(io_error([&] { (void)eqntk::io::read_idx(file); }), file, "unexpected bytes after the end of the gzip");
}

TEST_F(IdxRead, LoadsFashionMnistTestLabels) {
  const fs::path file = "/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz";
  if (!fs::exists(file)) GTEST_SKIP() << file << " is not installed";
  const Array a = eqntk::io::load_array(file);
  EXPECT_EQ(a.shape, (Shape{10000}));
  EXPECT_EQ(a.dtype, DType::u1);
  ASSERT_EQ(a.integer.size(), 10000u);
  std::vector<int> per_class(10, 0);
  for (const std::int64_t label : a.integer) {
    ASSERT_GE(label, 0);
    ASSERT_LE(label, 9);
    ++per_class[label];
  }
  EXPECT_EQ(per_class, std::vector<int>(10, 1000));  // the test set is balanced
  EXPECT_EQ(std::vector<std::int64_t>(a.integer.begin(), a.integer.begin() + 10),
            (std::vector<std::int64_t>{9, 2, 1, 1, 6, 1, 4, 6, 5, 7}));
}

TEST_F(IdxRead, LoadsFashionMnistTestImages) {
  const fs::path file = "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz";
  if (!fs::exists(file)) GTEST_SKIP() << file << " is not installed";
  const Array a = eqntk::io::load_array(file);
  EXPECT_EQ(a.shape, (Shape{10000, 28, 28}));
  EXPECT_EQ(a.dtype, DType::u1);
  std::int64_t sum = 0;
  for (const std::int64_t v : a.integer) sum += v;
  EXPECT_EQ(sum, 573469082);  // computed with numpy from the same file
}

// ---------------------------------------------------------------------------------------------------------------
// load_array: format by content

TEST_F(NpyLoadArray, RecognisesNpyByContentWhateverTheName) {
  const auto file = path("data.idx.gz");
  eqntk::io::write_npy(file, Shape{2}, std::vector<double>{1, 2});
  const Array a = eqntk::io::load_array(file);
  EXPECT_EQ(a.dtype, DType::f8);
  EXPECT_EQ(a.real, (std::vector<double>{1, 2}));
}

TEST_F(NpyLoadArray, RecognisesGzippedNpy) {
  eqntk::io::write_npy(path("x.npy"), Shape{3}, std::vector<std::int64_t>{4, 5, 6});
  write_file(path("x.npy.gz"), gzip(read_file(path("x.npy"))));
  EXPECT_EQ(eqntk::io::load_array(path("x.npy.gz")).integer, (std::vector<std::int64_t>{4, 5, 6}));
}

TEST_F(NpyLoadArray, UnknownContentIsRejectedNamingTheFile) {
  const auto file = path("x.npy");
  write_file(file, "label,pixel0\n1,0\n");
  expect_names(io_error([&] { (void)eqntk::io::load_array(file); }), file, "not a .npy, IDX or gzip file");
  write_file(file, "");
  expect_names(io_error([&] { (void)eqntk::io::load_array(file); }), file, "empty file");
  write_file(file, gzip("label,pixel0\n"));
  expect_names(io_error([&] { (void)eqntk::io::load_array(file); }), file, "neither IDX nor .npy");
}

TEST_F(NpyLoadArray, MissingFileIsNamed) {
  const auto file = path("missing.npy");
  expect_names(io_error([&] { (void)eqntk::io::load_array(file); }), file, "no such file");
}

TEST_F(NpyLoadArray, ReportsNpyErrorsThroughLoadArray) {
  const auto file = path("x.npy");
  write_file(file, npy_file(1, f8_dict("(2, 3)"), std::string(40, '\0')));
  expect_names(io_error([&] { (void)eqntk::io::load_array(file); }), file, "truncated data");
}

TEST_F(IdxLoadArray, RecognisesPlainAndGzipIdxWhateverTheName) {
  const std::string plain = idx_file(0x08, {3}, "\x01\x02\x03");
  write_file(path("a.npy"), plain);
  write_file(path("b.npy"), gzip(plain));
  const Array a = eqntk::io::load_array(path("a.npy"));
  const Array b = eqntk::io::load_array(path("b.npy"));
  EXPECT_EQ(a.integer, (std::vector<std::int64_t>{1, 2, 3}));
  EXPECT_EQ(b.integer, a.integer);
  EXPECT_EQ(b.shape, (Shape{3}));
}

TEST_F(IdxLoadArray, ReportsIdxErrorsThroughLoadArray) {
  const auto file = path("x");
  write_file(file, gzip(idx_file(0x08, {4}, "abc")));
  expect_names(io_error([&] { (void)eqntk::io::load_array(file); }), file, "truncated IDX data");
}

// ---------------------------------------------------------------------------------------------------------------
// Atomic output

TEST_F(AtomicFileTest, CommitPublishesTheContentAndRemovesThePartial) {
  const auto target = path("out.bin");
  {
    AtomicFile f(target);
    EXPECT_TRUE(fs::exists(f.partial()));
    EXPECT_FALSE(fs::exists(target));
    f.write("hello ");
    f.write(std::as_bytes(std::span("world", 5)));
    f.commit();
    EXPECT_TRUE(f.committed());
  }
  EXPECT_EQ(read_file(target), "hello world");
  EXPECT_FALSE(fs::exists(eqntk::io::partial_path(target)));
}

TEST_F(AtomicFileTest, DestructionWithoutCommitLeavesNoPartialAndNoTarget) {
  const auto target = path("out.bin");
  {
    AtomicFile f(target);
    f.write("half");
  }
  EXPECT_FALSE(fs::exists(target));
  EXPECT_FALSE(fs::exists(eqntk::io::partial_path(target)));
  EXPECT_TRUE(fs::is_empty(dir_));
}

TEST_F(AtomicFileTest, ExceptionBeforeCommitLeavesNoPartialAndNoTarget) {
  const auto target = path("out.bin");
  try {
    AtomicFile f(target);
    f.write("half");
    throw std::runtime_error("computation failed");
  } catch (const std::runtime_error&) {
  }
  EXPECT_TRUE(fs::is_empty(dir_));
}

TEST_F(AtomicFileTest, UncommittedWriteKeepsThePreviousTarget) {
  const auto target = path("out.bin");
  write_file(target, "previous");
  {
    AtomicFile f(target);
    f.write("new");
  }
  EXPECT_EQ(read_file(target), "previous");
  EXPECT_FALSE(fs::exists(eqntk::io::partial_path(target)));
}

TEST_F(AtomicFileTest, FailedCommitRemovesThePartialAndKeepsTheTarget) {
  // Renaming a file onto a non-empty directory fails.
  const auto target = path("out");
  fs::create_directories(target / "child");
  AtomicFile f(target);
  f.write("data");
  expect_names(io_error([&] { f.commit(); }), target, "cannot rename");
  EXPECT_FALSE(fs::exists(eqntk::io::partial_path(target)));
  EXPECT_TRUE(fs::is_directory(target / "child"));
  EXPECT_FALSE(f.committed());
}

TEST_F(AtomicFileTest, OpeningInAMissingDirectoryNamesThePath) {
  const auto target = path("no/such/dir/out.bin");
  expect_names(io_error([&] { AtomicFile f(target); }), target, "cannot create output file");
}

TEST_F(AtomicFileTest, WriteOrCommitAfterCommitThrows) {
  AtomicFile f(path("out.bin"));
  f.commit();
  EXPECT_THROW(f.write("x"), IoError);
  EXPECT_THROW(f.commit(), IoError);
}

TEST_F(AtomicFileTest, MoveTransfersTheOpenFile) {
  const auto target = path("out.bin");
  AtomicFile a(target);
  a.write("ab");
  AtomicFile b(std::move(a));
  b.write("cd");
  b.commit();
  EXPECT_EQ(read_file(target), "abcd");
}

TEST_F(AtomicFileTest, CommitPartialRenamesAndRemovePartialDeletes) {
  // The pattern of multi-rank MPI-IO output: ranks write <path>.partial, rank 0 commits or removes it.
  const auto committed = path("k.npy");
  write_file(eqntk::io::partial_path(committed), "data");
  eqntk::io::commit_partial(committed);
  EXPECT_EQ(read_file(committed), "data");
  EXPECT_FALSE(fs::exists(eqntk::io::partial_path(committed)));

  const auto dropped = path("m.npy");
  write_file(eqntk::io::partial_path(dropped), "data");
  eqntk::io::remove_partial(dropped);
  EXPECT_FALSE(fs::exists(eqntk::io::partial_path(dropped)));
  EXPECT_FALSE(fs::exists(dropped));

  expect_names(io_error([&] { eqntk::io::commit_partial(dropped); }), dropped, "cannot open the partial output");
}

TEST_F(AtomicFileDirectory, CreatesMissingDirectories) {
  const auto out = path("a/b/c");
  eqntk::io::ensure_writable_directory(out);
  EXPECT_TRUE(fs::is_directory(out));
  EXPECT_TRUE(fs::is_empty(out));  // the write probe is removed
}

TEST_F(AtomicFileDirectory, AcceptsAnExistingWritableDirectory) {
  eqntk::io::ensure_writable_directory(dir_);
  EXPECT_TRUE(fs::is_empty(dir_));
}

TEST_F(AtomicFileDirectory, RejectsARegularFile) {
  const auto file = path("file");
  write_file(file, "x");
  expect_names(io_error([&] { eqntk::io::ensure_writable_directory(file); }), file, "not a directory");
}

TEST_F(AtomicFileDirectory, RejectsAPathThatCannotBeCreated) {
  write_file(path("file"), "x");
  const auto out = path("file/sub");
  expect_names(io_error([&] { eqntk::io::ensure_writable_directory(out); }), out, "cannot create directory");
}

// ---------------------------------------------------------------------------------------------
// Streaming reads of selected rows (load_array_rows, load_dataset): the same values as whole-file
// reads, the same errors, memory of the selection only.

namespace {

class ArrayRowsRead : public TempDir {};

// Deterministic bytes (a small LCG), so that rows differ from one another.
std::string pseudo_random_bytes(std::size_t n, std::uint32_t seed) {
  std::string out(n, '\0');
  for (auto& c : out) {
    seed = seed * 1664525u + 1013904223u;
    c = static_cast<char>(seed >> 24);
  }
  return out;
}

// Compares the selected rows with the same rows of the whole-file read.
void expect_rows_match(const fs::path& file, const std::vector<std::int64_t>& rows) {
  const Array all = eqntk::io::load_array(file);
  const eqntk::io::ArrayRows sel = eqntk::io::load_array_rows(file, rows);
  ASSERT_EQ(sel.shape, all.shape);
  ASSERT_EQ(sel.rows, rows);
  const std::int64_t per_row = sel.row_elements();
  const std::vector<double> values = all.to_real();
  std::vector<double> row(static_cast<std::size_t>(per_row));
  for (std::size_t r = 0; r < rows.size(); ++r) {
    sel.decode_row(r, row.data());
    for (std::int64_t e = 0; e < per_row; ++e)
      ASSERT_EQ(row[static_cast<std::size_t>(e)], values[static_cast<std::size_t>(rows[r] * per_row + e)])
          << file << " row " << rows[r] << " element " << e;
  }
}

}  // namespace

TEST_F(ArrayRowsRead, IdxRowsPlainGzipAndMultiMemberEqualTheWholeFileRead) {
  const std::string plain = idx_file(0x08, {50, 4, 3}, pseudo_random_bytes(50 * 12, 7));
  write_file(path("plain"), plain);
  write_file(path("one.gz"), gzip(plain));
  write_file(path("two.gz"), gzip(plain.substr(0, 301)) + gzip(plain.substr(301)));  // a member ends mid-row
  for (const char* f : {"plain", "one.gz", "two.gz"}) {
    expect_rows_match(path(f), {0, 7, 8, 49});
    expect_rows_match(path(f), {});
  }
  EXPECT_EQ(eqntk::io::peek_array(path("one.gz")).shape, (Shape{50, 4, 3}));
}

TEST_F(ArrayRowsRead, NpyRowsPlainAndGzipEqualTheWholeFileRead) {
  std::vector<float> values(20 * 2 * 3 * 2);
  for (std::size_t i = 0; i < values.size(); ++i) values[i] = static_cast<float>(i) * 0.37f - 3.0f;
  const std::string file = npy_file(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (20, 2, 3, 2), }", raw(values));
  write_file(path("x.npy"), file);
  write_file(path("x.npy.gz"), gzip(file));
  for (const char* f : {"x.npy", "x.npy.gz"}) expect_rows_match(path(f), {1, 2, 19});
}

TEST_F(ArrayRowsRead, StreamedGzipKeepsTheChecksOfTheWholeFileRead) {
  const std::string plain = idx_file(0x08, {10, 4}, pseudo_random_bytes(40, 3));
  write_file(path("short.gz"), gzip(plain.substr(0, plain.size() - 5)));
  expect_names(io_error([&] { (void)eqntk::io::load_array_rows(path("short.gz"), std::vector<std::int64_t>{1}); }),
               path("short.gz"), "truncated IDX data");
  write_file(path("long.gz"), gzip(plain + "xyz"));
  expect_names(io_error([&] { (void)eqntk::io::load_array_rows(path("long.gz"), std::vector<std::int64_t>{1}); }),
               path("long.gz"), "unexpected trailing bytes");
  const std::string gz = gzip(plain);
  write_file(path("cut.gz"), gz.substr(0, gz.size() - 12));
  expect_names(io_error([&] { (void)eqntk::io::load_array_rows(path("cut.gz"), std::vector<std::int64_t>{1}); }),
               path("cut.gz"), "truncated gzip stream");
  write_file(path("tail.gz"), gz + "junk");
  expect_names(io_error([&] { (void)eqntk::io::load_array_rows(path("tail.gz"), std::vector<std::int64_t>{1}); }),
               path("tail.gz"), "unexpected bytes after the end of the gzip stream");
}

TEST_F(ArrayRowsRead, RejectsASelectionOutsideTheFile) {
  write_file(path("x"), idx_file(0x08, {3, 2}, "abcdef"));
  EXPECT_THROW((void)eqntk::io::load_array_rows(path("x"), std::vector<std::int64_t>{3}), InvalidArgument);
  EXPECT_THROW((void)eqntk::io::load_array_rows(path("x"), std::vector<std::int64_t>{1, 1}), InvalidArgument);
}

TEST_F(ArrayRowsRead, LoadDatasetEqualsPrepareOfTheWholeFilesBitForBit) {
  // 40 training and 12 test 4×4 uint8 images (gzip IDX, like Fashion-MNIST), labels 0..4.
  write_file(path("train-images"), gzip(idx_file(0x08, {40, 4, 4}, pseudo_random_bytes(40 * 16, 11))));
  write_file(path("test-images"), idx_file(0x08, {12, 4, 4}, pseudo_random_bytes(12 * 16, 12)));
  std::string train_labels, test_labels;
  for (int i = 0; i < 40; ++i) train_labels += static_cast<char>(i % 5);
  for (int i = 0; i < 12; ++i) test_labels += static_cast<char>((i * 3) % 5);
  write_file(path("train-labels"), gzip(idx_file(0x08, {40}, train_labels)));
  write_file(path("test-labels"), idx_file(0x08, {12}, test_labels));
  const eqntk::io::DataFiles files{path("train-images"), path("train-labels"), path("test-images"), path("test-labels")};
  for (const bool augment : {false, true}) {
    eqntk::io::Preprocessing opt;
    opt.n_train = 17;
    opt.n_test = 5;
    opt.seed = 42;
    opt.downsample = 2;
    opt.rotate_test = true;
    opt.augment = augment;
    const eqntk::io::Dataset want = eqntk::io::prepare(
        eqntk::io::labeled(eqntk::io::load_images(files.train_images, eqntk::io::ImageLayout::nhwc),
                           eqntk::io::load_targets(files.train_labels)),
        eqntk::io::labeled(eqntk::io::load_images(files.test_images, eqntk::io::ImageLayout::nhwc),
                           eqntk::io::load_targets(files.test_labels)),
        opt);
    const eqntk::io::Dataset got = eqntk::io::load_dataset(files, eqntk::io::ImageLayout::nhwc, opt);
    EXPECT_EQ(got.num_classes, want.num_classes);
    for (const auto& [g, w] : {std::pair{&got.train, &want.train}, std::pair{&got.test, &want.test}}) {
      EXPECT_EQ(g->images.count, w->images.count);
      EXPECT_EQ(g->images.pixels, w->images.pixels);  // exact equality of every double
      EXPECT_EQ(g->targets.classes, w->targets.classes);
      EXPECT_EQ(g->source_index, w->source_index);
      EXPECT_EQ(g->rotation, w->rotation);
    }
  }
}

// ---------------------------------------------------------------------------------------------------
// Checkpoints (format v2) and metrics.json
// ---------------------------------------------------------------------------------------------------

class CheckpointV2 : public TempDir {
 protected:
  eqntk::io::CheckpointIdentity identity() const { return {42, "test data", "1.2.3", "avx2", "float64"}; }
  // Message of the InvalidArgument create_or_verify throws for `other`, or "" when it accepts it.
  std::string refusal(const eqntk::io::CheckpointIdentity& other) const {
    try {
      eqntk::io::Checkpoint::create_or_verify(dir_.string(), other);
    } catch (const InvalidArgument& e) {
      return e.what();
    }
    return "";
  }
};

// Each field of the identity is checked, and the one line names what differs.
TEST_F(CheckpointV2, ManifestRefusesEveryDifferenceNamingIt) {
  eqntk::io::Checkpoint::create_or_verify(dir_.string(), identity());
  EXPECT_EQ(refusal(identity()), "");
  auto id = identity();
  id.instruction_set = "avx512";
  EXPECT_NE(refusal(id).find("written by the avx2 kernels and this run uses avx512"), std::string::npos) << refusal(id);
  EXPECT_NE(refusal(id).find("EQNTK_ISA=avx2"), std::string::npos);
  id = identity();
  id.precision = "mixed";
  EXPECT_NE(refusal(id).find("--precision float64 and this run uses mixed"), std::string::npos) << refusal(id);
  id = identity();
  id.eqntk_version = "1.2.4";
  EXPECT_NE(refusal(id).find("eqntk 1.2.3 and this is eqntk 1.2.4"), std::string::npos) << refusal(id);
  id = identity();
  id.fingerprint = 43;
  EXPECT_NE(refusal(id).find("other data or another architecture (test data"), std::string::npos) << refusal(id);
}

// A directory of the previous format is refused, not misread.
TEST_F(CheckpointV2, RefusesAVersionOneManifest) {
  write_file(path("manifest.txt"), "eqntk checkpoint v1\nfingerprint 000000000000002a\ndescribes x\n");
  EXPECT_NE(refusal(identity()).find("has format v1 and this eqntk reads v2"), std::string::npos) << refusal(identity());
}

// The checksum covers the tile's coordinates: a record whose header was altered (r0 moved) is not restored
// anywhere, while an intact one restores its values exactly.
TEST_F(CheckpointV2, ChecksumCoversTheTileCoordinates) {
  const std::vector<double> k{1, 2, 3, 4, 5, 6}, t{7, 8, 9, 10, 11, 12};
  {
    eqntk::io::Checkpoint c(dir_.string(), "run", 0);
    c.append({1, 4, 2, 2, 3}, k.data(), t.data());
  }
  const auto restored = [&](std::int64_t r0) {
    eqntk::io::Checkpoint c(dir_.string(), "reader", 1);
    std::vector<double> kk(6, 0.0), tt(6, 0.0);
    std::vector<char> mask(6, 0);
    const std::int64_t n = c.restore({1, r0, 2, 2, 3}, kk.data(), tt.data(), mask);
    return std::make_pair(n, kk == k && tt == t);
  };
  EXPECT_EQ(restored(4), std::make_pair(std::int64_t{6}, true));
  // Move the record to r0 = 6 on disk (bytes 16..23 of its header).
  const fs::path log = path("tiles-run-r0.log");
  std::string bytes = read_file(log);
  const std::int64_t moved = 6;
  std::memcpy(bytes.data() + 16, &moved, 8);
  write_file(log, bytes);
  EXPECT_EQ(restored(6).first, 0);
  EXPECT_EQ(restored(4).first, 0);
}

// Records for which `wanted` is false (another rank's entries) are not indexed.
TEST_F(CheckpointV2, IndexesOnlyTheRecordsItIsAskedFor) {
  const std::vector<double> v(4, 1.0);
  {
    eqntk::io::Checkpoint c(dir_.string(), "run", 0);
    for (std::int64_t r0 = 0; r0 < 10; r0 += 2) c.append({0, r0, 0, 2, 2}, v.data(), v.data());
  }
  eqntk::io::Checkpoint all(dir_.string(), "reader", 1);
  EXPECT_EQ(all.records_indexed(), 5);
  eqntk::io::Checkpoint some(dir_.string(), "reader", 2, [](const eqntk::io::TileRect& r) { return r.r0 >= 6; });
  EXPECT_EQ(some.records_indexed(), 2);
}

// metrics.json: NaN → null, ±∞ → strings, the input description embedded as JSON, strings escaped.
TEST(Metrics, JsonEncodesNonFiniteNumbersAndEscapesStrings) {
  eqntk::io::RunMetrics m;
  m.command = "run --out a\"b\\c";
  m.input_key = "input_shape";
  m.input_json = "[1, 2, 3]";
  m.results.push_back({"ntk", "inf", std::nan(""), 0.5, std::sqrt(0.5), 0.25, std::nan(""), std::nan(""),
                       std::numeric_limits<double>::infinity(), 3});
  const std::string j = eqntk::io::metrics_json(m);
  EXPECT_NE(j.find("\"command\": \"run --out a\\\"b\\\\c\""), std::string::npos) << j;
  EXPECT_NE(j.find("\"accuracy\": null"), std::string::npos) << j;
  EXPECT_NE(j.find("\"mean_variance\": \"inf\""), std::string::npos) << j;
  EXPECT_NE(j.find("\"mse\": 0.5"), std::string::npos) << j;
  EXPECT_NE(j.find("\"device\": \"cpu\""), std::string::npos) << j;
  m.device = "pthread-cpu (Portable Computing Language)";
  EXPECT_NE(eqntk::io::metrics_json(m).find("\"device\": \"pthread-cpu (Portable Computing Language)\""),
            std::string::npos);
  m.input_json = "[1, 2";
  EXPECT_THROW((void)eqntk::io::metrics_json(m), InvalidArgument);
}

// The permutation's sorted prefixes are the subsets `eqntk run --n-train` draws, for every length, and it
// is a permutation.
TEST(SeededPermutation, SortedPrefixesAreTheSeededSubsets) {
  const std::int64_t n = 37;
  const auto p = eqntk::io::seeded_permutation(n, 1234);
  std::vector<std::int64_t> sorted = p;
  std::sort(sorted.begin(), sorted.end());
  for (std::int64_t i = 0; i < n; ++i) EXPECT_EQ(sorted[static_cast<std::size_t>(i)], i);
  for (std::int64_t k = 0; k <= n; ++k) {
    std::vector<std::int64_t> prefix(p.begin(), p.begin() + k);
    std::sort(prefix.begin(), prefix.end());
    EXPECT_EQ(prefix, eqntk::io::seeded_subset(n, k, 1234)) << "k = " << k;
  }
}
