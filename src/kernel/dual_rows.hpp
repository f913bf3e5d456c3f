// Vectorised dual activations over a contiguous run of entries that share the x-side variance q1
// (one (i, j) slab of a rotation block: every (i', j') for a fixed t). Private to the kernel engine.
#pragma once

#include <cstdint>

#include "eqntk/kernel/architecture.hpp"

namespace eqntk::kernel::detail {

/// For o in [0, n): with c = kin[o], q2 = q2v[o],
///   kout[o] = Σ(q1, q2, c),  tout[o] = Σ̇(q1, q2, c) · tin[o].
/// kin may alias kout and tin may alias tout (in place); tin may alias kin (Θ = K after a first layer).
/// Agrees with the scalar kernel::dual() to within an ulp or so of atan2 (SLEEF u10).
void dual_slab(LayerKind kind, double q1, const double* q2v, const double* kin, const double* tin, double* kout,
               double* tout, std::int64_t n);

}  // namespace eqntk::kernel::detail
