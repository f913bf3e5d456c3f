#include "eqntk/finite/network.hpp"

#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <limits>
#include <numbers>
#include <string>
#include <utility>

#include "eqntk/error.hpp"
#include "eqntk/group/point_group.hpp"
#include "eqntk/kernel/dual.hpp"

namespace eqntk::finite {

namespace {

using kernel::LayerKind;
using RowMatrix = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using MatrixMap = Eigen::Map<RowMatrix>;
using ConstMatrixMap = Eigen::Map<const RowMatrix>;
using VectorMap = Eigen::Map<Eigen::VectorXd>;
using ConstVectorMap = Eigen::Map<const Eigen::VectorXd>;

// xoshiro256** seeded through splitmix64, and Box–Muller: portable, unlike std::normal_distribution,
// whose algorithm the standard leaves to the library.
class NormalGenerator {
 public:
  explicit NormalGenerator(std::uint64_t seed) {
    for (auto& s : state_) {
      seed += 0x9E3779B97F4A7C15ULL;
      std::uint64_t z = seed;
      z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
      z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
      s = z ^ (z >> 31);
    }
  }
  double operator()() {
    if (has_spare_) {
      has_spare_ = false;
      return spare_;
    }
    // u1 ∈ (0, 1] so that log(u1) is finite; u2 ∈ [0, 1).
    const double u1 = (static_cast<double>(next() >> 11) + 1.0) * 0x1.0p-53;
    const double u2 = static_cast<double>(next() >> 11) * 0x1.0p-53;
    const double radius = std::sqrt(-2.0 * std::log(u1));
    const double angle = 2.0 * std::numbers::pi * u2;
    spare_ = radius * std::sin(angle);
    has_spare_ = true;
    return radius * std::cos(angle);
  }

