// Dual activations (docs/MATH.md §4), one entry at a time: given the variances q1 = K(x,x), q2 = K(x',x')
// and the covariance c = K(x,x') of a centred Gaussian pair (u, v), return
//   sigma     = E[φ(u) φ(v)]     (the post-activation NNGP),
//   sigma_dot = E[φ'(u) φ'(v)]   (the factor applied to the NTK: Θ ← Σ̇ ⊙ Θ).
// These scalar versions serve the dense head, the self-kernel diagonals and the reference engine; the
// fast engine has vectorised row versions that must agree with these to rounding.
#pragma once

#include <algorithm>
#include <cmath>
#include <numbers>

#include "eqntk/kernel/architecture.hpp"

namespace eqntk::kernel {

struct DualValue {
  double sigma = 0.0;
  double sigma_dot = 0.0;
};

/// Size of 1 − ρ² (ρ = c/√(q1 q2)) below which a pair counts as exactly collinear (|ρ| = 1).
/// At ρ = ±1 the ReLU Σ̇ = (π − θ)/(2π), θ = acos ρ, is only Hölder-½: a rounding residual ε in 1 − ρ²
/// becomes θ ≈ √ε, so unsnapped self-pairs (every entry (t,t) of K(x,x)) would carry ~1e-8 noise that
/// depends on summation order. Snapping moves genuinely near-collinear entries by at most √(64ε)/(2π).
inline constexpr double kCollinearSnap = 64 * 2.220446049250313e-16;

/// Precision::mixed stores the covariance planes in float: c arrives with relative error up to
/// u = 2⁻²⁴ ≈ 6.0e-8 while q1, q2 stay float64, so at a collinear entry (ρ = 1 exactly in float64) the
/// computed ρ is 1 − δ with |δ| ≤ u, 1 − ρ² ≈ 2δ is far above kCollinearSnap, and θ = acos ρ ≈ √(2δ). Σ̇ =
/// (π − θ)/(2π) there is therefore low by at most √(2u)/(2π) ≈ 5.5e-5 (1.1e-4 relative to Σ̇ = ½) per ReLU
/// layer, while Σ carries only the float rounding of c itself (≤ u relative: the θ terms cancel to O(θ³)). Not snapped on purpose: a float-sized snap would move
/// genuinely near-collinear entries by up to √(128u)/(2π) ≈ 4.4e-4 instead. Tested in
/// mpi_tests/unit/test_dual.cpp (the bound holds and is attained to within a factor 2).
inline constexpr double kMixedCollinearSigmaDotBound = 5.5e-5;  // ≥ √(2·2⁻²⁴)/(2π) = 5.49e-5

/// ReLU arc-cosine kernel of degree 1 (Cho & Saul) in terms of the correlation ρ = c/√(q1 q2), clamped to
/// [−1, 1] so that rounding can never leave the domain of acos:
///   Σ = √(q1 q2)·(√(1−ρ²) + (π − θ) ρ)/(2π),  Σ̇ = (π − θ)/(2π),  θ = acos ρ.
/// A zero variance (q1 = 0 or q2 = 0) gives ρ = 0, θ = π/2, Σ = 0: never NaN.
inline DualValue relu_dual(double q1, double q2, double c) {
  constexpr double pi = std::numbers::pi;
  const double sq1 = std::sqrt(q1), sq2 = std::sqrt(q2);
  const double r1 = sq1 > 0 ? 1 / sq1 : 0.0, r2 = sq2 > 0 ? 1 / sq2 : 0.0;
  const double rho = std::clamp(c * (r1 * r2), -1.0, 1.0);  // grouped so that swapping x, x2 is exact
  const double om = (1 - rho) * (1 + rho);
  const bool collinear = om <= kCollinearSnap;
  const double theta = collinear ? (rho > 0 ? 0.0 : pi) : std::acos(rho);
  const double sin_theta = collinear ? 0.0 : std::sqrt(om);
  const double rest = (pi - theta) / (2 * pi);
  return {sq1 * sq2 * (sin_theta / (2 * pi) + rest * rho), rest};
}

/// erf dual (Williams 1997) with z = 2c/√((1+2q1)(1+2q2)) ∈ (−1, 1):
///   Σ = (2/π) asin z,  Σ̇ = (4/π)/√((1+2q1)(1+2q2)(1 − z²)).
inline DualValue erf_dual(double q1, double q2, double c) {
  const double b1 = 1 / std::sqrt(1 + 2 * q1), b2 = 1 / std::sqrt(1 + 2 * q2);
  const double z = std::clamp(2 * c * (b1 * b2), -1.0, 1.0);
  const double om = std::max((1 - z) * (1 + z), 1e-300);
  return {(2 / std::numbers::pi) * std::asin(z), (4 / std::numbers::pi) * (b1 * b2) / std::sqrt(om)};
}

/// Dispatch on the layer kind (relu, erf, id).
inline DualValue dual(LayerKind kind, double q1, double q2, double c) {
  switch (kind) {
    case LayerKind::relu: return relu_dual(q1, q2, c);
    case LayerKind::erf: return erf_dual(q1, q2, c);
    default: return {c, 1.0};
  }
}

/// Post-activation variance E[φ(u)²] for u ~ N(0, q): the diagonal of the dual at q1 = q2 = c = q.
inline double dual_variance(LayerKind kind, double q) {
  switch (kind) {
    case LayerKind::relu: return q / 2;
    case LayerKind::erf: return (2 / std::numbers::pi) * std::asin(2 * q / (1 + 2 * q));
    default: return q;
  }
}

}  // namespace eqntk::kernel
