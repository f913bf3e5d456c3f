#include "eqntk/solve/dynamics.hpp"

#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <string>

#include "../parallel/scalapack.hpp"
#include "eqntk/parallel/dist_ops.hpp"
#include "eqntk/error.hpp"

namespace eqntk::solve {
namespace {

using parallel::DistMatrix;
using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

DistMatrix transpose(const DistMatrix& a) {
  DistMatrix t(a.grid(), a.cols(), a.rows(), a.block_size());
  if (a.rows() > 0 && a.cols() > 0) {
    const int m = static_cast<int>(a.cols()), n = static_cast<int>(a.rows()), one = 1;
    const double alpha = 1.0, beta = 0.0;
    pdtran_(&m, &n, &alpha, a.data(), &one, &one, a.desc(), &beta, t.data(), &one, &one, t.desc());
  }
  return t;
}

// Cholesky factor (lower) of `a` in place. info > 0 means the leading minor of that order is not
// positive definite; ScaLAPACK returns the same info on every rank, so every rank throws together.
void cholesky(DistMatrix& a) {
  const int n = static_cast<int>(a.rows()), one = 1;
  int info = 0;
  pdpotrf_("L", &n, a.data(), &one, &one, a.desc(), &info);
  if (info > 0)
    throw NumericalError("the training kernel matrix is not positive definite: its leading minor of order " +
                         std::to_string(info) + " (of " + std::to_string(n) +
                         ") failed in Cholesky (pdpotrf); it is singular or not PSD to rounding -- retry with a small "
                         "ridge, e.g. --ridge 1e-8");
  if (info < 0) throw Error("pdpotrf: illegal argument " + std::to_string(-info));
}

// Solves (L Lᵀ) X = B in place for the Cholesky factor L of cholesky().
void cholesky_solve(const DistMatrix& l, DistMatrix& b) {
  if (b.cols() == 0) return;
  const int n = static_cast<int>(l.rows()), nrhs = static_cast<int>(b.cols()), one = 1;
  int info = 0;
  pdpotrs_("L", &n, &nrhs, l.data(), &one, &one, l.desc(), b.data(), &one, &one, b.desc(), &info);
  if (info != 0) throw Error("pdpotrs: illegal argument " + std::to_string(-info));
}

// Eigendecomposition a = Z diag(w) Zᵀ (pdsyevr, MRRR, all eigenpairs, lower triangle; a is destroyed).
void eigen(DistMatrix& a, DistMatrix& z, std::vector<double>& w) {
  const int n = static_cast<int>(a.rows()), one = 1;
  w.assign(static_cast<std::size_t>(n), 0.0);
  int info = 0, lwork = -1, liwork = -1, found = 0, found_vectors = 0;
  const double vl = 0, vu = 0;
  const int il = 0, iu = 0;
  double work_query = 0.0;
  int iwork_query = 0;
  pdsyevr_("V", "A", "L", &n, a.data(), &one, &one, a.desc(), &vl, &vu, &il, &iu, &found, &found_vectors, w.data(),
           z.data(), &one, &one, z.desc(), &work_query, &lwork, &iwork_query, &liwork, &info);
  if (info != 0) throw Error("pdsyevr workspace query failed with info=" + std::to_string(info));
  // Headroom: the query is tight on some versions. LWORK is an int in LP64 ScaLAPACK.
  const double want = work_query * 1.2 + 4096;
  if (!(want < static_cast<double>(std::numeric_limits<int>::max())))
    throw InvalidArgument("the eigensolver (pdsyevr) of the " + std::to_string(n) + "x" + std::to_string(n) +
                          " matrix needs " + std::to_string(static_cast<long long>(want)) +
                          " workspace doubles per rank, more than ScaLAPACK's int allows: use more ranks");
  lwork = static_cast<int>(want);
  liwork = iwork_query + 1024;
  std::vector<double> work(static_cast<std::size_t>(lwork));
  std::vector<int> iwork(static_cast<std::size_t>(liwork));
  pdsyevr_("V", "A", "L", &n, a.data(), &one, &one, a.desc(), &vl, &vu, &il, &iu, &found, &found_vectors, w.data(),
           z.data(), &one, &one, z.desc(), work.data(), &lwork, iwork.data(), &liwork, &info);
  if (info > 0 || found != n || found_vectors != n)
    throw NumericalError("pdsyevr computed " + std::to_string(found_vectors) + " of " + std::to_string(n) +
                         " eigenvectors (info=" + std::to_string(info) +
                         "): the kernel matrix may contain NaN/Inf or be badly scaled");
  if (info < 0) throw Error("pdsyevr: illegal argument " + std::to_string(-info));
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
    cholesky(l);
    DistMatrix alpha = targets;
    cholesky_solve(l, alpha);
    report.seconds_cholesky += seconds_since(t0);
    t0 = Clock::now();
    DistMatrix mu(grid, m, k, nb);
    parallel::gemm('N', 'N', 1.0, test, alpha, 0.0, mu);
    const std::vector<double> mean = parallel::replicate(mu);
    std::vector<double> var;
    if (options.variance) {
      DistMatrix z = transpose(test);  // N×M
      cholesky_solve(l, z);            // T⁻¹ T*ᵀ
      var = ensemble_variance(transpose(z), k_full, *k_test, *k_self);
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
    eigen(work, z, lambda);
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
