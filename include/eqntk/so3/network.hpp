// An SO(3) architecture bound to its input (band limit L, C channels) and to the quadrature grid on
// SO(3) that the pair kernel evaluates on (SO3_MATH.md §4.2).
//
// Grid: n_β Gauss–Legendre nodes β_j (cos β_j, weights w_j, Σ w_j = 2) × α_a = 2πa/N × γ_g = 2πg/N.
// Haar average ⟨f⟩ ≈ (1/2N²) Σ_j w_j Σ_{a,g} f(α_a, β_j, γ_g), exact for Wigner degree ≤ min(N−1, 2n_β−1).
// N ≥ 2L−1 makes the FFT synthesis of the correlation c exact (no wrap-around).
// Defaults: N = 2⌈1.5L⌉ (erf/id: ≤ 1e-12 relative), N = 4L when a relu acts before so3pool (ReLU cusp,
// ~1e-8 on self-pairs); n_β = N/2. With so3conv band limits (architecture.hpp, SO3_MATH.md §4.7) the grid
// must also carry degree L_max − 1, L_max = max(L, every L= key), and the projections integrate
// non-band-limited functions, so the default is N = 4 L_max (§4.7: "N ≥ 4L").
#pragma once

#include <cstddef>
#include <memory>
#include <vector>

#include "eqntk/so3/architecture.hpp"
#include "eqntk/so3/wigner.hpp"

namespace eqntk::so3 {

/// Grid size settings; 0 means the default above.
struct GridOptions {
  int n = 0;       // α and γ samples N (≥ 2L−1)
  int n_beta = 0;  // Gauss–Legendre β nodes (≥ 1)
};

/// A second, coarser grid for the pairs whose correlation is not sharply peaked (grid_choice.hpp, "two
/// grids"): a pair (x, x') is evaluated on N = n when max over that grid of |c_{xx'}| / √(q(x) q(x')) ≤ peak,
/// otherwise on the network's (fine) grid; self pairs (self_chain) always on the fine grid. n = 0: none.
struct CoarseGrid {
  int n = 0;          // α and γ samples, below the fine grid's N
  double peak = 0.0;  // the peak-ratio threshold, in [0, 1)
  int n_beta = 0;     // Gauss–Legendre β nodes; 0: n/2
};

namespace detail {
struct FftPlan;  // FFTW plan of the N×N c2r synthesis (src/so3/network.cpp)
}

/// The SO(3) grid, the Wigner-d table d^l_{mn}(β_j) and the FFTW plans of one (L, N, n_β). Read-only after
/// construction and shared by every PairKernel of a Network (FFTW plans are created here, under a lock;
/// executing them from several threads is safe).
class Grid {
 public:
  /// `forward`: also plan the N×N r2c analysis (for band-limit projections, SO3_MATH.md §4.7).
  /// Throws InvalidArgument for L < 1, N < 2L−1, n_β < 1 or an unreasonably large grid (N > 4096).
  Grid(int band_limit, int n, int n_beta, bool forward = false);
  ~Grid();
  Grid(const Grid&) = delete;
  Grid& operator=(const Grid&) = delete;

  /// The degrees the Wigner table covers (l < band_limit()).
  [[nodiscard]] int band_limit() const { return table_.band_limit(); }
  [[nodiscard]] int n() const { return n_; }
  [[nodiscard]] int n_beta() const { return static_cast<int>(betas_.size()); }
  [[nodiscard]] const std::vector<double>& betas() const { return betas_; }
  /// Gauss–Legendre weights of the β nodes (Σ = 2).
  [[nodiscard]] const std::vector<double>& weights() const { return weights_; }
  [[nodiscard]] const WignerTable& table() const { return table_; }
  [[nodiscard]] const detail::FftPlan& plan() const { return *plan_; }

 private:
  int n_;
  std::vector<double> betas_, weights_;
  WignerTable table_;
  std::unique_ptr<detail::FftPlan> plan_;
};

/// One layer with its squared σ's.
struct Stage {
  LayerSpec spec;
  double w2 = 1.0;  // σ_w²
  double b2 = 0.0;  // σ_b²
  [[nodiscard]] bool nonlinearity() const { return is_nonlinearity(spec.kind); }
};

/// An architecture bound to its input and grid.
class Network {
 public:
  /// Builds the grid (Wigner table, FFTW plans) for L_max = max(L, every band limit of the architecture).
  /// Throws InvalidArgument for L < 1, C < 1, bad grid options (N < 2 L_max − 1), or an s2lift band limit
  /// larger than the input's L (naming the token).
  Network(Architecture arch, int band_limit, int channels, GridOptions grid = {});
  /// With a coarse grid for weakly correlated pairs (CoarseGrid). Throws InvalidArgument unless
  /// 2 L_max − 1 ≤ coarse.n < N and 0 ≤ coarse.peak < 1; ignored (no coarse grid) with so3conv band limits
  /// (their projections need the fine grid) or coarse.n = 0.
  Network(Architecture arch, int band_limit, int channels, GridOptions grid, CoarseGrid coarse);

  [[nodiscard]] const Architecture& architecture() const { return arch_; }
  /// The input's band limit L.
  [[nodiscard]] int band_limit() const { return band_limit_; }
  /// The input degrees that reach the network: the s2lift's `L=` if given, else L.
  [[nodiscard]] int lift_band_limit() const { return lift_band_limit_; }
  /// True when some so3conv has a band limit: the pair kernel then projects on the whole grid (§4.7)
  /// instead of streaming over β.
  [[nodiscard]] bool conv_band_limits() const { return conv_band_limits_; }
  [[nodiscard]] int channels() const { return channels_; }
  [[nodiscard]] const std::vector<Stage>& stages() const { return stages_; }
  /// Index of the so3pool stage; stages before it act on SO(3) feature maps, stages after it are the head.
  [[nodiscard]] std::size_t pool_stage() const { return arch_.pool_index(); }
  [[nodiscard]] bool head_has_nonlinearity() const;
  [[nodiscard]] const Grid& grid() const { return *grid_; }
  [[nodiscard]] std::shared_ptr<const Grid> shared_grid() const { return grid_; }
  /// The coarse grid, or nullptr (CoarseGrid); coarse_peak() its threshold.
  [[nodiscard]] const Grid* coarse_grid() const { return coarse_grid_.get(); }
  [[nodiscard]] double coarse_peak() const { return coarse_peak_; }

  /// Default N for `arch` at input band limit L (see the file comment).
  [[nodiscard]] static int default_grid_n(const Architecture& arch, int band_limit);

 private:
  Architecture arch_;
  int band_limit_ = 0;
  int lift_band_limit_ = 0;
  bool conv_band_limits_ = false;
  int channels_ = 0;
  std::vector<Stage> stages_;
  std::shared_ptr<const Grid> grid_;
  std::shared_ptr<const Grid> coarse_grid_;
  double coarse_peak_ = 0.0;
};

}  // namespace eqntk::so3
