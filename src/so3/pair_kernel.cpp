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

std::vector<PointOp> bind_ops(const Network& net, const SelfChain& sx, const SelfChain& sx2) {
  std::vector<PointOp> ops;
  for (std::size_t s = 0; s < net.pool_stage(); ++s) {
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
    op.q1 = sx.var[s];
    op.q2 = sx2.var[s];
    ops.push_back(op);
  }
  return ops;
}

}  // namespace

struct PairKernel::Workspace {
  std::vector<std::complex<double>> m;  // cross-spectrum in the Wigner table's run layout, times 1/(4πC)
  std::vector<std::complex<double>> a;  // x: a^c_{lm} at [(l² + m + l)·C + c], all |m| ≤ l
  std::vector<std::complex<double>> b;  // x2: conj(b^c_{ln}) at [(l(l+1)/2 + n)·C + c], 0 ≤ n ≤ l
  detail::ChainFn chain = nullptr;
  fftw_complex* spectrum = nullptr;     // N × (N/2+1)
  double* grid = nullptr;               // N × N
  Workspace() = default;
  Workspace(const Workspace&) = delete;
  Workspace& operator=(const Workspace&) = delete;
  ~Workspace() {
    fftw_free(spectrum);
    fftw_free(grid);
  }
};

std::vector<double> layer_variances(const Network& net, double q) {
  std::vector<double> var(net.stages().size(), 0.0);
  for (std::size_t s = 0; s < net.pool_stage(); ++s) {
    const Stage& st = net.stages()[s];
    if (st.nonlinearity()) {
      var[s] = q;
      q = kernel::dual_variance(activation(st.spec.kind), q);
    } else {
      q = st.w2 * q + st.b2;
    }
  }
  return var;
}

KernelValue apply_head(const Network& net, KernelValue v, std::span<const double> head_var,
                       std::span<const double> head_var2) {
  const auto& stages = net.stages();
  for (std::size_t s = net.pool_stage() + 1; s < stages.size(); ++s) {
    const Stage& st = stages[s];
    if (st.spec.kind == LayerKind::dense) {
      // K' = σ_w² K + σ_b²;  Θ' = K' + σ_w² Θ.
      const double kn = st.w2 * v.nngp + st.b2;
      v = {kn, kn + st.w2 * v.ntk};
    } else if (st.nonlinearity()) {
      const kernel::DualValue d = kernel::dual(activation(st.spec.kind), head_var[s], head_var2[s], v.nngp);
      v = {d.sigma, d.sigma_dot * v.ntk};
    }
  }
  return v;
}

KernelValue self_head(const Network& net, KernelValue v, std::vector<double>& head_var) {
  const auto& stages = net.stages();
  head_var.assign(stages.size(), 0.0);
  for (std::size_t s = net.pool_stage() + 1; s < stages.size(); ++s) {
    const Stage& st = stages[s];
    if (st.spec.kind == LayerKind::dense) {
      const double kn = st.w2 * v.nngp + st.b2;
      v = {kn, kn + st.w2 * v.ntk};
    } else if (st.nonlinearity()) {
      head_var[s] = v.nngp;
      const kernel::DualValue d = kernel::dual(activation(st.spec.kind), v.nngp, v.nngp, v.nngp);
      v = {d.sigma, d.sigma_dot * v.ntk};
    }
  }
  return v;
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
  const int L = net_.band_limit(), C = net_.channels();
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

void PairKernel::synthesize(std::size_t j) {
  const Grid& g = net_.grid();
  const WignerTable& table = g.table();
  const int L = net_.band_limit(), N = g.n(), width = N / 2 + 1;
  fftw_complex* f = ws_->spectrum;
  std::fill_n(&f[0][0], 2 * static_cast<std::size_t>(N) * static_cast<std::size_t>(width), 0.0);
  for (int m = -(L - 1); m <= L - 1; ++m) {
    const int row = m < 0 ? m + N : m;  // N ≥ 2L−1: distinct rows, no wrap-around
    for (int n = 0; n < L; ++n) {
      const int len = L - std::max(std::abs(m), n);
      const double* d = table.run(j, m, n);
      const std::complex<double>* mm = ws_->m.data() + table.run_offset(m, n);
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
  g.plan().execute(ws_->spectrum, ws_->grid);
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
  synthesize(static_cast<std::size_t>(j));
  std::copy_n(ws_->grid, out.size(), out.data());
}

KernelValue PairKernel::pooled(const Signal& x, const SelfChain& sx, const Signal& x2, const SelfChain& sx2) {
  check_input(x);
  check_input(x2);
  const std::vector<PointOp> ops = bind_ops(net_, sx, sx2);
  const int nops = static_cast<int>(ops.size());
  KernelValue out;
  if (x.is_zero() || x2.is_zero()) {
    // c ≡ 0: the integrand is constant and its average exact.
    const double zero = 0.0;
    ws_->chain(ops.data(), nops, &zero, 1, out.nngp, out.ntk);
    return out;
  }
  const Grid& g = net_.grid();
  const std::int64_t points = std::int64_t{g.n()} * g.n();
  cross_spectrum(x, x2);
  double acc_k = 0.0, acc_t = 0.0;
  for (std::size_t j = 0; j < static_cast<std::size_t>(g.n_beta()); ++j) {
    synthesize(j);
    double sk = 0.0, st = 0.0;
    ws_->chain(ops.data(), nops, ws_->grid, points, sk, st);
    acc_k += g.weights()[j] * sk;
    acc_t += g.weights()[j] * st;
  }
  // ⟨f⟩ = (1/2N²) Σ_j w_j Σ_{a,g} f.
  const double norm = 1.0 / (2.0 * static_cast<double>(points));
  return {acc_k * norm, acc_t * norm};
}

SelfChain PairKernel::self_chain(const Signal& x) {
  check_input(x);
  SelfChain sc;
  sc.var = layer_variances(net_, x.variance());
  sc.pooled = pooled(x, sc, x, sc);
  sc.self = self_head(net_, sc.pooled, sc.head_var);
  return sc;
}

KernelValue PairKernel::evaluate(const Signal& x, const SelfChain& sx, const Signal& x2, const SelfChain& sx2) {
  return apply_head(net_, pooled(x, sx, x2, sx2), sx.head_var, sx2.head_var);
}

}  // namespace eqntk::so3
