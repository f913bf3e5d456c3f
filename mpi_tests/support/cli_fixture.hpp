// A GoogleTest fixture for tests of the real `eqntk` binary: a fresh work directory per test (fixtures and
// outputs) with a capture directory beside it, runs on 1 or more ranks, and the contract of a rejection.
// The including target defines EQNTK_BINARY, EQNTK_MPIEXEC and EQNTK_MPIEXEC_NUMPROC_FLAG.
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

#include "subprocess.hpp"

namespace eqntk::testing {

class CliFixture : public ::testing::Test {
 protected:
  // A rejection must come back well inside the CTest TIMEOUT; the process is killed at kKillSeconds and
  // a run slower than kMaxSeconds counts as a hang (oversubscribed mpiexec start-up is about a second).
  static constexpr double kKillSeconds = 60.0;
  static constexpr double kMaxSeconds = 30.0;

  /// `prefix`: the name of the per-test directory under the system's temporary directory, before XXXXXX.
  /// `run_timeout_s`: when eqntk() kills a run (rejections are always killed at kKillSeconds).
  explicit CliFixture(std::string prefix, double run_timeout_s = kKillSeconds)
      : prefix_(std::move(prefix)), run_timeout_s_(run_timeout_s) {}

  void SetUp() override {
    std::string templ = (std::filesystem::temp_directory_path() / (prefix_ + "XXXXXX")).string();
    if (mkdtemp(templ.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    root_ = templ;
    work_ = root_ / "work";
    capture_ = root_ / "capture";
    std::filesystem::create_directories(work_);
    std::filesystem::create_directories(capture_);
  }
  void TearDown() override {
    std::error_code ec;
    std::filesystem::remove_all(root_, ec);
  }

  [[nodiscard]] std::filesystem::path path(const std::string& name) const { return work_ / name; }

  /// Runs `eqntk args...` on `ranks` processes (1: the binary itself; otherwise under mpiexec).
  ProcessResult eqntk(const std::vector<std::string>& args, int ranks = 1) const {
    return spawn(args, ranks, run_timeout_s_);
  }

  /// Runs the command and checks the whole contract of a rejection: the exit code, exactly one error
  /// line containing every `needle`, no sign of a crash, no hang, and no new file under the work
  /// directory (so no output and no .partial), nothing removed. An empty --out directory created before a
  /// runtime failure is allowed only when `allow_empty_dirs`.
  void expect_rejected(const std::vector<std::string>& args, int ranks, int code,
                       const std::vector<std::string>& needles, bool allow_empty_dirs = false) const {
    const auto before = tree(work_);
    const ProcessResult r = spawn(args, ranks, kKillSeconds);
    const std::string where = "\n  command: " + r.command + "\n  stdout: " + r.out + "\n  stderr: " + r.err;
    if (std::getenv("EQNTK_CLI_TESTS_VERBOSE") != nullptr)
      std::printf("exit %d after %.2f s; stderr:\n%s", r.exit_code, r.seconds, r.err.c_str());
    EXPECT_FALSE(r.timed_out) << "killed after " << kKillSeconds << " s" << where;
    EXPECT_LT(r.seconds, kMaxSeconds) << where;
    EXPECT_EQ(r.exit_code, code) << where;
    const auto errors = lines_starting(r.err, "eqntk: error:");
    ASSERT_EQ(errors.size(), 1u) << "expected exactly one error line" << where;
    for (const auto& n : needles) EXPECT_NE(errors[0].find(n), std::string::npos) << "missing '" << n << "'" << where;
    for (const char* crash : {"terminate called", "Segmentation", "MPI_ABORT", "MPI_Abort", "std::", "core dumped",
                              "internal error", "Aborted", "noticed that process", "exited on signal"}) {
      EXPECT_EQ(r.err.find(crash), std::string::npos) << "crash marker '" << crash << "'" << where;
      EXPECT_EQ(r.out.find(crash), std::string::npos) << "crash marker '" << crash << "'" << where;
    }
    const auto after = tree(work_);
    for (const auto& name : after) {
      if (before.count(name) != 0u) continue;
      const bool empty_dir = name.back() == '/' && std::filesystem::is_empty(work_ / name);
      EXPECT_TRUE(allow_empty_dirs && empty_dir) << "left behind: " << name << where;
    }
    for (const auto& name : before) EXPECT_EQ(after.count(name), 1u) << "removed: " << name << where;
  }

  std::filesystem::path root_, work_, capture_;

 private:
  ProcessResult spawn(const std::vector<std::string>& args, int ranks, double timeout_s) const {
    std::vector<std::string> argv;
    if (ranks > 1) argv = {EQNTK_MPIEXEC, EQNTK_MPIEXEC_NUMPROC_FLAG, std::to_string(ranks), "--oversubscribe"};
    argv.emplace_back(EQNTK_BINARY);
    argv.insert(argv.end(), args.begin(), args.end());
    return run_process(argv, capture_, timeout_s);
  }

  std::string prefix_;
  double run_timeout_s_;
};

}  // namespace eqntk::testing
