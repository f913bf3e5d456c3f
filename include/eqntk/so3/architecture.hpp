// Architecture strings of SO(3)-equivariant networks on spherical signals (SO3_MATH.md §2).
//
// Same syntax as the planar language (kernel/architecture.hpp): comma-separated layers `name[:key=value]...`,
//   s2lift:w=1.3:b=0.2,erf,so3conv:w=1.1:b=0.1,erf,so3pool,dense:w=0.9:b=0.05
// Layers:
//   s2lift   S² → SO(3) lifting convolution with a global (white-noise) filter; keys w (σ_w), b (σ_b)
//   so3conv  global SO(3) convolution; keys w, b
//   so3pool  Haar average over SO(3) (the readout); no keys
//   relu, erf, id   nonlinearities; no keys
//   dense    fully connected layer on pooled features; keys w, b
// Defaults w = 1, b = 0. Only global filter support exists (the only case of the continuum reduction,
// SO3_MATH.md §3), so there is no filter-size key: `k=`, `pad=` are rejected, as are the planar layers
// (lift, gconv, conv, gpool, gap, flatten).
//
// Order rules, each reported with the offending token:
//   - the network starts with exactly one `s2lift`, on the input;
//   - `so3conv` needs the s2lift before it and comes before so3pool;
//   - a nonlinearity needs a preceding linear layer (s2lift/so3conv/dense) and not another nonlinearity;
//   - exactly one `so3pool`, after the s2lift; afterwards only `dense` and nonlinearities;
//   - the network ends with a `dense` (optionally followed by one nonlinearity).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "eqntk/kernel/architecture.hpp"

namespace eqntk::so3 {

enum class LayerKind { s2lift, so3conv, so3pool, relu, erf, id, dense };

/// One parsed layer; `w`, `b` are meaningful for s2lift, so3conv and dense.
struct LayerSpec {
  LayerKind kind = LayerKind::id;
  double w = 1.0;     // σ_w
  double b = 0.0;     // σ_b
  std::string token;  // the text it was parsed from, for messages
};

[[nodiscard]] std::string_view to_string(LayerKind kind);
[[nodiscard]] bool is_linear(LayerKind kind);        // s2lift, so3conv, dense
[[nodiscard]] bool is_nonlinearity(LayerKind kind);  // relu, erf, id
/// The planar kind of a nonlinearity (for kernel::dual, kernel::dual_variance). Precondition: is_nonlinearity.
[[nodiscard]] kernel::LayerKind activation(LayerKind kind);

/// A validated SO(3) layer sequence. Construct with parse().
class Architecture {
 public:
  /// Parses and order-validates `text`. Throws InvalidArgument "invalid SO(3) architecture at '<token>': <rule>".
  [[nodiscard]] static Architecture parse(std::string_view text);
  /// True when `text` names an SO(3) layer (s2lift, so3conv or so3pool) anywhere: the router's test for
  /// "this string belongs to this parser". Does not validate.
  [[nodiscard]] static bool looks_like_so3(std::string_view text);

  [[nodiscard]] const std::vector<LayerSpec>& layers() const { return layers_; }
  /// Index of the so3pool layer.
  [[nodiscard]] std::size_t pool_index() const { return pool_; }
  /// True when a relu acts on an SO(3) feature map (before so3pool): the pooled integrand then has a cusp
  /// and the default grid is finer (SO3_MATH.md §4.2).
  [[nodiscard]] bool has_relu_before_pool() const;
  /// Canonical text with every key spelled out, e.g. `s2lift:w=1:b=0,erf,so3pool,dense:w=1:b=0`.
  [[nodiscard]] std::string canonical() const;

 private:
  std::vector<LayerSpec> layers_;
  std::size_t pool_ = 0;
};

}  // namespace eqntk::so3
