// Multi-rank tests of the distributed Gram builder, the ScaLAPACK solver, checkpoints and MPI-IO.
// Registered at 1, 2, 3 and 4 ranks. Every assertion is on a value reduced over all ranks.
#include <gtest/gtest.h>
#include <mpi.h>
#include <unistd.h>

#include <Eigen/Dense>
#include <atomic>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <numeric>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "../support/mpi_test_main.hpp"
#include "eqntk/io/dataset.hpp"
#include "eqntk/parallel/broadcast.hpp"
#include "eqntk/parallel/dist_ops.hpp"
#include "eqntk/parallel/gram_builder.hpp"
#include "eqntk/parallel/linalg.hpp"
#include "eqntk/parallel/size_limits.hpp"
#include "eqntk/parallel/npy_writer.hpp"
#include "eqntk/error.hpp"
#include "eqntk/io/npy.hpp"
#include "eqntk/kernel/gram.hpp"
#include "eqntk/solve/dynamics.hpp"

namespace {

using eqntk::testing::all_ranks;
using eqntk::testing::max_over_ranks;
namespace parallel = eqntk::parallel;
namespace kernel = eqntk::kernel;
namespace data = eqntk::data;
namespace solve = eqntk::solve;
namespace fs = std::filesystem;

data::ImageSet random_images(std::int64_t count, data::InputShape shape, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal;
  data::ImageSet s{shape, count, {}};
  s.pixels.resize(static_cast<std::size_t>(count * s.image_size()));
  for (double& v : s.pixels) v = normal(rng);
  return s;
}

const char* kP4 = "lift:k=3:b=0.1,relu,gconv:k=3,relu,gpool,dense";
constexpr data::InputShape kShape{2, 6, 6};

// Every factorisation p·q of the rank count.
std::vector<std::pair<int, int>> grids() {
  std::vector<std::pair<int, int>> g;
  for (int p = 1; p <= eqntk::testing::size(); ++p)
    if (eqntk::testing::size() % p == 0) g.emplace_back(p, eqntk::testing::size() / p);
  return g;
}

// A fresh directory created by rank 0, the same path on every rank.
std::string shared_temp_dir() {
  char path[256] = "/tmp/eqntk_dist_XXXXXX";
  if (eqntk::testing::rank() == 0 && mkdtemp(path) == nullptr) path[0] = '\0';
  MPI_Bcast(path, sizeof path, MPI_CHAR, 0, MPI_COMM_WORLD);
  return path;
}

parallel::BuildOptions quiet_options(int threads = 1) {
  parallel::BuildOptions o;
  o.threads = threads;
  o.quiet = true;
  o.progress_interval = 0.01;  // exercise the progress rounds
  return o;
}

// Bitwise comparison of the replicated lower triangle (train) or whole matrix (test) with a serial Gram.
bool same_bits(const parallel::DistMatrix& a, const std::vector<double>& serial, bool lower_only) {
  const std::vector<double> full = parallel::replicate(a);
  bool ok = true;
  for (std::int64_t i = 0; i < a.rows(); ++i)
    for (std::int64_t j = 0; j < a.cols(); ++j) {
      if (lower_only && j > i) continue;
      const std::size_t e = static_cast<std::size_t>(i * a.cols() + j);
      ok = ok && std::memcmp(&full[e], &serial[e], sizeof(double)) == 0;
    }
  return ok;
}

struct Fixture {
  kernel::Network net{kernel::Architecture::parse(kP4), kShape};
  data::ImageSet train = random_images(11, kShape, 1);
  data::ImageSet test = random_images(7, kShape, 2);
  kernel::GramPair serial_train = kernel::gram_matrices(net, train, nullptr);
  kernel::GramPair serial_test = kernel::gram_matrices(net, test, &train);
};

Fixture& fixture() {
  static Fixture f;
  return f;
}

bool matches_serial(const parallel::GramMatrices& g, const Fixture& f) {
  return same_bits(g.train_nngp, f.serial_train.nngp, true) && same_bits(g.train_ntk, f.serial_train.ntk, true) &&
         same_bits(g.test_nngp, f.serial_test.nngp, false) && same_bits(g.test_ntk, f.serial_test.ntk, false);
}

TEST(GramBuilder, EntriesAreBitwiseIdenticalForEveryGridBlockSizeAndThreadCount) {
  const Fixture& f = fixture();
  for (const auto& [p, q] : grids()) {
    const parallel::ProcessGrid grid(p, q);
    for (const std::int64_t nb : {1, 3, 4, 16}) {  // 16 > N: one tile, most ranks own nothing
      for (const int threads : {1, 2}) {
        const auto g = parallel::build_gram(grid, f.net, f.train, f.test, nb, quiet_options(threads));
        EXPECT_TRUE(all_ranks(matches_serial(g, f))) << "grid " << p << "x" << q << " nb " << nb << " threads " << threads;
        EXPECT_EQ(g.stats.pairs_total, 11 * 12 / 2 + 7 * 11);
      }
    }
  }
}

TEST(GramBuilder, TinyProblemsLeaveRanksWithNothingToDo) {
  const kernel::Network net(kernel::Architecture::parse("conv:k=3,relu,gap,dense"), kShape);
  const auto train = random_images(2, kShape, 3), test = random_images(1, kShape, 4);
  const auto serial_train = kernel::gram_matrices(net, train, nullptr);
  const auto serial_test = kernel::gram_matrices(net, test, &train);
  for (const auto& [p, q] : grids()) {
    const parallel::ProcessGrid grid(p, q);
    const auto g = parallel::build_gram(grid, net, train, test, 1, quiet_options());
    EXPECT_TRUE(all_ranks(same_bits(g.train_ntk, serial_train.ntk, true) && same_bits(g.test_ntk, serial_test.ntk, false)));
    EXPECT_EQ(g.stats.pairs_per_rank.size(), static_cast<std::size_t>(eqntk::testing::size()));
  }
}

TEST(GramBuilder, FlattenReadoutsAndHeadsDistributeToo) {
  for (const char* arch : {"lift:k=3:pad=circular,erf,gconv:k=3:pad=circular,erf,flatten,dense",
                           "conv:k=3:pad=valid:b=0.2,relu,gap,dense:b=0.1,relu,dense"}) {
    const kernel::Network net(kernel::Architecture::parse(arch), kShape);
    const auto train = random_images(6, kShape, 5), test = random_images(3, kShape, 6);
    const auto serial_train = kernel::gram_matrices(net, train, nullptr);
    const auto serial_test = kernel::gram_matrices(net, test, &train);
    const auto [p, q] = parallel::ProcessGrid::near_square(eqntk::testing::size());
    const parallel::ProcessGrid grid(p, q);
    const auto g = parallel::build_gram(grid, net, train, test, 2, quiet_options());
    EXPECT_TRUE(all_ranks(same_bits(g.train_nngp, serial_train.nngp, true) && same_bits(g.train_ntk, serial_train.ntk, true) &&
                          same_bits(g.test_ntk, serial_test.ntk, false)))
        << arch;
  }
}

// Dense reference of MATH §6 with Eigen on the replicated matrices.
Eigen::MatrixXd as_matrix(const std::vector<double>& v, std::int64_t r, std::int64_t c) {
  return Eigen::Map<const Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>>(v.data(), r, c);
}

Eigen::MatrixXd dense_prediction(const Eigen::MatrixXd& theta, const Eigen::MatrixXd& theta_test, const Eigen::MatrixXd& y,
                                 double t, double eta) {
  if (std::isinf(t)) return theta_test * theta.llt().solve(y);
  Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> es(theta);
  Eigen::VectorXd g(theta.rows());
  for (Eigen::Index i = 0; i < g.size(); ++i) {
    const double l = std::max(es.eigenvalues()(i), 0.0);
    g(i) = l > 0 ? (1 - std::exp(-eta * l * t)) / l : eta * t;
  }
  return theta_test * es.eigenvectors() * g.asDiagonal() * es.eigenvectors().transpose() * y;
}

std::vector<double> centred_one_hot(std::int64_t n, std::int64_t k, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<double> y(static_cast<std::size_t>(n * k), -1.0 / static_cast<double>(k));
  for (std::int64_t i = 0; i < n; ++i) y[static_cast<std::size_t>(i * k + static_cast<std::int64_t>(rng() % k))] += 1.0;
  return y;
}

double rel_diff(const std::vector<double>& a, const Eigen::MatrixXd& b_colmajor) {
  const Eigen::MatrixXd a_m = as_matrix(a, b_colmajor.rows(), b_colmajor.cols());
  return (a_m - b_colmajor).cwiseAbs().maxCoeff() / std::max(1e-300, b_colmajor.cwiseAbs().maxCoeff());
}

TEST(Solver, PredictionsAndVariancesMatchADenseEigenSolve) {
  const Fixture& f = fixture();
  const std::int64_t n = 11, m = 7, k = 3;
  const auto y = centred_one_hot(n, k, 7);
  const Eigen::MatrixXd theta = as_matrix(f.serial_train.ntk, n, n), theta_test = as_matrix(f.serial_test.ntk, m, n);
  const Eigen::MatrixXd kk = as_matrix(f.serial_train.nngp, n, n), k_test = as_matrix(f.serial_test.nngp, m, n);
  const Eigen::MatrixXd ym = as_matrix(y, n, k);
  const auto test_gram = kernel::gram_matrices(f.net, f.test, nullptr);
  std::vector<double> k_self(static_cast<std::size_t>(m));
  for (std::int64_t i = 0; i < m; ++i) k_self[static_cast<std::size_t>(i)] = test_gram.nngp[static_cast<std::size_t>(i * m + i)];
  solve::SolveOptions opt;
  opt.times = {std::numeric_limits<double>::infinity(), 0.5, 5.0};
  opt.eta = 0.7;
  opt.ridge = 1e-3;
  opt.variance = true;
  const double ridge = 1e-3 * theta.trace() / static_cast<double>(n);
  const Eigen::MatrixXd a = theta + ridge * Eigen::MatrixXd::Identity(n, n);
  // nb = 16 > N puts the whole matrix in one block on one rank of several (pdsyevd got this wrong).
  for (const std::int64_t nb : {3, 16})
  for (const auto& [p, q] : grids()) {
    const parallel::ProcessGrid grid(p, q);
    const auto g = parallel::build_gram(grid, f.net, f.train, f.test, nb, quiet_options());
    const solve::SolveReport rep = solve::predict(g.train_ntk, g.test_ntk, y, k, opt, &g.train_nngp, &g.test_nngp, &k_self);
    EXPECT_NEAR(rep.ridge_added, ridge, 1e-15 * ridge);
    for (const auto& pr : rep.predictions) {
      const Eigen::MatrixXd want = dense_prediction(a, theta_test, ym, pr.time, opt.eta);
      EXPECT_LT(max_over_ranks(rel_diff(pr.mean, want)), 1e-9) << "t=" << pr.time << " grid " << p << "x" << q << " nb " << nb;
      // A_t = Θ* Θ⁻¹(I − e^{−ηΘt}); variance = K** + diag(A K Aᵀ) − 2 diag(A K*ᵀ).
      const Eigen::MatrixXd at = dense_prediction(a, theta_test, Eigen::MatrixXd::Identity(n, n), pr.time, opt.eta);
      const Eigen::VectorXd var = Eigen::Map<const Eigen::VectorXd>(k_self.data(), m) +
                                  (at * kk * at.transpose()).diagonal() - 2 * (at * k_test.transpose()).diagonal();
      EXPECT_LT(max_over_ranks(rel_diff(pr.variance, var)), 1e-8) << "variance t=" << pr.time;
    }
  }
}

// The size check's bound on pdsyevr's workspace covers what the eigensolver actually allocates (its own
// query plus headroom), on every grid shape and block size tried; otherwise the check could pass a job
// whose workspace then overflows int.
TEST(SizeLimits, EigensolverWorkspaceBoundCoversTheQueriedAllocation) {
  const auto [p, q] = parallel::ProcessGrid::near_square(eqntk::testing::size());
  const parallel::ProcessGrid grid(p, q);
  int failures = 0;
  for (const std::int64_t n : {1, 7, 40, 131, 400, 1000})
    for (const std::int64_t nb : {1, 4, 32}) {
      parallel::DistMatrix a(grid, n, n, nb), z(grid, n, n, nb);
      for (std::int64_t j = 0; j < a.local_cols(); ++j)
        for (std::int64_t i = 0; i < a.local_rows(); ++i) a.local(i, j) = a.global_row(i) == a.global_col(j) ? 1.0 : 0.0;
      const parallel::EigenWorkspace ws = parallel::eigen_workspace(a, z);
      if (ws.lwork > parallel::eigen_workspace_bound(n, nb, p, q)) ++failures;
    }
  EXPECT_EQ(max_over_ranks(static_cast<double>(failures)), 0.0);
}

// The worked example of size_limits.hpp: 80 272 × 26 768 elements on process column 0 of a 1×3 grid.
TEST(SizeLimits, LargestLocalBlockIsProcessZerosShare) {
  EXPECT_EQ(parallel::max_local_part(80272, 80272, 32, 1, 3), std::int64_t{80272} * 26768);
  EXPECT_EQ(parallel::max_local_part(10, 10, 3, 2, 2), std::int64_t{6} * 6);  // blocks 0 and 2 (of 0..3)
  parallel::JobSizes s{80272, 10, 32, 1, 3, false, true};
  EXPECT_THROW(parallel::check_size_limits(s), eqntk::InvalidArgument);
  s.pcols = 4;  // 80 272 × 20 080 < 2³¹−1
  EXPECT_NO_THROW(parallel::check_size_limits(s));
}

// ScaLAPACK's negative info names an argument (−i) or an entry of an array argument (−(100·i + j)); the
// decoded message names it, and an illegal argument is a ScalapackError (a bug), never a numerical verdict
// on the data such as "NaN/Inf".
TEST(Linalg, IllegalArgumentsAreDecodedAndNotReportedAsNumerical) {
  EXPECT_NE(parallel::describe_illegal_argument("pdsyevr", -4).find("illegal value in argument 4"), std::string::npos);
  EXPECT_NE(parallel::describe_illegal_argument("pdsyevr", -1206).find("entry 6 of argument 12"), std::string::npos);
  EXPECT_THROW((void)parallel::check_arguments("pdpotrf", -3), parallel::ScalapackError);
  EXPECT_EQ(parallel::check_arguments("pdpotrf", 2), 2);
  // A real illegal call: eigenvectors Z with another block size than A (pdsyevr requires them equal).
  const auto [p, q] = parallel::ProcessGrid::near_square(eqntk::testing::size());
  const parallel::ProcessGrid grid(p, q);
  parallel::DistMatrix a(grid, 8, 8, 4), z(grid, 8, 8, 2);
  std::vector<double> w;
  std::string message;
  try {
    parallel::eigen_symmetric(a, z, w);
  } catch (const parallel::ScalapackError& e) {
    message = e.what();
  } catch (const std::exception& e) {
    message = std::string("wrong type: ") + e.what();
  }
  EXPECT_TRUE(all_ranks(message.find("illegal value") != std::string::npos && message.find("NaN") == std::string::npos))
      << message;
}

// NaN and ±∞ are counted over every rank (only i ≥ j for a lower triangle) and the first is located.
TEST(DistOps, NonFiniteEntriesAreCountedAndLocated) {
  const auto [p, q] = parallel::ProcessGrid::near_square(eqntk::testing::size());
  const parallel::ProcessGrid grid(p, q);
  parallel::DistMatrix a(grid, 7, 5, 2);
  for (std::int64_t lj = 0; lj < a.local_cols(); ++lj)
    for (std::int64_t li = 0; li < a.local_rows(); ++li) {
      const std::int64_t i = a.global_row(li), j = a.global_col(lj);
      if ((i == 4 && j == 1) || (i == 6 && j == 3)) a.local(li, lj) = std::numeric_limits<double>::infinity();
      if (i == 0 && j == 2) a.local(li, lj) = std::nan("");  // above the diagonal
    }
  const parallel::NonFinite all = parallel::find_non_finite(a, false);
  EXPECT_TRUE(all_ranks(all.count == 3 && all.row == 4 && all.col == 1));
  const parallel::NonFinite lower = parallel::find_non_finite(a, true);
  EXPECT_TRUE(all_ranks(lower.count == 2 && lower.row == 4 && lower.col == 1));
}

// A problem whose evaluation throws for one pair (and whose values are i + j otherwise): the throw inside
// an OpenMP loop must come out of both drivers as the exception, never abort the process.
class ThrowingProblem final : public eqntk::kernel::KernelProblem {
 public:
  [[nodiscard]] std::int64_t count(int set) const override { return set == 0 ? 9 : 4; }
  [[nodiscard]] std::unique_ptr<Worker> make_worker() const override { return std::make_unique<Worker>(); }
  void prepare(Worker&, int, std::int64_t) override {}
  [[nodiscard]] eqntk::kernel::KernelValue evaluate(Worker&, int set, std::int64_t i, std::int64_t j) const override {
    if (set == 0 && i == 7 && j == 2) throw eqntk::NumericalError("pair (7, 2) failed");
    return {static_cast<double>(i + j), static_cast<double>(i * j)};
  }
  [[nodiscard]] eqntk::kernel::KernelValue self(int, std::int64_t i) const override {
    return {static_cast<double>(2 * i), static_cast<double>(i * i)};
  }
};

TEST(ExceptionSafety, AThrowInsideTheOpenMpLoopsOfBothDriversIsRethrown) {
  ThrowingProblem problem;
  for (const int threads : {1, 3}) {
    EXPECT_THROW((void)eqntk::kernel::dense_gram(problem, true, threads), eqntk::NumericalError);
    const auto g = eqntk::kernel::dense_gram(problem, false, threads);  // the test set never hits (7, 2)
    EXPECT_EQ(g.nngp[static_cast<std::size_t>(3 * 9 + 8)], 11.0);
  }
  const auto [p, q] = parallel::ProcessGrid::near_square(eqntk::testing::size());
  const parallel::ProcessGrid grid(p, q);
  auto options = quiet_options();
  options.threads = 2;
  bool threw = false;
  try {
    (void)parallel::build_gram(grid, problem, 2, options);
  } catch (const eqntk::NumericalError& e) {
    threw = std::string(e.what()).find("pair (7, 2)") != std::string::npos;
  }
  EXPECT_TRUE(all_ranks(threw));
}

TEST(Solver, KernelRegressionInterpolatesTheTrainingTargets) {
  const Fixture& f = fixture();
  const std::int64_t n = 11, k = 2;
  const auto y = centred_one_hot(n, k, 8);
  const auto [p, q] = parallel::ProcessGrid::near_square(eqntk::testing::size());
  const parallel::ProcessGrid grid(p, q);
  const auto g = parallel::build_gram(grid, f.net, f.train, f.test, 2, quiet_options());
  solve::SolveOptions opt;
  opt.times = {std::numeric_limits<double>::infinity()};
  // Predicting the training points themselves: Θ Θ⁻¹ Y = Y up to κ(Θ)·ε.
  const parallel::DistMatrix full = parallel::symmetrize_lower(g.train_ntk);
  const auto rep = solve::predict(g.train_ntk, full, y, k, opt);
  const Eigen::MatrixXd theta = as_matrix(f.serial_train.ntk, n, n);
  Eigen::JacobiSVD<Eigen::MatrixXd> svd(theta);
  const double kappa = svd.singularValues()(0) / svd.singularValues()(n - 1);
  const double residual = max_over_ranks(rel_diff(rep.predictions[0].mean, as_matrix(y, n, k)));
  EXPECT_LT(residual, 100 * kappa * 1e-16) << "kappa " << kappa;
}

TEST(Solver, LongTrainingConvergesToKernelRegression) {
  const Fixture& f = fixture();
  const std::int64_t n = 11, k = 3;
  const auto y = centred_one_hot(n, k, 9);
  const auto [p, q] = parallel::ProcessGrid::near_square(eqntk::testing::size());
  const parallel::ProcessGrid grid(p, q);
  const auto g = parallel::build_gram(grid, f.net, f.train, f.test, 4, quiet_options());
  solve::SolveOptions opt;
  opt.ridge = 1e-2;  // λ_min ≥ 1e-2·tr/N, so e^{−ηλt} underflows at t = 1e6
  opt.times = {1e6, std::numeric_limits<double>::infinity()};
  const auto rep = solve::predict(g.train_ntk, g.test_ntk, y, k, opt);
  const Eigen::MatrixXd inf = as_matrix(rep.predictions[1].mean, 7, k);
  EXPECT_LT(max_over_ranks(rel_diff(rep.predictions[0].mean, inf)), 1e-10);
  EXPECT_LT(max_over_ranks(rel_diff(rep.predictions[0].train_outputs, as_matrix(y, n, k))), 1e-10);
}

TEST(Solver, MeanLossDividesTimeByNK) {
  const Fixture& f = fixture();
  const std::int64_t n = 11, k = 3;
  const auto y = centred_one_hot(n, k, 10);
  const auto [p, q] = parallel::ProcessGrid::near_square(eqntk::testing::size());
  const parallel::ProcessGrid grid(p, q);
  const auto g = parallel::build_gram(grid, f.net, f.train, f.test, 4, quiet_options());
  solve::SolveOptions sum_opt, mean_opt;
  sum_opt.times = {2.0 / static_cast<double>(n * k)};
  mean_opt.times = {2.0};
  mean_opt.loss = solve::Loss::mean;
  const auto a = solve::predict(g.train_ntk, g.test_ntk, y, k, sum_opt);
  const auto b = solve::predict(g.train_ntk, g.test_ntk, y, k, mean_opt);
  EXPECT_LT(max_over_ranks(rel_diff(a.predictions[0].mean, as_matrix(b.predictions[0].mean, 7, k))), 1e-12);
}

TEST(Solver, NonPositiveDefiniteMatrixStopsEveryRankNamingTheLeadingMinor) {
  const std::int64_t n = 5;
  std::vector<double> d(static_cast<std::size_t>(n * n), 0.0), t(static_cast<std::size_t>(2 * n), 0.1);
  for (std::int64_t i = 0; i < n; ++i) d[static_cast<std::size_t>(i * n + i)] = i == 2 ? -1.0 : 1.0;
  const auto [p, q] = parallel::ProcessGrid::near_square(eqntk::testing::size());
  const parallel::ProcessGrid grid(p, q);
  const auto a = parallel::distribute(grid, d, n, n, 2);
  const auto b = parallel::distribute(grid, t, 2, n, 2);
  solve::SolveOptions opt;
  opt.times = {std::numeric_limits<double>::infinity()};
  std::string message;
  try {
    (void)solve::predict(a, b, std::vector<double>(static_cast<std::size_t>(n), 1.0), 1, opt);
  } catch (const eqntk::NumericalError& e) {
    message = e.what();
  }
  EXPECT_TRUE(all_ranks(message.find("leading minor of order 3") != std::string::npos &&
                        message.find("--ridge") != std::string::npos))
      << message;
}

TEST(Checkpoint, RerunWithAnotherGridAndBlockSizeRestoresEveryEntryBitwise) {
  const Fixture& f = fixture();
  const std::string dir = shared_temp_dir();
  auto opt = quiet_options();
  opt.checkpoint_dir = dir;
  opt.fingerprint = 42;
  opt.description = "test data";
  {
    const parallel::ProcessGrid grid(1, eqntk::testing::size());
    const auto g = parallel::build_gram(grid, f.net, f.train, f.test, 3, opt);
    EXPECT_EQ(g.stats.pairs_restored, 0);
    EXPECT_TRUE(all_ranks(matches_serial(g, f)));
  }
  for (const auto& [p, q] : grids()) {
    const parallel::ProcessGrid grid(p, q);
    const auto g = parallel::build_gram(grid, f.net, f.train, f.test, 5, opt);
    EXPECT_EQ(g.stats.pairs_restored, g.stats.pairs_total);
    EXPECT_EQ(std::accumulate(g.stats.pairs_per_rank.begin(), g.stats.pairs_per_rank.end(), std::int64_t{0}), 0);
    EXPECT_TRUE(all_ranks(matches_serial(g, f)));
  }
  MPI_Barrier(MPI_COMM_WORLD);
  if (eqntk::testing::rank() == 0) fs::remove_all(dir);
}

TEST(Checkpoint, RecordCutShortByAKillIsRecomputedAndTheRestReused) {
  const Fixture& f = fixture();
  const std::string dir = shared_temp_dir();
  auto opt = quiet_options();
  opt.checkpoint_dir = dir;
  opt.fingerprint = 43;
  opt.description = "test data";
  const auto [p, q] = parallel::ProcessGrid::near_square(eqntk::testing::size());
  const parallel::ProcessGrid grid(p, q);
  (void)parallel::build_gram(grid, f.net, f.train, f.test, 4, opt);
  MPI_Barrier(MPI_COMM_WORLD);
  // Chop the last 100 bytes off rank 0's log: its last record is now incomplete, as after SIGKILL.
  std::int64_t lost = 0;
  if (eqntk::testing::rank() == 0)
    for (const auto& e : fs::directory_iterator(dir))
      if (e.path().filename().string().find("-r0.log") != std::string::npos) fs::resize_file(e.path(), fs::file_size(e.path()) - 100);
  MPI_Barrier(MPI_COMM_WORLD);
  const auto g = parallel::build_gram(grid, f.net, f.train, f.test, 4, opt);
  lost = g.stats.pairs_total - g.stats.pairs_restored;
  EXPECT_GT(lost, 0);
  EXPECT_LE(lost, 16);  // at most the one 4×4 tile whose record was cut
  EXPECT_TRUE(all_ranks(matches_serial(g, f)));
  MPI_Barrier(MPI_COMM_WORLD);
  if (eqntk::testing::rank() == 0) fs::remove_all(dir);
}

TEST(Checkpoint, CheckpointOfOtherDataIsRefusedOnEveryRank) {
  const Fixture& f = fixture();
  const std::string dir = shared_temp_dir();
  auto opt = quiet_options();
  opt.checkpoint_dir = dir;
  opt.fingerprint = 44;
  opt.description = "first data";
  const parallel::ProcessGrid grid(1, eqntk::testing::size());
  (void)parallel::build_gram(grid, f.net, f.train, f.test, 4, opt);
  opt.fingerprint = 45;
  opt.description = "second data";
  std::string message;
  try {
    (void)parallel::build_gram(grid, f.net, f.train, f.test, 4, opt);
  } catch (const eqntk::InvalidArgument& e) {
    message = e.what();
  }
  EXPECT_TRUE(all_ranks(message.find("other data") != std::string::npos && message.find("first data") != std::string::npos))
      << message;
  MPI_Barrier(MPI_COMM_WORLD);
  if (eqntk::testing::rank() == 0) fs::remove_all(dir);
}

TEST(Interrupt, StopRequestEndsEveryRankWithInterrupted) {
  const Fixture& f = fixture();
  std::atomic<int> stop{eqntk::testing::rank() == 0 ? 15 : 0};  // as if SIGTERM reached rank 0 only
  auto opt = quiet_options();
  opt.stop = &stop;
  const parallel::ProcessGrid grid(1, eqntk::testing::size());
  bool interrupted = false;
  try {
    (void)parallel::build_gram(grid, f.net, f.train, f.test, 2, opt);
  } catch (const parallel::Interrupted&) {
    interrupted = true;
  }
  EXPECT_TRUE(all_ranks(interrupted));
}

TEST(NpyWriter, CollectiveWriteIsGlobalRowMajorForEveryGrid) {
  const std::string dir = shared_temp_dir();
  for (const auto& [p, q] : grids()) {
    const parallel::ProcessGrid grid(p, q);
    const std::int64_t rows = 7, cols = 5;
    std::vector<double> values(static_cast<std::size_t>(rows * cols));
    for (std::int64_t i = 0; i < rows; ++i)
      for (std::int64_t j = 0; j < cols; ++j) values[static_cast<std::size_t>(i * cols + j)] = 1000.0 * static_cast<double>(i) + static_cast<double>(j);
    const auto a = parallel::distribute(grid, values, rows, cols, 2);
    const std::string path = dir + "/m.npy";
    parallel::write_npy_collective(path, a);
    bool ok = true;
    if (eqntk::testing::rank() == 0) {
      const auto arr = eqntk::io::read_npy(path);
      ok = arr.shape == eqntk::io::Shape{rows, cols} && arr.real == values;
    }
    EXPECT_TRUE(all_ranks(ok)) << "grid " << p << "x" << q;
  }
  MPI_Barrier(MPI_COMM_WORLD);
  if (eqntk::testing::rank() == 0) fs::remove_all(dir);
}


TEST(DistributeDataset, EveryRankHoldsExactlyTheImagesOfItsTilesAndTheBuildIsUnchanged) {
  // Rank 0 owns the whole set; after distribute_dataset every rank holds held_images' share, pixel for
  // pixel, and the Gram matrices built from the shares are bitwise those of the serial engine.
  const std::int64_t n = 13, m = 5;
  const data::ImageSet train = random_images(n, kShape, 41), test = random_images(m, kShape, 42);
  const kernel::Network net(kernel::Architecture::parse(kP4), kShape);
  const kernel::GramPair serial_train = kernel::gram_matrices(net, train, nullptr);
  const kernel::GramPair serial_test = kernel::gram_matrices(net, test, &train);
  for (const auto& [p, q] : grids())
    for (const std::int64_t nb : {1, 2, 4}) {
      eqntk::io::Dataset d;
      d.train.images = {kShape, n, {}};
      d.test.images = {kShape, m, {}};
      if (eqntk::testing::rank() == 0) {
        d.train = eqntk::io::labeled(train, {true, std::vector<std::int64_t>(n, 1), {}, 1});
        d.test = eqntk::io::labeled(test, {true, std::vector<std::int64_t>(m, 0), {}, 1});
        d.num_classes = 2;
      }
      parallel::distribute_dataset(d, p, q, nb);
      const int r = eqntk::testing::rank();
      const parallel::HeldImages want = parallel::held_images(n, m, nb, p, q, r / q, r % q);
      bool ok = d.num_classes == 2 && d.train.targets.classes.size() == static_cast<std::size_t>(n) &&
                d.test.source_index.size() == static_cast<std::size_t>(m);
      for (const auto& [set, dense, held] : {std::tuple{&d.train.images, &train, &want.train},
                                             std::tuple{&d.test.images, &test, &want.test}}) {
        ok = ok && set->pixels.size() == held->size() * static_cast<std::size_t>(dense->image_size());
        for (const std::int64_t i : *held)
          ok = ok && std::memcmp(set->view(i).data, dense->view(i).data,
                                 static_cast<std::size_t>(dense->image_size()) * sizeof(double)) == 0;
      }
      EXPECT_TRUE(all_ranks(ok)) << "grid " << p << "x" << q << " nb " << nb;
      parallel::ProcessGrid grid(p, q);
      const parallel::GramMatrices g = parallel::build_gram(grid, net, d.train.images, d.test.images, nb, {});
      EXPECT_TRUE(all_ranks(same_bits(g.train_ntk, serial_train.ntk, true) && same_bits(g.test_ntk, serial_test.ntk, false) &&
                            same_bits(g.train_nngp, serial_train.nngp, true)))
          << "grid " << p << "x" << q << " nb " << nb;
    }
}

}  // namespace
