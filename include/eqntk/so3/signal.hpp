// Real band-limited signals on the sphere, x: S² → R^C, by their spherical-harmonic coefficients
// (SO3_MATH.md §1, §4.1), and the ways to obtain them from files.
//
// x_c(u) = Σ_{l<L} Σ_{|m|≤l} a^c_{lm} Y_l^m(u) with orthonormal, Condon–Shortley Y_l^m. Real signals have
// a^c_{l,−m} = (−1)^m conj(a^c_{lm}), so only 0 ≤ m ≤ l is stored.
//
// Input formats:
//   (a) coefficients: complex128 .npy of shape (N, C, L, 2L−1), entry [n, c, l, m+L−1] = a^c_{lm} over the
//       full range −(L−1) ≤ m ≤ L−1 (entries with |m| > l must be 0); Hermitian symmetry is checked;
//   (b) samples on the Driscoll–Healy grid: real .npy of shape (N, C, 2L, 2L−1), entry [n, c, t, p] =
//       x_c(θ_t, φ_p), θ_t = π(2t+1)/(4L), φ_p = 2πp/(2L−1) (s2fft "dh"), turned into coefficients by the
//       forward transform of §4.1 (exact for signals band-limited to L).
// load_signal_set() tells them apart by dtype (complex → (a), real → (b)).
#pragma once

#include <complex>
#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

#include "eqntk/so3/wigner.hpp"

namespace eqntk::so3 {

/// One item: C channels band-limited to L.
class Signal {
 public:
  Signal() = default;
  /// All-zero signal. Throws InvalidArgument for L < 1 or C < 1.
  Signal(int band_limit, int channels);

  [[nodiscard]] int band_limit() const { return band_limit_; }
  [[nodiscard]] int channels() const { return channels_; }
  /// Number of stored coefficients per channel, L(L+1)/2.
  [[nodiscard]] std::int64_t per_channel() const { return std::int64_t{band_limit_} * (band_limit_ + 1) / 2; }
  /// Flat index of a^c_{lm}, 0 ≤ m ≤ l < L: c·L(L+1)/2 + l(l+1)/2 + m.
  [[nodiscard]] std::int64_t index(int c, int l, int m) const { return c * per_channel() + l * (l + 1) / 2 + m; }
  [[nodiscard]] std::complex<double> at(int c, int l, int m) const { return coeffs_[static_cast<std::size_t>(index(c, l, m))]; }
  /// a^c_{lm} for any |m| ≤ l, negative m through the reality condition.
  [[nodiscard]] std::complex<double> coefficient(int c, int l, int m) const;
  /// Sets a^c_{lm} for 0 ≤ m ≤ l (the m = 0 coefficient of a real signal is real: its imaginary part is dropped).
  void set(int c, int l, int m, std::complex<double> value);
  [[nodiscard]] const std::vector<std::complex<double>>& coefficients() const { return coeffs_; }

  /// q(x) = ‖x‖² / (4πC) = (1/4πC) Σ_c Σ_l (|a_{l0}|² + 2 Σ_{m>0} |a_{lm}|²) (SO3_MATH.md §3).
  [[nodiscard]] double variance() const;
  /// True when every coefficient is exactly 0.
  [[nodiscard]] bool is_zero() const;

 private:
  int band_limit_ = 0;
  int channels_ = 0;
  std::vector<std::complex<double>> coeffs_;
};

/// The rotated signal Λ_R x, (Λ_R x)(u) = x(R^{-1} u), with a'_{lm} = Σ_n D^l_{mn}(R) a_{ln} (exact).
[[nodiscard]] Signal rotate(const Signal& x, const Euler& r);

/// x_c(u) at the point u(θ, φ) = (sin θ cos φ, sin θ sin φ, cos θ), by direct summation (tests, diagnostics).
[[nodiscard]] double evaluate(const Signal& x, int channel, double theta, double phi);

/// c_{xx'}(R(α,β,γ)) = (1/4πC) Σ_c ∫ x_c(u) x'_c(R^{-1} u) du by the spectral formula
/// (1/4π) Σ_{l,m,n} M^l_{mn} d^l_{mn}(β) e^{i(mα+nγ)}, M^l_{mn} = (1/C) Σ_c a^c_{lm} conj(b^c_{ln}) (SO3_MATH.md §4.3),
/// evaluated directly (no FFT). Throws InvalidArgument if the band limits or channel counts differ.
[[nodiscard]] double correlation(const Signal& x, const Signal& x2, const Euler& p);

/// Builds a signal from full-range coefficients full[c][l][m+L−1] (C·L·(2L−1) values, the layout of format
/// (a)). Throws InvalidArgument naming `name` and the item if a value is not finite, an entry with |m| > l is
/// non-zero, or Hermitian symmetry a_{l,−m} = (−1)^m conj(a_{lm}) fails by more than 1e-10 of the item's
/// largest magnitude. The stored half is the Hermitian average of the two (m = 0: the real part).
[[nodiscard]] Signal signal_from_coefficients(std::span<const std::complex<double>> full, int band_limit, int channels,
                                              const std::string& name);

/// Forward transform of samples on the DH grid (format (b), §4.1): samples[c][t][p], C·2L·(2L−1) values.
/// Exact to rounding for signals band-limited to L. Throws InvalidArgument naming `name` for non-finite values.
[[nodiscard]] Signal signal_from_dh_samples(std::span<const double> samples, int band_limit, int channels,
                                            const std::string& name);

/// The DH sample points of §4.1: θ_t = π(2t+1)/(4L), t < 2L, and φ_p = 2πp/(2L−1), p < 2L−1.
[[nodiscard]] std::vector<double> dh_thetas(int band_limit);
[[nodiscard]] std::vector<double> dh_phis(int band_limit);

/// All items of one file, with the facts every consumer checks.
struct SignalSet {
  int band_limit = 0;
  int channels = 0;
  std::vector<Signal> items;
  std::string source;  // the file, for messages
};

enum class SignalFormat { automatic, coefficients, dh_samples };

/// Reads a .npy file in format (a) or (b) (automatic: by dtype, complex → (a), real → (b)). Not collective.
/// Throws IoError for unreadable files and InvalidArgument (naming the file) for a wrong rank, a shape that
/// does not match the format, an empty set, non-finite values or non-Hermitian coefficients.
[[nodiscard]] SignalSet load_signal_set(const std::filesystem::path& path, SignalFormat format = SignalFormat::automatic);

/// Throws InvalidArgument naming both sources if two sets differ in band limit or channel count.
void check_compatible(const SignalSet& a, const SignalSet& b);

}  // namespace eqntk::so3
