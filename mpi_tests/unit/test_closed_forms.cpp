// Closed-form checks of the fast engine (PairKernel, or the OpenCL executor with EQNTK_TEST_DEVICE=gpu:
// support/engine.hpp) against values the test computes on its own.
//
// Nothing here calls the code under test to produce an expected value. The references are
//   1. path sums of linear networks (MATH.md §2, §3), written from the finite-network definition:
//      E[F(g) F'(g')] expanded weight by weight over the full group index g = (t, r), with the s-sum
//      of the group conv kept (16 rotation pairs, no 4-block reduction) and direct window sums with
//      padding indicators (no separable passes);
//   2. textbook MLP kernels on 1×1 images (arc-cosine kernels of Cho & Saul 2009 with acos, the erf
//      kernel of Williams 1997, the NTK recursion of Jacot et al. 2018 / Arora et al. 2019);
//   3. structural facts of Gram matrices (symmetry, positive semi-definiteness, the zero image).
//
// Tolerances: every reference and the engine evaluate the same finite sums in different orders.
// Recursive summation of n terms errs by at most n·ε·Σ|terms| (Higham, Accuracy and Stability, §4.2),
// so each linear check carries the magnitude M (the same path sum over |terms|) and the number of
// summed terms along the longest chain, and allows 2·(chain + levels)·ε·M (two computations, a few
// ulps of multiplications per level). Each tolerance is ≤ 1e-12 relative, so a wrong factor such as
// a missing 1/q² (a factor 9 for k = 3) fails by twelve orders of magnitude. Each of these engine
// mutations (made on a scratch copy, never in the tree) fails at least one test here: a missing 1/q²
// in the spatial or in the diagonal path, Θ⁰ = K⁰ on the flatten path, Θ¹ = K¹ + σ_w²A[K⁰], every
// rotation block treated as Δ = 0, circular padding treated as same, a pooling count without the
// 4 rotations, relu Σ̇ with θ scaled by 0.999, the scalar relu Σ off by 5e-7 relative, erf Σ̇ off by
// ~1e-9 relative, a dual reading the other image's (or one image's, on both sides) variance map.
#include <gtest/gtest.h>

#include <Eigen/Dense>
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numbers>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "../support/engine.hpp"
#include "../support/fixtures.hpp"
#include "eqntk/data/image.hpp"
#include "eqntk/group/image_action.hpp"
#include "eqntk/kernel/architecture.hpp"
#include "eqntk/kernel/network.hpp"
#include "eqntk/kernel/pair_kernel.hpp"

using eqntk::kernel::Architecture;
using eqntk::data::Image;
using eqntk::data::InputShape;
using eqntk::kernel::KernelValue;
using eqntk::kernel::Network;
using eqntk::testing::FastPath;
using eqntk::kernel::Padding;
using eqntk::testing::gaussian_image;

namespace {

constexpr double kEps = std::numeric_limits<double>::epsilon();
constexpr double kPi = std::numbers::pi;

// ---------------------------------------------------------------------------------------------------
// Images and engine calls
// ---------------------------------------------------------------------------------------------------

Image zero_image(InputShape shape) {
  return Image{shape, std::vector<double>(static_cast<std::size_t>(shape.channels * shape.height * shape.width), 0.0)};
}

double& pixel(Image& x, std::int64_t c, std::int64_t i, std::int64_t j) {
  return x.pixels[static_cast<std::size_t>((c * x.shape.height + i) * x.shape.width + j)];
}

// Random pixels inside, zeros on a border of width `border` (zero-variance receptive fields).
Image zero_border_image(InputShape shape, std::int64_t border, std::uint64_t seed) {
  Image x = gaussian_image(shape, seed);
  for (std::int64_t c = 0; c < shape.channels; ++c)
    for (std::int64_t i = 0; i < shape.height; ++i)
      for (std::int64_t j = 0; j < shape.width; ++j)
        if (i < border || j < border || i >= shape.height - border || j >= shape.width - border)
          pixel(x, c, i, j) = 0.0;
  return x;
}

// The engine's K(x, x2), Θ(x, x2) for one ordered pair.
KernelValue engine_pair(const std::string& arch, const Image& x, const Image& x2) {
  FastPath pk(Network(Architecture::parse(arch), x.shape));
  const auto sx = pk.self_chain(x.view());
  const auto sx2 = pk.self_chain(x2.view());
  return pk.evaluate(x.view(), sx, x2.view(), sx2);
}

std::string fmt(double v) {
  std::ostringstream s;
  s << v;
  return s.str();
}

std::string_view pad_name(Padding pad) {
  switch (pad) {
    case Padding::same: return "same";
    case Padding::valid: return "valid";
    default: return "circular";
  }
}

// ---------------------------------------------------------------------------------------------------
// Part 1: linear networks as path sums of the finite network (MATH.md §2)
// ---------------------------------------------------------------------------------------------------
//
// Finite layers (MATH.md §2), all weights and biases N(0,1), n → ∞:
//   first  F¹(t,r) = σ_w/√(C q²) Σ_c Σ_y w_c(y) x_c(t + R^r y) + σ_b b          (CNN: r = 0 only)
//   later  F(t,r)  = σ_w/√(n S q²) Σ_j Σ_s Σ_y w_j(y,s) h_j(t + R^r y, r + s) + σ_b b   (S = 4 p4, 1 CNN)
// with h = F for a linear network and h = 0 at padded positions. Because w is independent of h and
// E[w_j(y,s) w_j(y',s')] = δ_{yy'} δ_{ss'}, the covariance is, exactly,
//   E[F(t,r) F'(t',r')] = σ_w²/(S q²) Σ_s Σ_y [both taps in range] E[h(t+R^r y, r+s) h'(t'+R^{r'} y, r'+s)] + σ_b²
// and at the bottom E[x_c(p)·x'_c(p')] is replaced by K⁰(p,p') = (1/C) Σ_c x_c(p) x'_c(p').
// Readouts: pooling P = (1/|G|) Σ_g h(g) gives E[P P'] = (1/|G|²) Σ_{g,g'} E[h h'];
// flatten + dense divides by √|G| and pairs only equal g: (1/|G|) Σ_g E[h(g) h'(g)]. Dense: σ_w² Σ + σ_b².
//
// NTK of a linear network. Θ = Σ_θ ∂f/∂θ(x) ∂f/∂θ(x'). For the weights and bias of layer ℓ,
// ∂f/∂w^ℓ = Σ_t δ^ℓ(t) ⊗ (σ_w/√(n S q²)) h^{ℓ−1}(t + ·), ∂f/∂b^ℓ = σ_b Σ_t δ^ℓ(t) with δ^ℓ = ∂f/∂F^ℓ, so at
// infinite width layer ℓ contributes Σ_{g,g'} D^ℓ(g,g') K^ℓ(g,g'), where D^ℓ = lim Σ_i δ_i^ℓ(g) δ_i^ℓ'(g')
// is the covariance of the back-propagated signal. For a linear net δ^ℓ does not involve layer ℓ or
// anything below, and D^ℓ is the adjoint of the layers above applied to the readout: so
// ⟨D^ℓ, K^ℓ⟩ = (the NNGP of the same network with the biases of every layer above ℓ set to zero).
// Hence  Θ = Σ_ℓ NNGP(biases above ℓ zeroed)  — for the top dense layer the full NNGP, for the first
// layer the bias-free propagation of K¹ (this is Θ¹ = K¹ of MATH.md §3; the double count
// Θ¹ = K¹ + σ_w² A[K⁰] would add one more, bias-free, NNGP-sized term).

struct RefLayer {
  int q = 3;
  Padding pad = Padding::same;
  double w = 1.0;
  double b = 0.0;
};

struct RefDense {
  double w = 1.0;
  double b = 0.0;
};

enum class RefReadout { pool, flatten };

struct RefLinearNet {
  bool p4 = false;                  // lift + gconvs (4 rotations) or convs (1)
  std::vector<RefLayer> spatial;    // the first one reads the input
  RefReadout readout = RefReadout::pool;
  std::vector<RefDense> head;       // dense layers after the readout (id between them)
  bool id_between = true;           // write `id` after every linear layer (or no nonlinearity at all)

