// The SO(3) quadrature grid chosen to a tolerance (SO3_MATH.md §4.2, §5 "ReLU cusp").
//
// The pooled kernel is a Haar average evaluated by quadrature; its error depends on the data: the erf
// integrand sharpens as the variances q grow, and every self pair K(x, x) (and every pair of rotated copies
// of one signal) has its peak / ReLU cusp where the two inputs align. No fixed N fits all inputs, so a run
// chooses N from its own items:
//
//   sample  S ≤ 3 items, the ones with the largest variance q (ties by index), of both sets (molecules:
//           their atoms, see choose_molecule_grid); plus each of them turned by one fixed rotation R (Wigner-D on the
//           coefficients, exact): the S(2S+1) pairs of these 2S items contain the self pairs (slowest to
//           converge), the aligned pairs (x, Λ_R x) with their peak off the grid, and cross pairs.
//   ladder  N_0 = Network::default_grid_n (§4.2), N_{k+1} = 2⌈0.6 N_k⌉ (≈ ×1.2), up to the cap
//           n_max = max(N_0, clamp(32 L_max, 128, 384)), and with a relu before so3pool
//           max(N_0, clamp(16 L_max, 96, 256)) (the cusp converges algebraically, ~N^-2.5 for Θ, so a relu
//           network always ends at the cap: ~1e-7 or better; the cap bounds the cost).
//   error   d_k = max over the sample and over K, Θ of |K_{N_k} − K_{N_{k+1}}| / max |K_{N_{k+1}}| (relative to
//           the largest entry of the sample, which is a diagonal one). The estimate of grid N_k is d_k,
//           inflated by the geometric tail 1/(1 − ρ) with ρ = min(d_k / d_{k−1}, 0.9) when the previous step
//           exists (spectral convergence: ρ ≈ 0, the factor ≈ 1; algebraic: ρ ≈ 0.6, the factor ≈ 2.5).
//   choice  the first N_k whose estimate is ≤ tolerance; otherwise the cap, whose estimate is the tail
//           beyond the last step, d ρ/(1 − ρ) (d when there was no previous step), and `capped` is set when
//           that is still above the tolerance.
//   forced  (--so3-grid) N as given; its estimate is d between N and the next rung.
//
// Two grids (GridChoiceOptions::two_grids; not with so3conv band limits, a forced or a capped grid). The slow
// convergence belongs to pairs whose correlation has a sharp peak near |c| = √(q q') — self pairs and
// aligned pairs (x, Λ_R x); cross pairs of distinct signals (|c| / √(q q') ≈ 0.1–0.5) converge on a much
// coarser grid. So the choice also picks a coarse grid (N_c, n_β,c) and a threshold τ, and the Network
// (CoarseGrid) evaluates a pair on the coarse grid when its peak ratio max_grid |c| / √(q q') on that grid is
// ≤ τ, on the fine grid otherwise (pair_kernel.hpp; self chains always fine):
//   coarse  the first rung below N whose cross sample pairs (items of different origins) meet the tolerance
//           (estimated as above), then the cheapest (N_c, n_β,c) with N_c between the rung before and it,
//           n_β,c ∈ {⌈N_c/2⌉, ⌈N_c/2⌉ + 1}, by N_c² n_β,c, whose cross pairs are within the tolerance of the
//           rung after (much finer: the difference is their error); coarse_estimate is that error.
//   τ       on the coarse grid: p_x = the largest peak ratio of the cross sample pairs (validated above),
//           p_a = the smallest of the aligned ones — self pairs, the rotated copies, and each item turned so
//           that its peak sits in the middle of a grid cell (the worst place for the grid's maximum); aligned
//           pairs of other items may lose more, so their floor is f = 1 − 2(1 − p_a); τ = p_x + (f − p_x)/4,
//           and no coarse grid when p_x ≥ f (the ratio does not separate them). A pair above τ costs the
//           fine grid, never accuracy.
//   The run's estimate is the larger of the fine grid's and coarse_estimate.
// The per-pair decision is a deterministic function of the pair (its coarse-grid correlation and q's), so
// every rank, tile and thread makes it alike for (i, j).
//
// Everything is a deterministic function of (architecture, items, options): the same choice on every
// process that holds the same items (the CLI still decides on rank 0 and broadcasts).
#pragma once

