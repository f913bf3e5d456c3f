// `eqntk run` and `eqntk kernel` with SO(3) architectures through the real binary: end-to-end runs on
// molecules (XYZ, targets from the comment lines) and on spherical-harmonic coefficient files at 1 and 3
// ranks (saved kernels bitwise equal to the serial so3 library and across rank counts, predictions equal
// to a dense Eigen solve of the saved kernels, RMSE in metrics.json), the checkpoint identity of SO(3)
// items, and the bad-input contract at 1 and 2 ranks: exit 2, exactly one `eqntk: error:` line naming
// the problem, nothing that looks like a crash, and no file left behind.
#include <gtest/gtest.h>

#include <Eigen/Dense>
#include <algorithm>
#include <cmath>
#include <complex>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <numbers>
#include <random>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "../support/cli_fixture.hpp"
#include "../support/subprocess.hpp"
#include "eqntk/io/npy.hpp"
#include "eqntk/so3/gram.hpp"
#include "eqntk/so3/grid_choice.hpp"
#include "eqntk/so3/molecule.hpp"
#include "eqntk/so3/signal.hpp"

namespace {

namespace fs = std::filesystem;
namespace so3 = eqntk::so3;
using eqntk::testing::ProcessResult;
using eqntk::testing::read_text;
using eqntk::testing::lines_starting;
using eqntk::testing::run_process;
using eqntk::testing::tree;
using eqntk::testing::write_bytes;

constexpr const char* kArch = "s2lift:w=1.2:b=0.1,erf,so3conv:b=0.1,erf,so3pool,dense:w=0.9";

// ---------------------------------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------------------------------

// Deterministic molecules of H, C, N, O, F with 2 to 5 atoms and a target `energy=` in the comment line.
std::string xyz_text(int count, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> pos(-1.5, 1.5);
  const char* symbols[5] = {"H", "C", "N", "O", "F"};
  std::ostringstream out;
  out.precision(10);
  for (int i = 0; i < count; ++i) {
    const int n = 2 + static_cast<int>((seed + static_cast<std::uint64_t>(i)) % 4);
    out << n << "\nenergy=" << -1.0 - 0.37 * i + 0.05 * static_cast<double>(seed % 7) << " name=m" << i << "\n";
    for (int a = 0; a < n; ++a) out << symbols[rng() % 5] << ' ' << pos(rng) << ' ' << pos(rng) << ' ' << pos(rng) << '\n';
  }
  return out.str();
}

// Random real band-limited signals as full-range coefficients [n][c][l][m + L − 1] (Hermitian).
std::vector<std::complex<double>> coefficients(int n, int c, int L, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> g(0.0, 0.4);
  const int w = 2 * L - 1;
  std::vector<std::complex<double>> a(static_cast<std::size_t>(n * c * L * w));
  for (int i = 0; i < n; ++i)
    for (int ch = 0; ch < c; ++ch)
      for (int l = 0; l < L; ++l)
        for (int m = 0; m <= l; ++m) {
          const std::complex<double> v{g(rng), m == 0 ? 0.0 : g(rng)};
          const auto at = [&](int mm) -> std::complex<double>& {
            return a[static_cast<std::size_t>(((i * c + ch) * L + l) * w + mm + L - 1)];
          };
          at(m) = v;
          at(-m) = (m % 2 == 0 ? 1.0 : -1.0) * std::conj(v);
        }
  return a;
}

void write_complex_npy(const fs::path& p, const std::vector<std::int64_t>& shape, const std::vector<std::complex<double>>& v) {
  std::string bytes = eqntk::io::npy_header(shape, eqntk::io::DType::c16);
  bytes.append(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(std::complex<double>));
  write_bytes(p, bytes);
}

void write_real_npy(const fs::path& p, const std::vector<std::int64_t>& shape, const std::vector<double>& v) {
  eqntk::io::write_npy(p, shape, std::span<const double>(v));
}

void write_labels(const fs::path& p, const std::vector<std::int64_t>& labels) {
  const std::int64_t shape[1] = {static_cast<std::int64_t>(labels.size())};
  eqntk::io::write_npy(p, shape, std::span<const std::int64_t>(labels));
}

Eigen::MatrixXd load(const fs::path& p) {
  const auto a = eqntk::io::read_npy(p);
  const std::int64_t rows = a.shape.at(0), cols = a.shape.size() > 1 ? a.shape[1] : 1;
  return Eigen::Map<const Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>>(a.real.data(), rows, cols);
}

Eigen::MatrixXd row_major(const std::vector<double>& v, std::int64_t r, std::int64_t c) {
  return Eigen::Map<const Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>>(v.data(), r, c);
}

bool bitwise_equal(const Eigen::MatrixXd& a, const Eigen::MatrixXd& b) {
  return a.rows() == b.rows() && a.cols() == b.cols() &&
         std::memcmp(a.data(), b.data(), static_cast<std::size_t>(a.size()) * sizeof(double)) == 0;
}

double json_number(const std::string& json, const std::string& key, int occurrence = 0) {
  const std::regex re("\"" + key + "\": ([-+0-9.eE]+)");
  auto it = std::sregex_iterator(json.begin(), json.end(), re);
  for (int i = 0; i < occurrence && it != std::sregex_iterator(); ++i) ++it;
  if (it == std::sregex_iterator()) return std::nan("");
  return std::stod((*it)[1].str());
}

constexpr int kExitUsage = 2;  // the exit code of every rejection below

class So3Cli : public eqntk::testing::CliFixture {
 protected:
  So3Cli() : CliFixture("eqntk_so3_cli_", 240) {}
};

// ---------------------------------------------------------------------------------------------------
// End to end
// ---------------------------------------------------------------------------------------------------

class So3RunEndToEnd : public So3Cli {
 protected:
  // Molecules at L = 4 with channel-scale rms: the items as `eqntk run` builds them.
  struct MoleculeData {
    std::vector<std::vector<so3::Signal>> train, test;
    Eigen::VectorXd y_train, y_test;
  };
  MoleculeData write_molecules() {
    write_bytes(path("train.xyz"), xyz_text(13, 3));
    write_bytes(path("test.xyz"), xyz_text(6, 4));
    MoleculeData d;
    const auto train = so3::read_xyz(path("train.xyz")), test = so3::read_xyz(path("test.xyz"));
    std::vector<std::vector<so3::Signal>> raw;
    for (const auto& m : train) raw.push_back(so3::atom_signals(m, 4));
    so3::AtomSignalOptions o;
    o.channel_scale = so3::channel_rms_scale(raw);
    for (const auto& m : train) d.train.push_back(so3::atom_signals(m, 4, o));
    for (const auto& m : test) d.test.push_back(so3::atom_signals(m, 4, o));
    d.y_train.resize(static_cast<Eigen::Index>(train.size()));
    d.y_test.resize(static_cast<Eigen::Index>(test.size()));
    for (std::size_t i = 0; i < train.size(); ++i) d.y_train[static_cast<Eigen::Index>(i)] = *so3::comment_value(train[i], "energy");
    for (std::size_t i = 0; i < test.size(); ++i) d.y_test[static_cast<Eigen::Index>(i)] = *so3::comment_value(test[i], "energy");
    return d;
  }
  std::vector<std::string> molecule_args(const std::string& out, const std::vector<std::string>& extra = {}) const {
    std::vector<std::string> a{"run", "--train-images", path("train.xyz").string(), "--test-images",
                               path("test.xyz").string(), "--target-key", "energy", "--arch", kArch, "--band-limit", "4",
                               "--channel-scale", "rms", "--molecule-sum", "all-pairs", "--times", "inf,2",
                               "--kernel", "both", "--save-kernels", "--ridge", "1e-6", "--ridge-absolute",
                               "--block-size", "4", "--so3-tol", kMoleculeTol, "--quiet", "--out", path(out).string()};
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
  }
  // The grid the library chooses for these items (rank 0 of `eqntk run` must choose the same).
  static int molecule_grid(const MoleculeData& d, const char* arch, double tol) {
    std::vector<const std::vector<so3::Signal>*> all;
    for (const auto* set : {&d.train, &d.test})
      for (const auto& m : *set) all.push_back(&m);
    return so3::choose_molecule_grid(so3::Architecture::parse(arch), 4, all, so3::GridChoiceOptions{tol, 0, 1}).n;
  }
  // These random molecules have close atoms (RMS-scaled q up to 68): 1e-12 is out of reach at L = 4 and
  // 1e-7 needs the cap N = 128 (minutes per run here), so the molecule runs aim at 1e-2 (N = 20; the grid
  // choice and its plumbing are what is tested here); the coefficient runs use the default tolerance.
  static constexpr const char* kMoleculeTol = "1e-2";
};

TEST_F(So3RunEndToEnd, MoleculeRunsAtOneAndThreeRanksSaveTheSerialKernelsAndSolveThemExactly) {
  const MoleculeData d = write_molecules();
  const int grid = molecule_grid(d, kArch, 1e-2);
  const so3::Network net(so3::Architecture::parse(kArch), 4, so3::kMoleculeChannels, so3::GridOptions{grid, 0});
  const auto serial = so3::molecule_gram_matrices(net, so3::MoleculeSum::all_pairs, 0, d.train, nullptr);
  const auto serial_test = so3::molecule_gram_matrices(net, so3::MoleculeSum::all_pairs, 0, d.test, &d.train);
  const auto n = static_cast<std::int64_t>(d.train.size()), m = static_cast<std::int64_t>(d.test.size());
  for (const int ranks : {1, 3}) {
    const std::string out = "out" + std::to_string(ranks);
    const ProcessResult r = eqntk(molecule_args(out), ranks);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const fs::path o = path(out);
    EXPECT_TRUE(bitwise_equal(load(o / "theta_train.npy"), row_major(serial.ntk, n, n))) << ranks << " ranks";
    EXPECT_TRUE(bitwise_equal(load(o / "nngp_train.npy"), row_major(serial.nngp, n, n))) << ranks << " ranks";
    EXPECT_TRUE(bitwise_equal(load(o / "theta_test.npy"), row_major(serial_test.ntk, m, n))) << ranks << " ranks";
    EXPECT_TRUE(bitwise_equal(load(o / "nngp_test.npy"), row_major(serial_test.nngp, m, n))) << ranks << " ranks";
    // t = ∞: μ = Θ(X*, X) (Θ(X, X) + 1e-6 I)⁻¹ Y.
    const Eigen::MatrixXd theta = row_major(serial.ntk, n, n), theta_test = row_major(serial_test.ntk, m, n);
    const Eigen::MatrixXd a = theta + 1e-6 * Eigen::MatrixXd::Identity(n, n);
    const Eigen::VectorXd mu = theta_test * a.ldlt().solve(d.y_train);
    const Eigen::MatrixXd pred = load(o / "predictions_ntk_tinf.npy");
    EXPECT_LT((pred.col(0) - mu).cwiseAbs().maxCoeff(), 1e-7 * (1.0 + mu.cwiseAbs().maxCoeff())) << ranks << " ranks";
    const double mse = (pred.col(0) - d.y_test).squaredNorm() / static_cast<double>(m);
    const double mae = (pred.col(0) - d.y_test).cwiseAbs().mean();
    const std::string metrics = read_text(o / "metrics.json");
    EXPECT_NEAR(json_number(metrics, "mse"), mse, 1e-12 * (1 + mse));
    EXPECT_NEAR(json_number(metrics, "rmse"), std::sqrt(mse), 1e-12 * (1 + mse));
    EXPECT_NEAR(json_number(metrics, "mae"), mae, 1e-12 * (1 + mae));
    EXPECT_NE(metrics.find("\"kind\": \"xyz\""), std::string::npos) << metrics;
    EXPECT_NE(metrics.find("\"molecule_sum\": \"all-pairs\""), std::string::npos) << metrics;
    EXPECT_EQ(json_number(metrics, "so3_grid"), grid) << metrics;
    EXPECT_LE(json_number(metrics, "so3_grid_estimate"), 1e-2) << metrics;
    EXPECT_NE(metrics.find("\"so3_grid_choice\": \"tolerance\""), std::string::npos) << metrics;
    EXPECT_NE(metrics.find("\"task\": \"regression\""), std::string::npos) << metrics;
    EXPECT_TRUE(fs::exists(o / "predictions_nngp_t2.npy"));
  }
}

TEST_F(So3RunEndToEnd, ResultLinesReportMseRmseAndMae) {
  write_molecules();
  const ProcessResult r = eqntk({"run", "--train-images", path("train.xyz").string(), "--test-images",
                                 path("test.xyz").string(), "--target-key", "energy", "--arch", "s2lift,erf,so3pool,dense",
                                 "--band-limit", "3", "--so3-tol", "1e-3", "--out", path("o").string(), "--ridge", "1e-6"},
                                1);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto results = lines_starting(r.out, "[result] ntk t=inf: test mse ");
  ASSERT_EQ(results.size(), 1u) << r.out;
  EXPECT_NE(results[0].find(", rmse "), std::string::npos) << results[0];
  EXPECT_NE(results[0].find(", mae "), std::string::npos) << results[0];
  // The grid is chosen to --so3-tol and reported with its error estimate.
  const auto grid = lines_starting(r.out, "[so3] SO(3) grid N=");
  ASSERT_EQ(grid.size(), 1u) << r.out;
  EXPECT_NE(grid[0].find("estimated relative error"), std::string::npos) << grid[0];
}

TEST_F(So3RunEndToEnd, CoefficientRunsAtOneAndThreeRanksMatchTheSerialKernels) {
  constexpr int L = 4, C = 2;
  write_complex_npy(path("train.npy"), {10, C, L, 2 * L - 1}, coefficients(10, C, L, 5));
  write_complex_npy(path("test.npy"), {5, C, L, 2 * L - 1}, coefficients(5, C, L, 6));
  write_labels(path("train_labels.npy"), {0, 1, 2, 0, 1, 2, 0, 1, 2, 0});
  write_labels(path("test_labels.npy"), {2, 1, 0, 1, 2});
  const auto train = so3::load_signal_set(path("train.npy")), test = so3::load_signal_set(path("test.npy"));
  // Default flags: the grid chosen to 1e-12 on train and test items, the same at 1 and 3 ranks.
  std::vector<const so3::Signal*> all;
  for (const auto* set : {&train.items, &test.items})
    for (const auto& x : *set) all.push_back(&x);
  // The CLI chooses two grids (weakly correlated pairs on a coarse one, so3/grid_choice.hpp).
  so3::GridChoiceOptions options;
  options.two_grids = true;
  const so3::GridChoice choice = so3::choose_grid(so3::Architecture::parse(kArch), L, C, all, options);
  ASSERT_FALSE(choice.capped) << choice.summary();
  const so3::Network net(so3::Architecture::parse(kArch), L, C, so3::GridOptions{choice.n, 0}, choice.coarse());
  const auto serial = so3::gram_matrices(net, train.items, nullptr);
  const auto serial_test = so3::gram_matrices(net, test.items, &train.items);
  Eigen::MatrixXd first;
  for (const int ranks : {1, 3}) {
    const std::string out = "out" + std::to_string(ranks);
    const ProcessResult r =
        eqntk({"run", "--train-images", path("train.npy").string(), "--train-labels", path("train_labels.npy").string(),
               "--test-images", path("test.npy").string(), "--test-labels", path("test_labels.npy").string(), "--arch",
               kArch, "--times", "inf,1", "--kernel", "both", "--save-kernels", "--variance", "--block-size", "3",
               "--ridge", "1e-8", "--quiet", "--out", path(out).string()},
              ranks);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const fs::path o = path(out);
    EXPECT_TRUE(bitwise_equal(load(o / "theta_train.npy"), row_major(serial.ntk, 10, 10))) << ranks << " ranks";
    EXPECT_TRUE(bitwise_equal(load(o / "nngp_test.npy"), row_major(serial_test.nngp, 5, 10))) << ranks << " ranks";
    const std::string metrics = read_text(o / "metrics.json");
    EXPECT_NE(metrics.find("\"task\": \"classification\""), std::string::npos) << metrics;
    EXPECT_NE(metrics.find("\"kind\": \"coefficients\""), std::string::npos) << metrics;
    EXPECT_EQ(json_number(metrics, "so3_grid"), choice.n) << metrics;
    EXPECT_EQ(json_number(metrics, "so3_grid_coarse"), choice.coarse_n) << metrics;
    EXPECT_NEAR(json_number(metrics, "so3_grid_estimate"), choice.estimate, 1e-3 * choice.estimate) << metrics;
    EXPECT_EQ(json_number(metrics, "so3_tol"), 1e-12) << metrics;
    EXPECT_FALSE(std::isnan(json_number(metrics, "rmse"))) << metrics;
    const Eigen::MatrixXd pred = load(o / "predictions_ntk_t1.npy");
    // The kernels are bitwise rank-invariant; the eigensolver behind finite t is not (ScaLAPACK rounding).
    if (ranks == 1) first = pred;
    else EXPECT_LT((pred - first).cwiseAbs().maxCoeff(), 1e-9 * (1.0 + first.cwiseAbs().maxCoeff()));
    EXPECT_TRUE(fs::exists(o / "variance_ntk_tinf.npy"));
  }
}

// The same signals as Driscoll-Healy samples (--input-kind dh, and recognised from the real dtype) give the
// kernels of the coefficients to rounding (the forward transform is exact for band-limited signals).
TEST_F(So3RunEndToEnd, DriscollHealySamplesGiveTheKernelsOfTheirCoefficients) {
  constexpr int L = 3, C = 2;
  write_complex_npy(path("coef.npy"), {4, C, L, 2 * L - 1}, coefficients(4, C, L, 8));
  const auto set = so3::load_signal_set(path("coef.npy"));
  const auto thetas = so3::dh_thetas(L), phis = so3::dh_phis(L);
  std::vector<double> samples;
  for (const auto& x : set.items)
    for (int c = 0; c < C; ++c)
      for (const double t : thetas)
        for (const double p : phis) samples.push_back(so3::evaluate(x, c, t, p));
  write_real_npy(path("dh.npy"), {4, C, 2 * L, 2 * L - 1}, samples);
  for (const std::string kind : {"auto", "dh"}) {
    const ProcessResult r = eqntk({"kernel", "--x1", path("dh.npy").string(), "--arch", kArch, "--input-kind", kind,
                                   "--ntk", path("T_" + kind + ".npy").string()},
                                  1);
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  const ProcessResult r = eqntk({"kernel", "--x1", path("coef.npy").string(), "--arch", kArch, "--ntk", path("T.npy").string()}, 1);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const Eigen::MatrixXd t = load(path("T.npy"));
  for (const char* name : {"T_auto.npy", "T_dh.npy"})
    EXPECT_LT((load(path(name)) - t).cwiseAbs().maxCoeff(), 1e-12 * t.cwiseAbs().maxCoeff()) << name;
}

// The checkpoint identity covers the SO(3) items and options: a rerun with the same inputs restores every
// tile bitwise; another channel scale (other items) or another molecule sum is refused.
TEST_F(So3RunEndToEnd, CheckpointsAreReusedForTheSameItemsAndRefusedForOtherOptions) {
  write_molecules();
  const std::vector<std::string> ck{"--checkpoint", path("ck").string()};
  ProcessResult r = eqntk(molecule_args("a", ck), 1);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = eqntk(molecule_args("b", ck), 2);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string metrics = read_text(path("b") / "metrics.json");
  EXPECT_EQ(json_number(metrics, "pairs_restored"), json_number(metrics, "pairs")) << metrics;
  EXPECT_TRUE(bitwise_equal(load(path("a") / "theta_train.npy"), load(path("b") / "theta_train.npy")));
  for (const auto& other : {std::vector<std::string>{"--channel-scale", "none"}, std::vector<std::string>{"--band-limit", "3"},
                            std::vector<std::string>{"--so3-grid", "14"}}) {
    std::vector<std::string> args = molecule_args("c", ck);
    for (std::size_t i = 0; i + 1 < args.size(); ++i)
      if (args[i] == other[0]) args[i + 1] = other[1];
    if (std::find(args.begin(), args.end(), other[0]) == args.end()) args.insert(args.end(), other.begin(), other.end());
    expect_rejected(args, 1, kExitUsage, {"checkpoint", "other data"});
  }
}

// Every SO(3) flag is also valid in the INI config file; command-line flags override it.
TEST_F(So3RunEndToEnd, So3OptionsComeFromTheConfigFile) {
  write_molecules();
  write_bytes(path("run.ini"), "target-key = energy\nband-limit = 3\nmolecule-sum = all-pairs\nchannel-scale = rms\n"
                               "so3-grid = 12\ninput-kind = xyz\narch = s2lift,erf,so3pool,dense\nquiet = true\n");
  const ProcessResult r = eqntk({"run", "--config", path("run.ini").string(), "--train-images", path("train.xyz").string(),
                                 "--test-images", path("test.xyz").string(), "--so3-grid", "10", "--out", path("o").string()},
                                2);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string metrics = read_text(path("o") / "metrics.json");
  for (const char* want : {"\"band_limit\": 3", "\"molecule_sum\": \"all-pairs\"", "\"channel_scale\": \"rms\"",
                           "\"so3_grid\": 10", "\"target_key\": \"energy\""})
    EXPECT_NE(metrics.find(want), std::string::npos) << want << "\n" << metrics;
}

// ---------------------------------------------------------------------------------------------------
// Bad inputs, at 1 and 2 ranks
// ---------------------------------------------------------------------------------------------------

class So3BadInput : public So3Cli, public ::testing::WithParamInterface<int> {
 protected:
  void SetUp() override {
    So3Cli::SetUp();
    write_bytes(path("train.xyz"), xyz_text(5, 1));
    write_bytes(path("test.xyz"), xyz_text(3, 2));
    write_complex_npy(path("c3.npy"), {4, 2, 3, 5}, coefficients(4, 2, 3, 1));
    write_complex_npy(path("c3b.npy"), {2, 2, 3, 5}, coefficients(2, 2, 3, 2));
    write_labels(path("y4.npy"), {0, 1, 0, 1});
    write_labels(path("y2.npy"), {1, 0});
  }
  [[nodiscard]] int ranks() const { return GetParam(); }

  // A valid SO(3) `eqntk run` on molecules; `replace` swaps option values (empty value: drop the option),
  // `extra` appends.
  std::vector<std::string> molecules(const std::vector<std::pair<std::string, std::string>>& replace = {},
                                     const std::vector<std::string>& extra = {}) const {
    return args({{"--train-images", path("train.xyz").string()},
                 {"--test-images", path("test.xyz").string()},
                 {"--target-key", "energy"},
                 {"--band-limit", "3"},
                 {"--so3-tol", "1e-3"}},  // raw-scale random molecules: 1e-12 would run to the grid cap
                replace, extra);
  }
  std::vector<std::string> signals(const std::vector<std::pair<std::string, std::string>>& replace = {},
                                   const std::vector<std::string>& extra = {}) const {
    return args({{"--train-images", path("c3.npy").string()},
                 {"--train-labels", path("y4.npy").string()},
                 {"--test-images", path("c3b.npy").string()},
                 {"--test-labels", path("y2.npy").string()}},
                replace, extra);
  }
  std::vector<std::string> args(std::vector<std::pair<std::string, std::string>> opts,
                                const std::vector<std::pair<std::string, std::string>>& replace,
                                const std::vector<std::string>& extra) const {
    opts.emplace_back("--arch", "s2lift,erf,so3pool,dense");
    opts.emplace_back("--out", path("out").string());
    return eqntk::testing::run_argv(std::move(opts), replace, extra);
  }
};

TEST_P(So3BadInput, ValidMoleculeAndSignalRunsSucceed) {
  for (const auto& a : {molecules(), signals()}) {
    const ProcessResult r = eqntk(a, ranks());
    EXPECT_EQ(r.exit_code, 0) << r.command << "\n" << r.err;
    EXPECT_TRUE(fs::exists(path("out") / "metrics.json"));
    fs::remove_all(path("out"));
  }
}

TEST_P(So3BadInput, RejectsCoefficientArrayOfWrongRank) {
  write_complex_npy(path("rank3.npy"), {4, 2, 3}, std::vector<std::complex<double>>(24));
  expect_rejected(signals({{"--train-images", path("rank3.npy").string()}}), ranks(), kExitUsage,
                  {"rank3.npy", "(N, C, L, 2L-1)", "(4, 2, 3)"});
}

TEST_P(So3BadInput, RejectsSamplesOfWrongShape) {
  write_real_npy(path("dh_bad.npy"), {4, 2, 6, 4}, std::vector<double>(192, 0.5));
  expect_rejected(signals({{"--train-images", path("dh_bad.npy").string()}}), ranks(), kExitUsage, {"dh_bad.npy", "Driscoll-Healy"});
}

TEST_P(So3BadInput, RejectsBandLimitThatDiffersBetweenTrainAndTest) {
  write_complex_npy(path("c4.npy"), {2, 2, 4, 7}, coefficients(2, 2, 4, 3));
  expect_rejected(signals({{"--test-images", path("c4.npy").string()}}), ranks(), kExitUsage, {"band limit L differs", "L=3", "L=4"});
}

TEST_P(So3BadInput, RejectsNonHermitianCoefficients) {
  auto a = coefficients(4, 2, 3, 1);
  a[static_cast<std::size_t>(((1 * 2 + 1) * 3 + 2) * 5 + 1 + 2)] += std::complex<double>(0.5, 0.0);  // item 1, c 1, l 2, m 1
  write_complex_npy(path("nonherm.npy"), {4, 2, 3, 5}, a);
  expect_rejected(signals({{"--train-images", path("nonherm.npy").string()}}), ranks(), kExitUsage,
                  {"nonherm.npy", "item 1", "not those of a real signal"});
}

TEST_P(So3BadInput, RejectsUnknownElement) {
  write_bytes(path("cl.xyz"), "2\nenergy=1\nC 0 0 0\nCl 0 0 1.7\n");
  expect_rejected(molecules({{"--train-images", path("cl.xyz").string()}}), ranks(), kExitUsage, {"cl.xyz", "line 4", "'Cl'"});
}

TEST_P(So3BadInput, RejectsEmptyMolecule) {
  write_bytes(path("empty.xyz"), "1\nenergy=1\nC 0 0 0\n0\nenergy=2\n");
  expect_rejected(molecules({{"--test-images", path("empty.xyz").string()}}), ranks(), kExitUsage, {"empty.xyz", "line 4", "empty molecule"});
}

TEST_P(So3BadInput, RejectsImageOnlyFlags) {
  for (const auto& flag : std::vector<std::vector<std::string>>{
           {"--downsample", "2"}, {"--rotate-test"}, {"--augment"}, {"--layout", "nchw"}})
    expect_rejected(molecules({}, flag), ranks(), kExitUsage, {flag[0], "images only"});
}

TEST_P(So3BadInput, RejectsMissingTargetKeyInACommentLine) {
  expect_rejected(molecules({{"--target-key", "homo"}}), ranks(), kExitUsage, {"train.xyz", "line 1", "'homo=<number>'"});
}

TEST_P(So3BadInput, RejectsTargetKeyWithCoefficientFiles) {
  expect_rejected(signals({{"--train-labels", ""}, {"--test-labels", ""}, {"--target-key", "energy"}}), ranks(), kExitUsage,
                  {"--target-key", "c3.npy", "coefficients"});
}

TEST_P(So3BadInput, RejectsLabelCountThatDiffersFromTheMolecules) {
  expect_rejected(molecules({{"--target-key", ""}, {"--train-labels", path("y4.npy").string()},
                             {"--test-labels", path("y2.npy").string()}}),
                  ranks(), kExitUsage, {"4 labels for 5 molecules", "train.xyz"});
}

TEST_P(So3BadInput, RejectsTrainAndTestOfDifferentKinds) {
  expect_rejected(molecules({{"--test-images", path("c3b.npy").string()}}), ranks(), kExitUsage, {"holds xyz", "holds coefficients"});
}

TEST_P(So3BadInput, RejectsAnIdxImageFile) {
  std::string idx("\0\0\x08\x03\0\0\0\x01\0\0\0\x02\0\0\0\x02", 16);
  idx += std::string(4, '\x10');
  write_bytes(path("img.idx"), idx);
  expect_rejected(signals({{"--train-images", path("img.idx").string()}}), ranks(), kExitUsage, {"img.idx", "IDX image"});
}

TEST_P(So3BadInput, RejectsSo3KindWithAPlanarArchitecture) {
  expect_rejected(molecules({{"--arch", "flatten,dense,relu,dense"}, {"--input-kind", "xyz"}}), ranks(), kExitUsage,
                  {"--input-kind xyz", "SO(3) architecture"});
}

TEST_P(So3BadInput, RejectsSo3FlagsWithAPlanarArchitecture) {
  expect_rejected(signals({{"--arch", "flatten,dense,relu,dense"}, {"--molecule-sum", "all-pairs"}}), ranks(), kExitUsage,
                  {"--molecule-sum", "SO(3) architectures only"});
}

TEST_P(So3BadInput, RejectsSo3GridBelowTwoLMinusOne) {
  expect_rejected(molecules({{"--so3-grid", "4"}}), ranks(), kExitUsage, {"N = 4", "L = 3"});
}

TEST_P(So3BadInput, RejectsMoleculeWiderThanTheSlots) {
  expect_rejected(molecules({{"--slots", "2"}}), ranks(), kExitUsage, {"train.xyz", "does not fit in --slots 2"});
}

TEST_P(So3BadInput, RejectsBadSo3FlagValues) {
  expect_rejected(molecules({{"--molecule-sum", "some"}}), ranks(), kExitUsage, {"--molecule-sum", "same-slot or all-pairs"});
  expect_rejected(molecules({{"--channel-scale", "max"}}), ranks(), kExitUsage, {"--channel-scale", "none or rms"});
  expect_rejected(molecules({{"--input-kind", "pdb"}}), ranks(), kExitUsage, {"--input-kind", "'pdb'"});
  expect_rejected(molecules({{"--so3-tol", "0"}}), ranks(), kExitUsage, {"--so3-tol", "[1e-15, 1)"});
  expect_rejected(molecules({{"--so3-tol", "1e-20"}}), ranks(), kExitUsage, {"--so3-tol", "[1e-15, 1)"});
}

// A relu network cannot reach 1e-12 (the cusp of every self pair converges algebraically): the grid stops
// at the cap, the run succeeds, and one line on stderr says so; metrics.json records "capped".
TEST_P(So3BadInput, GridCapStopsReluRefinementWithOneWarningLine) {
  const ProcessResult r = eqntk({"run", "--train-images", path("c3.npy").string(), "--train-labels", path("y4.npy").string(),
                                 "--test-images", path("c3b.npy").string(), "--test-labels", path("y2.npy").string(),
                                 "--arch", "s2lift,relu,so3pool,dense", "--out", path("o").string()},
                                ranks());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto warnings = lines_starting(r.err, "eqntk: warning: SO(3) grid: refinement stopped at the cap N=96");
  EXPECT_EQ(warnings.size(), 1u) << r.err;
  const std::string metrics = read_text(path("o") / "metrics.json");
  EXPECT_NE(metrics.find("\"so3_grid_choice\": \"capped\""), std::string::npos) << metrics;
  EXPECT_EQ(json_number(metrics, "so3_grid"), 96) << metrics;
  const double estimate = json_number(metrics, "so3_grid_estimate");
  EXPECT_GT(estimate, 1e-12) << metrics;
  EXPECT_LT(estimate, 1e-6) << metrics;
}

TEST_P(So3BadInput, KernelCommandRejectsNonHermitianCoefficients) {
  auto a = coefficients(4, 2, 3, 1);
  a[static_cast<std::size_t>(2 * 5 + 0 + 2)] = {0.3, 0.7};  // item 0, c 0, l 2, m 0: not real
  write_complex_npy(path("k.npy"), {4, 2, 3, 5}, a);
  expect_rejected({"kernel", "--x1", path("k.npy").string(), "--arch", "s2lift,erf,so3pool,dense", "--ntk",
                   path("T.npy").string()},
                  ranks(), kExitUsage, {"k.npy", "a_{l0} is not real"});
}

// ---------------------------------------------------------------------------------------------------
// Tools fail before computing
// ---------------------------------------------------------------------------------------------------

// A tool started without a dataset it needs stops at once (well within 5 s, before any kernel) with one line
// naming the missing file and the command that makes it, exit status 2. The tools sit beside the eqntk binary.
TEST_F(So3Cli, ToolsWithoutTheirDatasetExitAtOnceWithOneLineNamingFileAndCommand) {
  const fs::path bin = fs::path(EQNTK_BINARY).parent_path();
  const std::string missing = (path("absent") / "g2.xyz").string();
  struct Case {
    std::vector<std::string> argv;
    std::string file, command;
  };
  const Case cases[] = {
      {{(bin / "experiment_molecules").string(), "--xyz", missing}, missing, "tools/convert_g2.py"},
      {{(bin / "experiment_da").string(), "--data-dir", path("absent").string()},
       (path("absent") / "train-images-idx3-ubyte.gz").string(), "apt-get install dataset-fashion-mnist"},
      {{(bin / "eqntk_mc").string(), "--data", (path("absent") / "x.npy").string()}, (path("absent") / "x.npy").string(),
       "dataset-fashion-mnist"}};
  fs::create_directories(path("capture"));
  for (const Case& c : cases) {
    ASSERT_TRUE(fs::exists(c.argv[0])) << c.argv[0];
    const ProcessResult r = run_process(c.argv, path("capture"), 30);
    EXPECT_EQ(r.exit_code, kExitUsage) << r.command << "\n" << r.err;
    EXPECT_LT(r.seconds, 5.0) << r.command;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    EXPECT_NE(r.err.find("missing input " + c.file), std::string::npos) << r.err;
    EXPECT_NE(r.err.find(c.command), std::string::npos) << r.err;
    EXPECT_EQ(r.out, "") << r.command;
  }
}

INSTANTIATE_TEST_SUITE_P(Ranks, So3BadInput, ::testing::Values(1, 2),
                         [](const ::testing::TestParamInfo<int>& p) { return "np" + std::to_string(p.param); });

}  // namespace
