#include "eqntk/so3/signal.hpp"

#include <fftw3.h>

#include <algorithm>
#include <cmath>
#include <numbers>
#include <string>

#include "eqntk/error.hpp"
#include "eqntk/io/array.hpp"
#include "fftw_lock.hpp"

namespace eqntk::so3 {
namespace {

constexpr double kPi = std::numbers::pi;

std::string shape_text(const std::vector<std::int64_t>& shape) {
  std::string s = "(";
  for (std::size_t i = 0; i < shape.size(); ++i) s += (i > 0 ? ", " : "") + std::to_string(shape[i]);
  return s + (shape.size() == 1 ? ",)" : ")");
}

void check_same_shape(const Signal& x, const Signal& x2, const char* what) {
  if (x.band_limit() != x2.band_limit() || x.channels() != x2.channels())
    throw InvalidArgument(std::string(what) + ": signals differ in shape (L=" + std::to_string(x.band_limit()) +
                          ", C=" + std::to_string(x.channels()) + " vs L=" + std::to_string(x2.band_limit()) +
                          ", C=" + std::to_string(x2.channels()) + ")");
}

// The forward transform of §4.1 for one band limit: ring FFTs (FFTW r2c, planned once) and the
// table √((2l+1)/4π) d^l_{m0}(θ_t) w_t.
class DhTransform {
 public:
  explicit DhTransform(int band_limit) : L_(band_limit), nphi_(2 * band_limit - 1) {
    const std::vector<double> thetas = dh_thetas(L_);
    const int nt = 2 * L_;
    // Colatitude weights w_t = (2/L) sin θ_t Σ_{k<L} sin((2k+1)θ_t)/(2k+1), Σ w_t = 2.
    std::vector<double> w(static_cast<std::size_t>(nt));
    for (int t = 0; t < nt; ++t) {
      double sum = 0.0;
      for (int k = 0; k < L_; ++k) sum += std::sin((2 * k + 1) * thetas[static_cast<std::size_t>(t)]) / (2 * k + 1);
      w[static_cast<std::size_t>(t)] = 2.0 / L_ * std::sin(thetas[static_cast<std::size_t>(t)]) * sum;
    }
    // table_[(t·L + m)·L + l] for l ≥ m.
    table_.assign(static_cast<std::size_t>(nt * L_ * L_), 0.0);
    std::vector<double> run(static_cast<std::size_t>(L_));
    for (int t = 0; t < nt; ++t)
      for (int m = 0; m < L_; ++m) {
        wigner_d_run(m, 0, L_, thetas[static_cast<std::size_t>(t)], run.data());
        for (int l = m; l < L_; ++l)
          table_[static_cast<std::size_t>((t * L_ + m) * L_ + l)] =
              w[static_cast<std::size_t>(t)] * std::sqrt((2 * l + 1) / (4 * kPi)) * run[static_cast<std::size_t>(l - m)];
      }
    in_ = fftw_alloc_real(static_cast<std::size_t>(nphi_));
    out_ = fftw_alloc_complex(static_cast<std::size_t>(nphi_ / 2 + 1));
    const std::lock_guard<std::mutex> lock(detail::fftw_planner_mutex());
    plan_ = fftw_plan_dft_r2c_1d(nphi_, in_, out_, FFTW_ESTIMATE);
  }
  ~DhTransform() {
    const std::lock_guard<std::mutex> lock(detail::fftw_planner_mutex());
    fftw_destroy_plan(plan_);
    fftw_free(in_);
    fftw_free(out_);
  }
  DhTransform(const DhTransform&) = delete;
  DhTransform& operator=(const DhTransform&) = delete;

