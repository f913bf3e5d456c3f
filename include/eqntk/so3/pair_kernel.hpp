// NNGP and NTK of one pair of spherical signals through an SO(3) network with global filters, by the exact
// reduction of SO3_MATH.md §3 and the algorithm of §4.3:
//
//   K_1(P) = σ1² c(P) + b1²,  Θ_1 = K_1,  q_1 = σ1² q(x) + b1²       (s2lift; c = c_{xx'}, q = q(x))
//   nonlinearity:  K ← V_φ(q, q', K),  Θ ← V_φ'(q, q', K) Θ,  q ← V_φ(q, q, q)     (pointwise on SO(3))
//   so3conv:       K ← σ² K + b²,      Θ ← K + σ² Θ,          q ← σ² q + b²
//   so3pool:       (K, Θ) ← (⟨K⟩, ⟨Θ⟩), the Haar average over the grid of network.hpp
//   head (dense, nonlinearities on the pooled scalars) as in the planar engine.
// Per pair: the cross-spectrum M^l_{mn} = (1/C) Σ_c a^c_{lm} conj(b^c_{ln}); for each β_j the Wigner sums
// S_j(m,n) = Σ_l M^l_{mn} d^l_{mn}(β_j), one c2r FFT giving c(α_a, β_j, γ_g) = (1/4π) Σ S_j e^{i(mα+nγ)}, the
// pointwise recursion and the weighted sums. Streaming over β keeps the working set at a few N² doubles.
//
// Band limits (architecture.hpp `L=`, SO3_MATH.md §3 "band-limit truncation", §4.7), the authors' model:
//   s2lift:L=L1    the cross-spectrum and q(x) keep only l < L1 (an exact input low-pass);
//   so3conv:L=Lk   K ← σ² P_Lk[K] + b², Θ ← K + σ² P_Lk[Θ], q ← σ² (P_Lk S^{xx})(e) + b², where P_L projects a
//                  function on SO(3) onto Wigner degrees < L: on each β slice f_j, after the pointwise chain,
//                  f̂^l_{mn} += (2l+1)/(8π²) w_j d^l_{mn}(β_j) (2π/N)² r2c_FORWARD(f_j)[m][n], and the next
//                  segment resynthesises Σ_l f̂^l_{mn} d^l_{mn}(β_j) by c2r as for c. Still streaming over β
//                  (one pass per segment between band-limited convs). The variances after such a layer are
//                  the projected auto-kernel at the identity, Σ_l Σ_m Ŝ^{xx,l}_{mm}, so self_chain runs the
//                  pair (x, x) on the grid, filling the variances segment by segment (the continuum scalar
//                  recursion holds within a segment). The Haar quadrature then also integrates the
//                  non-band-limited S, Ṡ⊙Θ against d^l: aliasing is negligible only on fine grids (N ≥ 4L).
// Networks without so3conv band limits take the unchanged streaming path above.
//
// Two grids (Network with a CoarseGrid, grid_choice.hpp): pooled() first synthesises c on the coarse grid
// (no pointwise chain) and takes its peak ratio max |c| / √(q(x) q(x')), q low-passed as the lift; at most
// the network's coarse_peak(), the pair is evaluated on the coarse grid, otherwise on the fine grid, each
// exactly as a single-grid network of that N would (bitwise). self_chain always uses the fine grid. The
// decision is a function of (network, x, x2) only.
//
// Thread safety: a PairKernel owns its workspace; use one per thread (they share the Network's grid).
// SelfChain is read-only in evaluate() and may be shared. The result is a deterministic function of
// (network, x, x2); K(x,x2) and K(x2,x) agree to rounding, not bitwise.
#pragma once

#include <memory>
#include <span>
#include <vector>

#include "eqntk/kernel/pair_kernel.hpp"
#include "eqntk/so3/network.hpp"
#include "eqntk/so3/signal.hpp"

