// Architecture strings (MATH.md §9, §10): parsing and order validation.
//
// An architecture is a comma-separated list of layers `name[:key=value]...` or `res(<layers>)` (the
// grammar of kernel/grammar.hpp), e.g.
//   lift:k=3:pad=same,relu,gconv:k=3:pad=same,relu,gpool,dense
//   lift:k=3:group=p4m,relu,gconv:k=3,relu,avgpool:s=2,gconv:k=3,relu,gpool,dense
//   lift:k=3,relu,res(gconv:k=3,relu,gconv:k=3),relu,gpool,dense
// Keys: k (odd filter size), pad (same|valid|circular), w (σ_w), b (σ_b). Defaults k=3, pad=same,
// w=1, b=0. Conv-type layers take k, pad, w, b; `lift` also takes group (C1, C2, C4, D1, D2, D4, or p4 = C4,
// p4m = D4; default C4) which gconv inherits; `avgpool` takes s (cell size, integer ≥ 2, default 2); dense
// takes w, b; other layers take no keys.
//
// parse() checks everything that does not depend on the input shape (the order rules below);
// kernel::Network checks the rest (square images for group layers, sizes left by `valid`
// padding, cell sizes that divide the feature map, res bodies that keep the size).
// Order rules, each reported with the offending token:
//   - the first spatial layer on the input is `lift` (group network) or `conv` (CNN);
//   - `gconv` needs a preceding `lift`; `conv` cannot follow `lift`; `lift` only once, on the input;
//   - `group=` only on lift, and a known group;
//   - `avgpool` needs spatial feature maps (after lift or conv) and comes before the readout;
//   - `res(<layers>)` needs spatial feature maps; its body starts with gconv (after lift) or conv, keeps the
//     state kind and contains no lift, avgpool, readout or dense (nested res blocks are allowed);
//   - a nonlinearity needs a preceding linear layer (lift/conv/gconv/dense) and not another nonlinearity;
//   - exactly one readout (`gpool` after lift, `gap` after conv, `flatten` after either or on the input),
//     after which only `dense` and nonlinearities may follow;
//   - `dense` needs a readout before it, and the network ends with a `dense` (optionally followed by
//     one nonlinearity) so that its output is a single scalar.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "eqntk/group/point_group.hpp"

namespace eqntk::kernel {

/// `res_end` is internal: kernel::Network marks the end of a res block with it; it is never parsed.
enum class LayerKind { lift, gconv, conv, relu, erf, id, gpool, gap, flatten, dense, avgpool, res, res_end };
enum class Padding { same, valid, circular };

/// One parsed layer. `k`, `pad` are meaningful for lift/gconv/conv; `w`, `b` for those and dense.
struct LayerSpec {
  LayerKind kind = LayerKind::id;
  int k = 3;
  Padding pad = Padding::same;
  double w = 1.0;  // σ_w
  double b = 0.0;  // σ_b
  group::PointGroup group = group::PointGroup::C4;  // lift (and, by inheritance, gconv)
  int s = 2;                                         // avgpool cell size
  std::vector<LayerSpec> body;                       // res: the block's layers
  std::string token;  // the text it was parsed from, for messages
};

[[nodiscard]] std::string_view to_string(LayerKind kind);
[[nodiscard]] std::string_view to_string(Padding pad);
[[nodiscard]] bool is_spatial_linear(LayerKind kind);  // lift, gconv, conv
[[nodiscard]] bool is_nonlinearity(LayerKind kind);     // relu, erf, id
[[nodiscard]] bool is_readout(LayerKind kind);          // gpool, gap, flatten

/// A validated layer sequence. Construct with parse().
class Architecture {
 public:
  /// Parses and order-validates `text`. Throws InvalidArgument naming the token and the rule.
  [[nodiscard]] static Architecture parse(std::string_view text);

  [[nodiscard]] const std::vector<LayerSpec>& layers() const { return layers_; }
  /// True when the network has a lifting layer (group CNN), false for a CNN/MLP.
  [[nodiscard]] bool is_group_network() const;
  /// The lift's group; C1 for a CNN/MLP (one block).
  [[nodiscard]] group::PointGroup group() const;
  /// Canonical text with every key spelled out, e.g. `lift:k=3:pad=same:w=1:b=0,relu,...`. The group is
  /// spelled only when it is not C4 (`lift:k=3:pad=same:w=1:b=0:group=D4`), so that p4 networks keep the
  /// text they always had; `avgpool:s=2`; `res(<canonical body>)`.
  /// Two strings with the same canonical form define the same kernel.
  [[nodiscard]] std::string canonical() const;

 private:
  std::vector<LayerSpec> layers_;
};

}  // namespace eqntk::kernel