  Signal apply(std::span<const double> samples, int channels, const std::string& name) {
    const int nt = 2 * L_;
    for (std::size_t i = 0; i < samples.size(); ++i)
      if (!std::isfinite(samples[i]))
        throw InvalidArgument(name + ": sample " + std::to_string(i) + " is not finite");
    Signal x(L_, channels);
    std::vector<std::complex<double>> acc(static_cast<std::size_t>(L_ * L_));
    for (int c = 0; c < channels; ++c) {
      std::fill(acc.begin(), acc.end(), std::complex<double>());
      for (int t = 0; t < nt; ++t) {
        std::copy_n(samples.data() + static_cast<std::size_t>((c * nt + t) * nphi_), nphi_, in_);
        fftw_execute_dft_r2c(plan_, in_, out_);
        for (int m = 0; m < L_; ++m) {
          // F_t[m] = (2π/Nφ) Σ_p f e^{−2πimp/Nφ} (FFTW_FORWARD, unnormalised).
          const std::complex<double> f(out_[m][0] * (2 * kPi / nphi_), out_[m][1] * (2 * kPi / nphi_));
          const double* row = table_.data() + static_cast<std::size_t>((t * L_ + m) * L_);
          for (int l = m; l < L_; ++l) acc[static_cast<std::size_t>(l * L_ + m)] += row[l] * f;
        }
      }
      for (int l = 0; l < L_; ++l)
        for (int m = 0; m <= l; ++m) x.set(c, l, m, acc[static_cast<std::size_t>(l * L_ + m)]);
    }
    return x;
  }

