#include "eqntk/kernel/network.hpp"

#include <algorithm>

#include "eqntk/error.hpp"

namespace eqntk::kernel {
namespace {

[[noreturn]] void fail(const std::string& token, const std::string& rule) {
  throw InvalidArgument("invalid architecture at '" + token + "': " + rule);
}

std::string size_text(std::int64_t h, std::int64_t w) { return std::to_string(h) + "x" + std::to_string(w); }

}  // namespace

Network::Network(Architecture arch, data::InputShape input) : arch_(std::move(arch)), input_(input) {
  if (input.channels < 1 || input.height < 1 || input.width < 1)
    throw InvalidArgument("input shape must have at least one channel and one pixel, got C=" +
                          std::to_string(input.channels) + " H=" + std::to_string(input.height) +
                          " W=" + std::to_string(input.width));
  group_ = arch_.group();
  rotations_ = group::order(group_);
  StateKind state = StateKind::input;
  std::int64_t h = input.height, w = input.width;
  // Flattens a layer list into stages; res blocks become res … res_end (network.hpp).
  const auto add = [&](const auto& self, const std::vector<LayerSpec>& layers) -> void {
    for (const LayerSpec& l : layers) {
      Stage s;
      s.spec = l;
      s.spec.body.clear();
      if (l.kind == LayerKind::gconv) s.spec.group = group_;
      s.in_state = state;
      s.h_in = h;
      s.w_in = w;
      s.w2 = l.w * l.w;
      s.b2 = l.b * l.b;
      if (l.kind == LayerKind::res) {
        const std::size_t begin = stages_.size();
        s.out_state = state;
        s.h_out = h;
        s.w_out = w;
        stages_.push_back(s);
        self(self, l.body);
        if (h != s.h_in || w != s.w_in)
          fail(l.token, "a res body must keep the spatial size, but it maps " + size_text(s.h_in, s.w_in) + " to " +
                            size_text(h, w) + " (valid padding?)");
        Stage end = s;
        end.spec.kind = LayerKind::res_end;
        end.partner = begin;
        stages_[begin].partner = stages_.size();
        stages_.push_back(end);
        continue;
      }
      if (is_spatial_linear(l.kind)) {
        s.q = l.k;
        s.p = (l.k - 1) / 2;
        // MATH.md §10 rejects every group layer on a non-square image (the cell grids of avgpool and the
        // image-centre action are defined for squares), even for groups without a quarter turn.
        if (l.kind == LayerKind::lift && h != w)
          fail(l.token, "group " + std::string(group::name(l.group)) + " layers need square images, got " +
                            size_text(h, w));
        if (l.pad == Padding::valid) {
          if (h < s.q || w < s.q)
            fail(l.token, "valid padding needs at least " + size_text(s.q, s.q) + " pixels, the layer sees " +
                              size_text(h, w));
          h -= s.q - 1;
          w -= s.q - 1;
        }
        state = l.kind == LayerKind::conv ? StateKind::plane : StateKind::group;
      } else if (l.kind == LayerKind::avgpool) {
        if (h % l.s != 0 || w % l.s != 0)
          fail(l.token, "the cell size s=" + std::to_string(l.s) + " must divide the feature map it sees, " +
                            size_text(h, w));
        h /= l.s;
        w /= l.s;
      } else if (is_readout(l.kind)) {
        readout_ = stages_.size();
        state = StateKind::scalar;
        h = w = 1;
      }
      s.out_state = state;
      s.h_out = h;
      s.w_out = w;
      stages_.push_back(s);
    }
  };
  add(add, arch_.layers());
  for (std::size_t s = readout_ + 1; s < stages_.size(); ++s) {
    const Stage& st = stages_[s];
    head_.push_back({s, st.spec.kind == LayerKind::dense, st.w2, st.b2, st.spec.kind});
  }
}

bool Network::has_avgpool() const {
  return std::any_of(stages_.begin(), stages_.end(), [](const Stage& s) { return s.spec.kind == LayerKind::avgpool; });
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
