// Shared pieces of the experiment drivers (tools/experiment_da.cpp, tools/experiment_classify.cpp).
//
// Kernels and solves always come from the library: kernel::gram_matrices for the Gram matrices and
// solve::predict (docs/MATH.md §6, the solver of `eqntk run`) on a one-process grid for
//   μ_t(X*) = T* (T + λI)⁻¹ (I − e^{−η(T+λI)t}) Y,   t = ∞: T* (T + λI)⁻¹ Y (Cholesky),
// with T the train Gram matrix (NTK Θ or NNGP K), T* the test rows, λ an absolute ridge (0 allowed); finite
// times share one eigendecomposition. Subsets use the library's generator (io::seeded_permutation).
//
// Glossary: N train images, M test images, K classes (outputs), η learning rate, t training time.
#pragma once

#include <mpi.h>

#include <Eigen/Dense>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <random>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "eqntk/data/image.hpp"
#include "eqntk/error.hpp"
#include "eqntk/group/image_action.hpp"
#include "eqntk/io/dataset.hpp"
#include "eqntk/kernel/architecture.hpp"
#include "eqntk/kernel/gram.hpp"
#include "eqntk/parallel/dist_ops.hpp"
#include "eqntk/solve/dynamics.hpp"

namespace eqntk::tools {

using Matrix = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

/// Seconds since `start`.
/// main() of an experiment driver: runs `body` and turns what it throws into one line on stderr and an
/// exit code (2 for bad usage or input, 1 otherwise).
template <class Body>
int guarded_main(const char* name, Body&& body) {
  try {
    return body();
  } catch (const InvalidArgument& e) {
    std::fprintf(stderr, "%s: error: %s\n", name, e.what());
    return 2;
  } catch (const std::invalid_argument& e) {
    std::fprintf(stderr, "%s: error: bad number (%s)\n", name, e.what());
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
inline data::ImageSet rotated(const data::ImageSet& x, int r) {
  data::ImageSet out{x.shape, x.count, std::vector<double>(x.pixels.size())};
  for (std::int64_t i = 0; i < x.count; ++i) {
    const data::Image im = group::rot90(x.view(i), r);
    std::copy(im.pixels.begin(), im.pixels.end(), out.pixels.begin() + i * x.image_size());
  }
  return out;
}

/// The images of `x` at rows `rows`, in that order.
inline data::ImageSet select_images(const data::ImageSet& x, const std::vector<std::int64_t>& rows) {
  data::ImageSet out{x.shape, static_cast<std::int64_t>(rows.size()), {}};
  out.pixels.reserve(rows.size() * static_cast<std::size_t>(x.image_size()));
  for (const auto r : rows)
    out.pixels.insert(out.pixels.end(), x.pixels.begin() + r * x.image_size(), x.pixels.begin() + (r + 1) * x.image_size());
  return out;
}

/// Concatenation of image sets of one shape.
inline data::ImageSet concat(const std::vector<const data::ImageSet*>& parts) {
  data::ImageSet out{parts.front()->shape, 0, {}};
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
inline Grams library_grams(const kernel::Network& net, const data::ImageSet& x1, const data::ImageSet* x2,
                           int threads) {
  const kernel::GramPair g = kernel::gram_matrices(net, x1, x2, threads);
  Grams out{Matrix(g.rows, g.cols), Matrix(g.rows, g.cols)};
  std::copy(g.nngp.begin(), g.nngp.end(), out.nngp.data());
  std::copy(g.ntk.begin(), g.ntk.end(), out.ntk.data());
  return out;
}

/// Result of solve(): one M×K prediction per time, and the spectrum of T + λI (finite times only).
struct Solved {
  std::vector<Matrix> mean;  ///< empty for t = ∞ when T + λI is not positive definite and !strict
  bool infinite_failed = false;
  double lambda_min = std::numeric_limits<double>::quiet_NaN();
  double lambda_max = std::numeric_limits<double>::quiet_NaN();
};

namespace detail {

// The library's solver runs on ScaLAPACK: the experiment drivers (one process, no mpiexec) get a singleton
// MPI job on first use, finalised at exit.
inline void ensure_mpi() {
  int initialized = 0;
  MPI_Initialized(&initialized);
  if (initialized != 0) return;
  int provided = 0;
  MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided);
  std::atexit([] {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (finalized == 0) MPI_Finalize();
  });
}

inline std::vector<double> row_major(const Eigen::Ref<const Matrix>& m) {
  return std::vector<double>(m.data(), m.data() + m.size());
}

}  // namespace detail

/// μ_t(X*) for every t in `times` (+∞ allowed), MATH §6 with absolute ridge `ridge` (in the inverse and in the
/// exponent alike), by the library's solver (solve::predict: Cholesky for t = ∞, one eigendecomposition for
/// the finite times) on a 1×1 process grid. train N×N symmetric, test M×N, y N×K.
/// When T + λI is not positive definite (Cholesky fails) and t = ∞ is requested: throws NumericalError
/// if `strict`, otherwise leaves that prediction empty and sets infinite_failed.
inline Solved solve(const Matrix& train, const Matrix& test, const Matrix& y, const std::vector<double>& times,
                    double eta, double ridge, bool strict = true) {
  detail::ensure_mpi();
  const std::int64_t n = train.rows(), m = test.rows(), k = y.cols(), nb = 64;
  const parallel::ProcessGrid grid(1, 1);
  const parallel::DistMatrix t = parallel::distribute(grid, detail::row_major(train), n, n, nb);
  const parallel::DistMatrix ts = parallel::distribute(grid, detail::row_major(test), m, n, nb);
  const std::vector<double> targets = detail::row_major(y);
  Solved out;
  out.mean.resize(times.size());
  for (const bool infinite : {true, false}) {
    solve::SolveOptions opt;
    opt.eta = eta;
    opt.ridge = ridge;
    opt.ridge_absolute = true;
    opt.train_outputs = false;
    std::vector<std::size_t> where;
    for (std::size_t i = 0; i < times.size(); ++i)
      if (std::isinf(times[i]) == infinite) {
        opt.times.push_back(times[i]);
        where.push_back(i);
      }
    if (opt.times.empty()) continue;
    solve::SolveReport report;
    try {
      report = solve::predict(t, ts, targets, k, opt);
    } catch (const NumericalError&) {
      if (strict || !infinite) throw;
      out.infinite_failed = true;
      continue;
    }
    for (std::size_t p = 0; p < where.size(); ++p)
      out.mean[where[p]] = Eigen::Map<const Matrix>(report.predictions[p].mean.data(), m, k);
    if (!infinite) {
      out.lambda_min = report.lambda_min;
      out.lambda_max = report.lambda_max;
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

/// A seeded random permutation of 0..n-1: the library's generator (io::seeded_permutation, the one behind
/// `eqntk run --n-train`), so that a prefix of length k is exactly the subset `eqntk run` draws.
inline std::vector<std::int64_t> seeded_permutation(std::int64_t n, std::uint64_t seed) {
  return io::seeded_permutation(n, seed);
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
