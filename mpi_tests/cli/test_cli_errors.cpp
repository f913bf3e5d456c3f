// Bad-input suite for the real `eqntk` binary (STYLE.md, Errors): for every bad input the process must
// end quickly with a non-zero exit code (2 for usage/input, 1 for a runtime failure such as a singular
// kernel), print exactly one `eqntk: error:` line naming the problem, show nothing that looks like a crash,
// and leave no output file and no `.partial` behind. `eqntk run` cases run on 1 rank (the binary started
// directly) and under mpiexec with 2 and 3 ranks; a positive control per command tells a broken binary
// from a correct rejection.
//
// Fixtures are written into a fresh temporary directory per test: .npy through io::write_npy (or a
// header from io::npy_header plus raw bytes for other dtypes), IDX and corrupt files byte by byte,
// gzip through zlib. The binary and mpiexec come from CMake (EQNTK_BINARY, EQNTK_MPIEXEC).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "../support/cli_fixture.hpp"
#include "../support/fixtures.hpp"
#include "../support/subprocess.hpp"
#include "eqntk/io/array.hpp"
#include "eqntk/io/npy.hpp"

namespace fs = std::filesystem;
using namespace std::string_literals;
using eqntk::testing::gzip;
using eqntk::testing::lines_starting;
using eqntk::testing::read_text;
using eqntk::testing::tree;
using eqntk::testing::write_bytes;
using Result = eqntk::testing::ProcessResult;

namespace {

constexpr int kExitOk = 0;
constexpr int kExitRuntime = 1;
constexpr int kExitUsage = 2;

// Deterministic pixel values in [-1, 1], distinct per image.
std::vector<double> pixels(std::int64_t count, double seed) {
  std::vector<double> v(static_cast<std::size_t>(count));
  for (std::int64_t i = 0; i < count; ++i)
    v[static_cast<std::size_t>(i)] = std::sin(0.7 * static_cast<double>(i) + seed);
  return v;
}

// An IDX file: 00 00 <type> <ndims>, big-endian int32 dimensions, payload.
std::string idx_bytes(unsigned char type, const std::vector<std::int32_t>& dims, const std::string& payload) {
  std::string out = "\0\0"s + static_cast<char>(type) + static_cast<char>(dims.size());
  for (const auto d : dims)
    for (int s = 24; s >= 0; s -= 8) out += static_cast<char>((static_cast<std::uint32_t>(d) >> s) & 0xFF);
  return out + payload;
}

// Per test: a fresh work directory (fixtures and outputs) and a capture directory beside it.
class CliTest : public eqntk::testing::CliFixture {
 protected:
  CliTest() : CliFixture("eqntk-cli-") {}

  // N×H×W×C float64 images, NHWC, via io::write_npy.
  fs::path images_npy(const std::string& name, std::int64_t n, std::int64_t h, std::int64_t w, std::int64_t c = 1,
                      double seed = 0.0) const {
    const std::int64_t shape[4] = {n, h, w, c};
    const auto v = pixels(n * h * w * c, seed);
    eqntk::io::write_npy(path(name), shape, std::span<const double>(v));
    return path(name);
  }
  fs::path array_npy(const std::string& name, std::vector<std::int64_t> shape, std::vector<double> v) const {
    eqntk::io::write_npy(path(name), shape, std::span<const double>(v));
    return path(name);
  }
  fs::path labels_npy(const std::string& name, const std::vector<std::int64_t>& labels) const {
    const std::int64_t shape[1] = {static_cast<std::int64_t>(labels.size())};
    eqntk::io::write_npy(path(name), shape, std::span<const std::int64_t>(labels));
    return path(name);
  }
  // Alternating classes 0, 1, 0, 1, ...
  fs::path labels_npy(const std::string& name, std::int64_t n) const {
    std::vector<std::int64_t> l;
    for (std::int64_t i = 0; i < n; ++i) l.push_back(i % 2);
    return labels_npy(name, l);
  }
  fs::path bytes_file(const std::string& name, const std::string& bytes) const {
    write_bytes(path(name), bytes);
    return path(name);
  }

