#include "eqntk/kernel/pair_kernel.hpp"

#include <algorithm>
#include <cmath>
#include <utility>

#include "eqntk/error.hpp"
#include "eqntk/kernel/box.hpp"
#include "pipeline.hpp"
#include "eqntk/kernel/dual.hpp"

namespace eqntk::kernel {
PairKernel::PairKernel(Network net, Precision precision)
    : net_(std::move(net)), ws_(std::make_unique<detail::Workspace>()), spatial_(detail::spatial_for(detail::best_isa())) {
  if (!net_.diagonal_only()) ws_->reserve(net_, precision == Precision::mixed);
}

PairKernel::~PairKernel() = default;
PairKernel::PairKernel(PairKernel&&) noexcept = default;
PairKernel& PairKernel::operator=(PairKernel&&) noexcept = default;

void PairKernel::check_input(const data::ImageView& x) const {
  const data::InputShape want = net_.input_shape();
  if (!(x.shape() == want))
    throw InvalidArgument("image shape " + std::to_string(x.channels) + "x" + std::to_string(x.height) + "x" +
                          std::to_string(x.width) + " (CxHxW) does not match the network input " +
                          std::to_string(want.channels) + "x" + std::to_string(want.height) + "x" +
                          std::to_string(want.width));
}

SelfChain PairKernel::self_chain(const data::ImageView& x) {
  check_input(x);
  SelfChain sc;
  sc.var.resize(net_.stages().size());
  sc.head_var.assign(net_.stages().size(), 0.0);
  if (net_.has_avgpool()) {
    // Pooling averages two positions independently: the pooled diagonal needs off-diagonal self entries,
    // so the self pair runs through the full spatial recursion, recording its e-block diagonals (§10).
    sc.self = head(spatial_(net_, x, sc, x, sc, *ws_, nullptr, &sc), nullptr, nullptr, &sc);
    return sc;
  }
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

KernelValue PairKernel::evaluate(const data::ImageView& x, const SelfChain& sx, const data::ImageView& x2, const SelfChain& sx2) {
  check_input(x);
  check_input(x2);
  const KernelValue pooled = net_.diagonal_only() ? diagonal(x, &sx, x2, &sx2, nullptr) : spatial(x, sx, x2, sx2, nullptr);
  return head(pooled, &sx, &sx2, nullptr);
}

KernelValue PairKernel::evaluate_observed(const data::ImageView& x, const SelfChain& sx, const data::ImageView& x2,
                                          const SelfChain& sx2, const BlockObserver& observer) {
  check_input(x);
  check_input(x2);
  if (net_.diagonal_only()) throw InvalidArgument("evaluate_observed: flatten readouts run on the diagonal-only path");
  return head(spatial(x, sx, x2, sx2, &observer), &sx, &sx2, nullptr);
}

KernelValue PairKernel::spatial(const data::ImageView& x, const SelfChain& sx, const data::ImageView& x2, const SelfChain& sx2,
                                const BlockObserver* observer) {
  return spatial_(net_, x, sx, x2, sx2, *ws_, observer, nullptr);
}

KernelValue PairKernel::diagonal(const data::ImageView& x, const SelfChain* sx, const data::ImageView& x2, const SelfChain* sx2,
                                 SelfChain* record) {
  // Same-position entries c(t) = K_{(t,g),(t,g)}(x, x2): the window sum of a D4-symmetric window along
  // the diagonal does not depend on g, so every group and the CNN share this chain. (Never used with an
  // avgpool, whose diagonal needs off-diagonal entries: Network::diagonal_only.)
  const auto& stages = net_.stages();
  const std::size_t readout = net_.readout_stage();
  std::int64_t h = x.height, w = x.width;
  std::vector<double> k(static_cast<std::size_t>(h * w), 0.0);
  const double inv_c = 1.0 / static_cast<double>(x.channels);
  for (std::int64_t c = 0; c < x.channels; ++c)
    for (std::int64_t p = 0; p < h * w; ++p) k[p] += x.data[c * h * w + p] * x2.data[c * h * w + p] * inv_c;
  std::vector<double> t(k.size(), 0.0);  // Θ⁰ = 0
  std::vector<double> nk, nt;
  std::vector<std::pair<std::vector<double>, std::vector<double>>> saved;  // inputs of the open res blocks
  for (std::size_t s = 0; s < readout; ++s) {
    const Stage& st = stages[s];
    if (st.spec.kind == LayerKind::res) {
      saved.emplace_back(k, t);
    } else if (st.spec.kind == LayerKind::res_end) {
      // Diagonals of h + F(h) (MATH.md §10): the block keeps the size, so entries add position by position.
      for (std::size_t p = 0; p < k.size(); ++p) {
        k[p] += saved.back().first[p];
        t[p] += saved.back().second[p];
      }
      saved.pop_back();
    } else if (is_spatial_linear(st.spec.kind)) {
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
  return apply_head(net_.head_layers(), v, sx != nullptr ? sx->head_var.data() : nullptr,
                    sx2 != nullptr ? sx2->head_var.data() : nullptr, record != nullptr ? record->head_var.data() : nullptr);
}

}  // namespace eqntk::kernel
