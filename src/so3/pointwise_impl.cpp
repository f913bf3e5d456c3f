// The pointwise recursion of pointwise.hpp. Compiled once per instruction-set level with EQNTK_SO3_ISA_NS
// naming the namespace (isa_baseline, isa_avx2, isa_avx512) and the matching -march flags.
#include <sleef.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numbers>

#include "eqntk/kernel/dual.hpp"
#include "pointwise.hpp"

#ifndef EQNTK_SO3_ISA_NS
#error "compile with -DEQNTK_SO3_ISA_NS=isa_<level>"
#endif

namespace eqntk::so3::detail::EQNTK_SO3_ISA_NS {
namespace {

constexpr int kLanes = 8;
constexpr std::int64_t kTile = 256;  // points per tile: K and Θ of a tile stay in L1 through all layers

// th[l] = atan2(y[l], x[l]) for 8 lanes at the widest vector width of this translation unit.
inline void atan2_lanes(const double* y, const double* x, double* th) {
#if defined(__AVX512F__)
  _mm512_storeu_pd(th, Sleef_atan2d8_u35avx512f(_mm512_loadu_pd(y), _mm512_loadu_pd(x)));
#elif defined(__AVX2__)
  for (int l = 0; l < kLanes; l += 4)
    _mm256_storeu_pd(th + l, Sleef_atan2d4_u35avx2(_mm256_loadu_pd(y + l), _mm256_loadu_pd(x + l)));
#else
  for (int l = 0; l < kLanes; l += 2) _mm_storeu_pd(th + l, Sleef_atan2d2_u35(_mm_loadu_pd(y + l), _mm_loadu_pd(x + l)));
#endif
}

// ReLU dual in place on n points (n a multiple of kLanes; padding lanes hold k = t = 0).
void relu_tile(double q1, double q2, double* __restrict k, double* __restrict t, std::int64_t n) {
  constexpr double pi = std::numbers::pi, inv2pi = 1.0 / (2.0 * std::numbers::pi);
  const double qq = q1 * q2, snap = kernel::kCollinearSnap * qq;
  for (std::int64_t o = 0; o < n; o += kLanes) {
    alignas(64) double s[kLanes], th[kLanes];
    for (int l = 0; l < kLanes; ++l) {
      const double c = k[o + l], det = qq - c * c;
      s[l] = std::sqrt(det > snap ? det : 0.0);
    }
    atan2_lanes(s, k + o, th);
    for (int l = 0; l < kLanes; ++l) {
      const double c = k[o + l];
      // Zero variance (s = c = 0): θ = π/2 by convention; the NNGP is 0 there anyway. (Bitwise & keeps
      // the loop branch-free so that it vectorises.)
      const bool zero = (s[l] == 0.0) & (c == 0.0);
      const double theta = zero ? pi / 2 : th[l];
      k[o + l] = (s[l] + (pi - theta) * c) * inv2pi;
      t[o + l] *= (pi - theta) * inv2pi;
    }
  }
}

// erf dual in place on n points (n a multiple of kLanes).
void erf_tile(double q1, double q2, double* __restrict k, double* __restrict t, std::int64_t n) {
  constexpr double two_over_pi = 2.0 / std::numbers::pi, four_over_pi = 4.0 / std::numbers::pi;
  const double a = (1 + 2 * q1) * (1 + 2 * q2);
  for (std::int64_t o = 0; o < n; o += kLanes) {
    alignas(64) double c2[kLanes], s[kLanes], th[kLanes];
    for (int l = 0; l < kLanes; ++l) {
      c2[l] = 2 * k[o + l];
      s[l] = std::sqrt(std::max(a - c2[l] * c2[l], 0.0));
    }
    atan2_lanes(c2, s, th);
    for (int l = 0; l < kLanes; ++l) {
      k[o + l] = two_over_pi * th[l];
      t[o + l] *= four_over_pi / s[l];
    }
  }
}

// Applies ops [first, nops) to a tile of `padded` points in place. A lift sets K_1 = σ1² c + b1², Θ_1 = K_1.
void apply_ops(const PointOp* ops, int first, int nops, double* __restrict k, double* __restrict t,
               std::int64_t padded) {
  for (int i = first; i < nops; ++i) {
    const PointOp& op = ops[i];
    switch (op.type) {
      case PointOp::Type::lift:
        for (std::int64_t p = 0; p < padded; ++p) {
          k[p] = op.w2 * k[p] + op.b2;
          t[p] = k[p];
        }
        break;
      case PointOp::Type::conv:
        for (std::int64_t p = 0; p < padded; ++p) {
          k[p] = op.w2 * k[p] + op.b2;
          t[p] = k[p] + op.w2 * t[p];
        }
        break;
      case PointOp::Type::relu: relu_tile(op.q1, op.q2, k, t, padded); break;
      case PointOp::Type::erf: erf_tile(op.q1, op.q2, k, t, padded); break;
      case PointOp::Type::id: break;
    }
  }
}

// Adds the first m points of a tile to the sums: lane-wise partial sums (padding lanes zeroed), then the
// lanes in order — a fixed, vectorisable order.
void add_tile(double* __restrict k, double* __restrict t, std::int64_t m, std::int64_t padded, double& sum_k,
              double& sum_t) {
  for (std::int64_t p = m; p < padded; ++p) k[p] = t[p] = 0.0;
  double sk[kLanes] = {}, st[kLanes] = {};
  for (std::int64_t o = 0; o < padded; o += kLanes)
    for (int l = 0; l < kLanes; ++l) {
      sk[l] += k[o + l];
      st[l] += t[o + l];
    }
  for (int l = 0; l < kLanes; ++l) {
    sum_k += sk[l];
    sum_t += st[l];
  }
}

}  // namespace

void chain(const PointOp* ops, int nops, const double* c, std::int64_t n, double& sum_k, double& sum_t) {
  alignas(64) double k[kTile], t[kTile];
  for (std::int64_t start = 0; start < n; start += kTile) {
    const std::int64_t m = std::min(kTile, n - start);
    const std::int64_t padded = (m + kLanes - 1) / kLanes * kLanes;
    for (std::int64_t p = 0; p < m; ++p) k[p] = ops[0].w2 * c[start + p] + ops[0].b2;
    for (std::int64_t p = m; p < padded; ++p) k[p] = 0.0;
    for (std::int64_t p = 0; p < padded; ++p) t[p] = k[p];
    apply_ops(ops, 1, nops, k, t, padded);  // (only ops[0] is the lift)
    add_tile(k, t, m, padded, sum_k, sum_t);
  }
}

void grid_chain(const PointOp* ops, int nops, double* kg, double* tg, std::int64_t n, double& sum_k, double& sum_t) {
  alignas(64) double k[kTile], t[kTile];
  for (std::int64_t start = 0; start < n; start += kTile) {
    const std::int64_t m = std::min(kTile, n - start);
    const std::int64_t padded = (m + kLanes - 1) / kLanes * kLanes;
    for (std::int64_t p = 0; p < m; ++p) k[p] = kg[start + p];
    for (std::int64_t p = m; p < padded; ++p) k[p] = 0.0;
    if (ops[0].type == PointOp::Type::lift) {
      for (std::int64_t p = 0; p < padded; ++p) t[p] = 0.0;
    } else {
      for (std::int64_t p = 0; p < m; ++p) t[p] = tg[start + p];
      for (std::int64_t p = m; p < padded; ++p) t[p] = 0.0;
    }
    apply_ops(ops, 0, nops, k, t, padded);
    for (std::int64_t p = 0; p < m; ++p) {
      kg[start + p] = k[p];
      tg[start + p] = t[p];
    }
    add_tile(k, t, m, padded, sum_k, sum_t);
  }
}

}  // namespace eqntk::so3::detail::EQNTK_SO3_ISA_NS
