// The dense head of every kernel engine (MATH.md §3, "dense"; SO3_MATH.md uses the same head): the one
// implementation shared by the planar fast and reference engines and the SO(3) engine.
//
// After the readout the kernel of a pair is a scalar pair (K, Θ). A dense layer maps it to
//   K' = σ_w² Σ + σ_b²,  Θ' = K' + σ_w² Σ̇⊙Θ,
// and a nonlinearity to (Σ, Σ̇⊙Θ) by kernel::dual with q1, q2 the pooled self-kernels K(x,x), K(x',x') at
// the same depth.
#pragma once

#include <cstddef>
#include <vector>

#include "eqntk/kernel/architecture.hpp"

namespace eqntk::kernel {

/// A (K, Θ) pair: the kernels of one image pair, or of one layer's pooled state.
struct KernelValue {
  double nngp = 0.0;
  double ntk = 0.0;
};

/// One layer of the head: a dense layer (w2 = σ_w², b2 = σ_b²) or a nonlinearity (`activation`). `stage` is
/// the index under which the engine keeps the pooled self-kernel feeding it.
struct HeadLayer {
  std::size_t stage = 0;
  bool dense = true;
  double w2 = 1.0, b2 = 0.0;
  LayerKind activation = LayerKind::id;
};

/// Runs `v` through the head. Pair mode (record == nullptr): the nonlinearity at stage s uses
/// q1 = q1_by_stage[s], q2 = q2_by_stage[s]. Self mode (record != nullptr, the pair (x, x)): q1 = q2 = the
/// pre-activation K itself, which is stored in record[s]; q1_by_stage and q2_by_stage are not read.
[[nodiscard]] KernelValue apply_head(const std::vector<HeadLayer>& head, KernelValue v, const double* q1_by_stage,
                                     const double* q2_by_stage, double* record);

}  // namespace eqntk::kernel
