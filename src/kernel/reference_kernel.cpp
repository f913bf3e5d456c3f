#include "eqntk/kernel/reference_kernel.hpp"

#include <algorithm>
#include <cmath>
#include <span>
#include <string>
#include <utility>

#include "eqntk/error.hpp"
#include "eqntk/group/point_group.hpp"
#include "eqntk/kernel/dual.hpp"

namespace eqntk::kernel {
namespace {

std::int64_t wrap(std::int64_t v, std::int64_t n) {
  v %= n;
  return v < 0 ? v + n : v;
}

// The input pixel (flattened row-major over the layer's input h_in×w_in) that output pixel (i, j)
// reads at window offset (a, b), or −1 when `same` padding puts it outside the image (a zero term).
// `valid` output pixel t sits over input pixel t + (p, p), so every term is in range.
std::int64_t source_pixel(const Stage& st, std::int64_t i, std::int64_t j, int a, int b) {
  std::int64_t si = i + a, sj = j + b;
  switch (st.spec.pad) {
    case Padding::valid:
      si += st.p;
      sj += st.p;
      break;
    case Padding::circular:
      si = wrap(si, st.h_in);
      sj = wrap(sj, st.w_in);
      break;
    case Padding::same:
      if (si < 0 || si >= st.h_in || sj < 0 || sj >= st.w_in) return -1;
      break;
  }
  return si * st.w_in + sj;
}

// table[((g·h_out + i)·w_out + j)·q² + y] = source_pixel of output (i, j) at offset A_g y, for the
// window offsets y = (a, b) enumerated a-major and the output labels g (all of G for lift/gconv, offsets
// transformed by the output's group element; only the identity for conv).
std::vector<std::int64_t> window_table(const Stage& st, std::span<const group::Element> labels) {
  const std::int64_t qq = static_cast<std::int64_t>(st.q) * st.q;
  std::vector<std::int64_t> table(labels.size() * static_cast<std::size_t>(st.h_out * st.w_out * qq));
  std::size_t o = 0;
  for (const group::Element g : labels)
    for (std::int64_t i = 0; i < st.h_out; ++i)
      for (std::int64_t j = 0; j < st.w_out; ++j)
        for (int a = -st.p; a <= st.p; ++a)
          for (int b = -st.p; b <= st.p; ++b) {
            const group::Offset y = group::act(g, {a, b});
            table[o++] = source_pixel(st, i, j, static_cast<int>(y.a), static_cast<int>(y.b));
          }
  return table;
}

// K⁰(p, p') = (1/C) Σ_c x_c(p) x2_c(p'), Θ⁰ = 0, over the raw pixels (rotations = 1).
FullState input_state(const data::ImageView& x, const data::ImageView& x2) {
  FullState s;
  s.rotations = 1;
  s.h = x.height;
  s.w = x.width;
  const std::int64_t n = s.n();
  s.nngp.assign(static_cast<std::size_t>(n * n), 0.0);
  s.ntk.assign(static_cast<std::size_t>(n * n), 0.0);
  for (std::int64_t p = 0; p < n; ++p)
    for (std::int64_t p2 = 0; p2 < n; ++p2) {
      double sum = 0.0;
      for (std::int64_t c = 0; c < x.channels; ++c) sum += x.data[c * n + p] * x2.data[c * n + p2];
      s.nngp[static_cast<std::size_t>(p * n + p2)] = sum / static_cast<double>(x.channels);
    }
  return s;
}

// One lift/gconv/conv layer over the full index space, straight from MATH.md §3 and §10: output labels
// g, g' ∈ G, the s-sum over the support (indices into G's elements) reading input labels g s and g' s.
FullState linear_layer(const FullState& in, const Stage& st, group::PointGroup grp, const std::vector<int>& support) {
  const LayerKind kind = st.spec.kind;
  const auto elements = group::elements(kind == LayerKind::conv ? group::PointGroup::C1 : grp);
  const int rot_out = static_cast<int>(elements.size());
  FullState out;
  out.rotations = rot_out;
  out.h = st.h_out;
  out.w = st.w_out;
  const std::int64_t n_out = out.n();
  const std::int64_t n_in = in.n();
  const std::int64_t pix_in = in.h * in.w;
  const std::int64_t pix_out = out.h * out.w;
  const int qq = st.q * st.q;
  const std::vector<std::int64_t> table = window_table(st, elements);
  // Only the group conv has an s-sum; lift reads the rotation-free input, conv the plane maps.
  const std::vector<int> no_s{0};
  const std::vector<int>& s_values = kind == LayerKind::gconv ? support : no_s;
  const double norm = st.w2 / (static_cast<double>(s_values.size()) * static_cast<double>(qq));
  // Θ¹ = K¹ for the first layer on the input (MATH.md §3); Θ⁰ = 0 makes the general rule agree.
  const bool first = st.in_state == StateKind::input;
  out.nngp.resize(static_cast<std::size_t>(n_out * n_out));
  out.ntk.resize(out.nngp.size());
  for (int r = 0; r < rot_out; ++r)
    for (std::int64_t t = 0; t < pix_out; ++t) {
      const std::int64_t* win1 = table.data() + (r * pix_out + t) * qq;
      const std::int64_t g = r * pix_out + t;
      for (int r2 = 0; r2 < rot_out; ++r2)
        for (std::int64_t t2 = 0; t2 < pix_out; ++t2) {
          const std::int64_t* win2 = table.data() + (r2 * pix_out + t2) * qq;
          const std::int64_t g2 = r2 * pix_out + t2;
          double sum_k = 0.0, sum_t = 0.0;
          for (const int s : s_values) {
            // Input labels g s and g' s (gconv); 0 for lift (raw input) and conv (planes).
            const auto label = [&](int out_label) -> std::int64_t {
              const group::Element gs = group::compose(elements[static_cast<std::size_t>(out_label)],
                                                       elements[static_cast<std::size_t>(s)]);
              return group::index_of(grp, gs);
            };
            const std::int64_t base1 = kind == LayerKind::gconv ? label(r) * pix_in : 0;
            const std::int64_t base2 = kind == LayerKind::gconv ? label(r2) * pix_in : 0;
            for (int y = 0; y < qq; ++y) {
              const std::int64_t u1 = win1[y], u2 = win2[y];
              if (u1 < 0 || u2 < 0) continue;  // zero padding: the term is 0
              const std::size_t e = static_cast<std::size_t>((base1 + u1) * n_in + base2 + u2);
              sum_k += in.nngp[e];
              sum_t += in.ntk[e];
            }
          }
          const double k = norm * sum_k + st.b2;
          const std::size_t o = static_cast<std::size_t>(g * n_out + g2);
          out.nngp[o] = k;
          out.ntk[o] = first ? k : k + norm * sum_t;
        }
    }
  return out;
}

// avgpool (MATH.md §10): K'(T, T') = (1/s⁴) Σ_{t∈cell T} Σ_{t'∈cell T'} K(t, t') for every label pair.
FullState average_pool(const FullState& in, int cell) {
  FullState out;
  out.rotations = in.rotations;
  out.h = in.h / cell;
  out.w = in.w / cell;
  const std::int64_t n = out.n();
  out.nngp.assign(static_cast<std::size_t>(n * n), 0.0);
  out.ntk.assign(out.nngp.size(), 0.0);
  const double inv = 1.0 / (static_cast<double>(cell) * cell * cell * cell);
  for (int r = 0; r < in.rotations; ++r)
    for (std::int64_t i = 0; i < in.h; ++i)
      for (std::int64_t j = 0; j < in.w; ++j)
        for (int r2 = 0; r2 < in.rotations; ++r2)
          for (std::int64_t i2 = 0; i2 < in.h; ++i2)
            for (std::int64_t j2 = 0; j2 < in.w; ++j2) {
              const auto o = static_cast<std::size_t>(out.index(r, i / cell, j / cell, r2, i2 / cell, j2 / cell));
              const auto e = static_cast<std::size_t>(in.index(r, i, j, r2, i2, j2));
              out.nngp[o] += inv * in.nngp[e];
              out.ntk[o] += inv * in.ntk[e];
            }
  return out;
}

// The residual sum h + F(h): K' = K + K_F, Θ' = Θ + Θ_F (MATH.md §10).
void add_state(FullState& into, const FullState& saved) {
  for (std::size_t e = 0; e < into.nngp.size(); ++e) {
    into.nngp[e] += saved.nngp[e];
    into.ntk[e] += saved.ntk[e];
  }
}

// The diagonal K_{g,g} of a state: the variances q feeding a nonlinearity.
std::vector<double> diagonal_of(const FullState& s) {
  const std::int64_t n = s.n();
  std::vector<double> d(static_cast<std::size_t>(n));
  for (std::int64_t g = 0; g < n; ++g) d[static_cast<std::size_t>(g)] = s.nngp[static_cast<std::size_t>(g * n + g)];
  return d;
}

// Entry-wise dual activation: (K, Θ) → (Σ, Σ̇⊙Θ) with q1 = var1[g], q2 = var2[g'].
void activate(FullState& s, LayerKind kind, const std::vector<double>& var1, const std::vector<double>& var2) {
  const std::int64_t n = s.n();
  for (std::int64_t g = 0; g < n; ++g)
    for (std::int64_t g2 = 0; g2 < n; ++g2) {
      const std::size_t e = static_cast<std::size_t>(g * n + g2);
      const DualValue d = dual(kind, var1[static_cast<std::size_t>(g)], var2[static_cast<std::size_t>(g2)], s.nngp[e]);
      s.nngp[e] = d.sigma;
      s.ntk[e] = d.sigma_dot * s.ntk[e];
    }
}

// Compensated (Neumaier) sum, so that the reference's pooling adds no rounding of its own worth
// mentioning next to the fast engine's.
class AccurateSum {
 public:
  void add(double v) {
    const double t = sum_ + v;
    comp_ += std::abs(sum_) >= std::abs(v) ? (sum_ - t) + v : (v - t) + sum_;
    sum_ = t;
  }
  [[nodiscard]] double value() const { return sum_ + comp_; }

