// Rotations, Gauss–Legendre quadrature and Wigner-d functions (SO3_MATH.md §1, §4.2).
//
// Conventions (SO3_MATH.md §1): R(α,β,γ) = R_z(α) R_y(β) R_z(γ), active, ZYZ;
// D^l_{mn}(α,β,γ) = e^{−imα} d^l_{mn}(β) e^{−inγ} with the real Wigner d^l_{mn}(β) = ⟨lm|e^{−iβJ_y}|ln⟩;
// Y_l^m(θ,φ) = √((2l+1)/4π) d^l_{m0}(θ) e^{imφ} (orthonormal, Condon–Shortley phase).
// Band limit L: degrees 0 ≤ l < L.
//
// Glossary: L band limit, l degree, m, n orders, β colatitude-like Euler angle, l0 = max(|m|,|n|).
#pragma once

#include <array>
#include <cstdint>
#include <vector>

namespace eqntk::so3 {

/// ZYZ Euler angles of an active rotation R(α,β,γ) = R_z(α) R_y(β) R_z(γ).
struct Euler {
  double alpha = 0.0;
  double beta = 0.0;
  double gamma = 0.0;
};

/// A 3×3 rotation matrix, row-major: m[3*i + j] = R_{ij}.
using Matrix3 = std::array<double, 9>;

/// R_z(α) R_y(β) R_z(γ) (SO3_MATH.md §1).
[[nodiscard]] Matrix3 rotation_matrix(const Euler& e);
/// The inverse map: β = arccos R22, α = atan2(R12, R02), γ = atan2(R21, −R20); at β = 0 or π the
/// split between α and γ is arbitrary (α = 0 is returned). Precondition: r is a rotation matrix.
[[nodiscard]] Euler euler_angles(const Matrix3& r);

/// n Gauss–Legendre nodes x (ascending, in (−1, 1)) and weights w (Σ w = 2), by Newton iteration on
/// P_n. Exact for polynomials of degree ≤ 2n − 1. Throws InvalidArgument for n < 1.
void gauss_legendre(int n, std::vector<double>& x, std::vector<double>& w);

/// d^l_{mn}(β) for l = l0..L−1, l0 = max(|m|, |n|), written to out[0 .. L−l0) (nothing if l0 ≥ L).
/// Kostelec–Rockmore three-term recursion in l (SO3_MATH.md §4.2), stable in double to L ≈ 128.
void wigner_d_run(int m, int n, int band_limit, double beta, double* out);

/// The full matrix d^l(β), row-major (2l+1)×(2l+1): entry [(m+l)(2l+1) + (n+l)] = d^l_{mn}(β).
[[nodiscard]] std::vector<double> wigner_d_matrix(int l, double beta);

/// d^l_{mn}(β_j) for 0 ≤ l < L, |m| < L, 0 ≤ n < L (the n ≥ 0 half suffices for real signals) at a set
/// of angles β_j. Layout: for each j, the (m, n) runs one after another (m outer from −(L−1), n inner),
/// each contiguous in l from l0(m, n): value(j, m, n, l) = data()[j·run_total() + run_offset(m, n) + l − l0].
/// Read-only after construction; share it between threads.
class WignerTable {
 public:
  WignerTable() = default;
  /// Throws InvalidArgument for band_limit < 1.
  WignerTable(int band_limit, std::vector<double> betas);

  [[nodiscard]] int band_limit() const { return band_limit_; }
  [[nodiscard]] const std::vector<double>& betas() const { return betas_; }
  /// Σ over (m, n) of the run lengths: Σ_{l<L} (2l+1)(l+1) = h(L) of SO3_MATH.md §4.5.
  [[nodiscard]] std::int64_t run_total() const { return run_total_; }
  [[nodiscard]] std::int64_t run_offset(int m, int n) const {
    return offsets_[static_cast<std::size_t>((m + band_limit_ - 1) * band_limit_ + n)];
  }
  /// Pointer to the run of (m, n) at β_j: d^{l0+k}_{mn}(β_j) at index k.
  [[nodiscard]] const double* run(std::size_t j, int m, int n) const {
    return data_.data() + static_cast<std::int64_t>(j) * run_total_ + run_offset(m, n);
  }

 private:
  int band_limit_ = 0;
  std::vector<double> betas_;
  std::vector<std::int64_t> offsets_;
  std::int64_t run_total_ = 0;
  std::vector<double> data_;
};

}  // namespace eqntk::so3
