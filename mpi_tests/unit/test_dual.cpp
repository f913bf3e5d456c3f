// The scalar dual activations (kernel/dual.hpp) against closed forms, and the stated error bound of Σ̇ at
// collinear entries under Precision::mixed (covariances stored in float).
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <numbers>
#include <random>

#include "eqntk/kernel/dual.hpp"

namespace {

using eqntk::kernel::relu_dual;

// Exactly collinear in float64 (c = √(q1 q2) with q1 = q2 = q): Σ̇ = ½ and Σ = q/2 after the snap.
TEST(ReluDual, CollinearFloat64EntriesAreExact) {
  for (const double q : {1e-3, 0.37, 1.0, 5.5, 1234.0}) {
    const auto d = relu_dual(q, q, q);
    EXPECT_EQ(d.sigma_dot, 0.5) << q;
    EXPECT_NEAR(d.sigma, q / 2, 1e-15 * q) << q;
  }
}

// Under mixed precision the covariance is the float64 value rounded to float: at collinear entries Σ̇ is low
// by at most kMixedCollinearSigmaDotBound = √(2u)/(2π) (u = 2⁻²⁴), independently derived here from
// θ = acos(1 − u) ≈ √(2u). The bound is also nearly attained (within a factor 2), so it is not vacuous,
// and Σ stays within 1e-10 relative.
TEST(ReluDual, MixedPrecisionCollinearErrorIsWithinTheStatedBound) {
  const double u = std::ldexp(1.0, -24);
  const double derived = std::acos(1 - u) / (2 * std::numbers::pi);
  EXPECT_LE(derived, eqntk::kernel::kMixedCollinearSigmaDotBound);
  std::mt19937_64 rng(7);
  std::uniform_real_distribution<double> log_q(-6.0, 6.0);
  double worst = 0.0, worst_sigma = 0.0;
  for (int s = 0; s < 20000; ++s) {
    const double q = std::exp(log_q(rng));
    const double c = static_cast<double>(static_cast<float>(q));  // float storage of c = q
    const auto d = relu_dual(q, q, c);
    worst = std::max(worst, std::abs(d.sigma_dot - 0.5));
    worst_sigma = std::max(worst_sigma, std::abs(d.sigma - q / 2) / (q / 2));
  }
  EXPECT_LE(worst, eqntk::kernel::kMixedCollinearSigmaDotBound);
  EXPECT_GT(worst, 0.5 * eqntk::kernel::kMixedCollinearSigmaDotBound);
  EXPECT_LT(worst_sigma, 1e-7);  // dominated by the float rounding of c itself (u = 6e-8), not by θ
}

}  // namespace
