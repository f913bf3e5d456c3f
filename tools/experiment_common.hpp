// Shared pieces of the experiment drivers (tools/experiment_da.cpp, tools/experiment_classify.cpp).
//
// Kernels always come from the library (kernel::gram_matrices); this header only assembles them and
// solves the small dense problems of MATH.md §6 with Eigen (and LAPACK's dsyevd) on one process:
//   μ_t(X*) = T* (T + λI)⁻¹ (I − e^{−η(T+λI)t}) Y,   t = ∞: T* (T + λI)⁻¹ Y (Cholesky),
// with T the train Gram matrix (NTK Θ or NNGP K), T* the test rows, λ an absolute ridge (0 allowed).
// Finite times share one eigendecomposition T + λI = V Λ Vᵀ (LAPACK dsyevd): μ_t = T* V diag(g_t(λ)) Vᵀ Y with
// g_t(λ) = −expm1(−ηλt)/λ (→ ηt as λ → 0; λ < 0 is treated as 0, as eqntk run does).
//
// Glossary: N train images, M test images, K classes (outputs), η learning rate, t training time.
#pragma once

#include <Eigen/Dense>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <random>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "eqntk/error.hpp"
#include "eqntk/kernel/architecture.hpp"
#include "eqntk/kernel/gram.hpp"
#include "eqntk/kernel/image.hpp"

extern "C" void dsyevd_(const char* jobz, const char* uplo, const int* n, double* a, const int* lda, double* w,
                        double* work, const int* lwork, int* iwork, const int* liwork, int* info);

