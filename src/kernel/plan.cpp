#include "eqntk/kernel/plan.hpp"

#include <algorithm>

namespace eqntk::kernel {
namespace {

// Whether the first spatial linear stage after s (before the readout) is circular: the state that stage s
// leaves is read with wrapped pads then.
bool next_linear_wraps(const Network& net, std::size_t s) {
  for (std::size_t n = s + 1; n < net.readout_stage(); ++n)
    if (is_spatial_linear(net.stages()[n].spec.kind)) return net.stages()[n].spec.pad == Padding::circular;
  return false;
}

}  // namespace

int Plan::linear_units() const {
  return static_cast<int>(
      std::count_if(units.begin(), units.end(), [](const Unit& u) { return std::holds_alternative<unit::Linear>(u); }));
}

Plan compile(const Network& net) {
  Plan plan;
  const auto& stages = net.stages();
  const std::size_t readout = net.readout_stage();
  plan.group = net.group();
  plan.input = net.input_shape();
  plan.diagonal_only = net.diagonal_only();
  plan.self_full = net.has_avgpool();
  plan.blocks = stages[readout].spec.kind == LayerKind::flatten ? 1 : net.rotations();
  plan.max_pixels = net.max_pixels();
  plan.head = net.head_layers();
  std::vector<int> open;  // slots of the enclosing res blocks
  for (std::size_t s = 0; s < readout; ++s) {
    const Stage& st = stages[s];
    const bool wrap = next_linear_wraps(net, s);
    if (is_spatial_linear(st.spec.kind)) {
      plan.max_p = std::max(plan.max_p, st.p);
      plan.units.emplace_back(unit::Linear{s, st.in_state == StateKind::input, st.q, st.p, st.spec.pad, st.h_in,
                                           st.w_in, st.h_out, st.w_out, st.w2 / static_cast<double>(st.q * st.q),
                                           st.b2, wrap});
    } else if (is_nonlinearity(st.spec.kind)) {
      plan.units.emplace_back(unit::Activation{s, st.spec.kind, st.h_in, st.w_in, wrap});
    } else if (st.spec.kind == LayerKind::avgpool) {
      plan.units.emplace_back(unit::AvgPool{s, st.spec.s, st.h_in, st.w_in, st.h_out, st.w_out, wrap});
    } else if (st.spec.kind == LayerKind::res) {
      open.push_back(plan.saved_slots++);
      plan.units.emplace_back(unit::ResBegin{s, open.back(), st.h_in, st.w_in});
    } else if (st.spec.kind == LayerKind::res_end) {
      plan.units.emplace_back(unit::ResEnd{s, open.back(), st.h_in, st.w_in, wrap});
      open.pop_back();
    }
  }
  const Stage& ro = stages[readout];
  plan.units.emplace_back(unit::Readout{readout, ro.spec.kind, ro.h_in, ro.w_in});
  // The last Linear unit may feed the readout directly when only nonlinearities follow it (gpool/gap).
  if (ro.spec.kind != LayerKind::flatten) {
    for (std::size_t u = plan.units.size() - 1; u-- > 0;) {
      if (std::holds_alternative<unit::Linear>(plan.units[u])) {
        plan.fusable_last = u;
        break;
      }
      if (!std::holds_alternative<unit::Activation>(plan.units[u])) break;
    }
  }
  return plan;
}

}  // namespace eqntk::kernel
