// `eqntk run --device gpu` through the real binary under mpiexec: kernels bitwise identical across rank
// counts, grids and block sizes, equal to --device cpu to 1e-12, and resumed from a checkpoint. Skipped
// with one line without an fp64 OpenCL device.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <regex>
#include <string>
#include <vector>

#include "../support/subprocess.hpp"
#include "eqntk/gpu/device.hpp"
#include "eqntk/io/npy.hpp"

namespace fs = std::filesystem;
using eqntk::testing::ProcessResult;
using eqntk::testing::read_text;
using eqntk::testing::run_process;

namespace {

constexpr const char* kArch = "lift:k=3:pad=same,relu,gconv:k=3:pad=circular:b=0.1,relu,gpool,dense";

#define REQUIRE_DEVICE()                   \
  if (!eqntk::gpu::fp64_device_available()) \
  GTEST_SKIP() << "no OpenCL platform with a cl_khr_fp64 device: GPU tests skipped"

class GpuRun : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/eqntk_gpu_run_XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    write(dir_ / "train.npy", n_, 1);
    write(dir_ / "test.npy", m_, 2);
    for (const auto& [name, count] : {std::pair{"train_labels.npy", n_}, std::pair{"test_labels.npy", m_}}) {
      std::vector<std::int64_t> labels(static_cast<std::size_t>(count));
      for (std::int64_t i = 0; i < count; ++i) labels[static_cast<std::size_t>(i)] = i % 3;
      const std::int64_t shape[1] = {count};
      eqntk::io::write_npy(dir_ / name, shape, std::span<const std::int64_t>(labels));
    }
  }
  void TearDown() override { fs::remove_all(dir_); }

  void write(const fs::path& p, std::int64_t count, std::uint64_t seed) const {
    std::mt19937_64 rng(seed);
    std::normal_distribution<double> normal;
    std::vector<double> v(static_cast<std::size_t>(count * 6 * 6));
    for (double& x : v) x = normal(rng);
    const std::int64_t shape[4] = {count, 6, 6, 1};
    eqntk::io::write_npy(p, shape, std::span<const double>(v));
  }

  // --device cpu on 1 rank, then --device gpu on 1, 2, 3 ranks with different block sizes and grids:
  // bitwise equal to each other, equal to the CPU to 1e-12, metrics.json naming the device.
  void check_ranks();

  ProcessResult run(int ranks, const std::string& out, const std::vector<std::string>& extra) {
    std::vector<std::string> argv{EQNTK_MPIEXEC, EQNTK_MPIEXEC_NUMPROC_FLAG, std::to_string(ranks), "--oversubscribe",
                                  EQNTK_BINARY, "run", "--train-images", (dir_ / "train.npy").string(),
                                  "--train-labels", (dir_ / "train_labels.npy").string(), "--test-images",
                                  (dir_ / "test.npy").string(), "--test-labels", (dir_ / "test_labels.npy").string(),
                                  "--arch", arch_, "--out", (dir_ / out).string(), "--standardize", "false",
                                  "--save-kernels", "--quiet", "--times", "inf", "--ridge", "1e-8"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    const fs::path capture = dir_ / ("capture_" + out);
    fs::create_directories(capture);
    return run_process(argv, capture, 300);
  }

  std::vector<double> load(const std::string& out, const char* file) const {
    return eqntk::io::read_npy(dir_ / out / file).real;
  }

  fs::path dir_;
  std::int64_t n_ = 13, m_ = 5;
  std::string arch_ = kArch;
};

const char* const kFiles[] = {"theta_train.npy", "theta_test.npy", "nngp_train.npy", "nngp_test.npy"};

bool bitwise(const std::vector<double>& a, const std::vector<double>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(double)) == 0;
}

std::string json_string(const std::string& json, const std::string& key) {
  std::smatch m;
  if (!std::regex_search(json, m, std::regex("\"" + key + "\": \"([^\"]*)\""))) return "<no " + key + ">";
  return m[1];
}

TEST_F(GpuRun, KernelsAreBitwiseIdenticalAcrossRanksAndBlocksAndEqualTheCpuEngine) {
  REQUIRE_DEVICE();
  check_ranks();
}

// MATH §10's layers on the device: a p4 network with a residual block and an avgpool.
TEST_F(GpuRun, AvgpoolResidualKernelsAreBitwiseIdenticalAcrossRanksAndEqualTheCpuEngine) {
  REQUIRE_DEVICE();
  arch_ = "lift:k=3,relu,res(gconv:k=3:pad=circular,relu,gconv:k=3),avgpool:s=2,gconv:k=3:b=0.1,relu,gpool,dense";
  check_ranks();
}

