// End-to-end tests of `eqntk run` through the real binary under mpiexec: predictions against an
// independent dense Eigen solve of the saved kernels, invariance across rank counts and grids, and
// checkpoint/resume after SIGUSR1/SIGTERM and after SIGKILL of one rank.
#include <gtest/gtest.h>
#include <signal.h>

#include <Eigen/Dense>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <functional>
#include <regex>
#include <set>
#include <tuple>
#include <string>
#include <thread>
#include <vector>

#include "../support/subprocess.hpp"
#include "eqntk/io/npy.hpp"
#include "eqntk/kernel/gram.hpp"

namespace {

namespace fs = std::filesystem;
using eqntk::testing::Process;
using eqntk::testing::ProcessResult;
using eqntk::testing::read_text;
using eqntk::testing::run_process;

constexpr const char* kArch = "lift:k=3:b=0.1,relu,gconv:k=3,relu,gpool,dense";

// A dataset on disk: random NHWC float64 images, integer labels 0..2.
struct Data {
  fs::path dir;
  std::int64_t n, m, size;
  eqntk::data::ImageSet train, test;  // as the program sees them after standardisation (none here)
};

eqntk::data::ImageSet write_images(const fs::path& path, std::int64_t count, std::int64_t size, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal;
  eqntk::data::ImageSet s{{1, size, size}, count, {}};
  s.pixels.resize(static_cast<std::size_t>(count * size * size));
  for (double& v : s.pixels) v = normal(rng);
  const std::int64_t shape[4] = {count, size, size, 1};
  eqntk::io::write_npy(path, shape, std::span<const double>(s.pixels));
  return s;
}

void write_labels(const fs::path& path, std::int64_t count, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<std::int64_t> labels(static_cast<std::size_t>(count));
  for (std::int64_t i = 0; i < count; ++i) labels[static_cast<std::size_t>(i)] = i < 3 ? i : static_cast<std::int64_t>(rng() % 3);
  const std::int64_t shape[1] = {count};
  eqntk::io::write_npy(path, shape, std::span<const std::int64_t>(labels));
}

class RunEndToEnd : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/eqntk_e2e_XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { fs::remove_all(dir_); }

  Data make_data(std::int64_t n, std::int64_t m, std::int64_t size) {
    Data d{dir_, n, m, size, write_images(dir_ / "train.npy", n, size, 11), write_images(dir_ / "test.npy", m, size, 12)};
    write_labels(dir_ / "train_labels.npy", n, 13);
    write_labels(dir_ / "test_labels.npy", m, 14);
    return d;
  }

