// Architecture strings of SO(3)-equivariant networks on spherical signals (SO3_MATH.md §2).
//
// Same syntax as the planar language (kernel/architecture.hpp): comma-separated layers `name[:key=value]...`,
//   s2lift:w=1.3:b=0.2,erf,so3conv:w=1.1:b=0.1,erf,so3pool,dense:w=0.9:b=0.05
// Layers:
//   s2lift   S² → SO(3) lifting convolution with a global (white-noise) filter; keys w (σ_w), b (σ_b), L
//   so3conv  global SO(3) convolution; keys w, b, L
//   so3pool  Haar average over SO(3) (the readout); no keys
//   relu, erf, id   nonlinearities; no keys
//   dense    fully connected layer on pooled features; keys w, b
// Defaults w = 1, b = 0. Only global filter support exists (the only case of the continuum reduction,
// SO3_MATH.md §3), so there is no filter-size key: `k=`, `pad=` are rejected, as are the planar layers
// (lift, gconv, conv, gpool, gap, flatten).
//
// Optional band limits (SO3_MATH.md §3 "band-limit truncation", §4.7): `L=<n>` on s2lift or so3conv keeps
// only Wigner degrees l < n of that layer's output, as the authors' finite layers and kernel_fn do. Absent
// means the continuum network (no truncation; the default and the exact reduction of §3). The authors' demo
// (input L = 6 truncated to 3, then 3) reads
//   s2lift:L=3,erf,so3conv:L=3,erf,so3pool,dense
//   - s2lift:L=L1 (1 ≤ L1 ≤ the input's L, checked by Network) low-passes the inputs to l < L1: exact;
//   - so3conv:L=Lk (Lk ≥ 1; larger than the input's L is allowed, the grid then grows) projects the
//     post-activation kernels S, Ṡ⊙Θ onto l < Lk, and the next layer's variances become the projected
//     auto-kernels at the identity. This costs per pair about four extra grid transforms per such layer and
//     keeps the whole grid in memory (n_β N² doubles per function); the kernel is then no longer an
//     SO(3)-averaged MLP kernel. Note that Lk equal to the input's L still truncates: a nonlinearity's output
//     is not band-limited (the authors' (6,6) network is +6 % over the continuum on glycine, §3).
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

/// One parsed layer; `w`, `b` are meaningful for s2lift, so3conv and dense, `band_limit` for s2lift and so3conv.
struct LayerSpec {
  LayerKind kind = LayerKind::id;
  double w = 1.0;      // σ_w
  double b = 0.0;      // σ_b
  int band_limit = 0;  // `L=`: output band limit (degrees l < band_limit); 0 = none, the continuum
  std::string token;  // the text it was parsed from, for messages
};

[[nodiscard]] std::string_view to_string(LayerKind kind);
[[nodiscard]] bool is_linear(LayerKind kind);        // s2lift, so3conv, dense
[[nodiscard]] bool is_nonlinearity(LayerKind kind);  // relu, erf, id
/// The planar kind of a nonlinearity (for kernel::dual, kernel::dual_variance). Precondition: is_nonlinearity.
[[nodiscard]] kernel::LayerKind activation(LayerKind kind);

/// A validated SO(3) layer sequence. Construct with parse(). (Whether an s2lift band limit fits the input is
/// checked by Network, which knows the input's L.)
class Architecture {
 public:
  /// Parses and order-validates `text`. Throws InvalidArgument "invalid SO(3) architecture at '<token>': <rule>",
  /// also for an `L=` that is not an integer in [1, 2048] or is given to a layer other than s2lift/so3conv.
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
  /// True when some layer has an `L=` key.
  [[nodiscard]] bool has_band_limits() const;
  /// Canonical text with every key spelled out, e.g. `s2lift:w=1:b=0,erf,so3pool,dense:w=1:b=0`; a band limit
  /// is appended only when given (`so3conv:w=1:b=0:L=3`), so continuum architectures keep their text.
  [[nodiscard]] std::string canonical() const;

 private:
  std::vector<LayerSpec> layers_;
  std::size_t pool_ = 0;
};

}  // namespace eqntk::so3
