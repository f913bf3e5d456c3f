#include "eqntk/solve/dynamics.hpp"

#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <string>

#include "eqntk/parallel/dist_ops.hpp"
#include "eqntk/parallel/linalg.hpp"
#include "eqntk/error.hpp"

namespace eqntk::solve {
namespace {

using parallel::DistMatrix;
using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// Cholesky factor of the (ridged) training kernel, with the user's remedy in the message.
void factor_training_kernel(DistMatrix& a) {
  try {
    parallel::cholesky(a);
  } catch (const parallel::NotPositiveDefinite& e) {
    throw NumericalError("the training kernel matrix is not positive definite: its leading minor of order " +
                         std::to_string(e.minor()) + " (of " + std::to_string(e.order()) +
                         ") failed in Cholesky (pdpotrf); it is singular or not PSD to rounding -- retry with a small "
                         "ridge, e.g. --ridge 1e-8");
  }
}

constexpr const char* kOverflowAdvice =
    "the kernel overflowed or the inputs hold extreme values (check their scale, e.g. --standardize true); a ridge "
    "does not help";

// A NaN/Inf entry makes every factorisation fail in ways that look like an indefinite matrix: refused first,
// with its own message (collective: the count is reduced over the ranks).
void require_finite(const DistMatrix& a, bool lower_only, const std::string& what) {
  const parallel::NonFinite bad = parallel::find_non_finite(a, lower_only);
  if (bad.count > 0)
    throw NumericalError("the " + what + " has " + std::to_string(bad.count) + " non-finite (NaN/Inf) entries, the first at (" +
                         std::to_string(bad.row) + ", " + std::to_string(bad.col) + "): " + kOverflowAdvice);
}

// Scales local row i of `a` by f[global row i].
void scale_rows(DistMatrix& a, const std::vector<double>& f) {
  for (std::int64_t lj = 0; lj < a.local_cols(); ++lj)
    for (std::int64_t li = 0; li < a.local_rows(); ++li) a.local(li, lj) *= f[static_cast<std::size_t>(a.global_row(li))];
}
void scale_cols(DistMatrix& a, const std::vector<double>& f) {
  for (std::int64_t lj = 0; lj < a.local_cols(); ++lj) {
    const double s = f[static_cast<std::size_t>(a.global_col(lj))];
    for (std::int64_t li = 0; li < a.local_rows(); ++li) a.local(li, lj) *= s;
  }
}

// Σ(x) = K(x,x) + (A K Aᵀ)_xx − 2 (A K(X,x))_x for every test point x.
std::vector<double> ensemble_variance(const DistMatrix& a, const DistMatrix& k_full, const DistMatrix& k_test,
                                      const std::vector<double>& k_self) {
  DistMatrix ak(a.grid(), a.rows(), a.cols(), a.block_size());
  parallel::gemm('N', 'N', 1.0, a, k_full, 0.0, ak);
  const std::vector<double> quad = parallel::row_dots(ak, a);
  const std::vector<double> cross = parallel::row_dots(a, k_test);
  std::vector<double> var(k_self.size());
  for (std::size_t m = 0; m < var.size(); ++m) var[m] = k_self[m] + quad[m] - 2 * cross[m];
  return var;
}

}  // namespace

double flow_factor(double lambda, double eta, double t) {
  if (std::isinf(t)) return lambda > 0 ? 1.0 / lambda : std::numeric_limits<double>::infinity();
  if (lambda <= 0) return eta * t;
  return -std::expm1(-eta * lambda * t) / lambda;
}

SolveReport predict(const DistMatrix& train, const DistMatrix& test, const std::vector<double>& y, std::int64_t k,
                    const SolveOptions& options, const DistMatrix* k_train, const DistMatrix* k_test,
                    const std::vector<double>* k_self) {
  const std::int64_t n = train.rows();
  const std::int64_t m = test.rows();
  const std::int64_t nb = train.block_size();
  if (train.cols() != n || test.cols() != n || test.block_size() != nb)
    throw InvalidArgument("predict: the train matrix must be NxN and the test matrix MxN with the same block size");
  if (static_cast<std::int64_t>(y.size()) != n * k) throw InvalidArgument("predict: targets must be N x K");
  if (options.times.empty()) throw InvalidArgument("predict: no times given");
  for (const double t : options.times)
    if (!(t >= 0)) throw InvalidArgument("predict: times must be non-negative (or inf)");
  if (options.variance && (k_train == nullptr || k_test == nullptr || k_self == nullptr))
    throw InvalidArgument("predict: the variance needs the NNGP matrices and self-kernels");
  if (n == 0) throw InvalidArgument("predict: no training points");

  require_finite(train, true, "training kernel matrix (N x N)");
  require_finite(test, false, "test kernel matrix (M x N)");
  if (options.variance) {
    require_finite(*k_train, true, "training NNGP matrix (N x N, for the variance)");
    require_finite(*k_test, false, "test NNGP matrix (M x N, for the variance)");
    if (!std::all_of(k_self->begin(), k_self->end(), [](double v) { return std::isfinite(v); }))
      throw NumericalError("the test self-kernels K(x*, x*) contain NaN/Inf: " + std::string(kOverflowAdvice));
  }

  const parallel::ProcessGrid& grid = train.grid();
  SolveReport report;
  report.ridge_added = options.ridge_absolute ? options.ridge : options.ridge * parallel::trace(train) / static_cast<double>(n);
  DistMatrix a = train;
  parallel::add_to_diagonal(a, report.ridge_added);
  const DistMatrix targets = parallel::distribute(grid, y, n, k, nb);
  const double time_scale = options.loss == Loss::mean ? 1.0 / static_cast<double>(n * k) : 1.0;
  DistMatrix k_full = options.variance ? parallel::symmetrize_lower(*k_train) : DistMatrix(grid, 0, 0, 1);

  report.predictions.resize(options.times.size());
  for (std::size_t i = 0; i < options.times.size(); ++i) report.predictions[i].time = options.times[i];
  const bool any_inf = std::any_of(options.times.begin(), options.times.end(), [](double t) { return std::isinf(t); });
  const bool any_finite = std::any_of(options.times.begin(), options.times.end(), [](double t) { return !std::isinf(t); });

  if (any_inf) {
    auto t0 = Clock::now();
    DistMatrix l = a;
    factor_training_kernel(l);
    DistMatrix alpha = targets;
    parallel::cholesky_solve(l, alpha);
    report.seconds_cholesky += seconds_since(t0);
    t0 = Clock::now();
    DistMatrix mu(grid, m, k, nb);
    parallel::gemm('N', 'N', 1.0, test, alpha, 0.0, mu);
    const std::vector<double> mean = parallel::replicate(mu);
    std::vector<double> var;
    if (options.variance) {
      DistMatrix z = parallel::transpose(test);  // N×M
      parallel::cholesky_solve(l, z);            // T⁻¹ T*ᵀ
      var = ensemble_variance(parallel::transpose(z), k_full, *k_test, *k_self);
    }
    report.seconds_gemm += seconds_since(t0);
    for (auto& p : report.predictions)
      if (std::isinf(p.time)) {
        p.mean = mean;
        p.variance = var;
      }
  }

  if (any_finite) {
    auto t0 = Clock::now();
    DistMatrix work = a;
    DistMatrix z(grid, n, n, nb);
    std::vector<double> lambda;
    parallel::eigen_symmetric(work, z, lambda);
    report.seconds_eigen = seconds_since(t0);
    t0 = Clock::now();
    report.lambda_min = lambda.front();
    report.lambda_max = lambda.back();
    if (report.lambda_min < -1e-10 * std::abs(report.lambda_max)) report.clamped_negative = true;
    for (double& l : lambda) l = std::max(l, 0.0);
    DistMatrix vty(grid, n, k, nb);  // Vᵀ Y
    parallel::gemm('T', 'N', 1.0, z, targets, 0.0, vty);
    DistMatrix tv(grid, m, n, nb);  // T* V
    parallel::gemm('N', 'N', 1.0, test, z, 0.0, tv);
    std::vector<double> g(static_cast<std::size_t>(n)), h(static_cast<std::size_t>(n));
    for (auto& p : report.predictions) {
      if (std::isinf(p.time)) continue;
      const double t = p.time * time_scale;
      for (std::int64_t i = 0; i < n; ++i) {
        g[static_cast<std::size_t>(i)] = flow_factor(lambda[static_cast<std::size_t>(i)], options.eta, t);
        h[static_cast<std::size_t>(i)] = -std::expm1(-options.eta * lambda[static_cast<std::size_t>(i)] * t);
      }
      DistMatrix scaled = vty;
      scale_rows(scaled, g);
      DistMatrix mu(grid, m, k, nb);
      parallel::gemm('N', 'N', 1.0, tv, scaled, 0.0, mu);
      p.mean = parallel::replicate(mu);
      if (options.train_outputs) {
        DistMatrix fit_coeff = vty;
        scale_rows(fit_coeff, h);
        DistMatrix fit(grid, n, k, nb);
        parallel::gemm('N', 'N', 1.0, z, fit_coeff, 0.0, fit);
        p.train_outputs = parallel::replicate(fit);
      }
      if (options.variance) {
        DistMatrix tvg = tv;
        scale_cols(tvg, g);
        DistMatrix at(grid, m, n, nb);
        parallel::gemm('N', 'T', 1.0, tvg, z, 0.0, at);
        p.variance = ensemble_variance(at, k_full, *k_test, *k_self);
      }
    }
    report.seconds_gemm += seconds_since(t0);
  }
  return report;
}

}  // namespace eqntk::solve
