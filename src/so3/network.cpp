#include "eqntk/so3/network.hpp"

#include <algorithm>
#include <cmath>
#include <string>

#include "eqntk/error.hpp"
#include "fft_plan.hpp"
#include "fftw_lock.hpp"

namespace eqntk::so3 {

Grid::Grid(int band_limit, int n, int n_beta, bool forward) : n_(n) {
  if (band_limit < 1) throw InvalidArgument("SO(3) grid: band limit L must be at least 1, got " + std::to_string(band_limit));
  if (n < 2 * band_limit - 1)
    throw InvalidArgument("SO(3) grid: N = " + std::to_string(n) + " is too small for L = " + std::to_string(band_limit) +
                          " (the correlation needs N >= 2L-1 = " + std::to_string(2 * band_limit - 1) + ")");
  if (n > 4096) throw InvalidArgument("SO(3) grid: N = " + std::to_string(n) + " is unreasonably large (limit 4096)");
  if (n_beta < 1 || n_beta > 4096)
    throw InvalidArgument("SO(3) grid: the number of beta nodes must be in [1, 4096], got " + std::to_string(n_beta));
  std::vector<double> x;
  gauss_legendre(n_beta, x, weights_);
  betas_.resize(x.size());
  for (std::size_t j = 0; j < x.size(); ++j) betas_[j] = std::acos(x[j]);
  table_ = WignerTable(band_limit, betas_);

  plan_ = std::make_unique<detail::FftPlan>();
  plan_->n = n;
  const auto cells = static_cast<std::size_t>(n) * static_cast<std::size_t>(n / 2 + 1);
  fftw_complex* in = fftw_alloc_complex(cells);
  double* out = fftw_alloc_real(static_cast<std::size_t>(n) * static_cast<std::size_t>(n));
  {
    // FFTW_ESTIMATE: the same plan on every process, so a pair gives bitwise the same value everywhere.
    const std::lock_guard<std::mutex> lock(detail::fftw_planner_mutex());
    plan_->c2r = fftw_plan_dft_c2r_2d(n, n, in, out, FFTW_ESTIMATE);
    if (forward) plan_->r2c = fftw_plan_dft_r2c_2d(n, n, out, in, FFTW_ESTIMATE);
  }
  fftw_free(in);
  fftw_free(out);
  if (plan_->c2r == nullptr || (forward && plan_->r2c == nullptr))
    throw InvalidArgument("SO(3) grid: FFTW could not plan the " + std::to_string(n) + "x" + std::to_string(n) +
                          " transforms");
}

Grid::~Grid() {
  if (plan_ && (plan_->c2r != nullptr || plan_->r2c != nullptr)) {
    const std::lock_guard<std::mutex> lock(detail::fftw_planner_mutex());
    if (plan_->c2r != nullptr) fftw_destroy_plan(plan_->c2r);
    if (plan_->r2c != nullptr) fftw_destroy_plan(plan_->r2c);
  }
}

namespace {

// max(L, every band limit of the architecture): the degrees the grid must carry.
int max_band_limit(const Architecture& arch, int band_limit) {
  int l = band_limit;
  for (const LayerSpec& s : arch.layers()) l = std::max(l, s.band_limit);
  return l;
}

bool has_conv_band_limit(const Architecture& arch) {
  for (const LayerSpec& s : arch.layers())
    if (s.kind == LayerKind::so3conv && s.band_limit > 0) return true;
  return false;
}

}  // namespace

int Network::default_grid_n(const Architecture& arch, int band_limit) {
  if (has_conv_band_limit(arch)) return 4 * max_band_limit(arch, band_limit);
  if (arch.has_relu_before_pool()) return 4 * band_limit;
  return 2 * ((3 * band_limit + 1) / 2);  // 2⌈1.5L⌉
}

Network::Network(Architecture arch, int band_limit, int channels, GridOptions grid)
    : arch_(std::move(arch)), band_limit_(band_limit), channels_(channels) {
  if (band_limit < 1 || channels < 1)
    throw InvalidArgument("SO(3) network: the input needs L >= 1 and C >= 1, got L=" + std::to_string(band_limit) +
                          ", C=" + std::to_string(channels));
  lift_band_limit_ = band_limit;
  for (const LayerSpec& l : arch_.layers()) {
    stages_.push_back(Stage{l, l.w * l.w, l.b * l.b});
    if (l.kind == LayerKind::s2lift && l.band_limit > 0) {
      if (l.band_limit > band_limit)
        throw InvalidArgument("invalid SO(3) architecture at '" + l.token + "': the lift's band limit L=" +
                              std::to_string(l.band_limit) + " exceeds the input's band limit L=" +
                              std::to_string(band_limit) + " (it can only truncate)");
      lift_band_limit_ = l.band_limit;
    }
  }
  conv_band_limits_ = has_conv_band_limit(arch_);
  const int l_max = max_band_limit(arch_, band_limit);
  const int n = grid.n > 0 ? grid.n : default_grid_n(arch_, band_limit);
  const int n_beta = grid.n_beta > 0 ? grid.n_beta : std::max(1, n / 2);
  if (grid.n < 0 || grid.n_beta < 0)
    throw InvalidArgument("SO(3) network: grid sizes must be positive (or 0 for the default), got N=" +
                          std::to_string(grid.n) + ", n_beta=" + std::to_string(grid.n_beta));
  if (l_max > band_limit && n < 2 * l_max - 1)
    throw InvalidArgument("SO(3) network: N = " + std::to_string(n) + " is too small for the layer band limit L=" +
                          std::to_string(l_max) + " (needs N >= 2L-1 = " + std::to_string(2 * l_max - 1) + ")");
  grid_ = std::make_shared<const Grid>(l_max, n, n_beta, conv_band_limits_);
}

Network::Network(Architecture arch, int band_limit, int channels, GridOptions grid, CoarseGrid coarse)
    : Network(std::move(arch), band_limit, channels, grid) {
  if (coarse.n == 0 || conv_band_limits_) return;
  const int l_max = max_band_limit(arch_, band_limit);
  if (coarse.n < 2 * l_max - 1 || coarse.n >= grid_->n())
    throw InvalidArgument("SO(3) network: the coarse grid N = " + std::to_string(coarse.n) + " must be in [" +
                          std::to_string(2 * l_max - 1) + ", " + std::to_string(grid_->n()) + ")");
  if (!(coarse.peak >= 0.0 && coarse.peak < 1.0))
    throw InvalidArgument("SO(3) network: the coarse grid's peak threshold must be in [0, 1), got " +
                          std::to_string(coarse.peak));
  coarse_grid_ = std::make_shared<const Grid>(l_max, coarse.n, coarse.n_beta > 0 ? coarse.n_beta : std::max(1, coarse.n / 2),
                                              false);
  coarse_peak_ = coarse.peak;
}

bool Network::head_has_nonlinearity() const {
  for (std::size_t s = pool_stage() + 1; s < stages_.size(); ++s)
    if (stages_[s].nonlinearity()) return true;
  return false;
}

}  // namespace eqntk::so3