  // Runs the command and expects success.
  Result expect_success(const std::vector<std::string>& args, int ranks = 1) const {
    const Result r = eqntk(args, ranks);
    const std::string where = "\n  command: " + r.command + "\n  stdout: " + r.out + "\n  stderr: " + r.err;
    EXPECT_FALSE(r.timed_out) << where;
    EXPECT_EQ(r.exit_code, kExitOk) << where;
    EXPECT_TRUE(lines_starting(r.err, "eqntk: error:").empty()) << where;
    return r;
  }

  // No `.partial` anywhere under the work directory.
  void expect_no_partials() const {
    for (const auto& name : tree(work_)) EXPECT_EQ(name.find(".partial"), std::string::npos) << name;
  }
};

// ---------------------------------------------------------------------------------------------------
// eqntk kernel
// ---------------------------------------------------------------------------------------------------

class KernelCli : public CliTest {
 protected:
  void SetUp() override {
    CliTest::SetUp();
    x_ = images_npy("x.npy", 4, 6, 6).string();
  }
  // `eqntk kernel` with a working architecture and both outputs, plus `extra`.
  std::vector<std::string> args(const std::string& x1, std::vector<std::string> extra = {}) const {
    std::vector<std::string> a{
        "kernel", "--x1", x1, "--arch", kCnn, "--nngp", path("K.npy").string(), "--ntk", path("T.npy").string()};
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
  }
  std::vector<std::string> with_arch(const std::string& arch) const {
    return {"kernel", "--x1", x_, "--arch", arch, "--nngp", path("K.npy").string()};
  }
  static constexpr const char* kCnn = "conv:k=3,relu,gap,dense";
  std::string x_;
};

TEST_F(KernelCli, ValidRunWritesBothMatrices) {
  expect_success(args(x_, {"--x2", images_npy("x2.npy", 3, 6, 6, 1, 1.0).string()}));
  const auto k = eqntk::io::read_npy(path("K.npy"));
  const auto t = eqntk::io::read_npy(path("T.npy"));
  EXPECT_EQ(k.shape, (eqntk::io::Shape{4, 3}));
  EXPECT_EQ(t.shape, (eqntk::io::Shape{4, 3}));
  expect_no_partials();
}

TEST_F(KernelCli, ValidGroupNetworkRunSucceeds) {
  expect_success(
      {"kernel", "--x1", x_, "--arch", "lift:k=3,relu,gconv:k=3,relu,gpool,dense", "--ntk", path("T.npy").string()});
  EXPECT_EQ(eqntk::io::read_npy(path("T.npy")).shape, (eqntk::io::Shape{4, 4}));
  expect_no_partials();
}

TEST_F(KernelCli, RejectsMissingX1File) {
  expect_rejected(args(path("absent.npy").string()), 1, kExitUsage, {"absent.npy", "no such file"});
}

TEST_F(KernelCli, RejectsTruncatedNpy) {
  std::string bytes = read_text(x_);
  bytes.resize(bytes.size() - 17);
  bytes_file("cut.npy", bytes);
  expect_rejected(args(path("cut.npy").string()), 1, kExitUsage, {"cut.npy", "truncated"});
}

TEST_F(KernelCli, RejectsFileThatIsNotNpy) {
  bytes_file("text.npy", "these are not the images you are looking for\n");
  expect_rejected(args(path("text.npy").string()), 1, kExitUsage, {"text.npy", "not a .npy"});
}

TEST_F(KernelCli, RejectsInt64Pixels) {
  const std::int64_t shape[4] = {2, 6, 6, 1};
  const std::vector<std::int64_t> v(72, 3);
  eqntk::io::write_npy(path("int.npy"), shape, std::span<const std::int64_t>(v));
  expect_rejected(args(path("int.npy").string()), 1, kExitUsage, {"int.npy", "<i8", "float"});
}

TEST_F(KernelCli, RejectsUint8Pixels) {
  const std::int64_t shape[4] = {2, 6, 6, 1};
  bytes_file("u8.npy", eqntk::io::npy_header(shape, eqntk::io::DType::u1) + std::string(72, '\x07'));
  expect_rejected(args(path("u8.npy").string()), 1, kExitUsage, {"u8.npy", "|u1", "float"});
}

TEST_F(KernelCli, Rejects2dArray) {
  array_npy("flat.npy", {4, 36}, pixels(144, 0.0));
  expect_rejected(args(path("flat.npy").string()), 1, kExitUsage, {"flat.npy", "(4, 36)", "4 dimensions"});
}

TEST_F(KernelCli, Rejects5dArray) {
  array_npy("five.npy", {2, 6, 6, 1, 1}, pixels(72, 0.0));
  expect_rejected(args(path("five.npy").string()), 1, kExitUsage, {"five.npy", "(2, 6, 6, 1, 1)", "4 dimensions"});
}

TEST_F(KernelCli, RejectsNanPixel) {
  auto v = pixels(144, 0.0);
  v[40] = std::numeric_limits<double>::quiet_NaN();
  array_npy("nan.npy", {4, 6, 6, 1}, v);
  expect_rejected(args(path("nan.npy").string()), 1, kExitUsage, {"nan.npy", "NaN", "image 1"});
}

TEST_F(KernelCli, RejectsInfPixel) {
  auto v = pixels(144, 0.0);
  v[143] = -std::numeric_limits<double>::infinity();
  array_npy("inf.npy", {4, 6, 6, 1}, v);
  expect_rejected(args(path("inf.npy").string()), 1, kExitUsage, {"inf.npy", "Inf", "image 3"});
}

TEST_F(KernelCli, RejectsChannelMismatchBetweenX1AndX2) {
  images_npy("x2.npy", 3, 6, 6, 2);
  expect_rejected(args(x_, {"--x2", path("x2.npy").string()}), 1, kExitUsage, {"1x6x6", "2x6x6", "x2"});
}

TEST_F(KernelCli, RejectsSizeMismatchBetweenX1AndX2) {
  images_npy("x2.npy", 3, 8, 8);
  expect_rejected(args(x_, {"--x2", path("x2.npy").string()}), 1, kExitUsage, {"1x6x6", "1x8x8"});
}

TEST_F(KernelCli, RejectsUnknownLayer) {
  expect_rejected(with_arch("conv:k=3,tanh,gap,dense"), 1, kExitUsage,
                  {"invalid architecture", "unknown layer 'tanh'"});
}

TEST_F(KernelCli, RejectsEvenFilterSize) {
  expect_rejected(with_arch("conv:k=4,relu,gap,dense"), 1, kExitUsage, {"conv:k=4", "must be odd"});
}

TEST_F(KernelCli, RejectsGconvBeforeLift) {
  expect_rejected(with_arch("gconv:k=3,relu,gpool,dense"), 1, kExitUsage, {"gconv", "preceding lift"});
}

TEST_F(KernelCli, RejectsC4LayerOnNonSquareImage) {
  images_npy("wide.npy", 2, 6, 8);
  expect_rejected({"kernel", "--x1", path("wide.npy").string(), "--arch", "lift:k=3,relu,gpool,dense", "--nngp",
                   path("K.npy").string()},
                  1, kExitUsage, {"lift", "square"});
}

// MATH.md §10's rejections: one line naming the token and the rule.
TEST_F(KernelCli, RejectsAvgpoolCellThatDoesNotDivideTheImage) {
  expect_rejected(with_arch("conv:k=3,relu,avgpool:s=4,gap,dense"), 1, kExitUsage, {"avgpool:s=4", "divide", "6x6"});
}

TEST_F(KernelCli, RejectsAvgpoolAfterReadout) {
  expect_rejected(with_arch("conv:k=3,relu,gap,avgpool:s=2,dense"), 1, kExitUsage,
                  {"avgpool:s=2", "avgpool after a readout"});
}

TEST_F(KernelCli, RejectsResBodyThatChangesTheSize) {
  expect_rejected(with_arch("conv:k=3,relu,res(conv:k=3:pad=valid),gap,dense"), 1, kExitUsage,
                  {"res(conv:k=3:pad=valid)", "keep the spatial size"});
}

TEST_F(KernelCli, RejectsResBodyNotStartingWithALinearLayer) {
  expect_rejected(with_arch("conv:k=3,res(relu,conv:k=3),gap,dense"), 1, kExitUsage,
                  {"res(relu,conv:k=3)", "start with a linear spatial layer"});
}

TEST_F(KernelCli, RejectsGroupKeyOutsideLift) {
  expect_rejected(with_arch("lift:k=3,relu,gconv:k=3:group=p4m,gpool,dense"), 1, kExitUsage,
                  {"gconv:k=3:group=p4m", "group= is a key of lift only"});
}

TEST_F(KernelCli, RejectsUnknownGroup) {
  expect_rejected(with_arch("lift:k=3:group=p6,relu,gpool,dense"), 1, kExitUsage, {"lift:k=3:group=p6", "unknown group"});
}

TEST_F(KernelCli, RejectsP4mLayerOnNonSquareImage) {
  images_npy("wide.npy", 2, 6, 8);
  expect_rejected({"kernel", "--x1", path("wide.npy").string(), "--arch", "lift:k=3:group=p4m,relu,gpool,dense",
                   "--nngp", path("K.npy").string()},
                  1, kExitUsage, {"lift:k=3:group=p4m", "square", "6x8"});
}

TEST_F(KernelCli, RejectsDenseBeforePooling) {
  expect_rejected(with_arch("conv:k=3,relu,dense"), 1, kExitUsage, {"dense before pooling"});
}

TEST_F(KernelCli, RejectsPoolingTwice) {
  expect_rejected(with_arch("conv:k=3,relu,gap,flatten,dense"), 1, kExitUsage, {"flatten", "pooling twice"});
}

TEST_F(KernelCli, RejectsMissingOutputs) {
  expect_rejected({"kernel", "--x1", x_, "--arch", kCnn}, 1, kExitUsage, {"--nngp", "--ntk"});
}

TEST_F(KernelCli, RejectsOutputInsideRegularFile) {
  bytes_file("plain", "a regular file\n");
  expect_rejected({"kernel", "--x1", x_, "--arch", kCnn, "--nngp", path("plain/K.npy").string()}, 1, kExitUsage,
                  {"plain/K.npy", "cannot create"});
}

TEST_F(KernelCli, RejectsOutputInMissingDirectory) {
  expect_rejected({"kernel", "--x1", x_, "--arch", kCnn, "--ntk", path("nodir/T.npy").string()}, 1, kExitUsage,
                  {"nodir/T.npy", "cannot create"});
}

TEST_F(KernelCli, RejectsSecondUnwritableOutputWithoutLeavingTheFirst) {
  expect_rejected(
      {"kernel", "--x1", x_, "--arch", kCnn, "--nngp", path("K.npy").string(), "--ntk", path("nodir/T.npy").string()},
      1, kExitUsage, {"nodir/T.npy"});
}

TEST_F(KernelCli, RejectsSameFileForNngpAndNtk) {
  expect_rejected({"kernel", "--x1", x_, "--arch", kCnn, "--nngp", path("K.npy").string(), "--ntk",
                   (work_ / "." / "K.npy").string()},
                  1, kExitUsage, {"--nngp and --ntk", "same file", "K.npy"});
}

// `eqntk kernel` works on rank 0 only; under mpiexec the other ranks must still agree and end cleanly.
TEST_F(KernelCli, RejectsBadInputOnceUnderMpiexec) {
  auto v = pixels(144, 0.0);
  v[0] = std::numeric_limits<double>::quiet_NaN();
  array_npy("nan.npy", {4, 6, 6, 1}, v);
  expect_rejected(args(path("nan.npy").string()), 2, kExitUsage, {"nan.npy", "NaN", "image 0"});
}

TEST_F(KernelCli, RejectsUnknownOption) {
  expect_rejected(args(x_, {"--colour", "blue"}), 1, kExitUsage, {"colour"});
}

// ---------------------------------------------------------------------------------------------------
// eqntk run, on 1, 2 and 3 ranks
// ---------------------------------------------------------------------------------------------------

class RunCli : public CliTest, public ::testing::WithParamInterface<int> {
 protected:
  void SetUp() override {
    CliTest::SetUp();
    images_npy("train.npy", kTrain, 8, 8, 1, 0.0);
    labels_npy("train_labels.npy", kTrain);
    images_npy("test.npy", kTest, 8, 8, 1, 2.0);
    labels_npy("test_labels.npy", kTest);
  }
  [[nodiscard]] int ranks() const { return GetParam(); }

