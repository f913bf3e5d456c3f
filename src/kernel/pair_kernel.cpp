#include "eqntk/kernel/pair_kernel.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <utility>
#include <variant>

#include "eqntk/error.hpp"
#include "eqntk/kernel/box.hpp"
#include "eqntk/kernel/dual.hpp"
#include "pipeline.hpp"

namespace eqntk::kernel {
namespace {

// The state of the diagonal-only chain: same-position entries c(t) = K_{(t,g),(t,g)}(x, x2) of K and Θ
// over the h×w positions. The window sum of a D4-symmetric window along the diagonal does not depend on
// g, so every group and the CNN share this chain (MATH.md §4). Each unit's step `diag` is the
// EQNTK_UNIT_DIAGONAL section of its file units/<kind>.inc (see units/linear.inc); this translation unit
// is compiled without the instruction-set flags of the plane pipeline.
struct Diagonal {
  const data::ImageView& x;
  const data::ImageView& x2;
  const SelfChain* sx;  // the variance maps of x and x2 (null while recording)
  const SelfChain* sx2;
  SelfChain* record;  // the self chain being recorded (x = x2): its variances are the chain's own
  std::int64_t h = 0, w = 0;
  std::vector<double> k{}, t{}, nk{}, nt{};
  // (K, Θ) saved by each res slot
  std::vector<std::pair<std::vector<double>, std::vector<double>>> saved{};
  KernelValue value{};  // the readout
};

#define EQNTK_UNIT_DIAGONAL
#include "units/activation.inc"
#include "units/linear.inc"
#include "units/avgpool.inc"
#include "units/res.inc"
#include "units/readout.inc"
#undef EQNTK_UNIT_DIAGONAL

}  // namespace

PairKernel::PairKernel(Network net, Precision precision)
    : net_(std::move(net)),
      plan_(compile(net_)),
      ws_(std::make_unique<detail::Workspace>()),
      spatial_(detail::spatial_for(detail::best_isa())) {
  if (!plan_.diagonal_only) ws_->reserve(plan_, precision == Precision::mixed);
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
  if (plan_.self_full) {
    // Pooling averages two positions independently: the pooled diagonal needs off-diagonal self entries,
    // so the self pair runs through the full spatial recursion, recording its e-block diagonals (§10).
    sc.self = head(spatial_(plan_, x, sc, x, sc, *ws_, nullptr, &sc), nullptr, nullptr, &sc);
    return sc;
  }
  // The diagonal chain of the pair (x, x) is exactly the variance recursion: conv-type diagonals
  // depend only on diagonals (MATH.md §4), so it records every variance map on the way.
  const KernelValue diag_pooled = diagonal(x, nullptr, x, nullptr, &sc);
  if (plan_.diagonal_only) {
    sc.self = head(diag_pooled, nullptr, nullptr, &sc);
  } else {
    sc.self = head(spatial(x, sc, x, sc, nullptr), nullptr, nullptr, &sc);
  }
  return sc;
}

KernelValue PairKernel::evaluate(const data::ImageView& x, const SelfChain& sx, const data::ImageView& x2, const SelfChain& sx2) {
  check_input(x);
  check_input(x2);
  const KernelValue pooled =
      plan_.diagonal_only ? diagonal(x, &sx, x2, &sx2, nullptr) : spatial(x, sx, x2, sx2, nullptr);
  return head(pooled, &sx, &sx2, nullptr);
}

KernelValue PairKernel::evaluate_observed(const data::ImageView& x, const SelfChain& sx, const data::ImageView& x2,
                                          const SelfChain& sx2, const BlockObserver& observer) {
  check_input(x);
  check_input(x2);
  if (plan_.diagonal_only) throw InvalidArgument("evaluate_observed: flatten readouts run on the diagonal-only path");
  return head(spatial(x, sx, x2, sx2, &observer), &sx, &sx2, nullptr);
}

KernelValue PairKernel::spatial(const data::ImageView& x, const SelfChain& sx, const data::ImageView& x2, const SelfChain& sx2,
                                const BlockObserver* observer) {
  return spatial_(plan_, x, sx, x2, sx2, *ws_, observer, nullptr);
}

KernelValue PairKernel::diagonal(const data::ImageView& x, const SelfChain* sx, const data::ImageView& x2, const SelfChain* sx2,
                                 SelfChain* record) {
  // (Never used with an avgpool, whose diagonal needs off-diagonal entries: Plan::diagonal_only.)
  Diagonal d{x, x2, sx, sx2, record};
  d.h = x.height;
  d.w = x.width;
  // The input: K⁰(t) = Σ_c x_c(t)·x'_c(t)/C, Θ⁰ = 0.
  d.k.assign(static_cast<std::size_t>(d.h * d.w), 0.0);
  const double inv_c = 1.0 / static_cast<double>(x.channels);
  for (std::int64_t c = 0; c < x.channels; ++c)
    for (std::int64_t p = 0; p < d.h * d.w; ++p)
      d.k[p] += x.data[c * d.h * d.w + p] * x2.data[c * d.h * d.w + p] * inv_c;
  d.t.assign(d.k.size(), 0.0);
  d.saved.resize(static_cast<std::size_t>(plan_.saved_slots));
  for (const Unit& unit : plan_.units) std::visit([&d](const auto& u) { diag(u, d); }, unit);
  return d.value;
}

KernelValue PairKernel::head(KernelValue v, const SelfChain* sx, const SelfChain* sx2, SelfChain* record) const {
  return apply_head(plan_.head, v, sx != nullptr ? sx->head_var.data() : nullptr,
                    sx2 != nullptr ? sx2->head_var.data() : nullptr,
                    record != nullptr ? record->head_var.data() : nullptr);
}

}  // namespace eqntk::kernel
