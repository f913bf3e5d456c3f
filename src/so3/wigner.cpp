#include "eqntk/so3/wigner.hpp"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <numbers>
#include <string>

#include "eqntk/error.hpp"

namespace eqntk::so3 {
namespace {

// √binom(2l, k). Up to 2l = 1000 the product form (relative error ~k ulps) fits in a double; beyond
// that lgamma in log space (SO3_MATH.md §6.2: start values underflow there anyway).
double sqrt_binomial(int two_l, int k) {
  if (two_l <= 1000) {
    double b = 1.0;
    const int kk = std::min(k, two_l - k);
    for (int i = 1; i <= kk; ++i) b = b * static_cast<double>(two_l - kk + i) / static_cast<double>(i);
    return std::sqrt(b);
  }
  return std::exp(0.5 * (std::lgamma(two_l + 1.0) - std::lgamma(k + 1.0) - std::lgamma(two_l - k + 1.0)));
}

// c^a s^b with 0^0 = 1.
double power_product(double c, int a, double s, int b) {
  return (a == 0 ? 1.0 : std::pow(c, a)) * (b == 0 ? 1.0 : std::pow(s, b));
}

// d^{l0}_{mn}(β) at l0 = max(|m|, |n|): the closed forms of SO3_MATH.md §4.2.
double start_value(int m, int n, double beta) {
  const int l0 = std::max(std::abs(m), std::abs(n));
  const double c = std::cos(beta / 2), s = std::sin(beta / 2);
  if (m == l0) {
    const double v = sqrt_binomial(2 * l0, l0 + n) * power_product(c, l0 + n, s, l0 - n);
    return (l0 - n) % 2 == 0 ? v : -v;
  }
  if (m == -l0) return sqrt_binomial(2 * l0, l0 + n) * power_product(c, l0 - n, s, l0 + n);
  if (n == l0) return sqrt_binomial(2 * l0, l0 + m) * power_product(c, l0 + m, s, l0 - m);
  const double v = sqrt_binomial(2 * l0, l0 + m) * power_product(c, l0 - m, s, l0 + m);  // n = −l0
  return (l0 + m) % 2 == 0 ? v : -v;
}

}  // namespace

Matrix3 rotation_matrix(const Euler& e) {
  const double ca = std::cos(e.alpha), sa = std::sin(e.alpha);
  const double cb = std::cos(e.beta), sb = std::sin(e.beta);
  const double cg = std::cos(e.gamma), sg = std::sin(e.gamma);
  // R_z(α) R_y(β) R_z(γ), multiplied out.
  return {ca * cb * cg - sa * sg, -ca * cb * sg - sa * cg, ca * sb,
          sa * cb * cg + ca * sg, -sa * cb * sg + ca * cg, sa * sb,
          -sb * cg,               sb * sg,                 cb};
}

Euler euler_angles(const Matrix3& r) {
  Euler e;
  e.beta = std::acos(std::clamp(r[8], -1.0, 1.0));
  const double sb = std::hypot(r[2], r[5]);
  if (sb > 1e-300) {
    e.alpha = std::atan2(r[5], r[2]);
    e.gamma = std::atan2(r[7], -r[6]);
  } else {
    // β = 0: R = R_z(α+γ); β = π: R = R_z(α−γ) R_y(π). Put everything into γ.
    e.alpha = 0.0;
    e.gamma = r[8] > 0 ? std::atan2(r[3], r[0]) : std::atan2(r[3], -r[0]);
  }
  return e;
}

void gauss_legendre(int n, std::vector<double>& x, std::vector<double>& w) {
  if (n < 1) throw InvalidArgument("gauss_legendre: need at least one node, got " + std::to_string(n));
  x.assign(static_cast<std::size_t>(n), 0.0);
  w.assign(static_cast<std::size_t>(n), 0.0);
  // P_n(z) and P_n'(z) by the Bonnet recursion.
  const auto legendre = [n](double z, double& pn, double& dpn) {
    double p0 = 1.0, p1 = z;
    for (int k = 2; k <= n; ++k) {
      const double p2 = ((2 * k - 1) * z * p1 - (k - 1) * p0) / k;
      p0 = p1;
      p1 = p2;
    }
    pn = p1;
    dpn = n * (z * p1 - p0) / (z * z - 1.0);
  };
  for (int i = 0; i < (n + 1) / 2; ++i) {
    // Root i of P_n counted from +1 (Tricomi's initial guess), refined by Newton.
    double z = std::cos(std::numbers::pi * (i + 0.75) / (n + 0.5));
    double pn = 0.0, dpn = 1.0;
    for (int it = 0; it < 100; ++it) {
      legendre(z, pn, dpn);
      const double dz = pn / dpn;
      z -= dz;
      if (std::abs(dz) <= 1e-16 * std::max(1.0, std::abs(z))) break;
    }
    if (n % 2 == 1 && i == n / 2) z = 0.0;
    legendre(z, pn, dpn);
    const double wi = 2.0 / ((1.0 - z * z) * dpn * dpn);
    const auto lo = static_cast<std::size_t>(i), hi = static_cast<std::size_t>(n - 1 - i);
    x[lo] = -z;
    x[hi] = z;
    w[lo] = w[hi] = wi;
  }
}

void wigner_d_run(int m, int n, int band_limit, double beta, double* out) {
  const int l0 = std::max(std::abs(m), std::abs(n));
  if (l0 >= band_limit) return;
  const double cb = std::cos(beta);
  const double mm = static_cast<double>(m) * m, nn = static_cast<double>(n) * n;
  double prev = 0.0;  // d^{l−1}
  double cur = start_value(m, n, beta);
  out[0] = cur;
  for (int l = l0; l + 1 < band_limit; ++l) {
    const double l1 = l + 1.0;
    const double denom = std::sqrt((l1 * l1 - mm) * (l1 * l1 - nn));
    // l = 0 only for m = n = 0, where the mn/(l(l+1)) term and the d^{l−1} term vanish.
    const double shift = l == 0 ? 0.0 : static_cast<double>(m) * n / (static_cast<double>(l) * l1);
    double next = l1 * (2.0 * l + 1.0) / denom * (cb - shift) * cur;
    if (l > l0) next -= l1 * std::sqrt((static_cast<double>(l) * l - mm) * (static_cast<double>(l) * l - nn)) /
                        (l * denom) * prev;
    prev = cur;
    cur = next;
    out[l + 1 - l0] = cur;
  }
}

std::vector<double> wigner_d_matrix(int l, double beta) {
  if (l < 0) throw InvalidArgument("wigner_d_matrix: negative degree " + std::to_string(l));
  const int dim = 2 * l + 1;
  std::vector<double> d(static_cast<std::size_t>(dim * dim));
  std::vector<double> run(static_cast<std::size_t>(l + 1));
  for (int m = -l; m <= l; ++m) {
    for (int n = -l; n <= l; ++n) {
      const int l0 = std::max(std::abs(m), std::abs(n));
      wigner_d_run(m, n, l + 1, beta, run.data());
      d[static_cast<std::size_t>((m + l) * dim + (n + l))] = run[static_cast<std::size_t>(l - l0)];
    }
  }
  return d;
}

WignerTable::WignerTable(int band_limit, std::vector<double> betas) : band_limit_(band_limit), betas_(std::move(betas)) {
  if (band_limit < 1) throw InvalidArgument("WignerTable: band limit must be at least 1, got " + std::to_string(band_limit));
  const int L = band_limit;
  offsets_.resize(static_cast<std::size_t>((2 * L - 1) * L));
  std::int64_t off = 0;
  for (int m = -(L - 1); m <= L - 1; ++m) {
    for (int n = 0; n < L; ++n) {
      offsets_[static_cast<std::size_t>((m + L - 1) * L + n)] = off;
      off += L - std::max(std::abs(m), n);
    }
  }
  run_total_ = off;
  data_.resize(static_cast<std::size_t>(run_total_) * betas_.size());
  for (std::size_t j = 0; j < betas_.size(); ++j)
    for (int m = -(L - 1); m <= L - 1; ++m)
      for (int n = 0; n < L; ++n)
        wigner_d_run(m, n, L, betas_[j], data_.data() + static_cast<std::int64_t>(j) * run_total_ + run_offset(m, n));
}

}  // namespace eqntk::so3
