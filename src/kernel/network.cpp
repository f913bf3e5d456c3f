#include "eqntk/kernel/network.hpp"

#include <algorithm>

#include "eqntk/error.hpp"

namespace eqntk::kernel {

Network::Network(Architecture arch, InputShape input) : arch_(std::move(arch)), input_(input) {
  if (input.channels < 1 || input.height < 1 || input.width < 1)
    throw InvalidArgument("input shape must have at least one channel and one pixel, got C=" +
                          std::to_string(input.channels) + " H=" + std::to_string(input.height) +
                          " W=" + std::to_string(input.width));
  StateKind state = StateKind::input;
  std::int64_t h = input.height, w = input.width;
  for (std::size_t i = 0; i < arch_.layers().size(); ++i) {
    const LayerSpec& l = arch_.layers()[i];
    Stage s;
    s.spec = l;
    s.in_state = state;
    s.h_in = h;
    s.w_in = w;
    s.w2 = l.w * l.w;
    s.b2 = l.b * l.b;
    if (is_spatial_linear(l.kind)) {
      s.q = l.k;
      s.p = (l.k - 1) / 2;
      if (l.kind == LayerKind::lift) {
        if (h != w)
          throw InvalidArgument("invalid architecture at '" + l.token + "': C4 layers need square images, got " +
                                std::to_string(h) + "x" + std::to_string(w));
        rotations_ = 4;
      }
      if (l.pad == Padding::valid) {
        if (h < s.q || w < s.q)
          throw InvalidArgument("invalid architecture at '" + l.token + "': valid padding needs at least " +
                                std::to_string(s.q) + "x" + std::to_string(s.q) + " pixels, the layer sees " +
                                std::to_string(h) + "x" + std::to_string(w));
        h -= s.q - 1;
        w -= s.q - 1;
      }
      state = l.kind == LayerKind::conv ? StateKind::plane : StateKind::c4;
    } else if (is_readout(l.kind)) {
      readout_ = i;
      state = StateKind::scalar;
      h = w = 1;
    }
    s.out_state = state;
    s.h_out = h;
    s.w_out = w;
    stages_.push_back(s);
  }
}

bool Network::head_has_nonlinearity() const {
  return std::any_of(stages_.begin(), stages_.end(), [](const Stage& s) { return s.head_nonlinearity(); });
}

int Network::spatial_linear_layers() const {
  return static_cast<int>(
      std::count_if(stages_.begin(), stages_.end(), [](const Stage& s) { return is_spatial_linear(s.spec.kind); }));
}

std::int64_t Network::max_pixels() const {
  std::int64_t m = input_.height * input_.width;
  for (const auto& s : stages_) m = std::max(m, s.h_out * s.w_out);
  return m;
}

}  // namespace eqntk::kernel