#include <string>
#include <vector>

#include "eqntk/so3/architecture.hpp"
#include "eqntk/so3/molecule.hpp"
#include "eqntk/so3/network.hpp"
#include "eqntk/so3/signal.hpp"

namespace eqntk::so3 {

struct GridChoiceOptions {
  double tolerance = 1e-12;  ///< relative; must be in [1e-15, 1)
  int forced_n = 0;          ///< > 0: use this N and only estimate its error
  int threads = 1;           ///< OpenMP threads for the sample Gram matrices
  bool two_grids = false;    ///< also choose a coarse grid for weakly correlated pairs (file comment); the caller
                             ///< must then build its Network with GridChoice::coarse()
};

struct GridChoice {
  int n = 0;                 ///< α, γ samples N; n_β = N/2
  double estimate = 0.0;     ///< estimated relative error of K and Θ on grid n (file comment); with two grids
                             ///< the larger of n's and coarse_estimate
  double tolerance = 0.0;
  bool forced = false;       ///< N was given (--so3-grid)
  bool capped = false;       ///< refinement stopped at n_max before the tolerance
  int n_max = 0;
  int sample_items = 0;      ///< 2S (S items and their rotated copies)
  std::vector<int> ladder;   ///< the N evaluated, in order
  int coarse_n = 0;              ///< two grids (file comment): the coarse N, 0 for none
  int coarse_n_beta = 0;         ///< its β nodes
  double coarse_peak = 0.0;      ///< its peak-ratio threshold
  double coarse_estimate = 0.0;  ///< the sample cross pairs' estimated relative error on it

  /// The coarse grid for Network (n = 0: one grid).
  [[nodiscard]] CoarseGrid coarse() const { return {coarse_n, coarse_peak, coarse_n_beta}; }

  /// e.g. "SO(3) grid N=42 (21 beta nodes), estimated relative error 3.1e-13 (tolerance 1e-12; 6 sample items, N 18..52)".
  [[nodiscard]] std::string summary() const;
  /// One line when capped ("SO(3) grid: refinement stopped at the cap N=...: estimated relative error ... above
  /// --so3-tol ...; a larger --so3-grid or --so3-tol ..."), else empty.
  [[nodiscard]] std::string warning() const;
  /// JSON members (no braces): "so3_grid_choice": "tolerance"|"capped"|"forced", "so3_grid_estimate", "so3_tol".
  [[nodiscard]] std::string json_members() const;
};

/// The first rung N_0 and the cap of the ladder (file comment).
[[nodiscard]] int grid_start(const Architecture& arch, int band_limit);
[[nodiscard]] int grid_cap(const Architecture& arch, int band_limit);
/// The next rung: 2⌈0.6 n⌉.
[[nodiscard]] int next_grid(int n);

/// The grid for spherical signals (items of both sets; at least one). Throws InvalidArgument for a bad
/// tolerance, a forced N too small for L, or items that do not match (L, C).
[[nodiscard]] GridChoice choose_grid(const Architecture& arch, int band_limit, int channels,
                                     const std::vector<const Signal*>& items, const GridChoiceOptions& options);

/// The grid for molecules (per-atom signals; items of both sets): choose_grid on their atoms. A molecule
/// kernel is a sum of atom-pair kernels on the same grid, so the atoms with the largest variance, their
/// rotated copies (aligned atoms: the H atoms of CH4 are rotated copies of each other) and their cross pairs
/// stand for it at a fraction of the cost of molecule pairs; the estimate is the atom kernels' relative error.
[[nodiscard]] GridChoice choose_molecule_grid(const Architecture& arch, int band_limit,
                                              const std::vector<const std::vector<Signal>*>& molecules,
                                              const GridChoiceOptions& options);

}  // namespace eqntk::so3
