// The instruction-set level of the per-ISA kernels (private to src): the planar pipeline and the SO(3)
// pointwise chains are each compiled once per level and pick theirs with best_isa().
#pragma once

namespace eqntk::kernel::detail {

enum class Isa { baseline, avx2, avx512 };

/// The widest level the CPU supports (avx2 needs FMA, avx512 needs F and DQ), chosen once, unless EQNTK_ISA
/// (baseline|avx2|avx512) in the environment asks for a narrower one, e.g. for bitwise-identical kernels
/// on mixed clusters.
[[nodiscard]] Isa best_isa();
[[nodiscard]] const char* isa_name(Isa isa);

}  // namespace eqntk::kernel::detail
