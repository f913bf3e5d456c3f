// The fast kernel engine: NNGP and NTK of one image pair (MATH.md §3–§5, §10).
//
// Group networks run on the |G|-block representation B_h(t,t') = K_{(t,e),(t',h)}, h ∈ G (§5.1, §10;
// block index = the index of h in group::elements(G), so p4's block Δ is the rotation by Δ): each block
// evolves on its own through every layer, with separable window sums along A_h (§5.3). CNNs use the same
// code with the one block h = e. avgpool averages each stored block over cells, res saves a block and adds
// it back. `flatten` readouts without an avgpool only ever need same-position entries and run on the
// diagonal-only path, O(HW·q²) per pair; after an avgpool, flatten reads the e-block diagonal. Per-image
// variance maps (the self-kernel diagonals feeding each nonlinearity) come from a SelfChain computed once
// per image and shared by every pair: from the diagonal-only recursion, or, when the network has an
// avgpool (whose pooled diagonal needs off-diagonal self entries), from the self pair's full recursion.
// Both paths run the network compiled once into a kernel::Plan (plan.hpp), one unit step per layer kind.
//
// Thread safety: a PairKernel owns its workspace; use one per thread. SelfChain is read-only in
// evaluate() and may be shared. Results are a deterministic function of (network, x, x2): the same
// pair gives bitwise the same value on any thread, rank or process grid; K(x,x2) and K(x2,x) agree
// only to rounding, so callers that need symmetry evaluate one canonical order.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "eqntk/data/image.hpp"
#include "eqntk/kernel/head.hpp"
#include "eqntk/kernel/network.hpp"
#include "eqntk/kernel/plan.hpp"

namespace eqntk::kernel {


/// Per-image data every pair needs, computed once per image by PairKernel::self_chain.
struct SelfChain {
  /// var[s], for each stage s that is a spatial nonlinearity: the pre-activation variance map
  /// K_{(t,r),(t,r)}(x,x) over t (row-major h_in×w_in; independent of r). Empty for other stages.
  std::vector<std::vector<double>> var;
  /// head_var[s], for each head nonlinearity s: the pooled pre-activation K(x,x). 0 for other stages.
  std::vector<double> head_var;
  /// The kernel of the pair (x, x) itself (the Gram diagonal).
  KernelValue self;
};

/// One block B_h of a spatial state, row-major [i][j][i'][j'] over h×w positions on each side.
/// After a linear layer it holds (K, Θ); after a nonlinearity (Σ, Σ̇⊙Θ).
struct BlockView {
  std::int64_t h = 0;
  std::int64_t w = 0;
  const double* nngp = nullptr;
  const double* ntk = nullptr;
  [[nodiscard]] std::int64_t index(std::int64_t i, std::int64_t j, std::int64_t i2, std::int64_t j2) const {
    return ((i * w + j) * h + i2) * w + j2;
  }
};

/// Storage precision of the spatial blocks: float64 everywhere (default), or float32 storage of the
/// covariance planes with all arithmetic (window sums, dual activations, pooling) in float64 — half the
/// memory traffic, kernels accurate to ~1e-6 relative instead of ~1e-15.
enum class Precision { float64, mixed };

/// Called after every spatial stage s (up to, not including, the readout) for every block (its index in
/// group::elements(network.group()); `int delta` for p4's rotation offset Δ).
using BlockObserver = std::function<void(std::size_t stage, int delta, const BlockView&)>;

namespace detail {
struct Workspace;
using SpatialFn = KernelValue (*)(const Plan&, const data::ImageView&, const SelfChain&, const data::ImageView&,
                                  const SelfChain&, Workspace&, const BlockObserver*, SelfChain*);
}  // namespace detail

class PairKernel {
 public:
  /// Allocates the workspace for `net` (4 block buffers of max_pixels² doubles, plus two per res block,
  /// unless the network runs on the diagonal-only path).
  /// The spatial part runs on the widest instruction set the CPU supports (AVX-512, AVX2 or baseline
  /// x86-64, chosen once per process; EQNTK_ISA=baseline|avx2 narrows it). Different levels agree to a few
  /// ulps, not bitwise: runs that must match bitwise use the same level.
  explicit PairKernel(Network net, Precision precision = Precision::float64);
  ~PairKernel();
  PairKernel(PairKernel&&) noexcept;
  PairKernel& operator=(PairKernel&&) noexcept;

  [[nodiscard]] const Network& network() const { return net_; }

  /// Variance maps, head variances and the self-kernel of image x. Precondition: x.shape() equals
  /// the network's input shape (throws InvalidArgument otherwise).
  [[nodiscard]] SelfChain self_chain(const data::ImageView& x);

  /// K(x, x2) and Θ(x, x2). sx, sx2 must be self_chain(x), self_chain(x2) of this network.
  [[nodiscard]] KernelValue evaluate(const data::ImageView& x, const SelfChain& sx, const data::ImageView& x2,
                                     const SelfChain& sx2);

  /// As evaluate(), calling `observer` with every block of every spatial stage (tests, diagnostics).
  /// Not available on the diagonal-only path (throws InvalidArgument for flatten readouts).
  [[nodiscard]] KernelValue evaluate_observed(const data::ImageView& x, const SelfChain& sx, const data::ImageView& x2,
                                              const SelfChain& sx2, const BlockObserver& observer);

 private:
  KernelValue spatial(const data::ImageView& x, const SelfChain& sx, const data::ImageView& x2, const SelfChain& sx2,
                      const BlockObserver* observer);
  KernelValue diagonal(const data::ImageView& x, const SelfChain* sx, const data::ImageView& x2, const SelfChain* sx2,
                       SelfChain* record);
  KernelValue head(KernelValue pooled, const SelfChain* sx, const SelfChain* sx2, SelfChain* record) const;
  void check_input(const data::ImageView& x) const;

  Network net_;
  Plan plan_;  // net_ compiled: what both the spatial and the diagonal-only chain run
  std::unique_ptr<detail::Workspace> ws_;
  detail::SpatialFn spatial_;
};

}  // namespace eqntk::kernel
