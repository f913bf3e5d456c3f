// Infinite-width training dynamics under gradient flow on the MSE loss (MATH.md §6), on ScaLAPACK.
//
//   μ_t(X*) = Θ* Θ⁻¹ (I − e^{−ηΘt}) Y,   Θ = Θ(X,X) + ridge·I (N×N),  Θ* = Θ(X*,X) (M×N),  Y (N×K).
// t = ∞ is kernel regression by Cholesky (pdpotrf/pdpotrs); finite times share one eigendecomposition
// Θ = V Λ Vᵀ (pdsyevr): μ_t = (Θ* V) diag(g_t(λ)) (Vᵀ Y) with g_t(λ) = −expm1(−ηλt)/λ (→ ηt as λ → 0).
// The NNGP predictor is the same formula with K in place of Θ.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "eqntk/parallel/process_grid.hpp"

namespace eqntk::solve {

enum class Loss {
  sum,  ///< ½ Σ_i ‖f(x_i) − y_i‖² (the paper's convention, default)
  mean  ///< neural-tangents' mean loss: t is replaced by t/(N·K)
};

struct SolveOptions {
  std::vector<double> times;  ///< +infinity for t = ∞
  double eta = 1.0;           ///< learning rate η
  double ridge = 0.0;         ///< ε: adds ε·tr(Θ)/N·I (relative) or ε·I (absolute)
  bool ridge_absolute = false;
  Loss loss = Loss::sum;
  bool variance = false;      ///< also the predictive variance of every test point
  bool train_outputs = true;  ///< f_t(X) for finite t (training fit)
};

/// Results on every rank (replicated). Matrices are row-major.
struct Prediction {
  double time = 0.0;                  ///< as requested (+inf for ∞)
  std::vector<double> mean;           ///< M×K test predictions μ_t(X*)
  std::vector<double> variance;       ///< M, when requested (see predict())
  std::vector<double> train_outputs;  ///< N×K f_t(X), finite t only
};

struct SolveReport {
  std::vector<Prediction> predictions;  ///< in the order of options.times
  double ridge_added = 0.0;             ///< the absolute value added to the diagonal
  double lambda_min = 0.0, lambda_max = 0.0;  ///< eigenvalue range (finite times only)
  bool clamped_negative = false;        ///< λ_min < −1e-10·λ_max: negative eigenvalues were set to 0
  double seconds_cholesky = 0.0, seconds_eigen = 0.0, seconds_gemm = 0.0;
};

/// Solves for every time in options.times. Collective over the grid of `train`.
/// Preconditions: train is N×N with its lower triangle valid (the upper part is ignored), test is M×N,
/// both with the same block size and grid; y is the N×K row-major target matrix, replicated on every rank.
/// For the NTK predictor pass Θ(X,X), Θ(X*,X); for the NNGP predictor pass K(X,X), K(X*,X).
/// Variance (options.variance) needs the NNGP matrices k_train, k_test (same layout) and k_self = K(x*,x*)
/// (M values). With A_t = T* T⁻¹(I − e^{−ηTt}) built from the predictor's own (train, test) = (T, T*):
///   Σ_t(x) = K(x,x) + (A_t K(X,X) A_tᵀ)_xx − 2 (A_t K(X,x))_x      (MATH §6),
/// the NTK-ensemble variance for T = Θ; for T = K it is the variance of the NNGP ensemble trained for time t,
/// which at t = ∞ is the posterior K(x,x) − K(x,X) K⁻¹ K(X,x).
/// Throws NumericalError on every rank when a matrix holds NaN/Inf (checked first, its own message: a ridge
/// does not help), when T + ridge is not positive definite at t = ∞ (naming the
/// leading minor and suggesting --ridge), or when an eigen/factorisation routine fails; InvalidArgument
/// on inconsistent shapes.
[[nodiscard]] SolveReport predict(const parallel::DistMatrix& train, const parallel::DistMatrix& test, const std::vector<double>& y,
                                  std::int64_t k, const SolveOptions& options,
                                  const parallel::DistMatrix* k_train = nullptr, const parallel::DistMatrix* k_test = nullptr,
                                  const std::vector<double>* k_self = nullptr);

/// g_t(λ) = (1 − e^{−ηλt})/λ computed as −expm1(−ηλt)/λ, = ηt at λ = 0; t = ∞ gives 1/λ. λ < 0 is treated as 0.
[[nodiscard]] double flow_factor(double lambda, double eta, double t);

}  // namespace eqntk::solve
