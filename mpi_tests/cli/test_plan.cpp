// `eqntk plan` through the real binary: its counts are those of the run it plans (the builder's own
// enumeration, reported in metrics.json), and its calibrated estimate of the tile-evaluation time is
// within 2x of a measured run of 5-10 s on 2 ranks.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <random>
#include <regex>
#include <string>
#include <vector>

#include "../support/subprocess.hpp"
#include "eqntk/io/npy.hpp"

namespace {

namespace fs = std::filesystem;
using eqntk::testing::ProcessResult;
using eqntk::testing::read_text;
using eqntk::testing::run_process;

constexpr const char* kArch = "lift:k=3:pad=same,relu,gconv:k=3:pad=same,relu,gpool,dense";

class Plan : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/eqntk_plan_XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { fs::remove_all(dir_); }

  // Random 1×size×size images and labels 0..2.
  void make_data(std::int64_t n, std::int64_t m, std::int64_t size) {
    std::mt19937_64 rng(5);
    std::normal_distribution<double> normal;
    for (const auto& [name, count] : {std::pair{std::string("train"), n}, std::pair{std::string("test"), m}}) {
      std::vector<double> pixels(static_cast<std::size_t>(count * size * size));
      for (double& v : pixels) v = normal(rng);
      const std::int64_t shape[4] = {count, size, size, 1};
      eqntk::io::write_npy(dir_ / (name + ".npy"), shape, std::span<const double>(pixels));
      std::vector<std::int64_t> labels(static_cast<std::size_t>(count));
      for (std::int64_t i = 0; i < count; ++i) labels[static_cast<std::size_t>(i)] = i % 3;
      const std::int64_t lshape[1] = {count};
      eqntk::io::write_npy(dir_ / (name + "_labels.npy"), lshape, std::span<const std::int64_t>(labels));
    }
  }
  std::vector<std::string> args(const std::vector<std::string>& extra) const {
    std::vector<std::string> a{"--train-images", (dir_ / "train.npy").string(), "--train-labels",
                               (dir_ / "train_labels.npy").string(), "--test-images", (dir_ / "test.npy").string(),
                               "--test-labels", (dir_ / "test_labels.npy").string(), "--arch", kArch, "--out",
                               (dir_ / "out").string(), "--block-size", "8", "--quiet"};
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
  }
  ProcessResult run(int ranks, const std::vector<std::string>& extra) const {
    std::vector<std::string> argv{EQNTK_MPIEXEC, EQNTK_MPIEXEC_NUMPROC_FLAG, std::to_string(ranks), EQNTK_BINARY, "run"};
    for (const auto& s : args(extra)) argv.push_back(s);
    fs::create_directories(dir_ / "capture_run");
    return run_process(argv, dir_ / "capture_run", 300);
  }
  ProcessResult plan(const std::vector<std::string>& extra) const {
    std::vector<std::string> argv{EQNTK_BINARY, "plan"};
    for (const auto& s : args(extra)) argv.push_back(s);
    fs::create_directories(dir_ / "capture_plan");
    return run_process(argv, dir_ / "capture_plan", 300);
  }
  fs::path dir_;
};

// The first number after `key` in `text` (a plan line or metrics.json).
double number_after(const std::string& text, const std::string& key) {
  const auto at = text.find(key);
  if (at == std::string::npos) return -1;
  std::smatch match;
  const std::string rest = text.substr(at + key.size());
  return std::regex_search(rest, match, std::regex(R"([0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?)")) ? std::stod(match.str())
                                                                                              : -1;
}

TEST_F(Plan, CountsAreThoseOfTheRunItPlans) {
  make_data(37, 11, 6);
  const ProcessResult r = run(3, {"--grid", "1x3"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const ProcessResult p = plan({"--grid", "1x3", "--ranks", "3"});
  ASSERT_EQ(p.exit_code, 0) << p.err;
  const std::string metrics = read_text(dir_ / "out" / "metrics.json");
  const std::string build = metrics.substr(metrics.find("\"build\""));
  EXPECT_EQ(number_after(p.out, "[plan] pairs "), number_after(build, "\"pairs\""));
  EXPECT_EQ(number_after(p.out, "tiles "), number_after(build, "\"tiles\""));
  EXPECT_EQ(number_after(p.out, "[plan] pairs "), 37.0 * 38 / 2 + 11 * 37);  // N(N+1)/2 + MN
  EXPECT_EQ(number_after(p.out, "entry-layers "), (37.0 * 38 / 2 + 11 * 37) * 6);  // the 6 layers of kArch
  EXPECT_NE(p.out.find("ScaLAPACK eigensolver workspace"), std::string::npos) << p.out;
  EXPECT_NE(p.out.find("checkpoint "), std::string::npos) << p.out;
}

TEST_F(Plan, EstimatedTileTimeIsWithinTwiceTheMeasuredBuild) {
  // About 4 800 pairs of 14×14 p4 images: 5-10 s of tile evaluation on 2 ranks, so that start-up and
  // timing noise do not dominate.
  make_data(80, 20, 14);
  const ProcessResult p = plan({"--ranks", "2", "--calibration-pairs", "24"});
  ASSERT_EQ(p.exit_code, 0) << p.err;
  const double estimate = number_after(p.out.substr(p.out.find("[plan] estimate")), ", tiles ");
  const ProcessResult r = run(2, {});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string metrics = read_text(dir_ / "out" / "metrics.json");
  const double measured = number_after(metrics.substr(metrics.find("\"timings_seconds\"")), "\"build\"");
  std::printf("plan: tiles %.2f s estimated, %.2f s measured\n", estimate, measured);
  ASSERT_GT(estimate, 0);
  ASSERT_GT(measured, 0);
  EXPECT_LT(estimate, 2 * measured) << p.out;
  EXPECT_GT(estimate, measured / 2) << p.out;
}

}  // namespace