 private:
  double sum_ = 0.0;
  double comp_ = 0.0;
};

// gpool/gap: mean over all (g, g'); flatten: mean over g = g'.
KernelValue pool(const FullState& s, LayerKind readout) {
  const std::int64_t n = s.n();
  AccurateSum k, t;
  if (readout == LayerKind::flatten) {
    for (std::int64_t g = 0; g < n; ++g) {
      k.add(s.nngp[static_cast<std::size_t>(g * n + g)]);
      t.add(s.ntk[static_cast<std::size_t>(g * n + g)]);
    }
    return {k.value() / static_cast<double>(n), t.value() / static_cast<double>(n)};
  }
  for (std::size_t e = 0; e < s.nngp.size(); ++e) {
    k.add(s.nngp[e]);
    t.add(s.ntk[e]);
  }
  const double count = static_cast<double>(n) * static_cast<double>(n);
  return {k.value() / count, t.value() / count};
}

}  // namespace

// The pair (x, x2) and the two self-pairs (x, x), (x2, x2), advanced stage by stage together: every
// nonlinearity of the pair needs the self-pairs' diagonals at the same depth.
struct ReferenceKernel::Chains {
  FullState pair, self1, self2;
};

ReferenceKernel::ReferenceKernel(Network net) : net_(std::move(net)) {
  for (int s = 0; s < group::order(net_.group()); ++s) filter_rotations_.push_back(s);
}

ReferenceKernel::ReferenceKernel(Network net, std::vector<int> filter_rotations)
    : net_(std::move(net)), filter_rotations_(std::move(filter_rotations)) {
  if (filter_rotations_.empty()) throw InvalidArgument("ReferenceKernel: filter_rotations must not be empty");
  const int order = group::order(net_.group());
  std::vector<int> seen;
  for (const int s : filter_rotations_) {
    if (s < 0 || s >= order)
      throw InvalidArgument("ReferenceKernel: filter element " + std::to_string(s) + " is outside 0.." +
                            std::to_string(order - 1) + " (the elements of " + std::string(group::name(net_.group())) +
                            ")");
    if (std::find(seen.begin(), seen.end(), s) != seen.end())
      throw InvalidArgument("ReferenceKernel: filter element " + std::to_string(s) + " is listed twice");
    seen.push_back(s);
  }
}

void ReferenceKernel::check_input(const data::ImageView& x) const {
  if (!(x.shape() == net_.input_shape()))
    throw InvalidArgument("ReferenceKernel: image shape " + std::to_string(x.channels) + "x" +
                          std::to_string(x.height) + "x" + std::to_string(x.width) +
                          " (CxHxW) does not match the network input " + std::to_string(net_.input_shape().channels) +
                          "x" + std::to_string(net_.input_shape().height) + "x" +
                          std::to_string(net_.input_shape().width));
}

void ReferenceKernel::run_spatial(const data::ImageView& x, const data::ImageView& x2, Chains& chains,
                                  std::vector<FullState>* record) const {
  chains.pair = input_state(x, x2);
  chains.self1 = input_state(x, x);
  chains.self2 = input_state(x2, x2);
  const auto& stages = net_.stages();
  const group::PointGroup grp = net_.group();
  std::vector<Chains> saved;  // the inputs of the open res blocks
  for (std::size_t s = 0; s < net_.readout_stage(); ++s) {
    const Stage& st = stages[s];
    if (is_spatial_linear(st.spec.kind)) {
      chains.pair = linear_layer(chains.pair, st, grp, filter_rotations_);
      chains.self1 = linear_layer(chains.self1, st, grp, filter_rotations_);
      chains.self2 = linear_layer(chains.self2, st, grp, filter_rotations_);
    } else if (st.spec.kind == LayerKind::avgpool) {
      chains.pair = average_pool(chains.pair, st.spec.s);
      chains.self1 = average_pool(chains.self1, st.spec.s);
      chains.self2 = average_pool(chains.self2, st.spec.s);
    } else if (st.spec.kind == LayerKind::res) {
      saved.push_back(chains);
    } else if (st.spec.kind == LayerKind::res_end) {
      add_state(chains.pair, saved.back().pair);
      add_state(chains.self1, saved.back().self1);
      add_state(chains.self2, saved.back().self2);
      saved.pop_back();
    } else if (is_nonlinearity(st.spec.kind)) {
      const std::vector<double> var1 = diagonal_of(chains.self1);
      const std::vector<double> var2 = diagonal_of(chains.self2);
      activate(chains.pair, st.spec.kind, var1, var2);
      activate(chains.self1, st.spec.kind, var1, var1);
      activate(chains.self2, st.spec.kind, var2, var2);
    }
    if (record != nullptr) record->push_back(chains.pair);
  }
}

KernelValue ReferenceKernel::evaluate(const data::ImageView& x, const data::ImageView& x2) const {
  check_input(x);
  check_input(x2);
  Chains chains;
  run_spatial(x, x2, chains, nullptr);
  const auto& stages = net_.stages();
  const LayerKind readout = stages[net_.readout_stage()].spec.kind;
  KernelValue pair = pool(chains.pair, readout);
  const KernelValue self1 = pool(chains.self1, readout);
  const KernelValue self2 = pool(chains.self2, readout);
  // The head: both self-pairs first (recording their pooled self-kernels), then the pair with them.
  std::vector<double> q1(stages.size(), 0.0), q2(stages.size(), 0.0);
  (void)apply_head(net_.head_layers(), self1, nullptr, nullptr, q1.data());
  (void)apply_head(net_.head_layers(), self2, nullptr, nullptr, q2.data());
  pair = apply_head(net_.head_layers(), pair, q1.data(), q2.data(), nullptr);
  return pair;
}

std::vector<FullState> ReferenceKernel::trace(const data::ImageView& x, const data::ImageView& x2) const {
  check_input(x);
  check_input(x2);
  Chains chains;
  std::vector<FullState> states;
  run_spatial(x, x2, chains, &states);
  return states;
}

}  // namespace eqntk::kernel
