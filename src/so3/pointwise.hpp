// The pointwise recursion of SO3_MATH.md §3 (theorem) over the grid points of one β slice, vectorised with
// SLEEF and compiled once per instruction-set level (pointwise_impl.cpp), chosen at run time. Private to
// src/so3.
#pragma once

#include <cstdint>

namespace eqntk::so3::detail {

/// One step of the recursion with its constants bound for one pair. ops[0] is always the lift.
struct PointOp {
  enum class Type { lift, conv, relu, erf, id } type = Type::id;
  double w2 = 1.0, b2 = 0.0;  // linear layers: σ², b²
  double q1 = 0.0, q2 = 0.0;  // nonlinearities: the two (constant) pre-activation variances
};

/// For the n values c[0..n) of the correlation: runs K_1 = σ1² c + b1², Θ_1 = K_1 through ops[1..nops) and
/// adds Σ_p S_D(p) to sum_k and Σ_p (Ṡ_D Θ_D)(p) to sum_t. The duals are those of kernel::relu_dual /
/// erf_dual (same collinear snap) in the atan2 forms of SO3_MATH.md §5 (§6.6: atan2 with clamped square
/// roots, not acos of a rounded correlation), evaluated with SLEEF's 3.5-ulp atan2; away from |ρ| = 1 they
/// agree with the scalar versions to rounding. The sums are taken in a fixed order per instruction set.
using ChainFn = void (*)(const PointOp* ops, int nops, const double* c, std::int64_t n, double& sum_k, double& sum_t);

/// The same recursion in place on whole grid functions, for band-limited networks (SO3_MATH.md §4.7), whose
/// chain is cut at every band-limited so3conv. On entry k[0..n) holds what enters ops[0]: the correlation c
/// when ops[0] is the lift (t is then ignored and set to Θ = K), else the projected kernels P[S] in k and
/// P[Ṡ⊙Θ] in t with ops[0] the so3conv. Runs ops[0..nops), leaves S, Ṡ⊙Θ (or K, Θ) in k, t and adds their
/// sums to sum_k, sum_t (in a fixed order per instruction set). Same duals as ChainFn.
using GridChainFn = void (*)(const PointOp* ops, int nops, double* k, double* t, std::int64_t n, double& sum_k,
                             double& sum_t);

/// The implementation for the instruction set the planar engine uses too: kernel::detail::best_isa()
/// (kernel/isa.hpp), the widest of AVX-512, AVX2 and baseline x86-64 unless EQNTK_ISA narrows it.
[[nodiscard]] ChainFn chain_for_cpu();
/// As chain_for_cpu, for the in-place variant (the same instruction set).
[[nodiscard]] GridChainFn grid_chain_for_cpu();

namespace isa_baseline {
void chain(const PointOp*, int, const double*, std::int64_t, double&, double&);
void grid_chain(const PointOp*, int, double*, double*, std::int64_t, double&, double&);
}
namespace isa_avx2 {
void chain(const PointOp*, int, const double*, std::int64_t, double&, double&);
void grid_chain(const PointOp*, int, double*, double*, std::int64_t, double&, double&);
}
namespace isa_avx512 {
void chain(const PointOp*, int, const double*, std::int64_t, double&, double&);
void grid_chain(const PointOp*, int, double*, double*, std::int64_t, double&, double&);
}

}  // namespace eqntk::so3::detail
