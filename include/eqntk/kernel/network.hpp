// A parsed architecture bound to an input shape: every layer with the spatial size it sees and
// produces, its σ's squared, and the facts the kernel engines need (group, readout, head).
//
// Residual blocks are flattened: `res(<body>)` becomes a `res` stage (the block's input is saved), the
// body's stages, and a `res_end` stage (the saved input is added: K' = K + K_F, Θ' = Θ + Θ_F, MATH.md §10);
// each marker's `partner` is the index of the other.
//
// Glossary: q = filter size k, p = (q-1)/2 (window {-p..p}²), w2 = σ_w², b2 = σ_b².
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "eqntk/data/image.hpp"
#include "eqntk/kernel/architecture.hpp"
#include "eqntk/kernel/head.hpp"

namespace eqntk::kernel {

/// What flows between layers: the raw input, group feature maps (|G| channels per pixel), plane feature
/// maps (CNN), or pooled/flattened scalars.
enum class StateKind { input, group, plane, scalar };

/// One layer, compiled against its input shape.
struct Stage {
  LayerSpec spec;
  StateKind in_state = StateKind::input;
  StateKind out_state = StateKind::input;
  std::int64_t h_in = 0, w_in = 0;    // spatial size seen by the layer
  std::int64_t h_out = 0, w_out = 0;  // spatial size produced (scalars: 1×1)
  int q = 1, p = 0;                   // filter size and half-width (spatial linear layers)
  double w2 = 1.0, b2 = 0.0;          // σ_w², σ_b²
  std::size_t partner = 0;            // res ↔ res_end: the index of the matching marker
  /// True for a nonlinearity whose pre-activation is spatial (it needs per-pixel variance maps).
  [[nodiscard]] bool spatial_nonlinearity() const { return is_nonlinearity(spec.kind) && in_state != StateKind::scalar; }
  /// True for a nonlinearity in the dense head (it needs pooled self-kernels).
  [[nodiscard]] bool head_nonlinearity() const { return is_nonlinearity(spec.kind) && in_state == StateKind::scalar; }
};

/// An architecture validated against an input shape (MATH.md §1, §9).
class Network {
 public:
  /// Throws InvalidArgument when a group layer (lift) sees a non-square image, a `valid` layer leaves
  /// fewer pixels than its filter needs, an avgpool cell size does not divide the map, a res body changes
  /// the spatial size, or the shape is empty.
  Network(Architecture arch, data::InputShape input);

  [[nodiscard]] const Architecture& architecture() const { return arch_; }
  [[nodiscard]] const std::vector<Stage>& stages() const { return stages_; }
  [[nodiscard]] data::InputShape input_shape() const { return input_; }
  /// The group of the feature maps: the lift's group, C1 for a CNN/MLP.
  [[nodiscard]] group::PointGroup group() const { return group_; }
  /// |G|: the number of blocks B_h of a spatial state (4 for p4, 8 for p4m, 1 for a CNN/MLP).
  [[nodiscard]] int rotations() const { return rotations_; }
  /// Index of the gpool/gap/flatten stage.
  [[nodiscard]] std::size_t readout_stage() const { return readout_; }
  /// True when the readout is `flatten` and no avgpool comes first: only same-position (diagonal) entries
  /// are ever needed. (Pooling averages the two positions independently, so after an avgpool the diagonal
  /// needs off-diagonal entries, MATH.md §10.)
  [[nodiscard]] bool diagonal_only() const {
    return stages_[readout_].spec.kind == LayerKind::flatten && !has_avgpool();
  }
  /// True when some stage is an avgpool: per-image variance maps then need each image's self pair through
  /// the full spatial recursion, not the diagonal-only one.
  [[nodiscard]] bool has_avgpool() const;
  /// The layers after the readout, for kernel::apply_head (stage = the index in stages()).
  [[nodiscard]] const std::vector<HeadLayer>& head_layers() const { return head_; }
  /// True when a nonlinearity follows the readout (pooled self-kernels K(x,x) are then needed).
  [[nodiscard]] bool head_has_nonlinearity() const;
  /// Number of lift/gconv/conv layers (the "layers" of ns per entry-layer).
  [[nodiscard]] int spatial_linear_layers() const;
  /// Largest (h·w) of any spatial state, input included.
  [[nodiscard]] std::int64_t max_pixels() const;

 private:
  Architecture arch_;
  data::InputShape input_;
  std::vector<Stage> stages_;
  std::vector<HeadLayer> head_;
  group::PointGroup group_ = group::PointGroup::C1;
  int rotations_ = 1;
  std::size_t readout_ = 0;
};

}  // namespace eqntk::kernel