  // A valid `eqntk run` on the default fixtures; `replace` swaps option values, `extra` appends.
  std::vector<std::string> args(const std::vector<std::pair<std::string, std::string>>& replace = {},
                                const std::vector<std::string>& extra = {}) const {
    std::vector<std::pair<std::string, std::string>> opts{{"--train-images", path("train.npy").string()},
                                                          {"--train-labels", path("train_labels.npy").string()},
                                                          {"--test-images", path("test.npy").string()},
                                                          {"--test-labels", path("test_labels.npy").string()},
                                                          {"--arch", "conv:k=3,relu,gap,dense"},
                                                          {"--times", "inf,1"},
                                                          {"--kernel", "both"},
                                                          {"--block-size", "4"},
                                                          {"--out", path("out").string()}};
    return eqntk::testing::run_argv(std::move(opts), replace, extra);
  }
  void expect_run_rejected(const std::vector<std::string>& a, const std::vector<std::string>& needles) const {
    expect_rejected(a, ranks(), kExitUsage, needles);
  }
  void expect_complete_outputs() const {
    for (const char* f : {"metrics.json", "test_info.npy", "predictions_ntk_tinf.npy", "predictions_ntk_t1.npy",
                          "predictions_nngp_tinf.npy", "predictions_nngp_t1.npy"})
      EXPECT_TRUE(fs::is_regular_file(path("out") / f)) << f;
    EXPECT_EQ(eqntk::io::read_npy(path("out") / "predictions_ntk_tinf.npy").shape, (eqntk::io::Shape{kTest, 2}));
    expect_no_partials();
  }
  static constexpr std::int64_t kTrain = 8, kTest = 4;
};

TEST_P(RunCli, ValidRunWritesEveryOutput) {
  expect_success(args(), ranks());
  expect_complete_outputs();
}

TEST_P(RunCli, RefusesCheckpointOfAnotherGroup) {
  // The checkpoint identity hashes the canonical architecture, which spells the group: a p4m run cannot
  // resume from the tiles of a p4 run with otherwise identical layers.
  const std::string ckpt = path("ckpt").string();
  expect_success(args({{"--arch", "lift:k=3,relu,gpool,dense"}}, {"--checkpoint", ckpt}), ranks());
  expect_rejected(args({{"--arch", "lift:k=3:group=p4m,relu,gpool,dense"}, {"--out", path("out2").string()}},
                       {"--checkpoint", ckpt}),
                  ranks(), kExitUsage, {"checkpoint", "another architecture"}, true);
}

TEST_P(RunCli, RejectsMissingTrainImageFile) {
  expect_run_rejected(args({{"--train-images", path("absent.npy").string()}}), {"absent.npy", "no such file"});
}

TEST_P(RunCli, RejectsTruncatedPlainIdx) {
  std::string payload(kTrain * 64, '\x10');
  std::string bytes = idx_bytes(0x08, {kTrain, 8, 8}, payload);
  bytes.resize(bytes.size() - 100);
  bytes_file("train-idx3-ubyte", bytes);
  expect_run_rejected(args({{"--train-images", path("train-idx3-ubyte").string()}}),
                      {"train-idx3-ubyte'", "truncated IDX"});
}

TEST_P(RunCli, RejectsTruncatedGzipIdx) {
  std::string payload;
  for (int i = 0; i < kTrain * 64; ++i) payload += static_cast<char>((i * 37) & 0xFF);
  std::string bytes = gzip(idx_bytes(0x08, {kTrain, 8, 8}, payload));
  bytes.resize(bytes.size() / 2);
  bytes_file("train-idx3-ubyte.gz", bytes);
  expect_run_rejected(args({{"--train-images", path("train-idx3-ubyte.gz").string()}}),
                      {"train-idx3-ubyte.gz", "truncated gzip"});
}

TEST_P(RunCli, RejectsGzipIdxWithTruncatedContent) {
  std::string bytes = idx_bytes(0x08, {kTrain}, "\x01\x00\x01"s);  // header says 8 labels, 3 follow
  bytes_file("labels-idx1-ubyte.gz", gzip(bytes));
  expect_run_rejected(args({{"--train-labels", path("labels-idx1-ubyte.gz").string()}}),
                      {"labels-idx1-ubyte.gz", "truncated IDX"});
}

TEST_P(RunCli, RejectsLabelCountDifferentFromImageCount) {
  labels_npy("short_labels.npy", kTrain - 1);
  expect_run_rejected(args({{"--train-labels", path("short_labels.npy").string()}}),
                      {"training labels", "7 labels for 8 images"});
}

TEST_P(RunCli, RejectsLabelOutOfRangeForClasses) {
  labels_npy("three.npy", {0, 1, 2, 0, 1, 2, 0, 1});
  expect_run_rejected(args({{"--train-labels", path("three.npy").string()}, {"--classes", "2"}}),
                      {"label 2", "--classes 2"});
}

TEST_P(RunCli, RejectsNegativeLabel) {
  labels_npy("negative.npy", {0, 1, 0, -1, 1, 0, 1, 0});
  expect_run_rejected(args({{"--train-labels", path("negative.npy").string()}}),
                      {"negative.npy", "negative", "image 3"});
}

TEST_P(RunCli, RejectsNanInImages) {
  auto v = pixels(kTrain * 64, 0.0);
  v[5 * 64 + 3] = std::numeric_limits<double>::quiet_NaN();
  array_npy("nan.npy", {kTrain, 8, 8, 1}, v);
  expect_run_rejected(args({{"--train-images", path("nan.npy").string()}}), {"nan.npy", "NaN", "image 5"});
}

TEST_P(RunCli, RejectsTestImagesOfAnotherSize) {
  images_npy("test6.npy", kTest, 6, 6);
  expect_run_rejected(args({{"--test-images", path("test6.npy").string()}}), {"1x8x8", "1x6x6"});
}

TEST_P(RunCli, RejectsGridThatDoesNotMatchRankCount) {
  const std::string grid = std::to_string(ranks() + 1) + "x1";
  expect_run_rejected(args({{"--grid", grid}}), {"--grid " + grid, "the job has " + std::to_string(ranks())});
}

TEST_P(RunCli, RejectsMalformedGrid) {
  expect_run_rejected(args({{"--grid", "abc"}}), {"--grid", "'abc'"});
}

TEST_P(RunCli, RejectsZeroBlockSize) {
  expect_run_rejected(args({{"--block-size", "0"}}), {"--block-size", "0"});
}

TEST_P(RunCli, RejectsNegativeBlockSize) {
  expect_run_rejected(args({{"--block-size", ""}}, {"--block-size=-3"}), {"--block-size", "-3"});
}

TEST_P(RunCli, RejectsZeroThreads) {
  expect_run_rejected(args({{"--threads", "0"}}), {"--threads", "0"});
}

TEST_P(RunCli, RejectsNegativeTime) {
  expect_run_rejected(args({{"--times", ""}}, {"--times=inf,-1"}), {"--times", "'-1'"});
}

TEST_P(RunCli, RejectsGarbageTime) {
  expect_run_rejected(args({{"--times", "1,soon"}}), {"--times", "'soon'"});
}

TEST_P(RunCli, RejectsOutThatIsARegularFile) {
  bytes_file("out", "occupied\n");
  expect_run_rejected(args(), {"/out'", "not a directory"});
}

TEST_P(RunCli, RejectsExistingOutputsWithoutOverwriteThenOverwriteSucceeds) {
  fs::create_directories(path("out"));
  bytes_file("out/metrics.json", "{}\n");
  expect_run_rejected(args(), {"metrics.json", "--overwrite"});
  EXPECT_EQ(read_text(path("out/metrics.json")), "{}\n");
  expect_success(args({}, {"--overwrite"}), ranks());
  EXPECT_NE(read_text(path("out/metrics.json")), "{}\n");
  expect_complete_outputs();
}

TEST_P(RunCli, RejectsNTrainLargerThanAvailable) {
  expect_run_rejected(args({{"--n-train", "9"}}), {"--n-train 9", "8 train images"});
}

TEST_P(RunCli, RejectsDownsampleThatDoesNotDivideTheSize) {
  expect_run_rejected(args({{"--downsample", "3"}}), {"--downsample 3", "8x8"});
}

TEST_P(RunCli, RejectsRotateTestOnNonSquareImages) {
  images_npy("train_wide.npy", kTrain, 6, 8);
  images_npy("test_wide.npy", kTest, 6, 8, 1, 2.0);
  expect_run_rejected(
      args({{"--train-images", path("train_wide.npy").string()}, {"--test-images", path("test_wide.npy").string()}},
           {"--rotate-test"}),
      {"--rotate-test", "square"});
}

TEST_P(RunCli, RejectsConfigFileWithUnknownKey) {
  bytes_file("run.ini", "eta = 0.5\nlearning-rate = 2\n");
  expect_run_rejected(args({{"--config", path("run.ini").string()}}), {"run.ini", "learning-rate"});
}

TEST_P(RunCli, RejectsMissingArch) {
  expect_run_rejected(args({{"--arch", ""}}), {"--arch is required"});
}

// N = 80 272 tiny images on a 1×P grid: a rank's local block of the N×N matrix has more than 2³¹−1
// elements (on 1×3 with nb = 32: 80 272 × 26 768). The limit is found at validation, on every rank, before
// any kernel is evaluated: one line naming it, exit 2, nothing written, within seconds.
TEST_P(RunCli, RejectsALocalBlockOverTheIntRangeBeforeAnyWork) {
  constexpr std::int64_t kMany = 80272;
  images_npy("many.npy", kMany, 2, 2, 1, 0.0);
  labels_npy("many_labels.npy", kMany);
  const std::string grid = "1x" + std::to_string(ranks());
  expect_run_rejected(args({{"--train-images", path("many.npy").string()},
                            {"--train-labels", path("many_labels.npy").string()},
                            {"--test-images", path("many.npy").string()},
                            {"--test-labels", path("many_labels.npy").string()},
                            {"--arch", "conv:k=1,relu,gap,dense"},
                            {"--block-size", "32"},
                            {"--grid", grid}},
                           {"--save-kernels"}),
                      {"size limit", "local block", "2^31-1", "--save-kernels", grid});
}

// N = 80 000 on 1×3 (nb = 32): every local block fits (80 000 × 26 688 < 2³¹−1), but the eigensolver's
// workspace for a finite time (about 1.2 × its local block plus O(N) terms) does not: rejected before work.
TEST_P(RunCli, RejectsAnEigensolverWorkspaceOverTheIntRangeBeforeAnyWork) {
  if (ranks() != 3) GTEST_SKIP() << "the local block itself is over the limit on fewer ranks";
  constexpr std::int64_t kMany = 80000;
  images_npy("many.npy", kMany, 2, 2, 1, 0.0);
  labels_npy("many_labels.npy", kMany);
  expect_run_rejected(args({{"--train-images", path("many.npy").string()},
                            {"--train-labels", path("many_labels.npy").string()},
                            {"--test-images", images_npy("few.npy", kTest, 2, 2).string()},
                            {"--arch", "conv:k=1,relu,gap,dense"},
                            {"--block-size", "32"},
                            {"--times", "1"},
                            {"--grid", "1x3"}}),
                      {"size limit", "eigensolver", "2^31-1"});
}

// Pixel values around 1e160 overflow the kernel (their squares are over the double range): the Gram matrices
// hold Inf/NaN, which must be reported as such before the solve -- a runtime failure (exit 1) with its own
// message, not the "not positive definite, add a ridge" of an indefinite matrix.
TEST_P(RunCli, OverflowingKernelsFailWithAFinitenessMessageNotARidgeHint) {
  std::vector<double> huge(kTrain * 64);
  for (std::size_t i = 0; i < huge.size(); ++i) huge[i] = 1e160 * (1.0 + 0.01 * static_cast<double>(i % 7));
  array_npy("huge.npy", {kTrain, 8, 8, 1}, huge);
  const auto a = args({{"--train-images", path("huge.npy").string()}, {"--standardize", "false"}});
  expect_rejected(a, ranks(), kExitRuntime, {"non-finite (NaN/Inf)", "training kernel matrix", "a ridge does not help"});
  const Result r = eqntk(a, ranks());
  EXPECT_EQ(r.err.find("--ridge"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("leading minor"), std::string::npos) << r.err;
}

// A write that fails while the job runs -- here a file-size limit (ulimit -f, SIGXFSZ ignored so that
// write() returns EFBIG as on a full disk) -- is a runtime failure: exit 1 on every rank, one error line
// naming the file, no output committed. Only the ranks get the limit (MPI's launcher needs larger files).
class WriteFailure : public CliTest, public ::testing::WithParamInterface<int> {
 protected:
  Result run_limited(const std::vector<std::string>& args, int kib) const {
    std::vector<std::string> argv{EQNTK_MPIEXEC, EQNTK_MPIEXEC_NUMPROC_FLAG, std::to_string(GetParam()), "--oversubscribe",
                                  "/bin/bash", "-c", "trap '' XFSZ; ulimit -f " + std::to_string(kib) + "; exec \"$0\" \"$@\"",
                                  EQNTK_BINARY};
    argv.insert(argv.end(), args.begin(), args.end());
    ::setenv("OMPI_MCA_btl", "self,tcp", 1);  // no shared-memory segment files under the limit
    const Result r = eqntk::testing::run_process(argv, capture_, kKillSeconds);
    ::unsetenv("OMPI_MCA_btl");
    return r;
  }
  std::vector<std::string> args(const std::vector<std::string>& extra) const {
    std::vector<std::string> a{"run", "--train-images", images_npy("train.npy", 40, 8, 8).string(), "--train-labels",
                               labels_npy("train_labels.npy", 40).string(), "--test-images",
                               images_npy("test.npy", 4, 8, 8, 1, 2.0).string(), "--test-labels",
                               labels_npy("test_labels.npy", 4).string(), "--arch", "conv:k=3,relu,gap,dense", "--times",
                               "inf", "--ridge", "1e-8", "--block-size", "4", "--quiet", "--out", path("out").string()};
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
  }
  void expect_runtime_write_failure(const Result& r, const std::string& needle) const {
    EXPECT_EQ(r.exit_code, 1) << r.err;
    const auto errors = lines_starting(r.err, "eqntk: error:");
    ASSERT_EQ(errors.size(), 1u) << r.err;
    EXPECT_NE(errors[0].find(needle), std::string::npos) << errors[0];
    EXPECT_FALSE(fs::exists(path("out/metrics.json")));
    for (const auto& name : tree(work_)) EXPECT_EQ(name.find(".partial"), std::string::npos) << name;
  }
};

TEST_P(WriteFailure, KernelOutputOverAFileSizeLimitIsARuntimeFailure) {
  // theta_train.npy is 40·40·8 + 128 = 12 928 bytes, over 8 KiB.
  expect_runtime_write_failure(run_limited(args({"--save-kernels"}), 8), "theta_train.npy");
}

TEST_P(WriteFailure, CheckpointLogOverAFileSizeLimitIsARuntimeFailure) {
  // Each 4×4 tile record is 56 + 2·16·8 = 312 bytes: a rank's log passes 2 KiB after 7 of its tiles.
  expect_runtime_write_failure(run_limited(args({"--checkpoint", path("ckpt").string()}), 2), "checkpoint log");
}

INSTANTIATE_TEST_SUITE_P(Ranks, WriteFailure, ::testing::Values(1, 2),
                         [](const ::testing::TestParamInfo<int>& p) { return "np" + std::to_string(p.param); });

// Identical (all-zero) training images through `conv:k=1,gap,dense:b=2` give the kernel 4·11ᵀ exactly
// (every entry σ_b² = 4, for the NNGP and the NTK alike), so Cholesky meets an exact zero pivot at
// order 2 whatever the rank count and block size: a runtime failure (exit 1) that suggests --ridge.
TEST_P(RunCli, SingularKernelFailsWithRidgeAdviceAndRidgeFixesIt) {
  array_npy("zeros.npy", {kTrain, 8, 8, 1}, std::vector<double>(kTrain * 64, 0.0));
  const auto a = args({{"--train-images", path("zeros.npy").string()},
                       {"--arch", "conv:k=1,gap,dense:b=2"},
                       {"--times", "inf"},
                       {"--kernel", "ntk"}});
  expect_rejected(a, ranks(), kExitRuntime, {"leading minor", "--ridge"}, /*allow_empty_dirs=*/true);
  auto fixed = a;
  fixed.insert(fixed.end(), {"--ridge", "1e-6"});
  expect_success(fixed, ranks());
  EXPECT_TRUE(fs::is_regular_file(path("out/metrics.json")));
  EXPECT_TRUE(fs::is_regular_file(path("out/predictions_ntk_tinf.npy")));
  expect_no_partials();
}

INSTANTIATE_TEST_SUITE_P(Ranks, RunCli, ::testing::Values(1, 2, 3),
                         [](const ::testing::TestParamInfo<int>& p) { return "np" + std::to_string(p.param); });

}  // namespace
