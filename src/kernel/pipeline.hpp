// The spatial part of the fast engine (private to src/kernel): the CPU executor of a kernel::Plan,
// compiled once per instruction-set level and chosen at run time.
//
// Layout: pipeline_impl.cpp holds the executor loop (every block B_h through plan.units, the observer, the
// readout value); units/planes.inc the plane storage and window sums; units/<kind>.inc one file per unit
// kind with its step (linear, activation, avgpool, res, readout). pipeline.cpp holds the instruction-set
// choice and Workspace::reserve. The diagonal-only chain (PairKernel::diagonal, pair_kernel.cpp) takes the
// other section of the same unit files.
//
// One block B_h (h ∈ G) is pushed through the units plane by plane: a plane is the (i', j') matrix of
// one x-side position t = (i, j). For output slab i (all j), pass A sums the q input slabs i+a into a mid
// slab that stays in L2; pass B then builds each output plane from q mid planes. A nonlinearity between
// two layers is applied lazily, in place, to each input slab just before its first use; the plan's
// fusable last layer (Plan::fusable_last) hands each output plane straight to its nonlinearity and the
// pooled sums, so its output is never stored — unless a self chain is being recorded or an observer wants
// every state: then each state is materialised. An avgpool averages the stored block over cells, a res
// block saves its input block and adds it back at its end, the readout sums the stored block.
#pragma once

#include <cstddef>
#include <vector>

#include "eqntk/kernel/pair_kernel.hpp"
#include "isa.hpp"

namespace eqntk::kernel::detail {

/// Scratch memory of one PairKernel. Planes are stored with rows padded by `pad` columns on each side
/// (units/planes.inc); every plane buffer has `guard` spare doubles before and after it.
struct Workspace {
  std::int64_t pad = 0;    // largest half-width p of the network's windows
  std::int64_t guard = 0;  // ≥ pad
  bool mixed = false;      // float storage of the planes (Precision::mixed), double arithmetic
  // Plane storage in bytes, typed on use by at<S>() (double, or float when mixed).
  std::vector<std::byte> block[4];        // two (K, Θ) pairs of full blocks: current input and next output
  std::vector<std::byte> mid_k, mid_t;    // pass-A planes (a ring of q, or a whole slab for circular)
  std::vector<std::byte> plane_k, plane_t;  // one output plane
  template <class S>
  [[nodiscard]] S* at(std::vector<std::byte>& v) const {
    return reinterpret_cast<S*>(v.data()) + guard;
  }
  std::vector<double> x2_padded;         // the x' channels as padded planes
  std::vector<double> in_a, in_b, out_a, out_b;  // padded per-position roots of the x' variance maps
  std::vector<double> obs_k, obs_t;      // unpadded copies for observers
  std::vector<double> pool_sum;          // avgpool: the sum of one cell's input planes
  std::vector<std::vector<std::byte>> saved;  // res: the block's input, K in [2n] and Θ in [2n + 1] for slot n
  /// Sizes every buffer for `plan` (its Linear, AvgPool and ResBegin units, max_p, input).
  void reserve(const Plan& plan, bool mixed_precision);
};

/// The readout value (before the dense head) of the spatial stages for one pair: gpool/gap = the mean over
/// the blocks h and t, t' of the post-activation kernels at the readout; flatten (only after an avgpool) =
/// the mean over t of the e-block diagonal. Preconditions as PairKernel::evaluate; `plan` = compile(network),
/// not diagonal_only.
/// With `record` (then sx, sx2 and *record are one object, the self pair x = x2), the variance map of
/// every spatial nonlinearity is taken from the e-block diagonal of this very run and stored in record->var
/// before its first use: the self chain of networks with avgpool (MATH.md §10).
using SpatialFn = KernelValue (*)(const Plan& plan, const data::ImageView& x, const SelfChain& sx, const data::ImageView& x2,
                                  const SelfChain& sx2, Workspace& ws, const BlockObserver* observer,
                                  SelfChain* record);

/// The implementation for `isa` (isa.hpp: best_isa()).
[[nodiscard]] SpatialFn spatial_for(Isa isa);

namespace isa_baseline {
KernelValue spatial(const Plan&, const data::ImageView&, const SelfChain&, const data::ImageView&, const SelfChain&, Workspace&,
                    const BlockObserver*, SelfChain*);
}
namespace isa_avx2 {
KernelValue spatial(const Plan&, const data::ImageView&, const SelfChain&, const data::ImageView&, const SelfChain&, Workspace&,
                    const BlockObserver*, SelfChain*);
}
namespace isa_avx512 {
KernelValue spatial(const Plan&, const data::ImageView&, const SelfChain&, const data::ImageView&, const SelfChain&, Workspace&,
                    const BlockObserver*, SelfChain*);
}

}  // namespace eqntk::kernel::detail
