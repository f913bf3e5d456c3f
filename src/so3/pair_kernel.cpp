#include "eqntk/so3/pair_kernel.hpp"

#include <algorithm>
#include <cmath>
#include <complex>
#include <numbers>
#include <string>

#include "eqntk/error.hpp"
#include "eqntk/kernel/dual.hpp"
#include "fft_plan.hpp"
#include "pointwise.hpp"

namespace eqntk::so3 {
namespace {

using detail::PointOp;

// The ops of stages [first, end) with the variances of both sides bound.
std::vector<PointOp> bind_ops(const Network& net, std::size_t first, std::size_t end, const double* var1,
                              const double* var2) {
  std::vector<PointOp> ops;
  for (std::size_t s = first; s < end; ++s) {
    const Stage& st = net.stages()[s];
    PointOp op;
    switch (st.spec.kind) {
      case LayerKind::s2lift: op.type = PointOp::Type::lift; break;
      case LayerKind::so3conv: op.type = PointOp::Type::conv; break;
      case LayerKind::relu: op.type = PointOp::Type::relu; break;
      case LayerKind::erf: op.type = PointOp::Type::erf; break;
      default: op.type = PointOp::Type::id; break;
    }
    op.w2 = st.w2;
    op.b2 = st.b2;
    op.q1 = var1[s];
    op.q2 = var2[s];
    ops.push_back(op);
  }
  return ops;
}

std::vector<PointOp> bind_ops(const Network& net, const SelfChain& sx, const SelfChain& sx2) {
  return bind_ops(net, 0, net.pool_stage(), sx.var.data(), sx2.var.data());
}

// The scalar variance recursion over stages [first, end), entering with q (before the first stage's linear
// layer): var[s] = q at each nonlinearity s.
void fill_variances(const Network& net, std::size_t first, std::size_t end, double q, std::vector<double>& var) {
  for (std::size_t s = first; s < end; ++s) {
    const Stage& st = net.stages()[s];
    if (st.nonlinearity()) {
      var[s] = q;
      q = kernel::dual_variance(activation(st.spec.kind), q);
    } else {
      q = st.w2 * q + st.b2;
    }
  }
}

// Stages [first, end) between band-limited so3convs: `first` is the lift (band_limit unused) or a so3conv
// with band limit `band_limit`; `end` the next such so3conv or so3pool.
struct Segment {
  std::size_t first = 0, end = 0;
  int band_limit = 0;
};

std::vector<Segment> segments_of(const Network& net) {
  std::vector<Segment> out{{0, net.pool_stage(), 0}};
  for (std::size_t s = 1; s < net.pool_stage(); ++s) {
    const LayerSpec& spec = net.stages()[s].spec;
    if (spec.kind == LayerKind::so3conv && spec.band_limit > 0) {
      out.back().end = s;
      out.push_back({s, net.pool_stage(), spec.band_limit});
    }
  }
  return out;
}

}  // namespace

struct PairKernel::Workspace {
  std::vector<std::complex<double>> m;  // cross-spectrum in the Wigner table's run layout, times 1/(4πC)
  std::vector<std::complex<double>> a;  // x: a^c_{lm} at [(l² + m + l)·C + c], all |m| ≤ l
  std::vector<std::complex<double>> b;  // x2: conj(b^c_{ln}) at [(l(l+1)/2 + n)·C + c], 0 ≤ n ≤ l
  detail::ChainFn chain = nullptr;
  fftw_complex* spectrum = nullptr;     // N × (N/2+1)
  double* grid = nullptr;               // N × N
  // Networks with so3conv band limits only (SO3_MATH.md §4.7).
  std::vector<Segment> segments;
  detail::GridChainFn grid_chain = nullptr;
  double* theta = nullptr;  // N × N: Θ (or Ṡ⊙Θ) next to K in `grid`
  // Spectra of (K, Θ) entering the current segment and of (S, Ṡ⊙Θ) accumulating for the next one, in the
  // Wigner table's run layout.
  std::vector<std::complex<double>> k_in, t_in, k_next, t_next;
  Workspace() = default;
  Workspace(const Workspace&) = delete;
  Workspace& operator=(const Workspace&) = delete;
  ~Workspace() {
    fftw_free(spectrum);
    fftw_free(grid);
    fftw_free(theta);
  }
};

std::vector<double> layer_variances(const Network& net, double q) {
  std::vector<double> var(net.stages().size(), 0.0);
  fill_variances(net, 0, net.pool_stage(), q, var);
  return var;
}

double low_pass_variance(const Signal& x, int band_limit) {
  if (band_limit >= x.band_limit()) return x.variance();
  double s = 0.0;
  for (int c = 0; c < x.channels(); ++c)
    for (int l = 0; l < band_limit; ++l)
      for (int m = 0; m <= l; ++m) s += (m == 0 ? 1.0 : 2.0) * std::norm(x.at(c, l, m));
  return s / (4 * std::numbers::pi * x.channels());
}

// The dense head of the planar engines (kernel/head.hpp), on this network's stages after so3pool.
std::vector<kernel::HeadLayer> head_layers(const Network& net) {
  std::vector<kernel::HeadLayer> head;
  const auto& stages = net.stages();
  for (std::size_t s = net.pool_stage() + 1; s < stages.size(); ++s) {
    const Stage& st = stages[s];
    head.push_back({s, st.spec.kind == LayerKind::dense, st.w2, st.b2,
                    st.nonlinearity() ? activation(st.spec.kind) : kernel::LayerKind::id});
  }
  return head;
}

KernelValue apply_head(const Network& net, KernelValue v, std::span<const double> head_var,
                       std::span<const double> head_var2) {
  return kernel::apply_head(head_layers(net), v, head_var.data(), head_var2.data(), nullptr);
}

KernelValue self_head(const Network& net, KernelValue v, std::vector<double>& head_var) {
  head_var.assign(net.stages().size(), 0.0);
  return kernel::apply_head(head_layers(net), v, nullptr, nullptr, head_var.data());
}

PairKernel::PairKernel(Network net) : net_(std::move(net)), ws_(std::make_unique<Workspace>()) {
  const Grid& g = net_.grid();
  const auto n = static_cast<std::size_t>(g.n());
  ws_->m.resize(static_cast<std::size_t>(g.table().run_total()));
  const auto L = static_cast<std::size_t>(net_.band_limit()), C = static_cast<std::size_t>(net_.channels());
  ws_->a.resize(L * L * C);
  ws_->b.resize(L * (L + 1) / 2 * C);
  ws_->chain = detail::chain_for_cpu();
  ws_->spectrum = fftw_alloc_complex(n * (n / 2 + 1));
  ws_->grid = fftw_alloc_real(n * n);
  if (ws_->spectrum == nullptr || ws_->grid == nullptr) throw std::bad_alloc();
  if (net_.conv_band_limits()) {
    ws_->segments = segments_of(net_);
    ws_->grid_chain = detail::grid_chain_for_cpu();
    ws_->theta = fftw_alloc_real(n * n);
    if (ws_->theta == nullptr) throw std::bad_alloc();
    const auto runs = static_cast<std::size_t>(g.table().run_total());
    for (auto* v : {&ws_->k_in, &ws_->t_in, &ws_->k_next, &ws_->t_next}) v->resize(runs);
  }
}

PairKernel::~PairKernel() = default;
PairKernel::PairKernel(PairKernel&&) noexcept = default;
PairKernel& PairKernel::operator=(PairKernel&&) noexcept = default;

void PairKernel::check_input(const Signal& x) const {
  if (x.band_limit() != net_.band_limit() || x.channels() != net_.channels())
    throw InvalidArgument("SO(3) pair kernel: the network expects signals with L=" + std::to_string(net_.band_limit()) +
                          ", C=" + std::to_string(net_.channels()) + ", got L=" + std::to_string(x.band_limit()) +
                          ", C=" + std::to_string(x.channels()));
}

void PairKernel::cross_spectrum(const Signal& x, const Signal& x2) {
  const WignerTable& table = net_.grid().table();
  const int L = net_.lift_band_limit(), C = net_.channels();  // s2lift:L=L1 keeps l < L1 only
  const double scale = 1.0 / (4 * std::numbers::pi * C);
  // Channel-innermost copies (a with negative m filled in by the reality condition, b conjugated), so
  // that every M^l_{mn} below is one contiguous dot product over c.
  std::complex<double>* a = ws_->a.data();
  std::complex<double>* b = ws_->b.data();
  for (int l = 0; l < L; ++l)
    for (int c = 0; c < C; ++c) {
      for (int m = -l; m <= l; ++m) a[(l * l + m + l) * C + c] = x.coefficient(c, l, m);
      for (int n = 0; n <= l; ++n) b[(l * (l + 1) / 2 + n) * C + c] = std::conj(x2.at(c, l, n));
    }
  for (int m = -(L - 1); m <= L - 1; ++m) {
    for (int n = 0; n < L; ++n) {
      const int l0 = std::max(std::abs(m), n);
      std::complex<double>* run = ws_->m.data() + table.run_offset(m, n);
      for (int l = l0; l < L; ++l) {
        const std::complex<double>* al = a + (l * l + m + l) * C;
        const std::complex<double>* bl = b + (l * (l + 1) / 2 + n) * C;
        double re = 0.0, im = 0.0;
        for (int c = 0; c < C; ++c) {
          re += al[c].real() * bl[c].real() - al[c].imag() * bl[c].imag();
          im += al[c].real() * bl[c].imag() + al[c].imag() * bl[c].real();
        }
        run[l - l0] = {scale * re, scale * im};
      }
    }
  }
}

void PairKernel::synthesize(const Grid& g, std::size_t j) {
  synthesize_from(g, ws_->m.data(), net_.lift_band_limit(), j, ws_->grid);
}

void PairKernel::synthesize_from(const Grid& g, const std::complex<double>* spectrum, int band_limit, std::size_t j,
                                 double* out) {
  const WignerTable& table = g.table();
  const int L = band_limit, N = g.n(), width = N / 2 + 1;
  fftw_complex* f = ws_->spectrum;
  std::fill_n(&f[0][0], 2 * static_cast<std::size_t>(N) * static_cast<std::size_t>(width), 0.0);
  for (int m = -(L - 1); m <= L - 1; ++m) {
    const int row = m < 0 ? m + N : m;  // N ≥ 2L−1: distinct rows, no wrap-around
    for (int n = 0; n < L; ++n) {
      const int len = L - std::max(std::abs(m), n);
      const double* d = table.run(j, m, n);
      const std::complex<double>* mm = spectrum + table.run_offset(m, n);
      double re = 0.0, im = 0.0;
      for (int k = 0; k < len; ++k) {
        re += mm[k].real() * d[k];
        im += mm[k].imag() * d[k];
      }
      f[row * width + n][0] = re;
      f[row * width + n][1] = im;
    }
  }
  // S_j(−m,−n) = conj S_j(m,n): the n ≥ 0 half with every m is exactly the c2r input; FFTW_BACKWARD is
  // the unnormalised e^{+i(mα+nγ)} sum.
  g.plan().execute(ws_->spectrum, out);
}

void PairKernel::analyse(double* f, int band_limit, std::size_t j, std::complex<double>* spectrum) {
  const Grid& g = net_.grid();
  const WignerTable& table = g.table();
  const int L = band_limit, N = g.n(), width = N / 2 + 1;
  g.plan().forward(f, ws_->spectrum);  // out-of-place r2c preserves its input
  // f̂^l_{mn} = (2l+1)/(8π²) ∫ f D^l_{mn} dQ with dQ → w_j (2π/N)² per point: w_j/(2N²) here, (2l+1) later.
  const double scale = g.weights()[j] / (2.0 * static_cast<double>(N) * static_cast<double>(N));
  const fftw_complex* F = ws_->spectrum;
  for (int m = -(L - 1); m <= L - 1; ++m) {
    const int row = m < 0 ? m + N : m;
    for (int n = 0; n < L; ++n) {
      const int len = L - std::max(std::abs(m), n);
      const double* d = table.run(j, m, n);
      std::complex<double>* out = spectrum + table.run_offset(m, n);
      const double re = scale * F[row * width + n][0], im = scale * F[row * width + n][1];
      for (int k = 0; k < len; ++k) out[k] += std::complex<double>(re * d[k], im * d[k]);
    }
  }
}

void PairKernel::correlation_slice(const Signal& x, const Signal& x2, int j, std::span<double> out) {
  check_input(x);
  check_input(x2);
  const int N = net_.grid().n();
  if (j < 0 || j >= net_.grid().n_beta())
    throw InvalidArgument("correlation_slice: slice " + std::to_string(j) + " outside [0, " +
                          std::to_string(net_.grid().n_beta()) + ")");
  if (out.size() != static_cast<std::size_t>(N) * static_cast<std::size_t>(N))
    throw InvalidArgument("correlation_slice: output needs N^2 = " + std::to_string(N * N) + " values");
  cross_spectrum(x, x2);
  synthesize(net_.grid(), static_cast<std::size_t>(j));
  std::copy_n(ws_->grid, out.size(), out.data());
}

KernelValue PairKernel::pooled(const Signal& x, const SelfChain& sx, const Signal& x2, const SelfChain& sx2) {
  return pooled_on(x, sx, x2, sx2, true);
}

KernelValue PairKernel::pooled_on(const Signal& x, const SelfChain& sx, const Signal& x2, const SelfChain& sx2,
                                  bool coarse) {
  check_input(x);
  check_input(x2);
  const std::vector<PointOp> ops = bind_ops(net_, sx, sx2);
  const int nops = static_cast<int>(ops.size());
  KernelValue out;
  if (x.is_zero() || x2.is_zero()) {
    // c ≡ 0: the integrand is constant and its average exact (band-limit projections keep constants).
    const double zero = 0.0;
    ws_->chain(ops.data(), nops, &zero, 1, out.nngp, out.ntk);
    last_n_ = net_.grid().n();
    return out;
  }
  last_n_ = net_.grid().n();
  if (net_.conv_band_limits()) return banded(x, x2, sx.var.data(), sx2.var.data(), nullptr);
  cross_spectrum(x, x2);
  if (const Grid* cg = net_.coarse_grid(); coarse && cg != nullptr) {
    // The coarse grid, with the peak ratio of c taken on the way (file comment); kept when it is at most
    // the threshold, otherwise the fine grid below.
    double peak = 0.0;
    const KernelValue v = pooled_grid(*cg, ops, &peak);
    const int lift = net_.lift_band_limit();
    if (peak <= net_.coarse_peak() * std::sqrt(low_pass_variance(x, lift) * low_pass_variance(x2, lift))) {
      last_n_ = cg->n();
      return v;
    }
  }
  return pooled_grid(net_.grid(), ops, nullptr);
}

KernelValue PairKernel::pooled_grid(const Grid& g, const std::vector<detail::PointOp>& ops, double* peak) {
  const int nops = static_cast<int>(ops.size());
  const std::int64_t points = std::int64_t{g.n()} * g.n();
  double acc_k = 0.0, acc_t = 0.0;
  for (std::size_t j = 0; j < static_cast<std::size_t>(g.n_beta()); ++j) {
    synthesize(g, j);
    if (peak != nullptr)
      for (std::int64_t p = 0; p < points; ++p) *peak = std::max(*peak, std::abs(ws_->grid[p]));
    double sk = 0.0, st = 0.0;
    ws_->chain(ops.data(), nops, ws_->grid, points, sk, st);
    acc_k += g.weights()[j] * sk;
    acc_t += g.weights()[j] * st;
  }
  // ⟨f⟩ = (1/2N²) Σ_j w_j Σ_{a,g} f.
  const double norm = 1.0 / (2.0 * static_cast<double>(points));
  return {acc_k * norm, acc_t * norm};
}

KernelValue PairKernel::banded(const Signal& x, const Signal& x2, const double* var1, const double* var2,
                               std::vector<double>* record) {
  Workspace& ws = *ws_;
  const Grid& g = net_.grid();
  const WignerTable& table = g.table();
  const std::int64_t points = std::int64_t{g.n()} * g.n();
  if (record != nullptr) var1 = var2 = record->data();
  cross_spectrum(x, x2);
  // The self pair's variance entering the segment's first (linear) stage: q(x) low-passed by the lift, then
  // the projected auto-kernel at the identity.
  double q = record != nullptr ? low_pass_variance(x, net_.lift_band_limit()) : 0.0;
  double acc_k = 0.0, acc_t = 0.0;
  for (std::size_t s = 0; s < ws.segments.size(); ++s) {
    const Segment& seg = ws.segments[s];
    const bool last = s + 1 == ws.segments.size();
    const int next_band = last ? 0 : ws.segments[s + 1].band_limit;
    if (s > 0) {
      std::swap(ws.k_in, ws.k_next);
      std::swap(ws.t_in, ws.t_next);
      // The (2l+1)/(8π²) of the analysis (the 1/(8π²) is in analyse()'s scale together with (2π)²).
      for (int m = -(seg.band_limit - 1); m < seg.band_limit; ++m)
        for (int n = 0; n < seg.band_limit; ++n) {
          const int l0 = std::max(std::abs(m), n);
          const auto off = static_cast<std::size_t>(table.run_offset(m, n));
          for (int l = l0; l < seg.band_limit; ++l) {
            ws.k_in[off + static_cast<std::size_t>(l - l0)] *= 2.0 * l + 1.0;
            ws.t_in[off + static_cast<std::size_t>(l - l0)] *= 2.0 * l + 1.0;
          }
        }
      if (record != nullptr) {
        // (P S^{xx})(e) = Σ_l Σ_m Ŝ^l_{mm} (d^l(0) = 1); Ŝ^l_{−m,−m} = conj Ŝ^l_{mm}.
        q = 0.0;
        for (int m = 0; m < seg.band_limit; ++m) {
          const std::complex<double>* run = ws.k_in.data() + table.run_offset(m, m);
          for (int l = m; l < seg.band_limit; ++l) q += (m == 0 ? 1.0 : 2.0) * run[l - m].real();
        }
      }
    }
    if (record != nullptr) fill_variances(net_, seg.first, seg.end, q, *record);
    const std::vector<PointOp> ops = bind_ops(net_, seg.first, seg.end, var1, var2);
    if (!last) {
      std::fill(ws.k_next.begin(), ws.k_next.end(), std::complex<double>());
      std::fill(ws.t_next.begin(), ws.t_next.end(), std::complex<double>());
    }
    acc_k = acc_t = 0.0;
    for (std::size_t j = 0; j < static_cast<std::size_t>(g.n_beta()); ++j) {
      if (s == 0) {
        synthesize(g, j);  // c (the lift op sets Θ_1 = K_1)
      } else {
        synthesize_from(g, ws.k_in.data(), seg.band_limit, j, ws.grid);
        synthesize_from(g, ws.t_in.data(), seg.band_limit, j, ws.theta);
      }
      double sk = 0.0, st = 0.0;
      ws.grid_chain(ops.data(), static_cast<int>(ops.size()), ws.grid, ws.theta, points, sk, st);
      if (last) {
        acc_k += g.weights()[j] * sk;
        acc_t += g.weights()[j] * st;
      } else {
        analyse(ws.grid, next_band, j, ws.k_next.data());
        analyse(ws.theta, next_band, j, ws.t_next.data());
      }
    }
  }
  const double norm = 1.0 / (2.0 * static_cast<double>(points));
  return {acc_k * norm, acc_t * norm};
}

SelfChain PairKernel::self_chain(const Signal& x) {
  check_input(x);
  SelfChain sc;
  if (net_.conv_band_limits() && !x.is_zero()) {
    // The variances after a band-limited so3conv need the auto-kernel on the grid: the pair (x, x).
    sc.var.assign(net_.stages().size(), 0.0);
    sc.pooled = banded(x, x, nullptr, nullptr, &sc.var);
  } else {
    // (A zero signal has constant auto-kernels, which every projection keeps: the scalar recursion is exact.)
    sc.var = layer_variances(net_, low_pass_variance(x, net_.lift_band_limit()));
    sc.pooled = pooled_on(x, sc, x, sc, false);  // self pairs: always the fine grid
  }
  sc.self = self_head(net_, sc.pooled, sc.head_var);
  return sc;
}

KernelValue PairKernel::evaluate(const Signal& x, const SelfChain& sx, const Signal& x2, const SelfChain& sx2) {
  return apply_head(net_, pooled(x, sx, x2, sx2), sx.head_var, sx2.head_var);
}

}  // namespace eqntk::so3