  [[nodiscard]] std::string arch() const {
    std::string s;
    for (std::size_t l = 0; l < spatial.size(); ++l) {
      const auto& L = spatial[l];
      s += std::string(p4 ? (l == 0 ? "lift" : "gconv") : "conv") + ":k=" + std::to_string(L.q) +
           ":pad=" + std::string(pad_name(L.pad)) + ":w=" + fmt(L.w) + ":b=" + fmt(L.b) + ",";
      if (id_between) s += "id,";
    }
    s += readout == RefReadout::flatten ? "flatten" : (p4 ? "gpool" : "gap");
    for (std::size_t d = 0; d < head.size(); ++d) {
      s += ",dense:w=" + fmt(head[d].w) + ":b=" + fmt(head[d].b);
      if (id_between && d + 1 < head.size()) s += ",id";
    }
    return s;
  }
};

// Input index that output index i of a layer reads at window offset `off` (MATH.md §1): `same` reads
// i + off and returns −1 outside [0, n) (zero padding), `circular` wraps, `valid` output i is centred
// on input i + p so every offset is in range.
std::int64_t tap(std::int64_t i, int off, std::int64_t n, int p, Padding pad) {
  switch (pad) {
    case Padding::same: {
      const std::int64_t v = i + off;
      return (v < 0 || v >= n) ? -1 : v;
    }
    case Padding::valid: return i + p + off;
    default: return (((i + off) % n) + n) % n;
  }
}

// R^r (a, b) with R(a, b) = (−b, a) (MATH.md §1).
std::pair<int, int> rotate(int a, int b, int r) {
  for (int k = 0; k < r; ++k) {
    const int na = -b;
    b = a;
    a = na;
  }
  return {a, b};
}

// The path sum of one linear network for one image pair, evaluated once for every bias variant:
// variant ℓ is the network with the biases of the layers numbered > ℓ set to zero (spatial layers
// 0.., then the head), so nngp() is variant L−1 and ntk() = Σ_ℓ variant ℓ. With magnitude = true
// every K⁰ entry is replaced by |K⁰| (all other factors are ≥ 0), which gives Σ|terms| for the
// rounding bounds.
class LinearPathSum {
 public:
  static constexpr std::size_t kMaxLayers = 8;
  using Variants = std::array<double, kMaxLayers>;

  LinearPathSum(const RefLinearNet& net, const Image& x, const Image& x2, bool magnitude)
      : net_(net), nrot_(net.p4 ? 4 : 1) {
    h_.push_back(x.shape.height);
    w_.push_back(x.shape.width);
    for (const auto& L : net.spatial) {
      const std::int64_t shrink = L.pad == Padding::valid ? L.q - 1 : 0;
      h_.push_back(h_.back() - shrink);
      w_.push_back(w_.back() - shrink);
    }
    const std::int64_t n = x.shape.height * x.shape.width;
    k0_.assign(static_cast<std::size_t>(n * n), 0.0);
    for (std::int64_t p = 0; p < n; ++p)
      for (std::int64_t p2 = 0; p2 < n; ++p2) {
        double s = 0.0;
        for (std::int64_t c = 0; c < x.shape.channels; ++c)
          s += x.pixels[static_cast<std::size_t>(c * n + p)] * x2.pixels[static_cast<std::size_t>(c * n + p2)];
        s /= static_cast<double>(x.shape.channels);
        k0_[static_cast<std::size_t>(p * n + p2)] = magnitude ? std::abs(s) : s;
      }
    variants_ = readout_and_head();
  }

  [[nodiscard]] std::size_t layers() const { return net_.spatial.size() + net_.head.size(); }

  [[nodiscard]] double nngp() const { return variants_[layers() - 1]; }

  /// Θ = Σ_ℓ NNGP(biases above ℓ zeroed) (derivation above).
  [[nodiscard]] double ntk() const {
    double t = 0.0;
    for (std::size_t l = 0; l < layers(); ++l) t += variants_[l];
    return t;
  }

  /// Longest chain of summed terms in ntk(), for the rounding bound.
  [[nodiscard]] double chain() const {
    double n = static_cast<double>(layers()) + 8;  // the layer sum and the head
    n += 64;                                         // channel sum of K⁰ (C ≤ 64 here)
    for (std::size_t l = 0; l < net_.spatial.size(); ++l) {
      const int s = l == 0 ? 1 : nrot_;
      n += s * net_.spatial[l].q * net_.spatial[l].q + 2;
    }
    const std::size_t S = net_.spatial.size();
    const double g = static_cast<double>(nrot_ * h_[S] * w_[S]);
    n += net_.readout == RefReadout::flatten ? g : g * g;
    return n;
  }