namespace eqntk::tools {

using Matrix = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

/// Seconds since `start`.
/// main() of an experiment driver: runs `body` and turns what it throws into one line on stderr and an
/// exit code (2 for bad usage or input, 1 otherwise).
template <class Body>
int guarded_main(const char* name, const char* usage, Body&& body) {
  try {
    return body();
  } catch (const InvalidArgument& e) {
    std::fprintf(stderr, "%s: error: %s\n", name, e.what());
    return 2;
  } catch (const std::invalid_argument& e) {
    std::fprintf(stderr, "%s: error: bad number (%s)\n%s", name, e.what(), usage);
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: error: %s\n", name, e.what());
    return 1;
  }
}

inline double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

/// The CNN of MATH §5.2 / §10 for a group architecture: `lift` and `gconv` become `conv` and `gpool` becomes
/// `gap`, with the same k, padding, σ_w, σ_b; nonlinearities, avgpool, res blocks and the dense head are kept.
/// Throws InvalidArgument if `gcnn` is not a group network.
inline std::string cnn_counterpart_text(const std::vector<kernel::LayerSpec>& layers) {
  std::string text;
  for (const auto& l : layers) {
    if (!text.empty()) text += ',';
    auto sigma = [](double w, double b) {
      char buf[64];
      std::snprintf(buf, sizeof buf, ":w=%.17g:b=%.17g", w, b);  // round-trips exactly
      return std::string(buf);
    };
    switch (l.kind) {
      case kernel::LayerKind::lift:
      case kernel::LayerKind::gconv:
        text += "conv:k=" + std::to_string(l.k) + ":pad=" + std::string(kernel::to_string(l.pad));
        text += sigma(l.w, l.b);
        break;
      case kernel::LayerKind::gpool: text += "gap"; break;
      case kernel::LayerKind::dense: text += "dense" + sigma(l.w, l.b); break;
      case kernel::LayerKind::avgpool: text += "avgpool:s=" + std::to_string(l.s); break;
      case kernel::LayerKind::res: text += "res(" + cnn_counterpart_text(l.body) + ")"; break;
      default: text += std::string(kernel::to_string(l.kind)); break;
    }
  }
  return text;
}
inline kernel::Architecture cnn_counterpart(const kernel::Architecture& gcnn) {
  if (!gcnn.is_group_network()) throw InvalidArgument("--arch must be a group network (starting with lift)");
  return kernel::Architecture::parse(cnn_counterpart_text(gcnn.layers()));
}

/// True when a nonlinearity follows the readout (MATH §5.2 and §7 then do not hold).
inline bool head_is_nonlinear(const kernel::Architecture& a) {
  bool after_readout = false;
  for (const auto& l : a.layers()) {
    if (kernel::is_readout(l.kind)) after_readout = true;
    else if (after_readout && kernel::is_nonlinearity(l.kind)) return true;
  }
  return false;
}

/// Every image of `x` rotated by r quarter turns (numpy.rot90, MATH §1).
inline kernel::ImageSet rotated(const kernel::ImageSet& x, int r) {
  kernel::ImageSet out{x.shape, x.count, std::vector<double>(x.pixels.size())};
  for (std::int64_t i = 0; i < x.count; ++i) {
    const kernel::Image im = kernel::rot90(x.view(i), r);
    std::copy(im.pixels.begin(), im.pixels.end(), out.pixels.begin() + i * x.image_size());
  }
  return out;
}

/// The images of `x` at rows `rows`, in that order.
inline kernel::ImageSet select_images(const kernel::ImageSet& x, const std::vector<std::int64_t>& rows) {
  kernel::ImageSet out{x.shape, static_cast<std::int64_t>(rows.size()), {}};
  out.pixels.reserve(rows.size() * static_cast<std::size_t>(x.image_size()));
  for (const auto r : rows)
    out.pixels.insert(out.pixels.end(), x.pixels.begin() + r * x.image_size(), x.pixels.begin() + (r + 1) * x.image_size());
  return out;
}

/// Concatenation of image sets of one shape.
inline kernel::ImageSet concat(const std::vector<const kernel::ImageSet*>& parts) {
  kernel::ImageSet out{parts.front()->shape, 0, {}};
  for (const auto* p : parts) {
    if (!(p->shape == out.shape)) throw InvalidArgument("concat: image shapes differ");
    out.count += p->count;
    out.pixels.insert(out.pixels.end(), p->pixels.begin(), p->pixels.end());
  }
  return out;
}

/// NNGP and NTK Gram matrices as Eigen matrices.
struct Grams {
  Matrix nngp, ntk;
  [[nodiscard]] const Matrix& get(bool ntk_kernel) const { return ntk_kernel ? ntk : nngp; }
};

/// kernel::gram_matrices(net, x1, x2, threads), reshaped (x2 == nullptr: symmetric Gram of x1).
inline Grams library_grams(const kernel::Network& net, const kernel::ImageSet& x1, const kernel::ImageSet* x2,
                           int threads) {
  const kernel::GramPair g = kernel::gram_matrices(net, x1, x2, threads);
  Grams out{Matrix(g.rows, g.cols), Matrix(g.rows, g.cols)};
  std::copy(g.nngp.begin(), g.nngp.end(), out.nngp.data());
  std::copy(g.ntk.begin(), g.ntk.end(), out.ntk.data());
  return out;
}

/// g_t(λ) = (1 − e^{−ηλt})/λ, = ηt for λ ≤ 0, 1/λ at t = ∞ (MATH §6).
inline double flow_factor(double lambda, double eta, double t) {
  if (std::isinf(t)) return 1.0 / lambda;
  if (lambda <= 0.0) return eta * t;
  return -std::expm1(-eta * lambda * t) / lambda;
}

/// Eigenvalues (ascending) and eigenvectors (columns) of the symmetric matrix `a` (lower triangle used),
/// by LAPACK's divide-and-conquer dsyevd (several times faster than Eigen's QR iteration at n ≥ 1000).
/// Throws NumericalError when it fails.
inline void symmetric_eigen(Eigen::MatrixXd a, Eigen::VectorXd& values, Eigen::MatrixXd& vectors) {
  if (a.rows() > std::numeric_limits<int>::max() / 2) throw InvalidArgument("matrix too large for LAPACK");
  const int n = static_cast<int>(a.rows());
  values.resize(n);
  int lwork = -1, liwork = -1, info = 0, iwork_query = 0;
  double work_query = 0.0;
  dsyevd_("V", "L", &n, a.data(), &n, values.data(), &work_query, &lwork, &iwork_query, &liwork, &info);
  if (info != 0) throw NumericalError("dsyevd workspace query failed, info = " + std::to_string(info));
  lwork = static_cast<int>(work_query);
  liwork = iwork_query;
  std::vector<double> work(static_cast<std::size_t>(lwork));
  std::vector<int> iwork(static_cast<std::size_t>(liwork));
  dsyevd_("V", "L", &n, a.data(), &n, values.data(), work.data(), &lwork, iwork.data(), &liwork, &info);
  if (info != 0) throw NumericalError("dsyevd failed, info = " + std::to_string(info));
  vectors = std::move(a);
}

/// Result of solve(): one M×K prediction per time, and the spectrum of T + λI (finite times only).
struct Solved {
  std::vector<Matrix> mean;  ///< empty for t = ∞ when T + λI is not positive definite and !strict
  bool infinite_failed = false;
  double lambda_min = std::numeric_limits<double>::quiet_NaN();
  double lambda_max = std::numeric_limits<double>::quiet_NaN();
};

/// μ_t(X*) for every t in `times` (+∞ allowed), MATH §6 with absolute ridge `ridge` (in the
/// inverse and in the exponent alike). train N×N symmetric, test M×N, y N×K.
/// When T + λI is not positive definite (Cholesky fails) and t = ∞ is requested: throws NumericalError
/// if `strict`, otherwise leaves that prediction empty and sets infinite_failed.
inline Solved solve(const Matrix& train, const Matrix& test, const Matrix& y, const std::vector<double>& times,
                    double eta, double ridge, bool strict = true) {
  const Eigen::Index n = train.rows();
  Eigen::MatrixXd t = train;  // column-major copy for the factorisations
  t.diagonal().array() += ridge;
  Solved out;
  out.mean.resize(times.size());
  bool finite = false;
  for (std::size_t i = 0; i < times.size(); ++i) {
    if (!std::isinf(times[i])) {
      finite = true;
      continue;
    }
    Eigen::LLT<Eigen::MatrixXd> llt(t);
    if (llt.info() != Eigen::Success && !strict) {
      out.infinite_failed = true;
      continue;
    }
    if (llt.info() != Eigen::Success)
      throw NumericalError("kernel matrix (" + std::to_string(n) + "x" + std::to_string(n) +
                           ") + ridge is not positive definite: use a larger --ridge or finite times only");
    out.mean[i] = test * llt.solve(Eigen::MatrixXd(y));
  }
  if (finite) {
    Eigen::VectorXd lam;
    Eigen::MatrixXd v;
    symmetric_eigen(t, lam, v);
    out.lambda_min = lam(0);
    out.lambda_max = lam(n - 1);
    const Eigen::MatrixXd tv = test * v;                // M×N
    const Eigen::MatrixXd vy = v.transpose() * y;       // N×K
    for (std::size_t i = 0; i < times.size(); ++i) {
      if (std::isinf(times[i])) continue;
      Eigen::VectorXd g(n);
      for (Eigen::Index k = 0; k < n; ++k) g(k) = flow_factor(lam(k), eta, times[i]);
      out.mean[i] = tv * (g.asDiagonal() * vy);
    }
  }
  return out;
}

/// Row-major N×K targets: one-hot minus 1/K (MATH §6).
inline Matrix one_hot_targets(const std::vector<std::int64_t>& labels, std::int64_t k) {
  Matrix y = Matrix::Constant(static_cast<Eigen::Index>(labels.size()), k, -1.0 / static_cast<double>(k));
  for (std::size_t i = 0; i < labels.size(); ++i) y(static_cast<Eigen::Index>(i), labels[i]) += 1.0;
  return y;
}

/// Fraction of rows whose argmax equals the label.
inline double accuracy(const Matrix& pred, const std::vector<std::int64_t>& labels) {
  std::int64_t hit = 0;
  for (Eigen::Index i = 0; i < pred.rows(); ++i) {
    Eigen::Index arg = 0;
    pred.row(i).maxCoeff(&arg);
    hit += arg == labels[static_cast<std::size_t>(i)] ? 1 : 0;
  }
  return static_cast<double>(hit) / static_cast<double>(pred.rows());
}

/// A seeded random permutation of 0..n-1 (Fisher–Yates on std::mt19937_64, whose stream is fixed
/// by the C++ standard; the modulo bias is below 2^-40 for n < 2^24).
inline std::vector<std::int64_t> seeded_permutation(std::int64_t n, std::uint64_t seed) {
  std::vector<std::int64_t> p(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) p[static_cast<std::size_t>(i)] = i;
  std::mt19937_64 rng(seed);
  for (std::int64_t i = n - 1; i > 0; --i) std::swap(p[static_cast<std::size_t>(i)], p[rng() % static_cast<std::uint64_t>(i + 1)]);
  return p;
}

/// Comma-separated list of reals; "inf" is +∞.
inline std::vector<double> parse_times(std::string_view text) {
  std::vector<double> out;
  std::size_t start = 0;
  while (start <= text.size()) {
    const std::size_t end = std::min(text.find(',', start), text.size());
    const std::string item(text.substr(start, end - start));
    if (item == "inf" || item == "Inf" || item == "infinity") out.push_back(std::numeric_limits<double>::infinity());
    else {
      std::size_t used = 0;
      double v = 0.0;
      try {
        v = std::stod(item, &used);
      } catch (const std::exception&) {
        used = 0;
      }
      if (used != item.size() || item.empty() || !(v > 0.0) || !std::isfinite(v))
        throw InvalidArgument("bad time '" + item + "' (expected positive numbers or inf)");
      out.push_back(v);
    }
    start = end + 1;
  }
  return out;
}

/// Comma-separated positive integers.
inline std::vector<std::int64_t> parse_sizes(std::string_view text) {
  std::vector<std::int64_t> out;
  for (const double v : parse_times(text)) {
    if (std::isinf(v) || v != std::floor(v)) throw InvalidArgument("bad size in '" + std::string(text) + "'");
    out.push_back(static_cast<std::int64_t>(v));
  }
  return out;
}

inline std::string time_text(double t) {
  if (std::isinf(t)) return "inf";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", t);
  return buf;
}

}  // namespace eqntk::tools
