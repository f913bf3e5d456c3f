// The reference kernel engine: a direct, deliberately naive transcription of MATH.md §3–§4
// (Theorem 4.1 of Misof, Kessel & Gerken) that stores the FULL kernel matrix of every layer —
// all 16 rotation blocks of a p4 state — and evaluates every window sum, s-sum and padding rule
// term by term. It shares nothing with the fast engine (PairKernel) except the scalar dual
// activations of dual.hpp and the shapes of Network, so that agreement of the two is evidence
// for both. It exists for tests and benchmarks: clarity beats speed.
//
// Glossary: g = (t, r) a group element (pixel t = (i, j), label r: the index of an element of the point
// group G in group::elements(G), MATH.md §10), q = filter size, p = (q−1)/2,
// S = the filter-rotation support (the s-sum of a group conv runs over S; MATH.md §5.6),
// n = rotations·h·w the number of indices g of one side of a state.
#pragma once

#include <cstdint>
#include <vector>

#include "eqntk/data/image.hpp"
#include "eqntk/kernel/network.hpp"
#include "eqntk/kernel/pair_kernel.hpp"

namespace eqntk::kernel {

/// The full kernel matrix of one layer for one image pair (x, x2).
///
/// Index order: an index g = (r, i, j) is flattened as (r·h + i)·w + j, r ∈ [0, rotations) the label of a
/// group element (rotations = |G|);
/// entry (g, g') is nngp[g·n + g'] with n = rotations·h·w, i.e. the layout
/// [(r·h+i)·w+j][(r'·h+i')·w+j'] (j' fastest). p4 states have rotations = 4, CNN states and the
/// raw input have rotations = 1 (then r = r' = 0).
/// After a linear layer the state holds (K, Θ); after a nonlinearity it holds (Σ, Σ̇⊙Θ) — the same
/// convention as the fast engine's BlockView. For p4 states the fast engine's rotation block
/// B_Δ(t, t') equals K_{(t,0),(t',Δ)} = at_k(0, i, j, Δ, i2, j2).
struct FullState {
  int rotations = 1;
  std::int64_t h = 0;
  std::int64_t w = 0;
  std::vector<double> nngp;  // n² entries
  std::vector<double> ntk;   // n² entries

  /// Number of indices g on one side: rotations·h·w.
  [[nodiscard]] std::int64_t n() const { return static_cast<std::int64_t>(rotations) * h * w; }
  /// Flat index of g = (r, i, j).
  [[nodiscard]] std::int64_t flat(int r, std::int64_t i, std::int64_t j) const { return (r * h + i) * w + j; }
  /// Flat index of the entry (g, g') = ((r, i, j), (r2, i2, j2)).
  [[nodiscard]] std::int64_t index(int r, std::int64_t i, std::int64_t j, int r2, std::int64_t i2,
                                   std::int64_t j2) const {
    return flat(r, i, j) * n() + flat(r2, i2, j2);
  }
  [[nodiscard]] double at_k(int r, std::int64_t i, std::int64_t j, int r2, std::int64_t i2, std::int64_t j2) const {
    return nngp[static_cast<std::size_t>(index(r, i, j, r2, i2, j2))];
  }
  [[nodiscard]] double at_theta(int r, std::int64_t i, std::int64_t j, int r2, std::int64_t i2, std::int64_t j2) const {
    return ntk[static_cast<std::size_t>(index(r, i, j, r2, i2, j2))];
  }
};

/// Direct evaluation of the NNGP K(x, x2) and NTK Θ(x, x2) of a network (MATH.md §3, §4).
///
/// Every layer is computed from its definition over the full index space:
///   input   K⁰(p, p') = (1/C) Σ_c x_c(p) x2_c(p'),  Θ⁰ = 0;
///   lift    K_{(t,g),(t',g')} = σ_w²/q² Σ_{y∈W} K⁰(t + A_g y, t' + A_{g'} y) + σ_b²,  Θ = K;
///   gconv   K_{(t,g),(t',g')} = σ_w²/(|S| q²) Σ_{s∈S} Σ_{y∈W} Σ_{(t+A_g y, gs),(t'+A_{g'} y, g's)} + σ_b²,
///           Θ = K + σ_w²/(|S| q²) Σ_{s∈S} Σ_{y∈W} (Σ̇⊙Θ)_{(same pair)};
///   conv    K(t,t') = σ_w²/q² Σ_y Σ(t+y, t'+y) + σ_b²,  Θ = K + σ_w²/q² Σ_y (Σ̇⊙Θ)(t+y, t'+y);
///   avgpool K'(T,T') = (1/s⁴) Σ_{t∈T} Σ_{t'∈T'} K(t,t') for every label pair (same for Θ);
///   res     the block's input saved, its body run, K' = K + K_F, Θ' = Θ + Θ_F;
/// with A_g = R^r M^m (group/point_group.hpp) and the padding rules of MATH.md §1: `same` drops out-of-image terms,
/// `circular` wraps each coordinate, `valid` maps output pixel t to input pixel t + (p, p).
/// Nonlinearities act entry-wise through kernel::dual with q1 = K_{g,g}(x,x), q2 = K_{g',g'}(x2,x2)
/// taken from this engine's own full recursions of the pairs (x, x) and (x2, x2), run in lockstep.
/// Readouts: gpool/gap = mean over all (g, g'); flatten = mean over the diagonal g = g'. The dense head
/// applies K' = σ_w² Σ + σ_b², Θ' = K' + σ_w² Σ̇⊙Θ, and its nonlinearities use the pooled self-kernels
/// of (x, x) and (x2, x2).
///
/// Cost: three full recursions (pair and both self-pairs) of O(n_out² · |S| · q²) per layer, memory
/// 2·n² doubles per state (n = 4·h·w for p4 layers), about eight states alive at once: ~130 MB for a
/// 16×16 p4 image, ~1.2 GB at 28×28, so keep it to small images. A 9×9 image at depth 3 with k = 3
/// takes about 60 ms per pair (Release). Thread safety: const and stateless; may be shared between
/// threads.
class ReferenceKernel {
 public:
  /// The s-sums of the group convolutions run over all of G.
  explicit ReferenceKernel(Network net);
  /// `filter_rotations` is the support S ⊆ G of the group convolutions' s-sum (normalised by |S|), as
  /// indices into group::elements(net.group()) (for p4, index r is the rotation by r quarter turns).
  /// Any non-empty S gives the same kernel at infinite width (MATH.md §5.6).
  /// Throws InvalidArgument when S is empty, holds a value outside 0..|G|−1, or repeats a value.
  ReferenceKernel(Network net, std::vector<int> filter_rotations);

  [[nodiscard]] const Network& network() const { return net_; }

  /// K(x, x2) and Θ(x, x2) after the whole network (readout and head included).
  /// Precondition: both shapes equal the network's input shape (throws InvalidArgument otherwise).
  [[nodiscard]] KernelValue evaluate(const data::ImageView& x, const data::ImageView& x2) const;

  /// The full state of the pair (x, x2) after every stage s = 0 .. readout_stage()−1 (element s is the
  /// state after stage s; the readout and head are not included). Same preconditions as evaluate().
  [[nodiscard]] std::vector<FullState> trace(const data::ImageView& x, const data::ImageView& x2) const;

 private:
  struct Chains;
  void run_spatial(const data::ImageView& x, const data::ImageView& x2, Chains& chains,
                   std::vector<FullState>* record) const;
  void check_input(const data::ImageView& x) const;

  Network net_;
  std::vector<int> filter_rotations_;
};

}  // namespace eqntk::kernel
