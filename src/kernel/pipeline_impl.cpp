// The plane pipeline of pipeline.hpp: the executor that runs a kernel::Plan on the CPU. This file is
// compiled once per instruction-set level with EQNTK_ISA_NS naming the namespace (isa_baseline, isa_avx2,
// isa_avx512) and the matching -march flags; everything it includes below lands in that namespace, so
// each level gets its own copy:
//   dual_rows.inc       the vectorised dual activations
//   units/planes.inc    padded plane storage, window sums, and Flow (the state a unit step works on)
//   units/<kind>.inc    one file per unit kind: its plane step `step(unit, Flow<S>&)` (the EQNTK_UNIT_PLANES
//                       section; the same file's EQNTK_UNIT_DIAGONAL section is pair_kernel.cpp's)
// What stays here is the loop: every block B_h through plan.units, the observer, the readout value.
#include <sleef.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <numbers>
#include <utility>
#include <variant>

#include "eqntk/group/point_group.hpp"
#include "eqntk/kernel/box.hpp"
#include "eqntk/kernel/dual.hpp"
#include "eqntk/kernel/plan.hpp"
#include "pipeline.hpp"

#ifndef EQNTK_ISA_NS
#error "compile with -DEQNTK_ISA_NS=isa_<level>"
#endif

namespace eqntk::kernel::detail::EQNTK_ISA_NS {
namespace {

#include "dual_rows.inc"
#include "units/planes.inc"

#define EQNTK_UNIT_PLANES
#include "units/activation.inc"  // first: every other reader applies a pending nonlinearity
#include "units/linear.inc"
#include "units/avgpool.inc"
#include "units/res.inc"
#include "units/readout.inc"
#undef EQNTK_UNIT_PLANES

template <class S>
KernelValue spatial_impl(const Plan& plan, const data::ImageView& x, const SelfChain& sx, const data::ImageView& x2,
                         const SelfChain& sx2, Workspace& ws, const BlockObserver* observer, SelfChain* record) {
  // The fusable last layer feeds the readout directly unless every state must be seen or recorded.
  const bool fuse = observer == nullptr && record == nullptr && plan.fusable_last != Plan::npos;
  Flow<S> f{plan, x, sx, x2, sx2, ws, record, fuse};
  const auto elements = group::elements(plan.group);
  for (int block = 0; block < plan.blocks; ++block) {
    f.block = block;
    f.element = elements[static_cast<std::size_t>(block)];
    f.k = ws.at<S>(ws.block[0]);
    f.t = ws.at<S>(ws.block[1]);
    f.nk = ws.at<S>(ws.block[2]);
    f.nt = ws.at<S>(ws.block[3]);
    f.theta_is_k = false;
    f.pending = nullptr;
    f.h = x.height;
    f.w = x.width;
    f.pooled = false;
    for (f.at = 0; f.at < plan.units.size() && !f.pooled; ++f.at) {
      const Unit& unit = plan.units[f.at];
      std::visit([&f](const auto& u) { step(u, f); }, unit);
      if (observer != nullptr && !std::holds_alternative<unit::Readout>(unit)) {
        apply_pending(f);  // an observer sees the post-activation state of a nonlinearity
        const Geom g = f.geom();
        unpad_block(f.k, g, ws.pad, ws.obs_k);
        unpad_block(f.theta(), g, ws.pad, ws.obs_t);
        const std::size_t stage = std::visit([](const auto& u) { return u.stage; }, unit);
        (*observer)(stage, block, BlockView{f.h, f.w, ws.obs_k.data(), ws.obs_t.data()});
      }
    }
  }
  return readout_value(std::get<unit::Readout>(plan.units.back()), plan, f.sum_k, f.sum_t);
}

}  // namespace

KernelValue spatial(const Plan& plan, const data::ImageView& x, const SelfChain& sx, const data::ImageView& x2,
                    const SelfChain& sx2, Workspace& ws, const BlockObserver* observer, SelfChain* record) {
  return ws.mixed ? spatial_impl<float>(plan, x, sx, x2, sx2, ws, observer, record)
                  : spatial_impl<double>(plan, x, sx, x2, sx2, ws, observer, record);
}

}  // namespace eqntk::kernel::detail::EQNTK_ISA_NS