 private:
  Variants readout_and_head() const {
    const std::size_t S = net_.spatial.size();
    if (layers() > kMaxLayers) throw std::logic_error("LinearPathSum: too many layers");
    Variants v{};
    if (S == 0) {  // flatten on the input: mean over pixels of K⁰(p, p)
      const std::int64_t n = h_[0] * w_[0];
      double s = 0.0;
      for (std::int64_t p = 0; p < n; ++p) s += k0_[static_cast<std::size_t>(p * n + p)];
      v.fill(s / static_cast<double>(n));
    } else {
      const std::int64_t h = h_[S], w = w_[S];
      const double count = static_cast<double>(nrot_ * h * w);
      const auto add = [&v](const Variants& c) {
        for (std::size_t l = 0; l < kMaxLayers; ++l) v[l] += c[l];
      };
      for (int r = 0; r < nrot_; ++r)
        for (std::int64_t i = 0; i < h; ++i)
          for (std::int64_t j = 0; j < w; ++j) {
            if (net_.readout == RefReadout::flatten) {
              add(cov(S, i, j, r, i, j, r));
              continue;
            }
            for (int r2 = 0; r2 < nrot_; ++r2)
              for (std::int64_t i2 = 0; i2 < h; ++i2)
                for (std::int64_t j2 = 0; j2 < w; ++j2) add(cov(S, i, j, r, i2, j2, r2));
          }
      for (double& e : v) e /= net_.readout == RefReadout::flatten ? count : count * count;
    }
    for (std::size_t d = 0; d < net_.head.size(); ++d) {
      const auto& D = net_.head[d];
      for (std::size_t l = 0; l < kMaxLayers; ++l) v[l] = D.w * D.w * v[l] + (S + d <= l ? D.b * D.b : 0.0);
    }
    return v;
  }

  // E[F^level(i,j,r) F'^level(i2,j2,r2)] from the finite-network definition (comment above), for
  // every bias variant.
  Variants cov(std::size_t level, std::int64_t i, std::int64_t j, int r, std::int64_t i2, std::int64_t j2,
               int r2) const {
    const RefLayer& L = net_.spatial[level - 1];
    const int p = (L.q - 1) / 2;
    const std::int64_t hin = h_[level - 1], win = w_[level - 1];
    const bool first = level == 1;
    const int s_count = first ? 1 : nrot_;
    Variants sum{};
    double sum0 = 0.0;  // the first layer: one value for every variant
    for (int s = 0; s < s_count; ++s)
      for (int a = -p; a <= p; ++a)
        for (int b = -p; b <= p; ++b) {
          const auto [da, db] = rotate(a, b, r);
          const auto [da2, db2] = rotate(a, b, r2);
          const std::int64_t u = tap(i, da, hin, p, L.pad), v = tap(j, db, win, p, L.pad);
          const std::int64_t u2 = tap(i2, da2, hin, p, L.pad), v2 = tap(j2, db2, win, p, L.pad);
          if (u < 0 || v < 0 || u2 < 0 || v2 < 0) continue;  // zero padding: h = 0 there
          if (first) {
            sum0 += k0_[static_cast<std::size_t>((u * win + v) * (hin * win) + u2 * win + v2)];
          } else {
            const Variants c = cov(level - 1, u, v, (r + s) % nrot_, u2, v2, (r2 + s) % nrot_);
            for (std::size_t l = 0; l < kMaxLayers; ++l) sum[l] += c[l];
          }
        }
    if (first) sum.fill(sum0);
    const double scale = L.w * L.w / static_cast<double>(s_count * L.q * L.q);
    Variants out{};
    for (std::size_t l = 0; l < kMaxLayers; ++l) out[l] = scale * sum[l] + (level - 1 <= l ? L.b * L.b : 0.0);
    return out;
  }

