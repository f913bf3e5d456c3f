// Architecture strings (MATH.md §9): parsing and order validation.
//
// An architecture is a comma-separated list of layers `name[:key=value]...`, e.g.
//   lift:k=3:pad=same,relu,gconv:k=3:pad=same,relu,gpool,dense
// Keys: k (odd filter size), pad (same|valid|circular), w (σ_w), b (σ_b). Defaults k=3, pad=same,
// w=1, b=0. Conv-type layers take k, pad, w, b; dense takes w, b; other layers take no keys.
//
// parse() checks everything that does not depend on the input shape (the order rules below);
// kernel::Network checks the rest (square images for C4 layers, sizes left by `valid` padding).
// Order rules, each reported with the offending token:
//   - the first spatial layer on the input is `lift` (p4 network) or `conv` (CNN);
//   - `gconv` needs a preceding `lift`; `conv` cannot follow `lift`; `lift` only once, on the input;
//   - a nonlinearity needs a preceding linear layer (lift/conv/gconv/dense) and not another nonlinearity;
//   - exactly one readout (`gpool` after lift, `gap` after conv, `flatten` after either or on the input),
//     after which only `dense` and nonlinearities may follow;
//   - `dense` needs a readout before it, and the network ends with a `dense` (optionally followed by
//     one nonlinearity) so that its output is a single scalar.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace eqntk::kernel {

enum class LayerKind { lift, gconv, conv, relu, erf, id, gpool, gap, flatten, dense };
enum class Padding { same, valid, circular };

/// One parsed layer. `k`, `pad` are meaningful for lift/gconv/conv; `w`, `b` for those and dense.
struct LayerSpec {
  LayerKind kind = LayerKind::id;
  int k = 3;
  Padding pad = Padding::same;
  double w = 1.0;  // σ_w
  double b = 0.0;  // σ_b
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
  /// True when the network has a lifting layer (p4 GCNN), false for a CNN/MLP.
  [[nodiscard]] bool is_group_network() const;
  /// Canonical text with every key spelled out, e.g. `lift:k=3:pad=same:w=1:b=0,relu,...`.
  /// Two strings with the same canonical form define the same kernel.
  [[nodiscard]] std::string canonical() const;

 private:
  std::vector<LayerSpec> layers_;
};

}  // namespace eqntk::kernel