 private:
  static std::uint64_t rotl(std::uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  std::uint64_t next() {
    const std::uint64_t result = rotl(state_[1] * 5, 7) * 9;
    const std::uint64_t t = state_[1] << 17;
    state_[2] ^= state_[0];
    state_[3] ^= state_[1];
    state_[1] ^= state_[2];
    state_[0] ^= state_[3];
    state_[2] ^= t;
    state_[3] = rotl(state_[3], 45);
    return result;
  }
  std::uint64_t state_[4] = {};
  double spare_ = 0.0;
  bool has_spare_ = false;
};

std::int64_t wrap(std::int64_t i, std::int64_t n) {
  return ((i % n) + n) % n;
}

}  // namespace

struct FiniteNetwork::Layer {
  LayerKind kind = LayerKind::id;
  std::int64_t ch_in = 0, cols_in = 0;    // input state: channels × columns per channel
  std::int64_t ch_out = 0, cols_out = 0;  // output state
  // Linear layers.
  std::int64_t fan_in = 0;
  std::int64_t taps = 0;  // S·q² gathered values per input channel (C4/plane layers)
  double a = 0.0;         // σ_w/√fan-in
  double sb = 0.0;        // σ_b
  std::int64_t w_off = 0, b_off = 0;
  // map[tap·cols_out + k]: where gathered value (tap, column k) sits inside one input channel's block of
  // cols_in values, or −1 for a zero-padded position.
  std::vector<std::int32_t> map;
  // avgpool: `blocks` maps of h_in × w_in pixels per channel (|G| group labels, or 1), cells of s × s.
  std::int64_t blocks = 0, h_in = 0, w_in = 0, s = 0;
  // res ↔ res_end: the index of the other marker.
  std::size_t partner = 0;
};

FiniteNetwork::~FiniteNetwork() = default;
FiniteNetwork::FiniteNetwork(FiniteNetwork&&) noexcept = default;
FiniteNetwork& FiniteNetwork::operator=(FiniteNetwork&&) noexcept = default;

FiniteNetwork::FiniteNetwork(kernel::Network net, std::int64_t width, std::uint64_t seed)
    : net_(std::move(net)), width_(width) {
  if (width < 1) throw InvalidArgument("finite network: width must be at least 1, got " + std::to_string(width));
  const auto& stages = net_.stages();
  for (std::size_t s = 0; s < stages.size(); ++s)
    if (stages[s].spec.kind == LayerKind::dense) last_dense_ = s;

  const data::InputShape in = net_.input_shape();
  std::int64_t ch = in.channels, cols = in.height * in.width;
  std::int64_t offset = 0;
  auto add_block = [&](std::size_t s, ParameterKind kind, std::int64_t outputs, std::int64_t fan_in) {
    blocks_.push_back({s, kind, offset, outputs * fan_in, outputs, fan_in});
    offset += outputs * fan_in;
    return blocks_.back().offset;
  };
  for (std::size_t s = 0; s < stages.size(); ++s) {
    const kernel::Stage& st = stages[s];
    Layer l;
    l.kind = st.spec.kind;
    l.ch_in = ch;
    l.cols_in = cols;
    switch (st.spec.kind) {
      case LayerKind::lift:
      case LayerKind::gconv:
      case LayerKind::conv: {
        const int q = st.q, p = st.p;
        const group::PointGroup grp = net_.group();
        const auto elements = group::elements(grp);
        const int order = group::order(grp);
        const int n_s = st.spec.kind == LayerKind::gconv ? order : 1;           // the s-sum over G
        const int in_rot = st.in_state == kernel::StateKind::group ? order : 1;  // group labels of the input
        const int out_rot = st.spec.kind == LayerKind::conv ? 1 : order;
        const std::int64_t hw_in = st.h_in * st.w_in, hw_out = st.h_out * st.w_out;
        if (in_rot * hw_in != cols)
          throw InvalidArgument("finite network: internal shape mismatch at '" + st.spec.token + "'");
        l.taps = static_cast<std::int64_t>(n_s) * q * q;
        l.fan_in = ch * l.taps;
        l.ch_out = width;
        l.cols_out = out_rot * hw_out;
        l.a = st.spec.w / std::sqrt(static_cast<double>(l.fan_in));
        l.sb = st.spec.b;
        if (cols > std::numeric_limits<std::int32_t>::max())
          throw InvalidArgument("finite network: feature maps too large at '" + st.spec.token + "'");
        l.map.assign(static_cast<std::size_t>(l.taps * l.cols_out), -1);
        // Gathered value (s, y) of output column (g, t) is h(t + A_g y, g s): the output pixel's centre
        // is t itself (same, circular) or t + (p, p) (valid); valid windows never leave the image.
        for (int si = 0; si < n_s; ++si)
          for (int y0 = -p; y0 <= p; ++y0)
            for (int y1 = -p; y1 <= p; ++y1) {
              const std::int64_t tap = (static_cast<std::int64_t>(si) * q + (y0 + p)) * q + (y1 + p);
              for (int r = 0; r < out_rot; ++r) {
                const group::Element g = elements[static_cast<std::size_t>(r)];
                const group::Offset d = group::act(g, {y0, y1});
                const std::int64_t d0 = d.a, d1 = d.b;
                const std::int64_t r_in =
                    in_rot == 1 ? 0 : group::index_of(grp, group::compose(g, elements[static_cast<std::size_t>(si)]));
                for (std::int64_t i = 0; i < st.h_out; ++i)
                  for (std::int64_t j = 0; j < st.w_out; ++j) {
                    const std::int64_t centre_i = st.spec.pad == kernel::Padding::valid ? i + p : i;
                    const std::int64_t centre_j = st.spec.pad == kernel::Padding::valid ? j + p : j;
                    std::int64_t ii = centre_i + d0, jj = centre_j + d1;
                    if (st.spec.pad == kernel::Padding::circular) {
                      ii = wrap(ii, st.h_in);
                      jj = wrap(jj, st.w_in);
                    } else if (ii < 0 || ii >= st.h_in || jj < 0 || jj >= st.w_in) {
                      continue;
                    }
                    const std::int64_t k = (r * st.h_out + i) * st.w_out + j;
                    l.map[static_cast<std::size_t>(tap * l.cols_out + k)] =
                        static_cast<std::int32_t>(r_in * hw_in + ii * st.w_in + jj);
                  }
              }
            }
        l.w_off = add_block(s, ParameterKind::weight, width, l.fan_in);
        l.b_off = add_block(s, ParameterKind::bias, width, 1);
        break;
      }
      case LayerKind::relu:
      case LayerKind::erf:
      case LayerKind::id:
        l.ch_out = ch;
        l.cols_out = cols;
        break;
      case LayerKind::gpool:
      case LayerKind::gap:
        l.ch_out = ch;
        l.cols_out = 1;
        break;
      case LayerKind::flatten:
        l.ch_out = ch * cols;
        l.cols_out = 1;
        break;
      case LayerKind::avgpool: {
        l.blocks = st.in_state == kernel::StateKind::group ? group::order(net_.group()) : 1;
        l.h_in = st.h_in;
        l.w_in = st.w_in;
        l.s = st.spec.s;
        if (l.blocks * l.h_in * l.w_in != cols)
          throw InvalidArgument("finite network: internal shape mismatch at '" + st.spec.token + "'");
        l.ch_out = ch;
        l.cols_out = l.blocks * st.h_out * st.w_out;
        break;
      }
      case LayerKind::res:
      case LayerKind::res_end:
        // The body keeps the state (channels and positions), so h + F(h) adds entry by entry.
        l.partner = st.partner;
        l.ch_out = ch;
        l.cols_out = cols;
        if (st.spec.kind == LayerKind::res_end &&
            (layers_[st.partner].ch_in != ch || layers_[st.partner].cols_in != cols))
          throw InvalidArgument("finite network: the body of '" + st.spec.token + "' changes the state's shape");
        break;
      case LayerKind::dense: {
        l.fan_in = ch * cols;
        l.ch_out = s == last_dense_ ? 1 : width;
        l.cols_out = 1;
        l.a = st.spec.w / std::sqrt(static_cast<double>(l.fan_in));
        l.sb = st.spec.b;
        l.w_off = add_block(s, ParameterKind::weight, l.ch_out, l.fan_in);
        l.b_off = add_block(s, ParameterKind::bias, l.ch_out, 1);
        break;
      }
    }
    ch = l.ch_out;
    cols = l.cols_out;
    layers_.push_back(std::move(l));
  }
  if (ch * cols != 1) throw InvalidArgument("finite network: the architecture does not end in one output");

  theta_.resize(static_cast<std::size_t>(offset));
  reseed(seed);

  act_.resize(layers_.size() + 1);
  col_.resize(layers_.size());
  skip_.resize(layers_.size());
  for (std::size_t s = 0; s < layers_.size(); ++s) {
    const Layer& l = layers_[s];
    act_[s].assign(static_cast<std::size_t>(l.ch_in * l.cols_in), 0.0);
    if (!l.map.empty()) col_[s].assign(static_cast<std::size_t>(l.fan_in * l.cols_out), 0.0);
  }
  act_.back().assign(1, 0.0);
}

void FiniteNetwork::reseed(std::uint64_t seed) {
  NormalGenerator normal(seed);
  for (double& v : theta_) v = normal();
  evaluated_ = false;
}

void FiniteNetwork::run_forward(const data::ImageView& x) {
  const data::InputShape want = net_.input_shape();
  if (!(x.shape() == want))
    throw InvalidArgument("finite network: image shape " + std::to_string(x.channels) + "x" + std::to_string(x.height) +
                          "x" + std::to_string(x.width) + " (CxHxW) does not match the network input " +
                          std::to_string(want.channels) + "x" + std::to_string(want.height) + "x" +
                          std::to_string(want.width));
  std::copy(x.data, x.data + act_[0].size(), act_[0].begin());
  for (std::size_t s = 0; s < layers_.size(); ++s) {
    const Layer& l = layers_[s];
    const double* in = act_[s].data();
    double* out = act_[s + 1].data();
    const std::int64_t n_in = l.ch_in * l.cols_in;
    switch (l.kind) {
      case LayerKind::lift:
      case LayerKind::gconv:
      case LayerKind::conv: {
        double* col = col_[s].data();
        for (std::int64_t j = 0; j < l.ch_in; ++j) {
          const double* in_j = in + j * l.cols_in;
          for (std::int64_t tap = 0; tap < l.taps; ++tap) {
            const std::int32_t* m = l.map.data() + tap * l.cols_out;
            double* c = col + (j * l.taps + tap) * l.cols_out;
            for (std::int64_t k = 0; k < l.cols_out; ++k) c[k] = m[k] >= 0 ? in_j[m[k]] : 0.0;
          }
        }
        const ConstMatrixMap w(theta_.data() + l.w_off, l.ch_out, l.fan_in);
        const ConstMatrixMap g(col, l.fan_in, l.cols_out);
        MatrixMap f(out, l.ch_out, l.cols_out);
        f.noalias() = l.a * (w * g);
        for (std::int64_t o = 0; o < l.ch_out; ++o)
          f.row(o).array() += l.sb * theta_[static_cast<std::size_t>(l.b_off + o)];
        break;
      }
      case LayerKind::relu:
        for (std::int64_t k = 0; k < n_in; ++k) out[k] = in[k] > 0.0 ? in[k] : 0.0;
        break;
      case LayerKind::erf:
        for (std::int64_t k = 0; k < n_in; ++k) out[k] = std::erf(in[k]);
        break;
      case LayerKind::id:
        std::copy(in, in + n_in, out);
        break;
      case LayerKind::avgpool: {
        // out(T) = (1/s²) Σ_{t ∈ cell(T)} in(t) for every channel and group label (MATH.md §10).
        const std::int64_t ho = l.h_in / l.s, wo = l.w_in / l.s;
        const double inv = 1.0 / static_cast<double>(l.s * l.s);
        for (std::int64_t m = 0; m < l.ch_in * l.blocks; ++m) {
          const double* src = in + m * l.h_in * l.w_in;
          double* dst = out + m * ho * wo;
          for (std::int64_t i = 0; i < ho; ++i)
            for (std::int64_t j = 0; j < wo; ++j) {
              double sum = 0.0;
              for (std::int64_t a = 0; a < l.s; ++a)
                for (std::int64_t b = 0; b < l.s; ++b) sum += src[(i * l.s + a) * l.w_in + j * l.s + b];
              dst[i * wo + j] = sum * inv;
            }
        }
        break;
      }
      case LayerKind::res:
        std::copy(in, in + n_in, out);
        break;
      case LayerKind::res_end: {
        // h + F(h): act_[partner] is the block's input h, `in` the body's output F(h).
        const double* h = act_[l.partner].data();
        for (std::int64_t k = 0; k < n_in; ++k) out[k] = in[k] + h[k];
        break;
      }
      case LayerKind::gpool:
      case LayerKind::gap: {
        const double inv = 1.0 / static_cast<double>(l.cols_in);
        for (std::int64_t c = 0; c < l.ch_in; ++c) {
          double sum = 0.0;
          for (std::int64_t k = 0; k < l.cols_in; ++k) sum += in[c * l.cols_in + k];
          out[c] = sum * inv;
        }
        break;
      }
      case LayerKind::flatten:
        std::copy(in, in + n_in, out);
        break;
      case LayerKind::dense: {
        const ConstMatrixMap w(theta_.data() + l.w_off, l.ch_out, l.fan_in);
        const ConstVectorMap h(in, l.fan_in);
        VectorMap f(out, l.ch_out);
        f.noalias() = l.a * (w * h);
        for (std::int64_t o = 0; o < l.ch_out; ++o) out[o] += l.sb * theta_[static_cast<std::size_t>(l.b_off + o)];
        break;
      }
    }
  }
  evaluated_ = true;
}

double FiniteNetwork::forward(const data::ImageView& x) {
  run_forward(x);
  return act_.back()[0];
}

double FiniteNetwork::gradient(const data::ImageView& x, std::span<double> grad) {
  if (static_cast<std::int64_t>(grad.size()) != parameter_count())
    throw InvalidArgument("finite network: gradient buffer has " + std::to_string(grad.size()) +
                          " entries, the network " + std::to_string(parameter_count()) + " parameters");
  run_forward(x);
  std::size_t first_linear = layers_.size();
  for (std::size_t s = 0; s < layers_.size(); ++s)
    if (layers_[s].fan_in > 0) {
      first_linear = s;
      break;
    }
  delta_.assign(1, 1.0);  // ∂f/∂f
  for (std::size_t s = layers_.size(); s-- > 0;) {
    const Layer& l = layers_[s];
    // No stage before the first linear layer has parameters: its δ is never needed.
    const bool need_in = s > first_linear;
    const double* in = act_[s].data();
    const std::int64_t n_in = l.ch_in * l.cols_in;
    if (need_in) delta_in_.assign(static_cast<std::size_t>(n_in), 0.0);
    double* din = delta_in_.data();
    const double* d = delta_.data();
    switch (l.kind) {
      case LayerKind::lift:
      case LayerKind::gconv:
      case LayerKind::conv: {
        const ConstMatrixMap df(d, l.ch_out, l.cols_out);
        const ConstMatrixMap g(col_[s].data(), l.fan_in, l.cols_out);
        MatrixMap gw(grad.data() + l.w_off, l.ch_out, l.fan_in);
        gw.noalias() = l.a * (df * g.transpose());
        for (std::int64_t o = 0; o < l.ch_out; ++o)
          grad[static_cast<std::size_t>(l.b_off + o)] = l.sb * df.row(o).sum();
        if (need_in) {
          const ConstMatrixMap w(theta_.data() + l.w_off, l.ch_out, l.fan_in);
          dcol_.resize(static_cast<std::size_t>(l.fan_in * l.cols_out));
          MatrixMap dc(dcol_.data(), l.fan_in, l.cols_out);
          dc.noalias() = l.a * (w.transpose() * df);
          // The transpose of the gather: every gathered copy sends its gradient back to its source pixel.
          for (std::int64_t j = 0; j < l.ch_in; ++j) {
            double* din_j = din + j * l.cols_in;
            for (std::int64_t tap = 0; tap < l.taps; ++tap) {
              const std::int32_t* m = l.map.data() + tap * l.cols_out;
              const double* c = dcol_.data() + (j * l.taps + tap) * l.cols_out;
              for (std::int64_t k = 0; k < l.cols_out; ++k)
                if (m[k] >= 0) din_j[m[k]] += c[k];
            }
          }
        }
        break;
      }
      case LayerKind::relu:
        if (need_in)
          for (std::int64_t k = 0; k < n_in; ++k) din[k] = in[k] > 0.0 ? d[k] : 0.0;
        break;
      case LayerKind::erf:
        if (need_in) {
          const double c = 2.0 / std::sqrt(std::numbers::pi);
          for (std::int64_t k = 0; k < n_in; ++k) din[k] = d[k] * c * std::exp(-in[k] * in[k]);
        }
        break;
      case LayerKind::id:
      case LayerKind::flatten:
        if (need_in) std::copy(d, d + n_in, din);
        break;
      case LayerKind::avgpool:
        if (need_in) {
          const std::int64_t ho = l.h_in / l.s, wo = l.w_in / l.s;
          const double inv = 1.0 / static_cast<double>(l.s * l.s);
          for (std::int64_t m = 0; m < l.ch_in * l.blocks; ++m) {
            double* dst = din + m * l.h_in * l.w_in;
            const double* src = d + m * ho * wo;
            for (std::int64_t i = 0; i < l.h_in; ++i)
              for (std::int64_t j = 0; j < l.w_in; ++j) dst[i * l.w_in + j] = src[(i / l.s) * wo + j / l.s] * inv;
          }
        }
        break;
      case LayerKind::res_end:
        // Both summands of h + F(h) receive δ: the body through the chain, the block's input through skip_,
        // which its res marker adds (res markers never precede the first linear layer: need_in holds there).
        if (need_in) {
          std::copy(d, d + n_in, din);
          skip_[l.partner].assign(d, d + n_in);
        }
        break;
      case LayerKind::res:
        if (need_in) {
          const double* skip = skip_[s].data();
          for (std::int64_t k = 0; k < n_in; ++k) din[k] = d[k] + skip[k];
        }
        break;
      case LayerKind::gpool:
      case LayerKind::gap:
        if (need_in) {
          const double inv = 1.0 / static_cast<double>(l.cols_in);
          for (std::int64_t c = 0; c < l.ch_in; ++c)
            for (std::int64_t k = 0; k < l.cols_in; ++k) din[c * l.cols_in + k] = d[c] * inv;
        }
        break;
      case LayerKind::dense: {
        const ConstVectorMap df(d, l.ch_out);
        const ConstVectorMap h(in, l.fan_in);
        MatrixMap gw(grad.data() + l.w_off, l.ch_out, l.fan_in);
        gw.noalias() = l.a * (df * h.transpose());
        for (std::int64_t o = 0; o < l.ch_out; ++o) grad[static_cast<std::size_t>(l.b_off + o)] = l.sb * d[o];
        if (need_in) {
          const ConstMatrixMap w(theta_.data() + l.w_off, l.ch_out, l.fan_in);
          VectorMap dh(din, l.fan_in);
          dh.noalias() = l.a * (w.transpose() * df);
        }
        break;
      }
    }
    if (need_in) std::swap(delta_, delta_in_);
  }
  return act_.back()[0];
}

std::span<const double> FiniteNetwork::stage_output(std::size_t s) const {
  if (s >= layers_.size())
    throw InvalidArgument("finite network: stage " + std::to_string(s) + " out of range (" +
                          std::to_string(layers_.size()) + " stages)");
  if (!evaluated_) return {};
  return act_[s + 1];
}

std::span<const double> FiniteNetwork::readout_features() const {
  if (!evaluated_) return {};
  return act_[last_dense_];
}

double FiniteNetwork::conditional_nngp(std::span<const double> h1, std::span<const double> h2) const {
  const Layer& l = layers_[last_dense_];
  if (static_cast<std::int64_t>(h1.size()) != l.fan_in || static_cast<std::int64_t>(h2.size()) != l.fan_in)
    throw InvalidArgument("finite network: conditional_nngp needs two feature vectors of length " +
                          std::to_string(l.fan_in));
  const ConstVectorMap u(h1.data(), l.fan_in), v(h2.data(), l.fan_in);
  const double w2 = l.a * l.a, b2 = l.sb * l.sb;  // σ_w²/n and σ_b²
  const double c = w2 * u.dot(v) + b2;
  if (last_dense_ + 1 == layers_.size()) return c;
  const LayerKind phi = layers_[last_dense_ + 1].kind;
  return kernel::dual(phi, w2 * u.squaredNorm() + b2, w2 * v.squaredNorm() + b2, c).sigma;
}

EmpiricalKernels empirical_kernels(FiniteNetwork& net, const data::ImageSet& images) {
  std::vector<double> gradients;
  return empirical_kernels(net, images, gradients);
}

EmpiricalKernels empirical_kernels(FiniteNetwork& net, const data::ImageSet& images, std::vector<double>& grads) {
  if (!(images.shape == net.network().input_shape()))
    throw InvalidArgument("empirical_kernels: image shape does not match the network input");
  const std::int64_t m = images.count;
  const std::int64_t p = net.parameter_count();
  grads.resize(static_cast<std::size_t>(m * p));
  std::vector<double> f(static_cast<std::size_t>(m));
  std::vector<std::vector<double>> h(static_cast<std::size_t>(m));
  for (std::int64_t a = 0; a < m; ++a) {
    f[static_cast<std::size_t>(a)] =
        net.gradient(images.view(a), std::span<double>(grads.data() + a * p, static_cast<std::size_t>(p)));
    const auto feat = net.readout_features();
    h[static_cast<std::size_t>(a)].assign(feat.begin(), feat.end());
  }
  EmpiricalKernels k{m, std::vector<double>(static_cast<std::size_t>(m * m)), {}, {}};
  k.ntk.resize(k.nngp.size());
  k.nngp_cond.resize(k.nngp.size());
  for (std::int64_t a = 0; a < m; ++a)
    for (std::int64_t b = 0; b <= a; ++b) {
      const ConstVectorMap ga(grads.data() + a * p, p), gb(grads.data() + b * p, p);
      const double ntk = ga.dot(gb);
      const double nngp = f[static_cast<std::size_t>(a)] * f[static_cast<std::size_t>(b)];
      const double cond = net.conditional_nngp(h[static_cast<std::size_t>(a)], h[static_cast<std::size_t>(b)]);
      for (const auto idx : {a * m + b, b * m + a}) {
        k.ntk[static_cast<std::size_t>(idx)] = ntk;
        k.nngp[static_cast<std::size_t>(idx)] = nngp;
        k.nngp_cond[static_cast<std::size_t>(idx)] = cond;
      }
    }
  return k;
}

}  // namespace eqntk::finite
