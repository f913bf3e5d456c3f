#include "dual_rows.hpp"

#include <sleef.h>

#include <algorithm>
#include <cmath>
#include <numbers>

#include "eqntk/kernel/dual.hpp"

namespace eqntk::kernel::detail {
namespace {

constexpr int kLanes = 8;

// th[l] = atan2(y[l], x[l]) for 8 lanes with SLEEF's 1-ulp functions, at the widest vector width the
// translation unit is compiled for.
inline void atan2_lanes(const double* y, const double* x, double* th) {
#if defined(__AVX512F__)
  _mm512_storeu_pd(th, Sleef_atan2d8_u10avx512f(_mm512_loadu_pd(y), _mm512_loadu_pd(x)));
#elif defined(__AVX2__)
  for (int l = 0; l < kLanes; l += 4)
    _mm256_storeu_pd(th + l, Sleef_atan2d4_u10avx2(_mm256_loadu_pd(y + l), _mm256_loadu_pd(x + l)));
#else
  for (int l = 0; l < kLanes; l += 2)
    _mm_storeu_pd(th + l, Sleef_atan2d2_u10(_mm_loadu_pd(y + l), _mm_loadu_pd(x + l)));
#endif
}

void relu_slab(double q1, const double* q2v, const double* kin, const double* tin, double* kout, double* tout,
               std::int64_t n) {
  constexpr double pi = std::numbers::pi;
  constexpr double inv2pi = 1.0 / (2.0 * std::numbers::pi);
  for (std::int64_t o = 0; o < n; o += kLanes) {
    const int m = static_cast<int>(std::min<std::int64_t>(kLanes, n - o));
    alignas(64) double c[kLanes], s[kLanes], th[kLanes], t[kLanes];
    for (int l = 0; l < kLanes; ++l) {
      const bool live = l < m;
      c[l] = live ? kin[o + l] : 0.0;
      t[l] = live ? tin[o + l] : 0.0;
      const double q2 = live ? q2v[o + l] : 0.0;
      s[l] = std::sqrt(std::max(q1 * q2 - c[l] * c[l], 0.0));
    }
    atan2_lanes(s, c, th);
    for (int l = 0; l < m; ++l) {
      // Zero-variance positions (s = c = 0): θ = π/2 by convention (MATH.md §4); Σ = 0 there anyway.
      const double theta = (s[l] == 0.0 && c[l] == 0.0) ? pi / 2 : th[l];
      kout[o + l] = (s[l] + (pi - theta) * c[l]) * inv2pi;
      tout[o + l] = t[l] * ((pi - theta) * inv2pi);
    }
  }
}

void erf_slab(double q1, const double* q2v, const double* kin, const double* tin, double* kout, double* tout,
              std::int64_t n) {
  constexpr double two_over_pi = 2.0 / std::numbers::pi;
  constexpr double four_over_pi = 4.0 / std::numbers::pi;
  const double a1 = 1 + 2 * q1;
  for (std::int64_t o = 0; o < n; o += kLanes) {
    const int m = static_cast<int>(std::min<std::int64_t>(kLanes, n - o));
    alignas(64) double c2[kLanes], s[kLanes], th[kLanes], t[kLanes];
    for (int l = 0; l < kLanes; ++l) {
      const bool live = l < m;
      const double c = live ? kin[o + l] : 0.0;
      t[l] = live ? tin[o + l] : 0.0;
      const double q2 = live ? q2v[o + l] : 0.0;
      c2[l] = 2 * c;
      s[l] = std::sqrt(std::max(a1 * (1 + 2 * q2) - c2[l] * c2[l], 0.0));
    }
    atan2_lanes(c2, s, th);
    for (int l = 0; l < m; ++l) {
      kout[o + l] = two_over_pi * th[l];
      tout[o + l] = t[l] * (four_over_pi / s[l]);
    }
  }
}

}  // namespace

void dual_slab(LayerKind kind, double q1, const double* q2v, const double* kin, const double* tin, double* kout,
               double* tout, std::int64_t n) {
  switch (kind) {
    case LayerKind::relu: relu_slab(q1, q2v, kin, tin, kout, tout, n); return;
    case LayerKind::erf: erf_slab(q1, q2v, kin, tin, kout, tout, n); return;
    default:
      if (kout != kin) std::copy(kin, kin + n, kout);
      if (tout != tin) std::copy(tin, tin + n, tout);
      return;
  }
}

}  // namespace eqntk::kernel::detail