  RefLinearNet net_;
  int nrot_;
  std::vector<std::int64_t> h_, w_;  // spatial size at each level, level 0 = input
  std::vector<double> k0_;
  Variants variants_{};
};

// Checks the engine against the path sums for the pairs (x, x2) and (x, x) (the self pair runs
// through self_chain; symmetry is checked on Gram matrices below).
void expect_linear_matches(const RefLinearNet& net, const Image& x, const Image& x2) {
  const std::string arch = net.arch();
  SCOPED_TRACE(arch);
  const std::pair<const Image*, const Image*> pairs[] = {{&x, &x2}, {&x, &x}};
  for (const auto& [a, b] : pairs) {
    const LinearPathSum ref(net, *a, *b, false);
    const LinearPathSum mag(net, *a, *b, true);
    // Bound: both sides sum the same terms, each within chain·ε·M, plus a few ulps per level.
    const double tol_k = 2 * (mag.chain() + 8) * kEps * mag.nngp();
    const double tol_t = 2 * (mag.chain() + 8) * kEps * mag.ntk();
    const KernelValue got = engine_pair(arch, *a, *b);
    EXPECT_NEAR(got.nngp, ref.nngp(), tol_k);
    EXPECT_NEAR(got.ntk, ref.ntk(), tol_t);
    // Make sure the checks are not vacuous: the values are far above the tolerances (or, for the
    // zero image without biases, both exactly 0 and checked as such).
    if (tol_k > 0) {
      EXPECT_GT(std::abs(ref.nngp()), 1e3 * tol_k);
    }
  }
}

constexpr Padding kPaddings[] = {Padding::same, Padding::circular, Padding::valid};

// ---------------------------------------------------------------------------------------------------
// Part 2: textbook MLP kernels (1×1 images)
// ---------------------------------------------------------------------------------------------------
//
// On a 1×1 image every window tap but the centre is out of range with `same` padding, so a k×k
// conv/lift/gconv is a dense layer with variance σ_w²/k² (MATH.md §3: the 1/q² stays, the sum has one
// term; the group conv's s-sum has 4 equal terms over 4). With `circular` padding every tap wraps onto
// the one pixel, so the q² terms cancel the 1/q²: variance σ_w². gpool/gap/flatten of a 1×1 map with
// 4 (or 1) equal rotation entries is the identity.

enum class Op { linear, relu, erf };

struct MlpLayer {
  Op op = Op::linear;
  double w2 = 1.0;  // σ_w² (effective)
  double b2 = 0.0;
};

MlpLayer lin(double w2, double b2) { return {Op::linear, w2, b2}; }
const MlpLayer kRelu{Op::relu, 0, 0};
const MlpLayer kErf{Op::erf, 0, 0};

struct MlpResult {
  double nngp = 0.0;
  double ntk = 0.0;
  double cond = 1.0;  // largest amplification of a rounding error in acos/asin seen on the way
};

// Textbook NNGP/NTK of an MLP for inputs with K⁰ = [[q1, c], [c, q2]].
//   relu (Cho & Saul 2009, arc-cosine kernels of degree 1 and 0, halved for ReLU):
//     θ = acos(c/√(q1 q2)), K = √(q1 q2)/(2π) (sin θ + (π − θ) cos θ), K̇ = (π − θ)/(2π), diagonal q/2.
//   erf (Williams 1997): K = (2/π) arcsin(2c/√((1+2q1)(1+2q2))), K̇ = (4/π)/√((1+2q1)(1+2q2) − 4c²)
//     (E[φ'(u)φ'(v)] with φ' = (2/√π) e^{−u²}: (4/π) det(I + 2Σ)^{−1/2}).
//   NTK (Jacot 2018, Arora 2019, NTK parameterization): Θ_{l+1} = K_{l+1} + σ_w² K̇_l Θ_l, Θ_0 = 0.
MlpResult textbook_mlp(double q1, double q2, double c, const std::vector<MlpLayer>& layers) {
  MlpResult out;
  double theta_ntk = 0.0;
  for (const auto& L : layers) {
    switch (L.op) {
      case Op::linear:
        q1 = L.w2 * q1 + L.b2;
        q2 = L.w2 * q2 + L.b2;
        c = L.w2 * c + L.b2;
        theta_ntk = c + L.w2 * theta_ntk;
        break;
      case Op::relu: {
        const double norm = std::sqrt(q1 * q2);
        const double th = std::acos(std::clamp(c / norm, -1.0, 1.0));
        const double kdot = (kPi - th) / (2 * kPi);
        c = norm / (2 * kPi) * (std::sin(th) + (kPi - th) * std::cos(th));
        q1 /= 2;
        q2 /= 2;
        theta_ntk *= kdot;
        out.cond = std::max(out.cond, 1.0 / std::sin(th));  // dθ = dρ / sin θ
        break;
      }
      case Op::erf: {
        const double d = std::sqrt((1 + 2 * q1) * (1 + 2 * q2));
        const double kdot = (4 / kPi) / std::sqrt((1 + 2 * q1) * (1 + 2 * q2) - 4 * c * c);
        out.cond = std::max(out.cond, d * kdot * kPi / 4);  // d asin(z) = dz/√(1 − z²) = dz · d/s
        c = (2 / kPi) * std::asin(2 * c / d);
        q1 = (2 / kPi) * std::asin(2 * q1 / (1 + 2 * q1));
        q2 = (2 / kPi) * std::asin(2 * q2 / (1 + 2 * q2));
        theta_ntk *= kdot;
        break;
      }
    }
  }
  out.nngp = c;
  out.ntk = theta_ntk;
  return out;
}

struct MlpCase {
  std::string arch;
  std::vector<MlpLayer> mlp;
};

// Engine vs textbook for two inputs of shape `shape` whose K⁰ is [[q1, c], [c, q2]].
void expect_mlp_matches(const MlpCase& mc, const Image& x, const Image& x2, double k0_scale) {
  SCOPED_TRACE(mc.arch);
  double q1 = 0, q2 = 0, c = 0;
  for (std::size_t i = 0; i < x.pixels.size(); ++i) {
    q1 += x.pixels[i] * x.pixels[i];
    q2 += x2.pixels[i] * x2.pixels[i];
    c += x.pixels[i] * x2.pixels[i];
  }
  const MlpResult want = textbook_mlp(q1 * k0_scale, q2 * k0_scale, c * k0_scale, mc.mlp);
  const KernelValue got = engine_pair(mc.arch, x, x2);
  // Each layer's formula is good to ~16 ulps, except that acos/asin amplify the error of their
  // argument by `cond` (1/sin θ, or d/s for erf); errors of earlier layers pass through later ones
  // with gain O(1) (the duals are 1-Lipschitz in c for normalised inputs). Both sides err this way,
  // plus the engine's sums of ≤ C·H·W input terms.
  const double layers = static_cast<double>(mc.mlp.size());
  const double rel = 2 * (16 * layers * want.cond + static_cast<double>(x.pixels.size())) * kEps;
  EXPECT_NEAR(got.nngp, want.nngp, rel * std::abs(want.nngp));
  EXPECT_NEAR(got.ntk, want.ntk, rel * std::abs(want.ntk));
  EXPECT_LT(rel, 1e-12);
}

// Two 1×1 images with C channels and a moderate angle between them.
std::pair<Image, Image> pixel_pair(std::int64_t channels, std::uint64_t seed) {
  return {gaussian_image({channels, 1, 1}, seed), gaussian_image({channels, 1, 1}, seed + 1000)};
}

// ---------------------------------------------------------------------------------------------------
// Part 3: Gram matrices
// ---------------------------------------------------------------------------------------------------

// A 13-image set of 2×6×6 images: random, structured, and with zero-variance regions.
std::vector<Image> gram_images() {
  const InputShape shape{2, 6, 6};
  std::vector<Image> xs;
  xs.push_back(zero_image(shape));  // index 0: the all-zero image
  for (std::uint64_t s = 1; s <= 4; ++s) xs.push_back(gaussian_image(shape, 100 + s));
  xs.push_back(zero_border_image(shape, 1, 7));
  {
    Image x = zero_image(shape);  // a 2×2 patch in one corner, zeros elsewhere
    const Image r = gaussian_image(shape, 8);
    for (std::int64_t c = 0; c < 2; ++c)
      for (std::int64_t i = 0; i < 2; ++i)
        for (std::int64_t j = 0; j < 2; ++j) pixel(x, c, i, j) = r.pixels[static_cast<std::size_t>(c * 36 + i * 6 + j)];
    xs.push_back(x);
  }
  {
    Image x = zero_image(shape);  // a single pixel
    pixel(x, 0, 2, 3) = 1.7;
    xs.push_back(x);
  }
  {
    Image x = zero_image(shape);  // constant
    for (double& v : x.pixels) v = 0.5;
    xs.push_back(x);
  }
  {
    Image x = zero_image(shape);  // checkerboard, channel 1 = −channel 0
    for (std::int64_t i = 0; i < 6; ++i)
      for (std::int64_t j = 0; j < 6; ++j) {
        pixel(x, 0, i, j) = (i + j) % 2 == 0 ? 1.0 : -1.0;
        pixel(x, 1, i, j) = -pixel(x, 0, i, j);
      }
    xs.push_back(x);
  }
  {
    // index kRotatedCopy: one quarter turn of image 1, rotated by hand: out[i][j] = in[j][W−1−i]
    Image x = zero_image(shape);
    for (std::int64_t c = 0; c < 2; ++c)
      for (std::int64_t i = 0; i < 6; ++i)
        for (std::int64_t j = 0; j < 6; ++j) pixel(x, c, i, j) = pixel(xs[1], c, j, 5 - i);
    xs.push_back(x);
  }
  {
    Image x = zero_image(shape);  // 2·x2 + x3: a linear combination
    for (std::size_t k = 0; k < x.pixels.size(); ++k) x.pixels[k] = 2 * xs[2].pixels[k] + xs[3].pixels[k];
    xs.push_back(x);
  }
  {
    Image x = zero_image(shape);  // horizontal stripes in channel 0 only
    for (std::int64_t i = 0; i < 6; i += 2)
      for (std::int64_t j = 0; j < 6; ++j) pixel(x, 0, i, j) = 1.0;
    xs.push_back(x);
  }
  return xs;
}

// Index of the rotated copy of image 1 in gram_images().
constexpr std::ptrdiff_t kRotatedCopy = 10;

struct Gram {
  Eigen::MatrixXd nngp, ntk;
};

// Every ordered pair (i, j) evaluated explicitly, both orders (in one batch on the device).
Gram full_gram(const std::string& arch, const std::vector<Image>& xs) {
  FastPath pk(Network(Architecture::parse(arch), xs.front().shape));
  std::vector<eqntk::kernel::SelfChain> chains;
  for (const auto& x : xs) chains.push_back(pk.self_chain(x.view()));
  const auto n = static_cast<Eigen::Index>(xs.size());
  std::vector<eqntk::testing::PairRef> pairs;
  for (std::size_t i = 0; i < xs.size(); ++i)
    for (std::size_t j = 0; j < xs.size(); ++j) pairs.push_back({xs[i].view(), &chains[i], xs[j].view(), &chains[j]});
  const std::vector<KernelValue> v = pk.evaluate(pairs);
  Gram g{Eigen::MatrixXd(n, n), Eigen::MatrixXd(n, n)};
  for (Eigen::Index i = 0; i < n; ++i)
    for (Eigen::Index j = 0; j < n; ++j) {
      const KernelValue& e = v[static_cast<std::size_t>(i * n + j)];
      g.nngp(i, j) = e.nngp;
      g.ntk(i, j) = e.ntk;
    }
  return g;
}

const std::vector<std::string>& gram_architectures() {
  static const std::vector<std::string> archs = {
      "lift:k=3:pad=same:b=0.1,relu,gconv:k=3:pad=same,relu,gpool,dense",               // p4 pooled
      "lift:k=3:pad=circular,relu,gconv:k=3:pad=valid,relu,gpool,dense",                 // p4, no biases
      "conv:k=3:pad=same,relu,conv:k=5:pad=same:b=0.2,relu,gap,dense:b=0.1",             // CNN pooled
      "lift:k=3,relu,gconv:k=3,relu,flatten,dense",                                      // p4 flatten
      "conv:k=3:pad=valid,relu,flatten,dense:w=1.2",                                     // CNN flatten
      "lift:k=3:b=0.2,relu,gpool,dense:w=1.3:b=0.2,relu,dense",                          // head nonlinearity
      "conv:k=3:w=1.5:b=0.3,erf,conv:k=3:pad=circular,erf,gap,dense,erf,dense",          // erf, erf head
      "flatten,dense:b=0.1,relu,dense,erf,dense",                                        // plain MLP
  };
  return archs;
}

}  // namespace