  std::vector<std::string> command(int ranks, const std::string& out, const std::vector<std::string>& extra) {
    std::vector<std::string> argv{EQNTK_MPIEXEC, EQNTK_MPIEXEC_NUMPROC_FLAG, std::to_string(ranks), EQNTK_BINARY, "run",
                                  "--train-images", (dir_ / "train.npy").string(), "--train-labels",
                                  (dir_ / "train_labels.npy").string(), "--test-images", (dir_ / "test.npy").string(),
                                  "--test-labels", (dir_ / "test_labels.npy").string(), "--arch", kArch, "--out",
                                  (dir_ / out).string(), "--standardize", "false"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    return argv;
  }

  ProcessResult run(int ranks, const std::string& out, const std::vector<std::string>& extra, double timeout = 240) {
    const fs::path capture = dir_ / ("capture_" + out);
    fs::create_directories(capture);
    return run_process(command(ranks, out, extra), capture, timeout);
  }

  fs::path dir_;
};

Eigen::MatrixXd load(const fs::path& p) {
  const auto a = eqntk::io::read_npy(p);
  const std::int64_t rows = a.shape.at(0), cols = a.shape.size() > 1 ? a.shape[1] : 1;
  return Eigen::Map<const Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>>(a.real.data(), rows, cols);
}

bool bitwise_equal(const Eigen::MatrixXd& a, const Eigen::MatrixXd& b) {
  return a.rows() == b.rows() && a.cols() == b.cols() &&
         std::memcmp(a.data(), b.data(), static_cast<std::size_t>(a.size()) * sizeof(double)) == 0;
}

double rel(const Eigen::MatrixXd& a, const Eigen::MatrixXd& b) {
  return (a - b).cwiseAbs().maxCoeff() / std::max(1e-300, b.cwiseAbs().maxCoeff());
}

// One-hot minus 1/K of the label file.
Eigen::MatrixXd targets(const fs::path& labels, std::int64_t k) {
  const auto a = eqntk::io::read_npy(labels);
  Eigen::MatrixXd y = Eigen::MatrixXd::Constant(a.shape[0], k, -1.0 / static_cast<double>(k));
  for (std::int64_t i = 0; i < a.shape[0]; ++i) y(i, a.integer[static_cast<std::size_t>(i)]) += 1.0;
  return y;
}

TEST_F(RunEndToEnd, PredictionsMatchADenseEigenSolveOfTheSavedKernels) {
  const Data d = make_data(24, 9, 8);
  const auto r = run(3, "out", {"--times", "inf,0.5,5", "--kernel", "both", "--save-kernels", "--variance", "--ridge",
                                "1e-6", "--eta", "0.8", "--block-size", "4", "--quiet"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const fs::path out = dir_ / "out";
  // The saved kernels are exactly the serial engine's (entry by entry, bitwise).
  const eqntk::kernel::Network net(eqntk::kernel::Architecture::parse(kArch), {1, 8, 8});
  const auto serial = eqntk::kernel::gram_matrices(net, d.train, nullptr);
  const auto serial_test = eqntk::kernel::gram_matrices(net, d.test, &d.train);
  const auto row_major = [](const std::vector<double>& v, std::int64_t rr, std::int64_t cc) {
    return Eigen::MatrixXd(Eigen::Map<const Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>>(v.data(), rr, cc));
  };
  EXPECT_TRUE(bitwise_equal(load(out / "theta_train.npy"), row_major(serial.ntk, 24, 24)));
  EXPECT_TRUE(bitwise_equal(load(out / "nngp_test.npy"), row_major(serial_test.nngp, 9, 24)));
  const Eigen::MatrixXd y = targets(dir_ / "train_labels.npy", 3);
  const Eigen::MatrixXd k_train = load(out / "nngp_train.npy"), k_test = load(out / "nngp_test.npy");
  const auto test_self = eqntk::kernel::gram_matrices(net, d.test, nullptr);
  for (const std::string kern : {"ntk", "nngp"}) {
    const Eigen::MatrixXd train = load(out / ((kern == "ntk" ? "theta" : "nngp") + std::string("_train.npy")));
    const Eigen::MatrixXd test = load(out / ((kern == "ntk" ? "theta" : "nngp") + std::string("_test.npy")));
    const Eigen::MatrixXd a = train + 1e-6 * train.trace() / 24.0 * Eigen::MatrixXd::Identity(24, 24);
    Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> es(a);
    for (const std::string t : {"inf", "0.5", "5"}) {
      Eigen::MatrixXd at;  // A_t = T* T⁻¹ (I − e^{−ηTt})
      if (t == "inf") {
        at = a.llt().solve(test.transpose()).transpose();
      } else {
        Eigen::VectorXd g(24);
        for (int i = 0; i < 24; ++i) {
          const double l = std::max(es.eigenvalues()(i), 0.0);
          g(i) = l > 0 ? -std::expm1(-0.8 * l * std::stod(t)) / l : 0.8 * std::stod(t);
        }
        at = test * es.eigenvectors() * g.asDiagonal() * es.eigenvectors().transpose();
      }
      const Eigen::MatrixXd want = at * y;
      EXPECT_LT(rel(load(out / ("predictions_" + kern + "_t" + t + ".npy")), want), 1e-9) << kern << " t=" << t;
      Eigen::VectorXd var(9);
      for (int i = 0; i < 9; ++i)
        var(i) = test_self.nngp[static_cast<std::size_t>(i * 9 + i)] + (at.row(i) * k_train * at.row(i).transpose())(0, 0) -
                 2 * at.row(i).dot(k_test.row(i));
      EXPECT_LT(rel(load(out / ("variance_" + kern + "_t" + t + ".npy")), var), 1e-8) << kern << " t=" << t;
    }
  }
}

TEST_F(RunEndToEnd, KernelsAreBitwiseAndPredictionsTo1e10IdenticalAcrossRanksGridsBlocksAndThreads) {
  make_data(20, 7, 8);
  struct Config {
    int ranks;
    std::vector<std::string> flags;
  };
  const std::vector<Config> configs = {{1, {"--block-size", "7"}},
                                       {2, {"--block-size", "3", "--threads", "2"}},
                                       {3, {"--block-size", "64"}},  // N < P·nb: ranks owning nothing
                                       {4, {"--grid", "2x2", "--block-size", "5"}},
                                       {4, {"--grid", "4x1", "--block-size", "2"}}};
  Eigen::MatrixXd theta0, pred0, pred_t0;
  for (std::size_t c = 0; c < configs.size(); ++c) {
    std::vector<std::string> flags{"--times", "inf,3", "--save-kernels", "--ridge", "1e-8", "--quiet"};
    flags.insert(flags.end(), configs[c].flags.begin(), configs[c].flags.end());
    const std::string out = "out" + std::to_string(c);
    const auto r = run(configs[c].ranks, out, flags);
    ASSERT_EQ(r.exit_code, 0) << r.command << "\n" << r.err;
    const Eigen::MatrixXd theta = load(dir_ / out / "theta_train.npy");
    const Eigen::MatrixXd pred = load(dir_ / out / "predictions_ntk_tinf.npy");
    const Eigen::MatrixXd pred_t = load(dir_ / out / "predictions_ntk_t3.npy");
    if (c == 0) {
      theta0 = theta;
      pred0 = pred;
      pred_t0 = pred_t;
      continue;
    }
    EXPECT_TRUE(bitwise_equal(theta, theta0)) << r.command;
    EXPECT_TRUE(bitwise_equal(load(dir_ / out / "theta_test.npy"), load(dir_ / "out0" / "theta_test.npy"))) << r.command;
    EXPECT_LT(rel(pred, pred0), 1e-10) << r.command;
    EXPECT_LT(rel(pred_t, pred_t0), 1e-10) << r.command;
  }
}

// metrics.json is valid JSON for an independent parser (Python's json.tool), even when the command line
// holds characters JSON must escape (a quote and a backslash in the output directory's name), and records
// the scores of every predictor and time.
TEST_F(RunEndToEnd, MetricsJsonIsValidJsonWithEscapedCommandLine) {
  make_data(10, 4, 6);
  const std::string out = "o\"ut\\dir";
  const auto r = run(2, out, {"--times", "inf,2", "--kernel", "both", "--quiet", "--ridge", "1e-8"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const fs::path metrics = dir_ / out / "metrics.json";
  fs::create_directories(dir_ / "capture_json");
  const ProcessResult check = run_process({"/usr/bin/python3", "-m", "json.tool", metrics.string()}, dir_ / "capture_json", 60);
  EXPECT_EQ(check.exit_code, 0) << check.err << "\n" << read_text(metrics);
  const std::string text = read_text(metrics);
  for (const char* want : {"\"kernel\": \"ntk\"", "\"kernel\": \"nngp\"", "\"t\": \"inf\"", "\"t\": \"2\"",
                           "\"input_shape\": [", "\"task\": \"classification\"", "o\\\"ut\\\\dir",
                           // one result per line, as tools/run_example.sh and the job scripts grep it
                           "\"kernel\": \"ntk\", \"t\": \"inf\", \"accuracy\": ", "\"timings_seconds\": {\"load\": "})
    EXPECT_NE(text.find(want), std::string::npos) << want << "\n" << text;
}

// FNV-1a 64, written here independently of the program.
std::uint64_t fnv1a(const char* p, std::size_t n, std::uint64_t h = 1469598103934665603ULL) {
  for (std::size_t i = 0; i < n; ++i) {
    h ^= static_cast<unsigned char>(p[i]);
    h *= 1099511628211ULL;
  }
  return h;
}

// Entries held by complete, intact records of the checkpoint logs, parsed independently of the program
// (format v2): a record is a 56-byte header (magic "EQTILE02", int32 matrix, int32, int64 r0, c0, rows,
// cols, uint64 checksum) followed by 2·rows·cols doubles; the checksum is FNV-1a over the header's first 48
// bytes and then the payload. A record cut short or with a wrong checksum is not counted. Train entries
// count once (i ≥ j).
std::int64_t checkpointed_entries(const fs::path& dir) {
  std::set<std::tuple<int, std::int64_t, std::int64_t>> entries;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.path().extension() != ".log") continue;
    const std::string bytes = read_text(e.path());
    std::size_t pos = 0;
    while (pos + 56 <= bytes.size() && bytes.compare(pos, 8, "EQTILE02") == 0) {
      std::int32_t matrix = 0;
      std::int64_t r0 = 0, c0 = 0, rows = 0, cols = 0;
      std::uint64_t checksum = 0;
      std::memcpy(&matrix, bytes.data() + pos + 8, 4);
      std::memcpy(&r0, bytes.data() + pos + 16, 8);
      std::memcpy(&c0, bytes.data() + pos + 24, 8);
      std::memcpy(&rows, bytes.data() + pos + 32, 8);
      std::memcpy(&cols, bytes.data() + pos + 40, 8);
      std::memcpy(&checksum, bytes.data() + pos + 48, 8);
      const std::size_t payload = static_cast<std::size_t>(2 * rows * cols * 8);
      const std::size_t end = pos + 56 + payload;
      if (end > bytes.size()) break;
      if (fnv1a(bytes.data() + pos + 56, payload, fnv1a(bytes.data() + pos, 48)) == checksum)
        for (std::int64_t i = r0; i < r0 + rows; ++i)
          for (std::int64_t j = c0; j < c0 + cols; ++j)
            if (matrix == 1 || i >= j) entries.emplace(matrix, i, j);
      pos = end;
    }
  }
  return static_cast<std::int64_t>(entries.size());
}

std::int64_t json_int(const std::string& json, const std::string& key) {
  std::smatch m;
  if (!std::regex_search(json, m, std::regex("\"" + key + "\": (-?[0-9]+)"))) return -1;
  return std::stoll(m[1]);
}

// Whether `sig` is pending (blocked or not yet handled) for process `pid`, read from /proc/<pid>/status.
bool signal_pending(pid_t pid, int sig) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  const unsigned long long bit = 1ULL << (sig - 1);
  while (std::getline(in, line))
    if (line.rfind("SigPnd:", 0) == 0 || line.rfind("ShdPnd:", 0) == 0)
      if ((std::stoull(line.substr(7), nullptr, 16) & bit) != 0) return true;
  return false;
}

// Whether process `pid` is stopped (state T), or gone (then there is nothing left to wait for).
bool stopped_or_gone(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("State:", 0) == 0) return line.find('T') != std::string::npos;
  return true;
}

// Starts a checkpointed run, waits until it has checkpointed some tiles, interrupts it with `interrupt`,
// and returns the result of that run. The interruption cannot come too late, however fast the build or
// loaded the machine: the ranks are frozen (SIGSTOP) before `interrupt`, and resumed (SIGCONT) only once
// the forwarded signal `forwarded` is pending on every rank (0: nothing forwarded, e.g. SIGKILL of a rank).
ProcessResult interrupted_run(Process& p, const fs::path& ckpt, const std::function<void(Process&)>& interrupt,
                              int forwarded) {
  const auto t0 = std::chrono::steady_clock::now();
  const auto waited = [&t0](int s) { return std::chrono::steady_clock::now() - t0 < std::chrono::seconds(s); };
  while (waited(120)) {
    if (fs::exists(ckpt) && checkpointed_entries(ckpt) >= 40) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  const std::vector<pid_t> ranks = p.descendants_named("eqntk");
  for (const pid_t r : ranks) ::kill(r, SIGSTOP);
  for (const pid_t r : ranks)
    while (!stopped_or_gone(r) && waited(150)) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  interrupt(p);
  if (forwarded != 0)
    for (const pid_t r : ranks)
      while (stopped_or_gone(r) && fs::exists("/proc/" + std::to_string(r)) && !signal_pending(r, forwarded) && waited(180))
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
  for (const pid_t r : ranks) ::kill(r, SIGCONT);
  return p.wait(120);
}

class Resume : public RunEndToEnd {
 protected:
  // An interrupted run, then a rerun on another rank count and block size from the same checkpoint.
  void check_resume(const std::function<void(Process&)>& interrupt, int forwarded, bool expect_exit_3) {
    // The ranks are frozen while the signal travels (interrupted_run), so the size only needs to exceed the
    // 40 entries the test waits for by a margin that leaves tiles for the rerun.
    constexpr std::int64_t n = 80, m = 10;
    make_data(n, m, 14);
    const std::vector<std::string> base{"--times", "inf", "--save-kernels", "--quiet", "--checkpoint",
                                        (dir_ / "ckpt").string()};
    std::vector<std::string> first = base;
    first.insert(first.end(), {"--block-size", "2"});
    fs::create_directories(dir_ / "capture_a");
    Process p(command(2, "a", first), dir_ / "capture_a");
    const ProcessResult a = interrupted_run(p, dir_ / "ckpt", interrupt, forwarded);
    ASSERT_NE(a.exit_code, 0) << "the run finished before it was interrupted; make the data larger";
    if (expect_exit_3) {
      EXPECT_EQ(a.exit_code, 3) << a.err;
      EXPECT_NE(a.err.find("eqntk: interrupted:"), std::string::npos) << a.err;
    }
    EXPECT_FALSE(fs::exists(dir_ / "a" / "metrics.json"));
    const std::int64_t saved = checkpointed_entries(dir_ / "ckpt");
    std::vector<std::string> second = base;
    second.insert(second.end(), {"--block-size", "5"});
    const auto b = run(3, "b", second);
    ASSERT_EQ(b.exit_code, 0) << b.err;
    const std::string metrics = read_text(dir_ / "b" / "metrics.json");
    const std::int64_t total = json_int(metrics, "pairs"), restored = json_int(metrics, "pairs_restored");
    EXPECT_EQ(total, n * (n + 1) / 2 + m * n);
    EXPECT_EQ(restored, saved) << "every entry of a finished tile must be reused, and only those";
    EXPECT_GT(restored, 0);
    EXPECT_LT(restored, total);
    // Against an uninterrupted run: bitwise.
    const auto c = run(2, "c", {"--times", "inf", "--save-kernels", "--quiet", "--block-size", "3"});
    ASSERT_EQ(c.exit_code, 0) << c.err;
    for (const char* f : {"theta_train.npy", "theta_test.npy", "nngp_train.npy", "nngp_test.npy"})
      EXPECT_TRUE(bitwise_equal(load(dir_ / "b" / f), load(dir_ / "c" / f))) << f;
  }
};

// SIGUSR1 goes to every rank, as a batch system delivers it (scancel --signal=USR1, sbatch --signal): Open
// MPI 4.1's mpiexec does not forward SIGUSR1 to its ranks on this platform.
TEST_F(Resume, SigusrOneFlushesExitsWithThreeAndTheRerunIsBitwiseIdentical) {
  check_resume(
      [](Process& p) {
        for (const pid_t r : p.descendants_named("eqntk")) ::kill(r, SIGUSR1);
      },
      SIGUSR1, true);
}

TEST_F(Resume, SigtermFlushesAndTheRerunIsBitwiseIdentical) {
  // mpiexec forwards SIGTERM to the ranks, which flush and exit 3; mpiexec itself then reports failure.
  check_resume([](Process& p) { p.signal(SIGTERM); }, SIGTERM, false);
}

TEST_F(Resume, SigkillOfOneRankLosesOnlyTilesInFlight) {
  check_resume(
      [](Process& p) {
        const auto ranks = p.descendants_named("eqntk");
        ASSERT_FALSE(ranks.empty());
        ::kill(ranks.back(), SIGKILL);
      },
      0, false);
}

// A checkpoint written by kernels of a narrower instruction set (EQNTK_ISA) is not silently mixed into a
// run with another one: refused with one line naming both sets and the remedy; the same set resumes it.
TEST_F(RunEndToEnd, CheckpointOfAnotherInstructionSetIsRefusedAndTheSameOneResumes) {
  __builtin_cpu_init();
  const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  const bool avx512 = avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq");
  const std::string widest = avx512 ? "avx512" : avx2 ? "avx2" : "baseline";
  std::vector<std::string> narrower;
  if (widest != "baseline") narrower.push_back("baseline");
  if (avx512) narrower.push_back("avx2");
  if (narrower.empty()) GTEST_SKIP() << "the CPU supports no instruction set wider than baseline";
  make_data(12, 4, 6);
  for (const std::string& isa : narrower) {
    const std::string ckpt = (dir_ / ("ckpt_" + isa)).string();
    const std::vector<std::string> flags{"--times", "inf", "--quiet", "--checkpoint", ckpt, "--ridge", "1e-8"};
    ::setenv("EQNTK_ISA", isa.c_str(), 1);
    const auto a = run(2, "a_" + isa, flags);
    ::unsetenv("EQNTK_ISA");
    ASSERT_EQ(a.exit_code, 0) << a.err;
    EXPECT_NE(read_text(fs::path(ckpt) / "manifest.txt").find("isa " + isa + "\n"), std::string::npos);
    const auto b = run(2, "b_" + isa, flags);  // the default: the widest set
    EXPECT_EQ(b.exit_code, 2) << b.err;
    EXPECT_NE(b.err.find("written by the " + isa + " kernels and this run uses " + widest), std::string::npos) << b.err;
    EXPECT_NE(b.err.find("EQNTK_ISA=" + isa), std::string::npos) << b.err;
    EXPECT_FALSE(fs::exists(dir_ / ("b_" + isa)));
    ::setenv("EQNTK_ISA", isa.c_str(), 1);
    const auto c = run(2, "c_" + isa, flags);
    ::unsetenv("EQNTK_ISA");
    ASSERT_EQ(c.exit_code, 0) << c.err;
    const std::string metrics = read_text(dir_ / ("c_" + isa) / "metrics.json");
    EXPECT_EQ(json_int(metrics, "pairs_restored"), json_int(metrics, "pairs"));
  }
}

}  // namespace
