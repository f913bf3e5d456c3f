#include "eqntk/so3/grid_choice.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
#include <limits>
#include <numbers>
#include <numeric>

#include "eqntk/error.hpp"
#include "eqntk/so3/gram.hpp"
#include "eqntk/so3/network.hpp"
#include "eqntk/so3/pair_kernel.hpp"
#include "eqntk/so3/wigner.hpp"

namespace eqntk::so3 {
namespace {

constexpr std::size_t kSampleItems = 3;
// Where between the sample's largest cross-pair peak ratio and the aligned pairs' floor the threshold lies.
constexpr double kPeakMargin = 0.25;
// The fixed rotation of the aligned sample pairs: generic angles (no symmetry of the grid).
constexpr Euler kSampleRotation{0.7137, 1.9021, -2.3311};

int max_band_limit(const Architecture& arch, int band_limit) {
  int l = band_limit;
  for (const LayerSpec& s : arch.layers()) l = std::max(l, s.band_limit);
  return l;
}

std::string num(double v, const char* format = "%.2g") {
  char buf[32];
  std::snprintf(buf, sizeof buf, format, v);
  return buf;
}

// Indices of the (up to) kSampleItems largest sizes, ties by index, in index order.
std::vector<std::size_t> pick(const std::vector<double>& size) {
  std::vector<std::size_t> idx(size.size());
  std::iota(idx.begin(), idx.end(), std::size_t{0});
  std::stable_sort(idx.begin(), idx.end(), [&](std::size_t a, std::size_t b) { return size[a] > size[b]; });
  idx.resize(std::min(idx.size(), kSampleItems));
  std::sort(idx.begin(), idx.end());
  return idx;
}

// max over K and Θ of max_ij |a_ij − b_ij| / max_ij |b_ij|.
double difference(const kernel::GramPair& a, const kernel::GramPair& b) {
  double worst = 0.0;
  for (const auto member : {&kernel::GramPair::nngp, &kernel::GramPair::ntk}) {
    const std::vector<double>& x = a.*member;
    const std::vector<double>& y = b.*member;
    double diff = 0.0, scale = 0.0;
    for (std::size_t i = 0; i < y.size(); ++i) {
      diff = std::max(diff, std::abs(x[i] - y[i]));
      scale = std::max(scale, std::abs(y[i]));
    }
    if (diff > 0.0) worst = std::max(worst, scale > 0.0 ? diff / scale : std::numeric_limits<double>::infinity());
  }
  return worst;
}

// The ladder of the file comment; `sample_gram(N)` is the sample's Gram pair on grid N; `history` gets the
// Gram pair of every rung, in ladder order.
GridChoice ladder(const Architecture& arch, int band_limit, const GridChoiceOptions& o, int sample_items,
                  const std::function<kernel::GramPair(int)>& sample_gram_of,
                  std::vector<kernel::GramPair>& history) {
  history.clear();
  const auto sample_gram = [&](int n) {
    history.push_back(sample_gram_of(n));
    return history.back();
  };
  if (!(o.tolerance >= 1e-15 && o.tolerance < 1.0))
    throw InvalidArgument("--so3-tol must be in [1e-15, 1) (a relative error; below 1e-15 is rounding), got " +
                          num(o.tolerance, "%g"));
  if (o.forced_n < 0) throw InvalidArgument("SO(3) grid: N must be positive, got " + std::to_string(o.forced_n));
  GridChoice c;
  c.tolerance = o.tolerance;
  c.forced = o.forced_n > 0;
  c.sample_items = sample_items;
  c.n = c.forced ? o.forced_n : grid_start(arch, band_limit);
  c.n_max = c.forced ? c.n : std::max(c.n, grid_cap(arch, band_limit));
  kernel::GramPair current = sample_gram(c.n);
  c.ladder.push_back(c.n);
  if (c.forced) {
    const int finer = next_grid(c.n);
    c.estimate = difference(current, sample_gram(finer));
    c.ladder.push_back(finer);
    return c;
  }
  double previous = -1.0;
  for (;;) {
    if (c.n >= c.n_max) {  // N_0 is already the cap (n_max ≥ N_0, and later rungs stop below)
      const int finer = next_grid(c.n);
      c.estimate = difference(current, sample_gram(finer));
      c.ladder.push_back(finer);
      c.capped = c.estimate > c.tolerance;
      return c;
    }
    const int finer = std::min(next_grid(c.n), c.n_max);
    kernel::GramPair next = sample_gram(finer);
    c.ladder.push_back(finer);
    const double d = difference(current, next);
    double estimate = d;
    if (previous > 0.0) {
      const double rho = std::min(d / previous, 0.9);
      estimate = d / (1.0 - rho);
    }
    if (estimate <= c.tolerance) {
      c.estimate = estimate;
      return c;
    }
    if (finer == c.n_max) {
      // The cap's own error: the geometric tail beyond the last step, d ρ/(1 − ρ); d itself without a
      // previous step (an upper bound when the error decreases with N).
      c.n = finer;
      c.estimate = previous > 0.0 ? d * std::min(d / previous, 0.9) / (1.0 - std::min(d / previous, 0.9)) : d;
      c.capped = c.estimate > c.tolerance;
      return c;
    }
    previous = d;
    c.n = finer;
    current = std::move(next);
  }
}

// max over K and Θ of max over the sample's cross pairs (items of different origins, `origin[i]`) of
// |a_ij − b_ij|, relative to max over all entries |b_ij| (the self pairs').
double cross_difference(const kernel::GramPair& a, const kernel::GramPair& b, const std::vector<int>& origin) {
  const std::size_t n = origin.size();
  double worst = 0.0;
  for (const auto member : {&kernel::GramPair::nngp, &kernel::GramPair::ntk}) {
    const std::vector<double>& x = a.*member;
    const std::vector<double>& y = b.*member;
    double diff = 0.0, scale = 0.0;
    for (std::size_t i = 0; i < n; ++i)
      for (std::size_t j = 0; j < n; ++j) {
        scale = std::max(scale, std::abs(y[i * n + j]));
        if (origin[i] != origin[j]) diff = std::max(diff, std::abs(x[i * n + j] - y[i * n + j]));
      }
    if (diff > 0.0) worst = std::max(worst, scale > 0.0 ? diff / scale : std::numeric_limits<double>::infinity());
  }
  return worst;
}

// max over grid `net` of |c_{xy}| / √(q(x) q(y)) (the lift's degrees).
double peak_ratio(PairKernel& pk, const Signal& x, const Signal& y) {
  const Grid& g = pk.network().grid();
  std::vector<double> slice(static_cast<std::size_t>(g.n()) * static_cast<std::size_t>(g.n()));
  double peak = 0.0;
  for (int j = 0; j < g.n_beta(); ++j) {
    pk.correlation_slice(x, y, j, slice);
    for (const double v : slice) peak = std::max(peak, std::abs(v));
  }
  const int lift = pk.network().lift_band_limit();
  const double q = std::sqrt(low_pass_variance(x, lift) * low_pass_variance(y, lift));
  return q > 0.0 ? peak / q : 0.0;
}

// The peak-ratio threshold of coarse grid n for the sample (S originals, then their rotated copies), or a
// negative value when the peak ratio does not tell the cross pairs from the aligned ones on that grid.
double peak_threshold(const Architecture& arch, int band_limit, int channels, const std::vector<Signal>& sample,
                      const std::vector<int>& origin, int n, int n_beta) {
  const std::size_t s = sample.size() / 2;
  PairKernel pk(Network(arch, band_limit, channels, GridOptions{n, n_beta}));
  // Cross pairs (both orders) and aligned pairs (self, rotated copies), the latter also with the peak in the
  // middle of a grid cell (the worst place for the grid's maximum).
  double p_cross = 0.0, p_aligned = 1.0;
  for (std::size_t a = 0; a < sample.size(); ++a)
    for (std::size_t b = 0; b < sample.size(); ++b) {
      const double p = peak_ratio(pk, sample[a], sample[b]);
      if (origin[a] != origin[b]) p_cross = std::max(p_cross, p);
      else p_aligned = std::min(p_aligned, p);
    }
  const std::vector<double>& betas = pk.network().grid().betas();
  const double half = std::numbers::pi / n;
  const std::size_t mid = betas.size() / 2;
  for (std::size_t i = 0; i < s && betas.size() >= 2; ++i)
    for (const double beta : {0.5 * (betas[0] + betas[1]), 0.5 * (betas[mid - 1] + betas[mid])})
      p_aligned = std::min(p_aligned, peak_ratio(pk, sample[i], rotate(sample[i], Euler{half, beta, half})));
  // Aligned pairs of other items may lie lower on the grid: allow twice the sample's worst drop.
  const double floor = 1.0 - 2.0 * (1.0 - p_aligned);
  if (p_cross >= floor) return -1.0;
  return p_cross + kPeakMargin * (floor - p_cross);
}

// The coarse grid of two grids (file comment) for a choice `c` whose ladder filled `history` (the sample
// Gram pair of every rung), on `sample` (S originals, then their rotated copies); `sample_gram(N)` as for
// the ladder.
void choose_coarse(GridChoice& c, const Architecture& arch, int band_limit, int channels,
                   const std::vector<Signal>& sample, const std::vector<kernel::GramPair>& history,
                   const std::function<kernel::GramPair(int, int)>& sample_gram) {
  const std::size_t s = sample.size() / 2;
  if (c.forced || c.capped || s < 2 || history.size() != c.ladder.size()) return;
  for (const LayerSpec& l : arch.layers())
    if (l.kind == LayerKind::so3conv && l.band_limit > 0) return;  // projections need the fine grid
  std::vector<int> origin(sample.size());
  for (std::size_t i = 0; i < sample.size(); ++i) origin[i] = static_cast<int>(i % s);
  // The first rung below the fine grid whose cross pairs meet the tolerance (estimated as the ladder's),
  // then the even N between the rung before and it, each against the rung after it (much finer: the
  // difference is the error).
  double previous = -1.0;
  for (std::size_t k = 0; k + 1 < c.ladder.size() && c.ladder[k] < c.n; ++k) {
    const double d = cross_difference(history[k], history[k + 1], origin);
    double estimate = previous > 0.0 ? d / (1.0 - std::min(d / previous, 0.9)) : d;
    previous = d;
    if (estimate > c.tolerance) continue;
    // Cheaper grids between the rung before and this one: every N, n_β ∈ {⌈N/2⌉, ⌈N/2⌉ + 1}, by cost N² n_β
    // (the α, γ aliasing, not β, limits cross pairs), the first within the tolerance of the rung after.
    int n = c.ladder[k], n_beta = n / 2;
    std::vector<std::pair<int, int>> candidates;
    for (int m = k > 0 ? c.ladder[k - 1] + 1 : n; m <= c.ladder[k]; ++m)
      for (const int nb : {(m + 1) / 2, (m + 1) / 2 + 1})
        if (std::int64_t{m} * m * nb < std::int64_t{n} * n * n_beta) candidates.emplace_back(m, nb);
    std::stable_sort(candidates.begin(), candidates.end(), [](const auto& u, const auto& v) {
      return std::int64_t{u.first} * u.first * u.second < std::int64_t{v.first} * v.first * v.second;
    });
    for (const auto& [m, nb] : candidates) {
      const double e = cross_difference(sample_gram(m, nb), history[k + 1], origin);
      if (e <= c.tolerance) {
        n = m;
        n_beta = nb;
        estimate = e;
        break;
      }
    }
    const double threshold = peak_threshold(arch, band_limit, channels, sample, origin, n, n_beta);
    if (threshold < 0.0) return;
    c.coarse_n = n;
    c.coarse_n_beta = n_beta;
    c.coarse_peak = threshold;
    c.coarse_estimate = estimate;
    c.estimate = std::max(c.estimate, estimate);  // the run's: the worse of the two grids
    return;
  }
}

}  // namespace

int grid_start(const Architecture& arch, int band_limit) { return Network::default_grid_n(arch, band_limit); }

int grid_cap(const Architecture& arch, int band_limit) {
  const int l = max_band_limit(arch, band_limit);
  const int cap = arch.has_relu_before_pool() ? std::clamp(16 * l, 96, 256) : std::clamp(32 * l, 128, 384);
  return std::max(grid_start(arch, band_limit), cap);
}

int next_grid(int n) { return 2 * static_cast<int>(std::ceil(0.6 * n - 1e-9)); }

std::string GridChoice::summary() const {
  std::string s = "SO(3) grid N=" + std::to_string(n) + " (" + std::to_string(n / 2) + " beta nodes" +
                  (forced ? ", --so3-grid" : "") + "), estimated relative error " + num(estimate);
  if (forced) return s + " (vs N=" + std::to_string(ladder.back()) + ")";
  s += " (tolerance " + num(tolerance, "%g") + "; " + std::to_string(sample_items) + " sample items, N " +
       std::to_string(ladder.front()) + ".." + std::to_string(ladder.back());
  s += capped ? ", capped)" : ")";
  if (coarse_n > 0)
    s += "; pairs with peak ratio <= " + num(coarse_peak, "%.3f") + " on N=" + std::to_string(coarse_n) + " (" +
         std::to_string(coarse_n_beta) + " beta nodes, estimated " + num(coarse_estimate) + ")";
  return s;
}

std::string GridChoice::warning() const {
  if (!capped) return {};
  return "SO(3) grid: refinement stopped at the cap N=" + std::to_string(n_max) + " with an estimated relative error " +
         num(estimate) + " above --so3-tol " + num(tolerance, "%g") + " (a larger --so3-grid costs ~N^3 per pair)";
}

std::string GridChoice::json_members() const {
  return std::string("\"so3_grid_choice\": \"") + (forced ? "forced" : capped ? "capped" : "tolerance") +
         "\", \"so3_grid_estimate\": " + num(estimate, "%.3e") + ", \"so3_tol\": " + num(tolerance, "%.3e") +
         ", \"so3_grid_coarse\": " + std::to_string(coarse_n) + ", \"so3_grid_coarse_beta\": " + std::to_string(coarse_n_beta) + ", \"so3_grid_coarse_peak\": " + num(coarse_peak, "%.4f");
}

GridChoice choose_grid(const Architecture& arch, int band_limit, int channels, const std::vector<const Signal*>& items,
                       const GridChoiceOptions& options) {
  if (items.empty()) throw InvalidArgument("SO(3) grid choice: no items");
  std::vector<double> size;
  for (const Signal* x : items) size.push_back(x->variance());
  std::vector<Signal> sample;
  for (const std::size_t i : pick(size)) sample.push_back(*items[i]);
  const std::size_t s = sample.size();
  for (std::size_t i = 0; i < s; ++i) sample.push_back(rotate(sample[i], kSampleRotation));
  const auto sample_gram = [&](int n, int n_beta) {
    const Network net(arch, band_limit, channels, GridOptions{n, n_beta});
    return gram_matrices(net, sample, nullptr, options.threads);
  };
  std::vector<kernel::GramPair> history;
  GridChoice c = ladder(arch, band_limit, options, static_cast<int>(sample.size()),
                        [&](int n) { return sample_gram(n, 0); }, history);
  if (options.two_grids) choose_coarse(c, arch, band_limit, channels, sample, history, sample_gram);
  return c;
}

GridChoice choose_molecule_grid(const Architecture& arch, int band_limit,
                                const std::vector<const std::vector<Signal>*>& molecules,
                                const GridChoiceOptions& options) {
  std::vector<const Signal*> atoms;
  for (const auto* m : molecules)
    for (const Signal& x : *m) atoms.push_back(&x);
  if (atoms.empty()) throw InvalidArgument("SO(3) grid choice: no molecules");
  return choose_grid(arch, band_limit, kMoleculeChannels, atoms, options);
}

}  // namespace eqntk::so3
