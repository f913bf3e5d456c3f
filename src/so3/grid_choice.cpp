#include "eqntk/so3/grid_choice.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
#include <limits>
#include <numeric>

#include "eqntk/error.hpp"
#include "eqntk/so3/gram.hpp"
#include "eqntk/so3/network.hpp"
#include "eqntk/so3/wigner.hpp"

namespace eqntk::so3 {
namespace {

constexpr std::size_t kSampleItems = 3;
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

// The ladder of the file comment; `sample_gram(N)` is the sample's Gram pair on grid N.
GridChoice ladder(const Architecture& arch, int band_limit, const GridChoiceOptions& o, int sample_items,
                  const std::function<kernel::GramPair(int)>& sample_gram) {
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
  return s + (capped ? ", capped)" : ")");
}

std::string GridChoice::warning() const {
  if (!capped) return {};
  return "SO(3) grid: refinement stopped at the cap N=" + std::to_string(n_max) + " with an estimated relative error " +
         num(estimate) + " above --so3-tol " + num(tolerance, "%g") + " (a larger --so3-grid costs ~N^3 per pair)";
}

std::string GridChoice::json_members() const {
  return std::string("\"so3_grid_choice\": \"") + (forced ? "forced" : capped ? "capped" : "tolerance") +
         "\", \"so3_grid_estimate\": " + num(estimate, "%.3e") + ", \"so3_tol\": " + num(tolerance, "%.3e");
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
  return ladder(arch, band_limit, options, static_cast<int>(sample.size()), [&](int n) {
    const Network net(arch, band_limit, channels, GridOptions{n, 0});
    return gram_matrices(net, sample, nullptr, options.threads);
  });
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