namespace eqntk::so3 {

namespace detail {
struct PointOp;  // src/so3/pointwise.hpp
}

using kernel::KernelValue;

/// Per-item data every pair needs; computed once per item by PairKernel::self_chain.
struct SelfChain {
  /// var[s] for each nonlinearity s before so3pool: the (constant) pre-activation variance q_k(x); 0 elsewhere.
  /// With band limits these come from the projected auto-kernels (file comment).
  std::vector<double> var;
  /// head_var[s] for each nonlinearity s after so3pool: the pooled pre-activation K(x,x); 0 elsewhere.
  std::vector<double> head_var;
  /// The so3pool output (⟨S_D⟩, ⟨Ṡ_D Θ_D⟩) of the pair (x, x).
  KernelValue pooled;
  /// K(x,x), Θ(x,x): the Gram diagonal.
  KernelValue self;
};

/// The variances var[s] of SelfChain for an item of variance q = q(x) (SO3_MATH.md §3, "variances") in a
/// network without so3conv band limits (q restricted to l < L1 under s2lift:L=L1).
[[nodiscard]] std::vector<double> layer_variances(const Network& net, double q);

/// q(x) of the degrees l < band_limit only, (1/4πC) Σ_c Σ_{l<band_limit} (|a_{l0}|² + 2 Σ_{m>0} |a_{lm}|²);
/// x.variance() itself when band_limit ≥ x's L.
[[nodiscard]] double low_pass_variance(const Signal& x, int band_limit);

/// The head (the stages after so3pool) applied to a pooled kernel. head_var, head_var2: SelfChain::head_var
/// of the two sides (only read at head nonlinearities).
[[nodiscard]] KernelValue apply_head(const Network& net, KernelValue pooled, std::span<const double> head_var,
                                     std::span<const double> head_var2);

/// The head of a self-pair: records the head variances from the pooled self-kernel and returns K(x,x), Θ(x,x).
[[nodiscard]] KernelValue self_head(const Network& net, KernelValue pooled_self, std::vector<double>& head_var);

class PairKernel {
 public:
  /// Allocates the workspace for one pair (a few N² doubles).
  explicit PairKernel(Network net);
  ~PairKernel();
  PairKernel(PairKernel&&) noexcept;
  PairKernel& operator=(PairKernel&&) noexcept;

  [[nodiscard]] const Network& network() const { return net_; }

  /// Layer variances, pooled self-kernel, head variances and K(x,x), Θ(x,x) of item x.
  /// Throws InvalidArgument unless x has the network's L and C.
  [[nodiscard]] SelfChain self_chain(const Signal& x);

  /// K(x, x2), Θ(x, x2). sx, sx2 must be self_chain(x), self_chain(x2) of this network.
  [[nodiscard]] KernelValue evaluate(const Signal& x, const SelfChain& sx, const Signal& x2, const SelfChain& sx2);

  /// The so3pool output (⟨S_D⟩, ⟨Ṡ_D Θ_D⟩) of the pair, before the head (molecule kernels sum these).
  [[nodiscard]] KernelValue pooled(const Signal& x, const SelfChain& sx, const Signal& x2, const SelfChain& sx2);

  /// The correlation c_{xx'}(α_a, β_j, γ_g) on grid slice j as computed inside evaluate() (low-passed to
  /// the lift's band limit): out[a·N + g] (N² values). For tests and diagnostics.
  void correlation_slice(const Signal& x, const Signal& x2, int j, std::span<double> out);

  /// N of the grid the last pooled()/evaluate()/self_chain() used (two grids: the coarse or the fine one).
  [[nodiscard]] int last_grid_n() const { return last_n_; }

 private:
  struct Workspace;
  void check_input(const Signal& x) const;
  void cross_spectrum(const Signal& x, const Signal& x2);
  void synthesize(const Grid& g, std::size_t j);  // c on slice j of g into the workspace grid
  // The streaming so3pool output on grid g (cross spectrum in the workspace); *peak (if given): max |c|.
  KernelValue pooled_grid(const Grid& g, const std::vector<detail::PointOp>& ops, double* peak);
  // pooled(); `coarse`: the coarse grid may be used (not for self chains).
  KernelValue pooled_on(const Signal& x, const SelfChain& sx, const Signal& x2, const SelfChain& sx2, bool coarse);
  // Σ_{l<band_limit} spectrum^l_{mn} d^l_{mn}(β_j) by c2r onto out (N² doubles, fftw_malloc alignment);
  // spectrum in the Wigner table's run layout.
  void synthesize_from(const Grid& g, const std::complex<double>* spectrum, int band_limit, std::size_t j, double* out);
  // Adds slice j of f (N² doubles, fftw_malloc alignment; preserved) to the P_band_limit analysis in `spectrum`, without the final
  // (2l+1) factor.
  void analyse(double* f, int band_limit, std::size_t j, std::complex<double>* spectrum);
  // The so3pool output through a network with so3conv band limits (file comment). var1, var2: the layer
  // variances of x, x2; with `record` (the self pair x2 = x) they are computed into *record instead.
  KernelValue banded(const Signal& x, const Signal& x2, const double* var1, const double* var2,
                     std::vector<double>* record);

  Network net_;
  std::unique_ptr<Workspace> ws_;
  int last_n_ = 0;
};

}  // namespace eqntk::so3