void GpuRun::check_ranks() {
  const auto cpu = run(1, "cpu", {"--block-size", "4"});
  ASSERT_EQ(cpu.exit_code, 0) << cpu.err;
  EXPECT_EQ(json_string(read_text(dir_ / "cpu" / "metrics.json"), "device"), "cpu");
  const auto listed = eqntk::gpu::list_devices();  // every rank is node-local rank r of one node: device r mod count
  const std::vector<std::pair<int, std::vector<std::string>>> configs = {
      {1, {"--block-size", "4"}}, {2, {"--block-size", "3"}}, {3, {"--block-size", "2", "--grid", "3x1"}}};
  for (std::size_t c = 0; c < configs.size(); ++c) {
    std::vector<std::string> flags = configs[c].second;
    flags.insert(flags.end(), {"--device", "gpu"});
    const std::string out = "gpu" + std::to_string(c);
    const auto r = run(configs[c].first, out, flags);
    ASSERT_EQ(r.exit_code, 0) << r.command << "\n" << r.err;
    const std::string device = json_string(read_text(dir_ / out / "metrics.json"), "device");
    EXPECT_EQ(device, listed[0].name + " (" + listed[0].platform + ")");
    for (const char* f : kFiles) {
      SCOPED_TRACE(std::string(f) + " " + r.command);
      const auto g = load(out, f), want = load("cpu", f);
      if (c > 0) {
        EXPECT_TRUE(bitwise(g, load("gpu0", f)));
      }
      ASSERT_EQ(g.size(), want.size());
      for (std::size_t e = 0; e < g.size(); ++e) EXPECT_LE(std::abs(g[e] - want[e]), 1e-12 * std::abs(want[e])) << e;
    }
  }
}

// Keeps the first complete record of every checkpoint log (header of 56 bytes: magic, int32 matrix,
// int32, int64 r0, c0, rows, cols, uint64; then 2·rows·cols doubles), as if the run had been stopped.
void keep_first_records(const fs::path& ckpt) {
  for (const auto& e : fs::directory_iterator(ckpt)) {
    if (e.path().extension() != ".log") continue;
    const std::string bytes = read_text(e.path());
    if (bytes.size() < 56) continue;
    std::int64_t rows = 0, cols = 0;
    std::memcpy(&rows, bytes.data() + 32, 8);
    std::memcpy(&cols, bytes.data() + 40, 8);
    std::ofstream(e.path(), std::ios::binary | std::ios::trunc)
        << bytes.substr(0, 56 + static_cast<std::size_t>(2 * rows * cols * 8));
  }
}

std::int64_t json_int(const std::string& json, const std::string& key) {
  std::smatch m;
  if (!std::regex_search(json, m, std::regex("\"" + key + "\": (-?[0-9]+)"))) return -1;
  return std::stoll(m[1]);
}

TEST_F(GpuRun, ResumesFromACheckpointBitwiseAndRefusesACpuCheckpoint) {
  REQUIRE_DEVICE();
  const std::string ckpt = (dir_ / "ckpt").string();
  const auto a = run(2, "a", {"--device", "gpu", "--block-size", "2", "--checkpoint", ckpt});
  ASSERT_EQ(a.exit_code, 0) << a.err;
  keep_first_records(dir_ / "ckpt");
  const auto b = run(3, "b", {"--device", "gpu", "--block-size", "5", "--checkpoint", ckpt});
  ASSERT_EQ(b.exit_code, 0) << b.err;
  const std::string metrics = read_text(dir_ / "b" / "metrics.json");
  const std::int64_t restored = json_int(metrics, "pairs_restored");
  EXPECT_GT(restored, 0);
  EXPECT_LT(restored, json_int(metrics, "pairs"));
  for (const char* f : kFiles) EXPECT_TRUE(bitwise(load("a", f), load("b", f))) << f;
  // CPU and GPU kernels agree to rounding only: a CPU run does not take the GPU's tiles.
  const auto c = run(1, "c", {"--block-size", "2", "--checkpoint", ckpt});
  EXPECT_EQ(c.exit_code, 2) << c.err;
  EXPECT_NE(c.err.find("this run uses float64"), std::string::npos) << c.err;
  EXPECT_NE(c.err.find("OpenCL device"), std::string::npos) << c.err;
}

TEST_F(GpuRun, BadDeviceOptionsAreOneLineOnEveryRank) {
  // Runs without an OpenCL device too: the options are checked before any device is opened.
  for (const auto& [flags, needle] :
       {std::pair{std::vector<std::string>{"--device", "tpu"}, std::string("--device must be cpu or gpu")},
        std::pair{std::vector<std::string>{"--device", "gpu", "--precision", "mixed"},
                  std::string("--precision mixed applies to --device cpu only")}}) {
    const auto r = run(2, "bad", flags);
    EXPECT_EQ(r.exit_code, 2) << r.err;
    const auto errors = eqntk::testing::lines_starting(r.err, "eqntk: error:");
    ASSERT_EQ(errors.size(), 1u) << r.err;
    EXPECT_NE(errors[0].find(needle), std::string::npos) << errors[0];
    EXPECT_FALSE(fs::exists(dir_ / "bad"));
  }
}

}  // namespace