// ===================================================================================================
// Part 1: linear networks
// ===================================================================================================

// The brief's example family: conv,id,conv,gap,dense for every padding, with and without biases,
// on a non-square multi-channel image (CNNs need no square input).
TEST(ClosedFormLinear, CnnPooledMatchesPathSum) {
  const Image x = gaussian_image({2, 7, 8}, 1), x2 = gaussian_image({2, 7, 8}, 2);
  for (const Padding pad : kPaddings)
    for (const bool biased : {false, true}) {
      RefLinearNet net;
      net.spatial = {{3, pad, 1.3, biased ? 0.4 : 0.0}, {5, pad, 0.8, biased ? 0.3 : 0.0}};
      net.head = {{1.1, biased ? 0.2 : 0.0}};
      expect_linear_matches(net, x, x2);
    }
}

// lift,id,gconv,gpool,dense: 16 rotation pairs, the s-sum over C4 and rotated offsets R^r y.
TEST(ClosedFormLinear, P4PooledMatchesPathSum) {
  const Image x = gaussian_image({2, 5, 5}, 3), x2 = gaussian_image({2, 5, 5}, 4);
  for (const Padding pad : kPaddings)
    for (const bool biased : {false, true}) {
      RefLinearNet net;
      net.p4 = true;
      net.spatial = {{3, pad, 1.2, biased ? 0.5 : 0.0}, {3, pad, 0.9, biased ? 0.25 : 0.0}};
      net.head = {{1.3, biased ? 0.3 : 0.0}};
      expect_linear_matches(net, x, x2);
    }
}

// Without any nonlinearity token (lift,gconv,gpool,dense) the network is the same linear map; and a
// 5×5 window on a 5×5 image reaches (or, circular, wraps around) the whole image.
TEST(ClosedFormLinear, P4WithoutNonlinearityAndWideWindowsMatchesPathSum) {
  const Image x = gaussian_image({3, 5, 5}, 5), x2 = zero_border_image({3, 5, 5}, 1, 6);
  for (const Padding pad : {Padding::same, Padding::circular}) {
    RefLinearNet net;
    net.p4 = true;
    net.id_between = false;
    net.spatial = {{5, pad, 1.1, 0.2}, {3, pad, 1.4, 0.1}};
    net.head = {{0.7, 0.4}};
    expect_linear_matches(net, x, x2);
  }
}

// K(0, x) of a linear network keeps only the bias paths (every K⁰ term vanishes), for every padding;
// without biases it is exactly 0 and finite.
TEST(ClosedFormLinear, ZeroImageGivesBiasTermsOnly) {
  const Image zero = zero_image({2, 5, 5}), x = gaussian_image({2, 5, 5}, 17);
  for (const bool p4 : {false, true})
    for (const Padding pad : kPaddings)
      for (const bool biased : {false, true}) {
        RefLinearNet net;
        net.p4 = p4;
        net.spatial = {{3, pad, 1.2, biased ? 0.5 : 0.0}, {3, pad, 0.9, biased ? 0.25 : 0.0}};
        net.head = {{1.3, biased ? 0.3 : 0.0}};
        expect_linear_matches(net, zero, x);
      }
}