 private:
  int L_;
  int nphi_;
  std::vector<double> table_;
  double* in_ = nullptr;
  fftw_complex* out_ = nullptr;
  fftw_plan plan_ = nullptr;
};

}  // namespace

namespace detail {
std::mutex& fftw_planner_mutex() {
  static std::mutex m;
  return m;
}
}  // namespace detail

Signal::Signal(int band_limit, int channels) : band_limit_(band_limit), channels_(channels) {
  if (band_limit < 1 || channels < 1)
    throw InvalidArgument("a spherical signal needs L >= 1 and C >= 1, got L=" + std::to_string(band_limit) +
                          ", C=" + std::to_string(channels));
  coeffs_.assign(static_cast<std::size_t>(channels * per_channel()), std::complex<double>());
}

std::complex<double> Signal::coefficient(int c, int l, int m) const {
  if (m >= 0) return at(c, l, m);
  const std::complex<double> a = std::conj(at(c, l, -m));
  return (m % 2 == 0) ? a : -a;
}

void Signal::set(int c, int l, int m, std::complex<double> value) {
  if (c < 0 || c >= channels_ || l < 0 || l >= band_limit_ || m < 0 || m > l)
    throw InvalidArgument("Signal::set: index (c=" + std::to_string(c) + ", l=" + std::to_string(l) +
                          ", m=" + std::to_string(m) + ") outside 0 <= m <= l < L, c < C");
  coeffs_[static_cast<std::size_t>(index(c, l, m))] = m == 0 ? std::complex<double>(value.real(), 0.0) : value;
}

double Signal::variance() const {
  double sum = 0.0;
  for (int c = 0; c < channels_; ++c)
    for (int l = 0; l < band_limit_; ++l)
      for (int m = 0; m <= l; ++m) sum += (m == 0 ? 1.0 : 2.0) * std::norm(at(c, l, m));
  return sum / (4 * kPi * channels_);
}

bool Signal::is_zero() const {
  return std::all_of(coeffs_.begin(), coeffs_.end(), [](std::complex<double> v) { return v == std::complex<double>(); });
}

Signal rotate(const Signal& x, const Euler& r) {
  Signal y(x.band_limit(), x.channels());
  for (int l = 0; l < x.band_limit(); ++l) {
    const std::vector<double> d = wigner_d_matrix(l, r.beta);
    const int dim = 2 * l + 1;
    for (int c = 0; c < x.channels(); ++c) {
      for (int m = 0; m <= l; ++m) {
        // a'_{lm} = e^{−imα} Σ_n d^l_{mn}(β) e^{−inγ} a_{ln}.
        std::complex<double> sum;
        for (int n = -l; n <= l; ++n)
          sum += d[static_cast<std::size_t>((m + l) * dim + n + l)] * std::polar(1.0, -n * r.gamma) * x.coefficient(c, l, n);
        y.set(c, l, m, std::polar(1.0, -m * r.alpha) * sum);
      }
    }
  }
  return y;
}

double evaluate(const Signal& x, int channel, double theta, double phi) {
  const int L = x.band_limit();
  std::vector<double> run(static_cast<std::size_t>(L));
  double value = 0.0;
  for (int m = 0; m < L; ++m) {
    wigner_d_run(m, 0, L, theta, run.data());
    const std::complex<double> e = std::polar(1.0, m * phi);
    for (int l = m; l < L; ++l) {
      // a_{l,−m} Y_l^{−m} = conj(a_{lm} Y_l^m): the ±m terms add up to 2 Re.
      const double y = std::sqrt((2 * l + 1) / (4 * kPi)) * run[static_cast<std::size_t>(l - m)];
      value += (m == 0 ? 1.0 : 2.0) * (x.at(channel, l, m) * e).real() * y;
    }
  }
  return value;
}

double correlation(const Signal& x, const Signal& x2, const Euler& p) {
  check_same_shape(x, x2, "correlation");
  const int L = x.band_limit(), C = x.channels();
  std::vector<double> run(static_cast<std::size_t>(L));
  double total = 0.0;
  for (int m = -(L - 1); m <= L - 1; ++m) {
    for (int n = 0; n < L; ++n) {
      const int l0 = std::max(std::abs(m), n);
      wigner_d_run(m, n, L, p.beta, run.data());
      std::complex<double> s;
      for (int l = l0; l < L; ++l) {
        std::complex<double> mlmn;
        for (int c = 0; c < C; ++c) mlmn += x.coefficient(c, l, m) * std::conj(x2.at(c, l, n));
        s += mlmn * run[static_cast<std::size_t>(l - l0)];
      }
      // Terms (m, n) and (−m, −n) are complex conjugates: the n > 0 half counts twice.
      total += (n == 0 ? 1.0 : 2.0) * (s * std::polar(1.0, m * p.alpha + n * p.gamma)).real();
    }
  }
  return total / (4 * kPi * C);
}

Signal signal_from_coefficients(std::span<const std::complex<double>> full, int band_limit, int channels,
                                const std::string& name) {
  Signal x(band_limit, channels);
  const int L = band_limit, width = 2 * L - 1;
  if (static_cast<std::int64_t>(full.size()) != std::int64_t{channels} * L * width)
    throw InvalidArgument(name + ": expected " + std::to_string(std::int64_t{channels} * L * width) +
                          " coefficients (C, L, 2L-1), got " + std::to_string(full.size()));
  double scale = 0.0;
  for (std::size_t i = 0; i < full.size(); ++i) {
    if (!std::isfinite(full[i].real()) || !std::isfinite(full[i].imag()))
      throw InvalidArgument(name + ": coefficient " + std::to_string(i) + " is not finite");
    scale = std::max(scale, std::abs(full[i]));
  }
  const double tol = 1e-10 * scale;
  const auto at = [&](int c, int l, int m) { return full[static_cast<std::size_t>((c * L + l) * width + m + L - 1)]; };
  for (int c = 0; c < channels; ++c) {
    for (int l = 0; l < L; ++l) {
      for (int m = -(L - 1); m <= L - 1; ++m) {
        if (std::abs(m) > l && at(c, l, m) != std::complex<double>())
          throw InvalidArgument(name + ": coefficient [c=" + std::to_string(c) + ", l=" + std::to_string(l) +
                                ", m=" + std::to_string(m) + "] must be 0 (|m| > l)");
      }
      for (int m = 0; m <= l; ++m) {
        const std::complex<double> pos = at(c, l, m);
        const std::complex<double> mirrored = (m % 2 == 0 ? 1.0 : -1.0) * std::conj(at(c, l, -m));
        if (std::abs(pos - mirrored) > tol) {
          const std::string where = "c=" + std::to_string(c) + ", l=" + std::to_string(l);
          throw InvalidArgument(name + ": coefficients are not those of a real signal (Hermitian symmetry " +
                                "a_{l,-m} = (-1)^m conj(a_{lm}), Condon-Shortley phase, fails at " + where +
                                ", m=" + std::to_string(m) + (m == 0 ? ": a_{l0} is not real" : "") +
                                "; difference " + std::to_string(std::abs(pos - mirrored)) + ")");
        }
        x.set(c, l, m, 0.5 * (pos + mirrored));
      }
    }
  }
  return x;
}

std::vector<double> dh_thetas(int band_limit) {
  std::vector<double> t(static_cast<std::size_t>(2 * band_limit));
  for (int i = 0; i < 2 * band_limit; ++i) t[static_cast<std::size_t>(i)] = kPi * (2 * i + 1) / (4.0 * band_limit);
  return t;
}

std::vector<double> dh_phis(int band_limit) {
  const int n = 2 * band_limit - 1;
  std::vector<double> p(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) p[static_cast<std::size_t>(i)] = 2 * kPi * i / n;
  return p;
}

Signal signal_from_dh_samples(std::span<const double> samples, int band_limit, int channels, const std::string& name) {
  if (band_limit < 1 || channels < 1)
    throw InvalidArgument(name + ": need L >= 1 and C >= 1, got L=" + std::to_string(band_limit) +
                          ", C=" + std::to_string(channels));
  const std::int64_t want = std::int64_t{channels} * 2 * band_limit * (2 * band_limit - 1);
  if (static_cast<std::int64_t>(samples.size()) != want)
    throw InvalidArgument(name + ": expected " + std::to_string(want) + " samples (C, 2L, 2L-1), got " +
                          std::to_string(samples.size()));
  DhTransform t(band_limit);
  return t.apply(samples, channels, name);
}

SignalSet load_signal_set(const std::filesystem::path& path, SignalFormat format) {
  const io::Array a = io::load_array(path);
  std::string name = "'";  // appended, not operator+: GCC 12 warns falsely (-Wrestrict) on "'" + string
  name += path.string();
  name += '\'';
  SignalSet set;
  set.source = path.string();
  const auto& s = a.shape;
  if (a.is_complex()) {
    if (format == SignalFormat::dh_samples)
      throw InvalidArgument(name + ": DH samples must be real (float64), got complex128");
    if (s.size() != 4 || s[2] < 1 || s[3] != 2 * s[2] - 1)
      throw InvalidArgument(name + ": expected spherical-harmonic coefficients of shape (N, C, L, 2L-1), got " +
                            shape_text(s));
    if (s[0] < 1 || s[1] < 1) throw InvalidArgument(name + ": empty coefficient array of shape " + shape_text(s));
    set.band_limit = static_cast<int>(s[2]);
    set.channels = static_cast<int>(s[1]);
    const std::int64_t per = s[1] * s[2] * s[3];
    for (std::int64_t n = 0; n < s[0]; ++n)
      set.items.push_back(signal_from_coefficients(
          std::span<const std::complex<double>>(a.complex.data() + n * per, static_cast<std::size_t>(per)),
          set.band_limit, set.channels, name + " item " + std::to_string(n)));
    return set;
  }
  if (format == SignalFormat::coefficients)
    throw InvalidArgument(name + ": spherical-harmonic coefficients must be complex128 ('<c16'), got " +
                          std::string(io::npy_descr(a.dtype)));
  if (a.is_integer())
    throw InvalidArgument(name + ": expected float64 samples on the DH grid or complex128 coefficients, got " +
                          std::string(io::npy_descr(a.dtype)));
  if (s.size() != 4 || s[2] < 2 || s[2] % 2 != 0 || s[3] != s[2] - 1) {
    std::string hint;
    if (s.size() == 4 && s[2] >= 1 && s[3] == 2 * s[2] - 1)
      hint = " (this is the shape of coefficients, which must be complex128)";
    throw InvalidArgument(name + ": expected real samples on the Driscoll-Healy grid of shape (N, C, 2L, 2L-1), got " +
                          shape_text(s) + hint);
  }
  if (s[0] < 1 || s[1] < 1) throw InvalidArgument(name + ": empty sample array of shape " + shape_text(s));
  set.band_limit = static_cast<int>(s[2] / 2);
  set.channels = static_cast<int>(s[1]);
  DhTransform t(set.band_limit);
  const std::int64_t per = s[1] * s[2] * s[3];
  for (std::int64_t n = 0; n < s[0]; ++n)
    set.items.push_back(t.apply(std::span<const double>(a.real.data() + n * per, static_cast<std::size_t>(per)),
                                set.channels, name + " item " + std::to_string(n)));
  return set;
}

void check_compatible(const SignalSet& a, const SignalSet& b) {
  if (a.band_limit != b.band_limit)
    throw InvalidArgument("band limit L differs between '" + a.source + "' (L=" + std::to_string(a.band_limit) +
                          ") and '" + b.source + "' (L=" + std::to_string(b.band_limit) + ")");
  if (a.channels != b.channels)
    throw InvalidArgument("channel count differs between '" + a.source + "' (C=" + std::to_string(a.channels) +
                          ") and '" + b.source + "' (C=" + std::to_string(b.channels) + ")");
}

}  // namespace eqntk::so3
