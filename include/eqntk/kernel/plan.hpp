// A network compiled into layer units: what every executor of the fast recursion runs (the CPU engine,
// kernel/pair_kernel.hpp; the OpenCL executor, gpu/pair_executor.hpp). The reference engine
// (kernel/reference_kernel.hpp) does not use it: it is the independent check.
//
// One unit per spatial stage of kernel::Network (before the readout), then the readout; the dense head
// after it is kernel::apply_head. Each unit carries every parameter its recursion needs, precomputed once:
// sizes in and out, σ's, the padding, and how its output's pad columns must be prepared for the unit that
// reads it next. The recursions (MATH.md §3–§5, §10), for the blocks B_h(t, t') = K_{(t,e),(t',h)}, h ∈ G:
//   Linear      K' = σ_w²/q² S_h(Σ) + σ_b²,  Θ' = σ_w²/q² S_h(Σ̇⊙Θ) + K'   (first layer: Σ from the images, Θ⁰ = 0)
//   Activation  (K, Θ) → (Σ, Σ̇⊙Θ) = dual(kind; var(x), var(x'), K), var = the self pairs' variance maps
//   AvgPool     B'(T, T') = (1/s⁴) Σ_{t∈T} Σ_{t'∈T'} B(t, t')  (for K and Θ)
//   ResBegin    save the block's input (post-activation K and Θ) in slot `slot`
//   ResEnd      K' = K + K_saved, Θ' = Θ + Θ_saved
//   Readout     gpool/gap: (1/|G|) Σ_h mean_{t,t'} B_h;  flatten: mean_t B_e(t, t)
// What a unit needs from its input, beyond the previous state: Linear reads the state's pads (zero or
// wrapped, as `wrap_out` of the unit that produced it says); Activation reads both images' variance maps
// (SelfChain::var[stage]); AvgPool needs off-diagonal entries (the plan is then not diagonal_only and self
// chains run the full recursion, MATH.md §10); ResEnd reads the slot its ResBegin saved.
//
// Adding a layer kind touches:
//   the grammar    its LayerKind (kernel/architecture.hpp), its name, options and order rules
//                  (src/kernel/architecture.cpp);
//   the shapes     its Stage (src/kernel/network.cpp);
//   the plan       a unit struct here, added to `Unit`, filled by compile() (src/kernel/plan.cpp);
//   the CPU        one new file src/kernel/units/<kind>.inc with both of its steps, the plane step and the
//                  diagonal-only step (see units/linear.inc), included once by src/kernel/pipeline_impl.cpp
//                  and once by src/kernel/pair_kernel.cpp; scratch memory, if it needs any, in
//                  Workspace::reserve (src/kernel/pipeline.cpp);
//   the GPU        its step in the OpenCL executor (src/gpu/pair_executor.cpp, src/gpu/kernels.cl);
//   the check      its reference (src/kernel/reference_kernel.cpp, independent of the plan) and the tests
//                  (mpi_tests/unit/test_plan.cpp, the fast-vs-reference tests).
#pragma once

#include <cstddef>
#include <cstdint>
#include <variant>
#include <vector>

#include "eqntk/kernel/head.hpp"
#include "eqntk/kernel/network.hpp"

namespace eqntk::kernel {
namespace unit {

/// lift / gconv / conv (`first`: reads the images, lift or a CNN's first conv).
struct Linear {
  std::size_t stage = 0;
  bool first = false;
  int q = 1, p = 0;
  Padding pad = Padding::same;
  std::int64_t ih = 0, iw = 0, oh = 0, ow = 0;
  double scale = 1.0;  // σ_w² / q²
  double bias = 0.0;   // σ_b²
  bool wrap_out = false;  // the next Linear unit (which reads this state) is circular: pads hold wrapped values
};

/// relu / erf / id on a spatial state (in place: the size is unchanged).
struct Activation {
  std::size_t stage = 0;  // SelfChain::var[stage] holds each image's variance map (h×w)
  LayerKind kind = LayerKind::id;
  std::int64_t h = 0, w = 0;
  bool wrap_out = false;
};

/// avgpool with cell size s.
struct AvgPool {
  std::size_t stage = 0;
  int s = 2;
  std::int64_t ih = 0, iw = 0, oh = 0, ow = 0;
  bool wrap_out = false;
};

/// Start of a res block: the state is saved in `slot` (0, 1, … in order of the blocks' starts).
struct ResBegin {
  std::size_t stage = 0;
  int slot = 0;
  std::int64_t h = 0, w = 0;
};

/// End of a res block: the state saved in `slot` is added.
struct ResEnd {
  std::size_t stage = 0;
  int slot = 0;
  std::int64_t h = 0, w = 0;
  bool wrap_out = false;
};

/// gpool / gap / flatten of the h×w state before it.
struct Readout {
  std::size_t stage = 0;
  LayerKind kind = LayerKind::gpool;
  std::int64_t h = 0, w = 0;
};

}  // namespace unit

using Unit = std::variant<unit::Linear, unit::Activation, unit::AvgPool, unit::ResBegin, unit::ResEnd, unit::Readout>;

/// The compiled form of a Network.
struct Plan {
  std::vector<Unit> units;      ///< spatial units in stage order; the last one is the Readout
  std::vector<HeadLayer> head;  ///< the layers after the readout (kernel::apply_head)
  group::PointGroup group = group::PointGroup::C1;
  data::InputShape input;             ///< the images' shape (the first Linear unit reads them)
  int blocks = 1;               ///< blocks B_h a pair needs: |G|, or 1 (h = e) for a flatten readout
  bool diagonal_only = false;   ///< flatten without avgpool: only same-position entries (MATH.md §4)
  bool self_full = false;       ///< an avgpool: self chains run the full recursion (MATH.md §10)
  int saved_slots = 0;          ///< res blocks (each saves one K and one Θ block)
  std::int64_t max_pixels = 1;  ///< largest h·w of any spatial state, input included
  int max_p = 0;                ///< largest window half-width p
  /// Index in `units` of the last Linear unit when only nonlinearities stand between it and a gpool/gap
  /// readout: an executor may then feed its output straight into that nonlinearity and the pooled sums
  /// without storing it. `npos` otherwise.
  std::size_t fusable_last = npos;
  static constexpr std::size_t npos = static_cast<std::size_t>(-1);
  /// The number of Linear units (the "layers" of ns per entry-layer).
  [[nodiscard]] int linear_units() const;
};

/// Compiles `net` (already validated by its constructor; does not throw for a valid Network).
[[nodiscard]] Plan compile(const Network& net);

}  // namespace eqntk::kernel