// flatten readouts pair equal positions only: CNN and p4, every padding, plus flatten on the input.
TEST(ClosedFormLinear, FlattenReadoutsMatchPathSum) {
  const Image x = gaussian_image({2, 6, 6}, 7), x2 = gaussian_image({2, 6, 6}, 8);
  for (const bool p4 : {false, true})
    for (const Padding pad : kPaddings) {
      RefLinearNet net;
      net.p4 = p4;
      net.readout = RefReadout::flatten;
      net.spatial = {{3, pad, 1.25, 0.3}, {3, pad, 0.85, 0.15}};
      net.head = {{1.05, 0.2}};
      expect_linear_matches(net, x, x2);
    }
  RefLinearNet mlp;  // flatten on the input: K = σ_w² x·x'/(C H W) + σ_b², Θ = K + σ_w² x·x'/(C H W)
  mlp.readout = RefReadout::flatten;
  mlp.head = {{1.3, 0.4}, {0.9, 0.1}};
  const Image y = gaussian_image({3, 4, 5}, 9), y2 = gaussian_image({3, 4, 5}, 10);
  expect_linear_matches(mlp, y, y2);
}

// Three spatial layers with a different padding each, and a two-layer linear dense head.
TEST(ClosedFormLinear, DeepMixedPaddingWithDenseHeadMatchesPathSum) {
  {
    RefLinearNet net;
    net.p4 = true;
    net.spatial = {{3, Padding::valid, 1.2, 0.3}, {3, Padding::circular, 0.9, 0.2}, {3, Padding::same, 1.1, 0.1}};
    net.head = {{0.8, 0.2}, {1.3, 0.1}};
    expect_linear_matches(net, gaussian_image({2, 5, 5}, 11), gaussian_image({2, 5, 5}, 12));
  }
  {
    RefLinearNet net;
    net.spatial = {{5, Padding::same, 1.2, 0.3}, {3, Padding::valid, 0.9, 0.2}, {3, Padding::circular, 1.1, 0.1}};
    net.head = {{0.8, 0.2}, {1.3, 0.1}};
    expect_linear_matches(net, gaussian_image({3, 7, 6}, 13), gaussian_image({3, 7, 6}, 14));
  }
}

// One lifting layer and a bias-free readout: Θ = K(top dense) + K(lift propagated) = 2K exactly
// (Θ¹ = K¹). The authors' double count Θ¹ = K¹ + σ_w² A[K⁰] would add the bias-free NNGP once more,
// Θ = 3K − ω²σ_b², far outside the tolerance.
TEST(ClosedFormLinear, SingleLayerNtkIsTwiceNngp) {
  const Image x = gaussian_image({2, 5, 5}, 15), x2 = gaussian_image({2, 5, 5}, 16);
  RefLinearNet net;
  net.p4 = true;
  net.spatial = {{3, Padding::same, 1.5, 0.5}};
  net.head = {{0.7, 0.0}};
  const LinearPathSum ref(net, x, x2, false), mag(net, x, x2, true);
  const KernelValue got = engine_pair(net.arch(), x, x2);
  const double tol = 2 * (mag.chain() + 8) * kEps * mag.ntk();
  EXPECT_NEAR(got.ntk, 2 * ref.nngp(), tol);
  EXPECT_NEAR(got.nngp, ref.nngp(), tol);
}

// ===================================================================================================
// Part 2: 1×1 images are MLPs
// ===================================================================================================

TEST(ClosedFormMlp, P4OnOnePixelMatchesTextbookRelu) {
  const auto [x, x2] = pixel_pair(3, 21);
  const MlpCase cases[] = {
      {"lift:k=3:w=1.4:b=0.3,relu,gpool,dense:w=1.2:b=0.1", {lin(1.96 / 9, 0.09), kRelu, lin(1.44, 0.01)}},
      {"lift:k=3:w=1.4:b=0.3,relu,gconv:k=5:w=1.1:b=0.2,relu,gpool,dense:w=0.9:b=0.05",
       {lin(1.96 / 9, 0.09), kRelu, lin(1.21 / 25, 0.04), kRelu, lin(0.81, 0.0025)}},
      {"lift:k=3:w=1.4:b=0.3,relu,gconv:k=3:pad=circular:w=1.1:b=0.2,relu,gconv:k=1:pad=valid:w=1.3:b=0.1,relu,"
       "gpool,dense:w=0.9:b=0.05",
       {lin(1.96 / 9, 0.09), kRelu, lin(1.21, 0.04), kRelu, lin(1.69, 0.01), kRelu, lin(0.81, 0.0025)}},
  };
  for (const auto& mc : cases) expect_mlp_matches(mc, x, x2, 1.0 / 3);
}

TEST(ClosedFormMlp, P4OnOnePixelMatchesTextbookErf) {
  const auto [x, x2] = pixel_pair(2, 22);
  const MlpCase cases[] = {
      {"lift:k=3:w=2:b=0.4,erf,gpool,dense:w=1.5:b=0.2", {lin(4.0 / 9, 0.16), kErf, lin(2.25, 0.04)}},
      {"lift:k=3:w=2:b=0.4,erf,gconv:k=3:w=1.7:b=0.3,erf,gpool,dense:w=1.5:b=0.2",
       {lin(4.0 / 9, 0.16), kErf, lin(2.89 / 9, 0.09), kErf, lin(2.25, 0.04)}},
      {"lift:k=5:pad=circular:w=1.2:b=0.4,erf,gconv:k=3:w=1.7:b=0.3,erf,gconv:k=3:w=2.5:b=0.1,erf,gpool,"
       "dense:w=1.5:b=0.2",
       {lin(1.44, 0.16), kErf, lin(2.89 / 9, 0.09), kErf, lin(6.25 / 9, 0.01), kErf, lin(2.25, 0.04)}},
  };
  for (const auto& mc : cases) expect_mlp_matches(mc, x, x2, 1.0 / 2);
}

TEST(ClosedFormMlp, CnnOnOnePixelMatchesTextbook) {
  const auto [x, x2] = pixel_pair(4, 23);
  const MlpCase cases[] = {
      {"conv:k=3:w=1.5:b=0.2,relu,gap,dense:w=1.1:b=0.3", {lin(2.25 / 9, 0.04), kRelu, lin(1.21, 0.09)}},
      {"conv:k=3:w=1.5:b=0.2,erf,conv:k=1:pad=valid:w=1.3:b=0.1,relu,gap,dense:w=1.1:b=0.3",
       {lin(2.25 / 9, 0.04), kErf, lin(1.69, 0.01), kRelu, lin(1.21, 0.09)}},
      {"conv:k=5:pad=circular:w=1.5:b=0.2,relu,conv:k=3:w=1.3:b=0.1,erf,conv:k=7:w=2:b=0.5,relu,gap,"
       "dense:w=1.1:b=0.3",
       {lin(2.25, 0.04), kRelu, lin(1.69 / 9, 0.01), kErf, lin(4.0 / 49, 0.25), kRelu, lin(1.21, 0.09)}},
      {"conv:k=3:w=1.5:b=0.2,relu,flatten,dense:w=1.1:b=0.3", {lin(2.25 / 9, 0.04), kRelu, lin(1.21, 0.09)}},
  };
  for (const auto& mc : cases) expect_mlp_matches(mc, x, x2, 1.0 / 4);
}

