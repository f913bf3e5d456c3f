// Dual activations (MATH.md §4), one entry at a time: given the variances q1 = K(x,x), q2 = K(x',x')
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

/// Relative size of q1·q2 − c² below which a pair counts as exactly collinear (|ρ| = 1).
/// At ρ = ±1, θ = atan2(s, c) turns a rounding residual ε·q1q2 in s² into θ ≈ √ε: the ReLU Σ̇ is only
/// Hölder-½ there, so unsnapped self-pairs (every entry (t,t) of K(x,x)) would carry ~1e-8 noise that
/// depends on summation order. Snapping moves genuinely near-collinear entries by at most √(64ε)/(2π).
inline constexpr double kCollinearSnap = 64 * 2.220446049250313e-16;

/// ReLU arc-cosine kernel of degree 1 (Cho & Saul). Uses atan2 so that rounding can never push
/// c/√(q1 q2) past 1; s = c = 0 (zero-variance positions) gives θ = π/2, never NaN.
inline DualValue relu_dual(double q1, double q2, double c) {
  const double det = q1 * q2 - c * c;
  const double s = det > kCollinearSnap * q1 * q2 ? std::sqrt(det) : 0.0;
  const double theta = (s == 0.0 && c == 0.0) ? std::numbers::pi / 2 : std::atan2(s, c);
  return {(s + (std::numbers::pi - theta) * c) / (2 * std::numbers::pi),
          (std::numbers::pi - theta) / (2 * std::numbers::pi)};
}

/// erf dual (Williams 1997): s = √((1+2q1)(1+2q2) − 4c²) ≥ 1 whenever |c| ≤ √(q1 q2).
inline DualValue erf_dual(double q1, double q2, double c) {
  const double s = std::sqrt(std::max((1 + 2 * q1) * (1 + 2 * q2) - 4 * c * c, 0.0));
  return {(2 / std::numbers::pi) * std::atan2(2 * c, s), 4 / (std::numbers::pi * s)};
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
