#include "eqntk/kernel/pair_kernel.hpp"

#include <algorithm>
#include <cmath>
#include <utility>

#include "dual_rows.hpp"
#include "eqntk/error.hpp"
#include "eqntk/kernel/box.hpp"
#include "eqntk/kernel/dual.hpp"

namespace eqntk::kernel {
namespace {

// K⁰(p, p') = (1/C) Σ_c x_c(p) x2_c(p') as a block [i][j][i'][j'].
void input_kernel(const ImageView& x, const ImageView& x2, double* out) {
  const std::int64_t n = x.height * x.width;
  const double inv_c = 1.0 / static_cast<double>(x.channels);
  std::fill(out, out + n * n, 0.0);
  for (std::int64_t c = 0; c < x.channels; ++c) {
    const double* xc = x.data + c * n;
    const double* x2c = x2.data + c * n;
    for (std::int64_t p = 0; p < n; ++p) {
      const double v = xc[p] * inv_c;
      double* row = out + p * n;
      for (std::int64_t p2 = 0; p2 < n; ++p2) row[p2] += v * x2c[p2];
    }
  }
}

// Sum of all entries, slab by slab (one partial sum per (i, j)) to keep rounding near √n·ε.
double block_sum(const double* a, std::int64_t slabs, std::int64_t slab) {
  double total = 0.0;
  for (std::int64_t s = 0; s < slabs; ++s) {
    double part = 0.0;
    const double* row = a + s * slab;
    for (std::int64_t o = 0; o < slab; ++o) part += row[o];
    total += part;
  }
  return total;
}

// Two separable passes of the window sum of one layer for block Δ: out = scale·S_Δ(in) + bias (+ add).
// Returns the output dims.
Dims4 window_sum(const double* in, const Dims4& din, double* tmp, double* out, int delta, const Stage& st,
                 double bias, const double* add) {
  const auto lines = box_lines(delta);
  const double scale = st.w2 / static_cast<double>(st.q * st.q);
  box_pass(in, din, tmp, lines[0], st.p, st.spec.pad);
  const Dims4 dmid = box_output_dims(din, lines[0], st.p, st.spec.pad);
  box_pass(tmp, dmid, out, lines[1], st.p, st.spec.pad, scale, bias, add);
  return box_output_dims(dmid, lines[1], st.p, st.spec.pad);
}

}  // namespace

PairKernel::PairKernel(Network net) : net_(std::move(net)) {
  if (!net_.diagonal_only()) {
    const std::int64_t n = net_.max_pixels();
    for (auto& b : buf_) b.resize(static_cast<std::size_t>(n * n));
  }
}

void PairKernel::check_input(const ImageView& x) const {
  const InputShape want = net_.input_shape();
  if (!(x.shape() == want))
    throw InvalidArgument("image shape " + std::to_string(x.channels) + "x" + std::to_string(x.height) + "x" +
                          std::to_string(x.width) + " (CxHxW) does not match the network input " +
                          std::to_string(want.channels) + "x" + std::to_string(want.height) + "x" +
                          std::to_string(want.width));
}

SelfChain PairKernel::self_chain(const ImageView& x) {
  check_input(x);
  SelfChain sc;
  sc.var.resize(net_.stages().size());
  sc.head_var.assign(net_.stages().size(), 0.0);
  // The diagonal chain of the pair (x, x) is exactly the variance recursion: conv-type diagonals
  // depend only on diagonals (MATH.md §4), so it records every variance map on the way.
  const KernelValue diag_pooled = diagonal(x, nullptr, x, nullptr, &sc);
  if (net_.diagonal_only()) {
    sc.self = head(diag_pooled, nullptr, nullptr, &sc);
  } else {
    sc.self = head(spatial(x, sc, x, sc, nullptr), nullptr, nullptr, &sc);
  }
  return sc;
}

KernelValue PairKernel::evaluate(const ImageView& x, const SelfChain& sx, const ImageView& x2, const SelfChain& sx2) {
  check_input(x);
  check_input(x2);
  const KernelValue pooled = net_.diagonal_only() ? diagonal(x, &sx, x2, &sx2, nullptr) : spatial(x, sx, x2, sx2, nullptr);
  return head(pooled, &sx, &sx2, nullptr);
}

KernelValue PairKernel::evaluate_observed(const ImageView& x, const SelfChain& sx, const ImageView& x2,
                                          const SelfChain& sx2, const BlockObserver& observer) {
  check_input(x);
  check_input(x2);
  if (net_.diagonal_only()) throw InvalidArgument("evaluate_observed: flatten readouts run on the diagonal-only path");
  return head(spatial(x, sx, x2, sx2, &observer), &sx, &sx2, nullptr);
}

KernelValue PairKernel::spatial(const ImageView& x, const SelfChain& sx, const ImageView& x2, const SelfChain& sx2,
                                const BlockObserver* observer) {
  const auto& stages = net_.stages();
  const std::size_t readout = net_.readout_stage();
  const int rotations = net_.rotations();
  double sum_k = 0.0, sum_t = 0.0;
  std::int64_t pooled_h = 0, pooled_w = 0;
  for (int delta = 0; delta < rotations; ++delta) {
    double* k = buf_[0].data();
    double* t = buf_[1].data();
    double* tmp = buf_[2].data();
    double* spare = buf_[3].data();
    Dims4 dims{{x.height, x.width, x.height, x.width}};
    bool theta_is_k = false;  // Θ = K after the first layer (MATH.md §3: Θ¹ = K¹), shared until it differs
    for (std::size_t s = 0; s < readout; ++s) {
      const Stage& st = stages[s];
      if (is_spatial_linear(st.spec.kind)) {
        if (st.in_state == StateKind::input) {
          input_kernel(x, x2, spare);
          dims = window_sum(spare, dims, tmp, k, delta, st, st.b2, nullptr);
          theta_is_k = true;
        } else {
          // K' = σ_w²/q² S(Σ) + σ_b²;  Θ' = K' + σ_w²/q² S(Σ̇⊙Θ).
          const Dims4 din = dims;
          dims = window_sum(k, din, tmp, spare, delta, st, st.b2, nullptr);
          std::swap(k, spare);  // spare now holds the previous K
          const double* theta_in = theta_is_k ? spare : t;
          double* theta_out = theta_is_k ? t : spare;
          window_sum(theta_in, din, tmp, theta_out, delta, st, 0.0, k);
          if (!theta_is_k) std::swap(t, spare);
          theta_is_k = false;
        }
      } else if (is_nonlinearity(st.spec.kind)) {
        if (st.spec.kind == LayerKind::id) {
          // Σ = K, Σ̇ = 1: nothing changes.
        } else {
          const std::int64_t slab = dims.n[2] * dims.n[3];
          const double* v1 = sx.var[s].data();
          const double* v2 = sx2.var[s].data();
          const double* theta_in = theta_is_k ? k : t;
          for (std::int64_t p = 0; p < dims.n[0] * dims.n[1]; ++p)
            detail::dual_slab(st.spec.kind, v1[p], v2, k + p * slab, theta_in + p * slab, k + p * slab, t + p * slab,
                              slab);
          theta_is_k = false;
        }
      }
      if (observer != nullptr) (*observer)(s, delta, BlockView{dims.n[0], dims.n[1], k, theta_is_k ? k : t});
    }
    const std::int64_t slab = dims.n[2] * dims.n[3];
    const std::int64_t slabs = dims.n[0] * dims.n[1];
    sum_k += block_sum(k, slabs, slab);
    sum_t += theta_is_k ? block_sum(k, slabs, slab) : block_sum(t, slabs, slab);
    pooled_h = dims.n[0];
    pooled_w = dims.n[1];
  }
  // gpool/gap: mean over every (g, g') = (1/4) Σ_Δ mean_{t,t'} B_Δ (MATH.md §5.1).
  const double count = static_cast<double>(rotations) * static_cast<double>(pooled_h * pooled_w) *
                       static_cast<double>(pooled_h * pooled_w);
  return {sum_k / count, sum_t / count};
}

KernelValue PairKernel::diagonal(const ImageView& x, const SelfChain* sx, const ImageView& x2, const SelfChain* sx2,
                                 SelfChain* record) {
  // Same-position entries c(t) = K_{(t,r),(t,r)}(x, x2): the window sum of a C4-symmetric window along
  // the diagonal does not depend on r, so p4 and CNN share this chain.
  const auto& stages = net_.stages();
  const std::size_t readout = net_.readout_stage();
  std::int64_t h = x.height, w = x.width;
  std::vector<double> k(static_cast<std::size_t>(h * w), 0.0);
  const double inv_c = 1.0 / static_cast<double>(x.channels);
  for (std::int64_t c = 0; c < x.channels; ++c)
    for (std::int64_t p = 0; p < h * w; ++p) k[p] += x.data[c * h * w + p] * x2.data[c * h * w + p] * inv_c;
  std::vector<double> t(k.size(), 0.0);  // Θ⁰ = 0
  std::vector<double> nk, nt;
  for (std::size_t s = 0; s < readout; ++s) {
    const Stage& st = stages[s];
    if (is_spatial_linear(st.spec.kind)) {
      const double scale = st.w2 / static_cast<double>(st.q * st.q);
      std::int64_t oh = 0, ow = 0;
      nk.resize(k.size());
      nt.resize(k.size());
      box_2d(k.data(), h, w, nk.data(), st.p, st.spec.pad, scale, st.b2, nullptr, oh, ow);
      nk.resize(static_cast<std::size_t>(oh * ow));
      box_2d(t.data(), h, w, nt.data(), st.p, st.spec.pad, scale, 0.0, nk.data(), oh, ow);
      nt.resize(nk.size());
      std::swap(k, nk);
      std::swap(t, nt);
      h = oh;
      w = ow;
    } else if (is_nonlinearity(st.spec.kind)) {
      if (record != nullptr) record->var[s] = k;
      const std::vector<double>& v1 = record != nullptr ? k : sx->var[s];
      const std::vector<double>& v2 = record != nullptr ? k : sx2->var[s];
      for (std::size_t p = 0; p < k.size(); ++p) {
        const DualValue d = dual(st.spec.kind, v1[p], v2[p], k[p]);
        k[p] = d.sigma;
        t[p] *= d.sigma_dot;
      }
    }
  }
  // flatten: mean over positions of the same-position entries (for p4 maps also over r, all equal).
  double sk = 0.0, stt = 0.0;
  for (std::size_t p = 0; p < k.size(); ++p) {
    sk += k[p];
    stt += t[p];
  }
  return {sk / static_cast<double>(k.size()), stt / static_cast<double>(k.size())};
}

KernelValue PairKernel::head(KernelValue v, const SelfChain* sx, const SelfChain* sx2, SelfChain* record) const {
  const auto& stages = net_.stages();
  for (std::size_t s = net_.readout_stage() + 1; s < stages.size(); ++s) {
    const Stage& st = stages[s];
    if (st.spec.kind == LayerKind::dense) {
      // K' = σ_w² Σ + σ_b²;  Θ' = K' + σ_w² Σ̇⊙Θ.
      const double kn = st.w2 * v.nngp + st.b2;
      v = {kn, kn + st.w2 * v.ntk};
    } else if (is_nonlinearity(st.spec.kind)) {
      if (record != nullptr) record->head_var[s] = v.nngp;
      const double q1 = record != nullptr ? v.nngp : sx->head_var[s];
      const double q2 = record != nullptr ? v.nngp : sx2->head_var[s];
      const DualValue d = dual(st.spec.kind, q1, q2, v.nngp);
      v = {d.sigma, d.sigma_dot * v.ntk};
    }
  }
  return v;
}

}  // namespace eqntk::kernel