// flatten on the input: a plain MLP on the C·H·W vector, K⁰ = x·x'/(C H W), any image size.
TEST(ClosedFormMlp, FlattenOnInputMatchesTextbookMlp) {
  const InputShape shape{3, 4, 5};
  const Image x = gaussian_image(shape, 24), x2 = gaussian_image(shape, 25);
  const MlpCase cases[] = {
      {"flatten,dense:w=1.3:b=0.2,relu,dense:w=0.8:b=0.1", {lin(1.69, 0.04), kRelu, lin(0.64, 0.01)}},
      {"flatten,dense:w=1.3:b=0.2,relu,dense:w=1.6:b=0.1,erf,dense", {lin(1.69, 0.04), kRelu, lin(2.56, 0.01), kErf,
                                                                       lin(1, 0)}},
      {"flatten,dense:w=1.3:b=0.2,erf,dense:w=1.6:b=0.1,relu,dense:w=2:b=0.3,relu,dense:w=0.5:b=0.1",
       {lin(1.69, 0.04), kErf, lin(2.56, 0.01), kRelu, lin(4, 0.09), kRelu, lin(0.25, 0.01)}},
  };
  for (const auto& mc : cases) expect_mlp_matches(mc, x, x2, 1.0 / 60);
}

// Nonlinearities after the readout use the pooled self-kernels K(x,x) (MATH.md §4).
TEST(ClosedFormMlp, HeadNonlinearitiesMatchTextbook) {
  const auto [x, x2] = pixel_pair(3, 26);
  const MlpCase cases[] = {
      {"lift:k=3:w=1.4:b=0.3,relu,gpool,dense:w=1.2:b=0.2,relu,dense:w=0.9:b=0.1",
       {lin(1.96 / 9, 0.09), kRelu, lin(1.44, 0.04), kRelu, lin(0.81, 0.01)}},
      {"conv:k=3:w=1.4:b=0.3,erf,gap,dense:w=1.2:b=0.2,erf,dense:w=1.9:b=0.1,relu,dense",
       {lin(1.96 / 9, 0.09), kErf, lin(1.44, 0.04), kErf, lin(3.61, 0.01), kRelu, lin(1, 0)}},
      {"lift:k=3:w=1.4:b=0.3,relu,gconv:k=3:b=0.2,erf,flatten,dense:w=1.2:b=0.2,relu,dense",
       {lin(1.96 / 9, 0.09), kRelu, lin(1.0 / 9, 0.04), kErf, lin(1.44, 0.04), kRelu, lin(1, 0)}},
  };
  for (const auto& mc : cases) expect_mlp_matches(mc, x, x2, 1.0 / 3);
}

// With biases σ_b, the zero image x = 0 has pre-activations equal to the shared bias: for
// conv/lift:b=β,relu,gap/gpool,dense:w=ω:b=γ and any x',
//   K¹(0,x')(t,t') = β² (all entries, the bias is shared), q1 = β², q2(t') = σ_w²/q² Σ_y K⁰(x',x')(t'+y) + β²,
//   K = ω² mean_{t,t'} K_relu(β², q2(t'), β²) + γ²,  Θ = K + ω² mean_{t,t'} K̇_relu(β², q2(t'), β²) β².
// With β = 0.5 a zero receptive field gives q2 = β² exactly, θ = 0 exactly; p4 gives the same value
// (q2 does not depend on r because the window is C4-symmetric).
TEST(ClosedFormZeroImage, ReluLayerSeesOnlyTheBias) {
  const double sw = 1.3, beta = 0.5, om = 1.1, gam = 0.2;
  const InputShape shape{2, 6, 6};
  const Image zero = zero_image(shape);
  for (const Image& x2 : {gaussian_image(shape, 31), zero_border_image(shape, 2, 32)}) {
    const std::int64_t n = 6;
    double sum_k = 0.0, sum_kdot = 0.0, cond = 1.0;
    for (std::int64_t i = 0; i < n; ++i)
      for (std::int64_t j = 0; j < n; ++j) {
        double win = 0.0;
        for (int a = -1; a <= 1; ++a)
          for (int b = -1; b <= 1; ++b) {
            if (i + a < 0 || i + a >= n || j + b < 0 || j + b >= n) continue;
            for (std::int64_t c = 0; c < 2; ++c) {
              const double v = x2.pixels[static_cast<std::size_t>((c * n + i + a) * n + j + b)];
              win += v * v / 2;
            }
          }
        const double q2 = sw * sw / 9 * win + beta * beta;
        const double th = std::acos(std::clamp(beta / std::sqrt(q2), -1.0, 1.0));
        const double k = std::sqrt(beta * beta * q2) / (2 * kPi) * (std::sin(th) + (kPi - th) * std::cos(th));
        if (th > 0) cond = std::max(cond, 1 / std::sin(th));
        // Each (t, t') pair repeats this value for all 36 t (x = 0 is the same everywhere).
        sum_k += k;
        sum_kdot += (kPi - th) / (2 * kPi);
      }
    const double want_k = om * om * sum_k / 36 + gam * gam;
    const double want_t = want_k + om * om * sum_kdot / 36 * beta * beta;
    // Per entry ~16 ulps amplified by cond (acos), over 36² nonnegative terms (the engine's pooling).
    const double rel = 2 * (16 * cond + 36 * 36) * kEps;
    for (const std::string arch : {"conv:k=3:w=1.3:b=0.5,relu,gap,dense:w=1.1:b=0.2",
                                   "lift:k=3:w=1.3:b=0.5,relu,gpool,dense:w=1.1:b=0.2"}) {
      SCOPED_TRACE(arch);
      const KernelValue a = engine_pair(arch, zero, x2), b = engine_pair(arch, x2, zero);
      EXPECT_NEAR(a.nngp, want_k, rel * want_k);
      EXPECT_NEAR(a.ntk, want_t, rel * want_t);
      EXPECT_NEAR(b.nngp, want_k, rel * want_k);
      EXPECT_NEAR(b.ntk, want_t, rel * want_t);
    }
  }
}

// ===================================================================================================
// Part 3: Gram matrices
// ===================================================================================================

// K(x_i, x_j) = K(x_j, x_i) with both orders evaluated. The two orders sum the same terms in a
// transposed order; each pooled value is a sum of ≤ 4·36² entries, each a window sum of ≤ 25 terms
// per layer, so the difference is ≤ 2·(5184 + 2·25 + 16)·ε·Σ|terms| ≈ 2.3e-12·Σ|terms| at worst
// and ≈ √5184·ε·Σ|terms| ≈ 2e-14 in practice (random rounding). After a relu/erf, Σ|terms| is
// within a small factor of |K| (relu duals are ≥ 0), so 1e-12 relative is a safe but meaningful
// bound: an engine that fed the first image's variance map to both sides of the dual breaks symmetry
// by O(10 %) (checked by mutating a copy of the engine).
// The set includes the rotated copy (index kRotatedCopy), whose pairs have exactly collinear entries;
// see the next test for why those are symmetric too.
TEST(GramMatrix, SymmetricWhenBothOrdersAreEvaluated) {
  const auto xs = gram_images();
  for (const auto& arch : gram_architectures()) {
    SCOPED_TRACE(arch);
    const Gram g = full_gram(arch, xs);
    for (const Eigen::MatrixXd* m : {&g.nngp, &g.ntk}) {
      double worst = 0.0;
      for (Eigen::Index i = 0; i < m->rows(); ++i)
        for (Eigen::Index j = 0; j < i; ++j) {
          const double a = (*m)(i, j), b = (*m)(j, i);
          const double scale = std::max(std::abs(a), std::abs(b));
          if (scale > 0) {
            worst = std::max(worst, std::abs(a - b) / scale);
          } else {
            EXPECT_EQ(a, b);
          }
        }
      EXPECT_LE(worst, 1e-12) << (m == &g.nngp ? "nngp" : "ntk");
    }
  }
}

// Pairs whose pre-activations are exactly collinear at some entries (x and ρ(r)x in a p4 network:
// entry (g, r·g); x and 2x: every entry (g, g)) sit at θ = 0 of the relu dual, where Σ̇ = (π − θ)/(2π)
// is not Lipschitz in c: θ = atan2(√(q1q2 − c²), c) would turn relative rounding γ = m·ε of q1, q2, c
// (m ≤ 64 summed terms per entry here) into θ ≈ 2√γ, a relative error up to 2√(mε)/π ≈ 7.5e-8 of Σ̇,
// different for the two argument orders (measured ~3e-11 before the fix). kernel::relu_dual therefore
// snaps q1q2 − c² ≤ 64ε·q1q2 to exact collinearity (θ = 0), which makes both orders, and rotated self
// pairs, agree to rounding: the strict 1e-12 bound below fails without the snap.
TEST(GramMatrix, ReluNtkAtCollinearEntriesIsSymmetric) {
  const auto xs = gram_images();
  const std::string archs[] = {
      "lift:k=3:pad=same:b=0.1,relu,gconv:k=3:pad=same,relu,gpool,dense",
      "lift:k=3,relu,gconv:k=3,relu,gconv:k=3,relu,gpool,dense",
      "conv:k=3,relu,conv:k=3:b=0.2,relu,gap,dense",
  };
  for (const auto& arch : archs) {
    SCOPED_TRACE(arch);
    FastPath pk(Network(Architecture::parse(arch), xs[1].shape));
    for (const std::size_t base : {std::size_t{1}, std::size_t{2}, std::size_t{5}}) {
      const Image& x = xs[base];
      std::vector<Image> partners;
      for (int r = 1; r < 4; ++r) partners.push_back(eqntk::group::rot90(x.view(), r));
      partners.push_back(x);
      for (double& v : partners.back().pixels) v *= 2;
      const auto sx = pk.self_chain(x.view());
      for (const Image& y : partners) {
        const auto sy = pk.self_chain(y.view());
        const KernelValue a = pk.evaluate(x.view(), sx, y.view(), sy), b = pk.evaluate(y.view(), sy, x.view(), sx);
        EXPECT_NEAR(a.nngp, b.nngp, 1e-12 * std::abs(a.nngp));
        EXPECT_NEAR(a.ntk, b.ntk, 1e-12 * std::abs(a.ntk));
      }
    }
  }
}

// λ_min ≥ −1e-12·λ_max. The exact Gram matrix is PSD (a covariance). The computed one is G + E with
// |E_ij| ≲ 1e-14·λ_max (previous test); Weyl gives λ_min ≥ −‖E‖₂ ≥ −n·max|E_ij| ≈ −1.3e-13·λ_max for
// n = 13, and the eigensolver adds a backward error of ~n·ε·‖G‖ ≈ 3e-15·λ_max. An engine whose dual
// reads the other image's variance map (q1 ↔ q2 per side), or gets a window scale wrong in only one
// of its two paths, gives clearly negative eigenvalues on this set (checked by mutating a copy of the
// engine); the set contains a rotated copy and a linear combination (near-singular directions) and
// the zero image (an exactly zero or bias-only row).
TEST(GramMatrix, PositiveSemidefinite) {
  const auto xs = gram_images();
  for (const auto& arch : gram_architectures()) {
    SCOPED_TRACE(arch);
    const Gram g = full_gram(arch, xs);
    for (const Eigen::MatrixXd* m : {&g.nngp, &g.ntk}) {
      const Eigen::MatrixXd sym = 0.5 * (*m + m->transpose());
      const Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> eig(sym, Eigen::EigenvaluesOnly);
      ASSERT_EQ(eig.info(), Eigen::Success);
      const double lmin = eig.eigenvalues().minCoeff(), lmax = eig.eigenvalues().maxCoeff();
      EXPECT_GT(lmax, 0.0);
      EXPECT_GE(lmin, -1e-12 * lmax) << (m == &g.nngp ? "nngp" : "ntk");
    }
  }
}

// The all-zero image: every entry finite for every architecture; without any bias f(0) = 0 and
// ∂f/∂θ(0) = 0 (every pre-activation is 0, relu(0) = erf(0) = 0), so K(0, x) = Θ(0, x) = 0 exactly.
TEST(GramMatrix, ZeroImageGivesFiniteBiasOnlyKernels) {
  const auto xs = gram_images();
  for (const auto& arch : gram_architectures()) {
    SCOPED_TRACE(arch);
    const Gram g = full_gram(arch, xs);
    EXPECT_TRUE(g.nngp.allFinite());
    EXPECT_TRUE(g.ntk.allFinite());
    const bool biased = arch.find(":b=") != std::string::npos;
    if (biased) {
      EXPECT_GT(g.nngp(0, 0), 0.0);
      continue;
    }
    for (Eigen::Index j = 0; j < g.nngp.cols(); ++j) {
      EXPECT_EQ(g.nngp(0, j), 0.0);
      EXPECT_EQ(g.nngp(j, 0), 0.0);
      EXPECT_EQ(g.ntk(0, j), 0.0);
      EXPECT_EQ(g.ntk(j, 0), 0.0);
    }
  }
}
