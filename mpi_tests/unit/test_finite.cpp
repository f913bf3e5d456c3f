// Finite-width networks (eqntk/finite/network.hpp): the MATH.md §2/§10 parameterization, exact gradients,
// symmetry, and small Monte Carlo checks of the analytic kernels (MATH.md §8), average pooling and residual
// blocks included.
//
// 1. FiniteForward: every layer's output is recomputed here, term by term, from the MATH.md §2 formula
//    and the parameters() layout documented in the header (own R, own padding, own (r + s) mod 4).
//    Both sides sum the same ≤ fan-in terms in different orders, so they agree to fan-in·ε·Σ|terms|
//    (Higham §4.2); the test allows 4× that. avgpool outputs are recomputed as cell means and res_end
//    outputs as body output + block input (MATH.md §10).
// 2. FiniteGradient: the directional derivative g·v of every parameter block (v random, zero outside the
//    block) against central differences D(h). D(h) errs by c·h² (truncation) plus u/h (u: rounding of one
//    forward pass), so with D(h) and D(h/2): |D(h/2) − g·v| ≤ |D(h) − D(h/2)| + 4u/h, where
//    |D(h) − D(h/2)| ≈ ¾ c h² bounds the truncation of D(h/2) (c h²/4) three times over, and
//    u ≤ (stages · max fan-in)·ε·max(1, |f|) is Higham's bound for the chain of sums of O(1) terms that
//    the NTK parameterization keeps. In each block f is piecewise linear for relu/id networks (exact FD
//    away from kinks) and smooth for erf. The test also requires |g·v| ≥ 100× the tolerance, so a kink
//    crossed by the difference (which would inflate |D(h) − D(h/2)|) cannot pass silently.
// 3. FiniteSymmetry: with gpool the p4 network is invariant under all four input rotations (rounding
//    only: the rotated input permutes the summands), with avgpool and res blocks too (p4, p4m; a D2
//    network is not invariant under a quarter turn); the lifted/group-convolved maps are equivariant,
//    F[ρx](·, r) = rot90(F[x](·, r − 1)); a CNN with gap is not invariant.
// 4. FiniteMonteCarlo(AvgpoolRes): M initializations per width; at the largest width the analytic NNGP/NTK
//    lie within 5 standard errors of the Monte Carlo means, and the NTK spread falls like n^(−1/2).
#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "../support/fixtures.hpp"
#include "eqntk/data/image.hpp"
#include "eqntk/error.hpp"
#include "eqntk/finite/network.hpp"
#include "eqntk/group/image_action.hpp"
#include "eqntk/group/point_group.hpp"
#include "eqntk/kernel/architecture.hpp"
#include "eqntk/kernel/network.hpp"
#include "eqntk/kernel/pair_kernel.hpp"

using eqntk::finite::FiniteNetwork;
using eqntk::finite::ParameterBlock;
using eqntk::finite::ParameterKind;
using eqntk::kernel::Architecture;
using eqntk::data::Image;
using eqntk::data::ImageSet;
using eqntk::data::InputShape;
using eqntk::kernel::LayerKind;
using eqntk::kernel::Network;
using eqntk::kernel::Padding;
using eqntk::kernel::Stage;
using eqntk::kernel::StateKind;
using eqntk::testing::gaussian_image;

namespace {

constexpr double kEps = std::numeric_limits<double>::epsilon();

Network make_net(const std::string& arch, InputShape shape) {
  return Network(Architecture::parse(arch), shape);
}

// ---------------------------------------------------------------------------------------------------
// 1. The forward pass against MATH.md §2, written out
// ---------------------------------------------------------------------------------------------------

// R^r (a, b), R(a, b) = (−b, a): the group module's action (tested against the matrices in test_group.cpp).
std::pair<int, int> rotate(int a, int b, int r) {
  const eqntk::group::Offset y = eqntk::group::act({r, 0}, {a, b});
  return {static_cast<int>(y.a), static_cast<int>(y.b)};
}

// Input pixel read by output pixel i at window offset `off`; −1 for a zero-padded read.
std::int64_t tap(std::int64_t i, int off, std::int64_t n, int p, Padding pad) {
  switch (pad) {
    case Padding::same:
      return (i + off < 0 || i + off >= n) ? -1 : i + off;
    case Padding::valid:
      return i + p + off;
    default:
      return (((i + off) % n) + n) % n;
  }
}

struct Reference {
  std::vector<double> value;      // the layer output, same layout as FiniteNetwork::stage_output
  std::vector<double> magnitude;  // the same sums over |terms|
  std::int64_t terms = 0;         // fan-in (+1 for the bias)
};

// A C4/plane layer evaluated from its definition. `in` is the layer's input in the documented layout:
// [channel][r][i][j] for C4 states, [channel][i][j] otherwise.
Reference spatial_reference(const Stage& st, const std::vector<double>& in, std::int64_t channels_in,
                            std::span<const double> theta, const ParameterBlock& wb, const ParameterBlock& bb) {
  const int q = st.q, p = st.p;
  const bool gconv = st.spec.kind == LayerKind::gconv;
  const int n_s = gconv ? 4 : 1;
  const int out_rot = st.spec.kind == LayerKind::conv ? 1 : 4;
  const std::int64_t fan_in = channels_in * n_s * q * q;
  const double a = st.spec.w / std::sqrt(static_cast<double>(fan_in));
  const std::int64_t width = wb.outputs;
  Reference out;
  out.terms = fan_in + 1;
  const std::int64_t cols_out = out_rot * st.h_out * st.w_out;
  out.value.assign(static_cast<std::size_t>(width * cols_out), 0.0);
  out.magnitude.assign(out.value.size(), 0.0);
  for (std::int64_t o = 0; o < width; ++o)
    for (int r = 0; r < out_rot; ++r)
      for (std::int64_t i = 0; i < st.h_out; ++i)
        for (std::int64_t j = 0; j < st.w_out; ++j) {
          double sum = 0.0, mag = 0.0;
          for (std::int64_t c = 0; c < channels_in; ++c)
            for (int s = 0; s < n_s; ++s)
              for (int y0 = -p; y0 <= p; ++y0)
                for (int y1 = -p; y1 <= p; ++y1) {
                  const auto [d0, d1] = rotate(y0, y1, out_rot == 4 ? r : 0);
                  const std::int64_t ii = tap(i, d0, st.h_in, p, st.spec.pad);
                  const std::int64_t jj = tap(j, d1, st.w_in, p, st.spec.pad);
                  if (ii < 0 || jj < 0) continue;
                  // h_j(t + R^r y, r + s): the input's rotation index (C4 input states only).
                  const std::int64_t r_in = gconv ? (r + s) % 4 : 0;
                  const std::int64_t in_rot = gconv ? 4 : 1;
                  const double h = in[static_cast<std::size_t>(((c * in_rot + r_in) * st.h_in + ii) * st.w_in + jj)];
                  const double w = theta[static_cast<std::size_t>(wb.offset + o * fan_in +
                                                                  ((c * n_s + s) * q + y0 + p) * q + y1 + p)];
                  sum += w * h;
                  mag += std::abs(w * h);
                }
          const double b = st.spec.b * theta[static_cast<std::size_t>(bb.offset + o)];
          const std::size_t k = static_cast<std::size_t>(o * cols_out + (r * st.h_out + i) * st.w_out + j);
          out.value[k] = a * sum + b;
          out.magnitude[k] = std::abs(a) * mag + std::abs(b);
        }
  return out;
}

Reference dense_reference(const Stage& st, const std::vector<double>& in, std::span<const double> theta,
                          const ParameterBlock& wb, const ParameterBlock& bb) {
  const auto fan_in = static_cast<std::int64_t>(in.size());
  const double a = st.spec.w / std::sqrt(static_cast<double>(fan_in));
  Reference out;
  out.terms = fan_in + 1;
  for (std::int64_t o = 0; o < wb.outputs; ++o) {
    double sum = 0.0, mag = 0.0;
    for (std::int64_t j = 0; j < fan_in; ++j) {
      const double t = theta[static_cast<std::size_t>(wb.offset + o * fan_in + j)] * in[static_cast<std::size_t>(j)];
      sum += t;
      mag += std::abs(t);
    }
    const double b = st.spec.b * theta[static_cast<std::size_t>(bb.offset + o)];
    out.value.push_back(a * sum + b);
    out.magnitude.push_back(std::abs(a) * mag + std::abs(b));
  }
  return out;
}

// Compares every linear stage's output with its reference, computed from the network's own previous
// stage output (so each layer is checked on its own, with exact inputs).
void expect_layers_match_math2(const std::string& arch, InputShape shape, std::int64_t width) {
  SCOPED_TRACE(arch);
  const Network net = make_net(arch, shape);
  FiniteNetwork f(net, width, 11);
  const Image x = gaussian_image(shape, 5);
  (void)f.forward(x.view());
  const auto& stages = net.stages();
  std::size_t block = 0;
  int checked = 0;
  for (std::size_t s = 0; s < stages.size(); ++s) {
    const Stage& st = stages[s];
    const bool spatial = eqntk::kernel::is_spatial_linear(st.spec.kind);
    if (!spatial && st.spec.kind != LayerKind::dense) continue;
    const ParameterBlock& wb = f.blocks()[block];
    const ParameterBlock& bb = f.blocks()[block + 1];
    block += 2;
    ASSERT_EQ(wb.stage, s);
    ASSERT_EQ(wb.kind, ParameterKind::weight);
    ASSERT_EQ(bb.kind, ParameterKind::bias);
    std::vector<double> in;
    std::int64_t channels_in = shape.channels;
    if (s == 0) {
      in = x.pixels;
    } else {
      const auto prev = f.stage_output(s - 1);
      in.assign(prev.begin(), prev.end());
      channels_in = st.in_state == StateKind::group ? static_cast<std::int64_t>(in.size()) / (4 * st.h_in * st.w_in)
                                                 : static_cast<std::int64_t>(in.size()) / (st.h_in * st.w_in);
    }
    const Reference ref = spatial ? spatial_reference(st, in, channels_in, f.parameters(), wb, bb)
                                  : dense_reference(st, in, f.parameters(), wb, bb);
    const auto got = f.stage_output(s);
    ASSERT_EQ(got.size(), ref.value.size()) << "stage " << s;
    for (std::size_t k = 0; k < got.size(); ++k)
      ASSERT_NEAR(got[k], ref.value[k], 4.0 * static_cast<double>(ref.terms) * kEps * ref.magnitude[k])
          << "stage " << s << " (" << st.spec.token << ") entry " << k;
    ++checked;
  }
  EXPECT_GE(checked, 2);
}

TEST(FiniteForward, GroupLayersMatchMath2ForEveryPadding) {
  expect_layers_match_math2(
      "lift:k=3:pad=same:w=1.3:b=0.4,relu,gconv:k=3:pad=valid:b=0.3,erf,gconv:k=5:pad=circular:w=0.8:b=0.2,relu,"
      "gpool,dense:b=0.5,relu,dense:w=1.1:b=0.3",
      {2, 7, 7}, 3);
  expect_layers_match_math2("lift:k=5:pad=valid:b=0.2,id,gconv:k=3:pad=same:b=0.1,relu,flatten,dense:b=0.2", {1, 6, 6},
                            2);
  expect_layers_match_math2("lift:k=3:pad=circular:b=0.2,erf,gpool,dense", {3, 4, 4}, 3);
}

TEST(FiniteForward, PlaneLayersMatchMath2ForEveryPadding) {
  expect_layers_match_math2(
      "conv:k=3:pad=same:b=0.4,relu,conv:k=5:pad=valid:b=0.3,erf,conv:k=3:pad=circular:w=0.7:b=0.2,gap,dense:b=0.5,erf",
      {2, 7, 6}, 3);
  expect_layers_match_math2("flatten,dense:b=0.5,relu,dense:b=0.1", {2, 3, 4}, 4);
}

// avgpool and res stages against MATH.md §10, each from the network's own previous stage outputs: an
// avgpool output is the mean of its s×s cell (the cells of the s-strided grid) in every map (channel and
// group label), a res marker passes its input on, and a res_end output is the body's output plus the input
// of its res marker. The avgpool mean sums s² terms (tolerance 4·s²·ε·Σ|terms|); the res sum is one addition
// done the same way on both sides (exact).
void expect_pool_and_res_match_math10(const std::string& arch, InputShape shape, std::int64_t width,
                                      int expected_checks) {
  SCOPED_TRACE(arch);
  const Network net = make_net(arch, shape);
  FiniteNetwork f(net, width, 13);
  const Image x = gaussian_image(shape, 6);
  (void)f.forward(x.view());
  const auto& stages = net.stages();
  auto input_of = [&](std::size_t s) {
    const auto v = s == 0 ? std::span<const double>(x.pixels) : f.stage_output(s - 1);
    return std::vector<double>(v.begin(), v.end());
  };
  int checked = 0;
  for (std::size_t s = 0; s < stages.size(); ++s) {
    const Stage& st = stages[s];
    const auto got = f.stage_output(s);
    const std::vector<double> in = input_of(s);
    if (st.spec.kind == LayerKind::avgpool) {
      const std::int64_t c = st.spec.s;
      const std::int64_t maps = static_cast<std::int64_t>(in.size()) / (st.h_in * st.w_in);
      ASSERT_EQ(st.h_out * c, st.h_in);
      ASSERT_EQ(got.size(), static_cast<std::size_t>(maps * st.h_out * st.w_out));
      for (std::int64_t m = 0; m < maps; ++m)
        for (std::int64_t i = 0; i < st.h_out; ++i)
          for (std::int64_t j = 0; j < st.w_out; ++j) {
            double sum = 0.0, mag = 0.0;
            for (std::int64_t a = 0; a < c; ++a)
              for (std::int64_t b = 0; b < c; ++b) {
                const double v = in[static_cast<std::size_t>((m * st.h_in + c * i + a) * st.w_in + c * j + b)];
                sum += v;
                mag += std::abs(v);
              }
            const std::size_t k = static_cast<std::size_t>((m * st.h_out + i) * st.w_out + j);
            ASSERT_NEAR(got[k], sum / static_cast<double>(c * c), 4.0 * static_cast<double>(c * c) * kEps * mag)
                << "stage " << s << " map " << m << " cell (" << i << "," << j << ")";
          }
      ++checked;
    } else if (st.spec.kind == LayerKind::res) {
      ASSERT_EQ(net.stages()[st.partner].spec.kind, LayerKind::res_end);
      ASSERT_TRUE(std::equal(got.begin(), got.end(), in.begin(), in.end())) << "stage " << s;
    } else if (st.spec.kind == LayerKind::res_end) {
      const std::vector<double> h = input_of(st.partner);  // the block's input
      ASSERT_EQ(got.size(), in.size());
      ASSERT_EQ(h.size(), in.size());
      for (std::size_t k = 0; k < got.size(); ++k) ASSERT_EQ(got[k], in[k] + h[k]) << "stage " << s << " entry " << k;
      ++checked;
    }
  }
  EXPECT_EQ(checked, expected_checks);
}

TEST(FiniteForward, AvgpoolAndResStagesMatchMath10) {
  // Nested and consecutive blocks, avgpool between and after them, on p4, p4m, D2 and plane maps.
  expect_pool_and_res_match_math10(
      "lift:k=3:b=0.2,relu,res(gconv:k=3:b=0.3,relu,res(gconv:k=3,erf,gconv:k=1:b=0.1)),res(gconv:k=3,relu),"
      "avgpool:s=2,gconv:k=3:pad=circular,relu,avgpool:s=3,gpool,dense",
      {2, 12, 12}, 3, 5);
  expect_pool_and_res_match_math10(
      "lift:k=3:group=p4m:b=0.2,relu,avgpool:s=2,res(gconv:k=3,relu,gconv:k=3),flatten,dense", {1, 4, 4}, 2, 2);
  expect_pool_and_res_match_math10("lift:k=3:group=D2,erf,res(gconv:k=3:b=0.1),avgpool:s=3,gpool,dense", {1, 6, 6}, 2,
                                   2);
  expect_pool_and_res_match_math10("conv:k=3:b=0.1,relu,res(conv:k=3,relu,conv:k=3),avgpool:s=2,flatten,dense",
                                   {2, 6, 4}, 3, 2);
}

TEST(FiniteForward, AvgpoolAndResHaveNoParametersAndShrinkTheFanIn) {
  // Blocks only for the linear layers (res markers and avgpool have none); the dense layer after flatten
  // sees n·|G|·(H/s)·(W/s) features: 5 channels × 8 group labels × 3×3 cells of a 6×6 map.
  const Network net =
      make_net("lift:k=3:group=p4m,relu,res(gconv:k=3,relu,gconv:k=1),avgpool:s=2,flatten,dense", {2, 6, 6});
  const FiniteNetwork f(net, 5, 1);
  const auto& b = f.blocks();
  ASSERT_EQ(b.size(), 8u);
  EXPECT_EQ(b[0].fan_in, 2 * 9);      // lift: C q²
  EXPECT_EQ(b[2].fan_in, 5 * 8 * 9);  // gconv: n |G| q²
  EXPECT_EQ(b[4].fan_in, 5 * 8 * 1);  // gconv k=1
  EXPECT_EQ(b[6].fan_in, 5 * 8 * 3 * 3);
  for (std::size_t i = 0; i < b.size(); i += 2)
    EXPECT_TRUE(eqntk::kernel::is_spatial_linear(net.stages()[b[i].stage].spec.kind) ||
                net.stages()[b[i].stage].spec.kind == LayerKind::dense);
}

TEST(FiniteForward, LinearLayersAfterAvgpoolAndResMatchMath2) {
  expect_layers_match_math2(
      "lift:k=3:b=0.2,relu,res(gconv:k=3:b=0.3,relu,gconv:k=3:pad=circular),avgpool:s=2,gconv:k=3:b=0.1,relu,"
      "flatten,dense:b=0.2",
      {2, 6, 6}, 3);
  expect_layers_match_math2("conv:k=3:b=0.1,relu,res(conv:k=3,relu,conv:k=3),avgpool:s=2,conv:k=3,relu,gap,dense",
                            {2, 6, 4}, 3);
}

TEST(FiniteForward, ParameterBlocksHaveTheFanInsOfMath2) {
  const Network net = make_net("lift:k=3,relu,gconv:k=5,relu,gpool,dense,relu,dense", {2, 6, 6});
  const FiniteNetwork f(net, 7, 1);
  const auto& b = f.blocks();
  ASSERT_EQ(b.size(), 8u);
  EXPECT_EQ(b[0].fan_in, 2 * 9);       // C q²
  EXPECT_EQ(b[2].fan_in, 7 * 4 * 25);  // n · 4 · q²
  EXPECT_EQ(b[4].fan_in, 7);           // dense after gpool: n
  EXPECT_EQ(b[6].fan_in, 7);
  EXPECT_EQ(b[6].outputs, 1);  // one scalar output
  for (std::size_t i = 1; i < b.size(); i += 2) {
    EXPECT_EQ(b[i].kind, ParameterKind::bias);
    EXPECT_EQ(b[i].size, b[i].outputs);  // one bias per output channel
  }
  std::int64_t total = 0;
  for (const auto& blk : b) {
    EXPECT_EQ(blk.offset, total);
    total += blk.size;
  }
  EXPECT_EQ(total, f.parameter_count());
}

TEST(FiniteForward, ParametersAreStandardNormalAndSeeded) {
  const Network net = make_net("lift:k=3,relu,gconv:k=3,relu,gpool,dense", {1, 5, 5});
  const FiniteNetwork a(net, 32, 7), b(net, 32, 7), c(net, 32, 8);
  ASSERT_TRUE(std::equal(a.parameters().begin(), a.parameters().end(), b.parameters().begin()));
  EXPECT_FALSE(std::equal(a.parameters().begin(), a.parameters().end(), c.parameters().begin()));
  // Mean and variance of P draws: standard errors 1/√P and √(2/P); allow 5 of them.
  const auto th = a.parameters();
  const double n = static_cast<double>(th.size());
  double mean = 0.0, sq = 0.0;
  for (double v : th) mean += v;
  mean /= n;
  for (double v : th) sq += (v - mean) * (v - mean);
  EXPECT_LT(std::abs(mean), 5.0 / std::sqrt(n));
  EXPECT_LT(std::abs(sq / n - 1.0), 5.0 * std::sqrt(2.0 / n));
}

TEST(FiniteForward, ReseedDrawsWhatConstructionDraws) {
  const Network net = make_net("conv:k=3,relu,gap,dense:b=0.5", {1, 4, 4});
  FiniteNetwork reused(net, 6, 1);
  const Image x = gaussian_image(net.input_shape(), 2);
  (void)reused.forward(x.view());
  reused.reseed(9);
  FiniteNetwork fresh(net, 6, 9);
  ASSERT_TRUE(std::equal(reused.parameters().begin(), reused.parameters().end(), fresh.parameters().begin()));
  EXPECT_EQ(reused.forward(x.view()), fresh.forward(x.view()));
}

TEST(FiniteForward, RejectsWrongShapes) {
  const Network net = make_net("conv:k=3,relu,gap,dense", {1, 4, 4});
  EXPECT_THROW(FiniteNetwork(net, 0, 1), eqntk::InvalidArgument);
  FiniteNetwork f(net, 3, 1);
  const Image wrong = gaussian_image({1, 5, 5}, 1);
  EXPECT_THROW((void)f.forward(wrong.view()), eqntk::InvalidArgument);
  std::vector<double> g(static_cast<std::size_t>(f.parameter_count() - 1));
  const Image x = gaussian_image({1, 4, 4}, 1);
  EXPECT_THROW((void)f.gradient(x.view(), g), eqntk::InvalidArgument);
}

// ---------------------------------------------------------------------------------------------------
// 2. Gradients against central differences
// ---------------------------------------------------------------------------------------------------

void expect_gradients_match_differences(const std::string& arch, InputShape shape, std::int64_t width) {
  SCOPED_TRACE(arch);
  const Network net = make_net(arch, shape);
  FiniteNetwork f(net, width, 3);
  const Image x = gaussian_image(shape, 9);
  std::vector<double> g(static_cast<std::size_t>(f.parameter_count()));
  const double f0 = f.gradient(x.view(), g);
  EXPECT_DOUBLE_EQ(f0, f.forward(x.view()));
  std::int64_t max_fan_in = 1;
  for (const auto& b : f.blocks()) max_fan_in = std::max(max_fan_in, b.fan_in);
  const double u = static_cast<double>(net.stages().size() * max_fan_in) * kEps * std::max(1.0, std::abs(f0));
  const double h = 1e-4;
  std::mt19937_64 gen(17);
  std::normal_distribution<double> normal;
  auto theta = f.parameters();
  for (const ParameterBlock& b : f.blocks()) {
    std::vector<double> v(static_cast<std::size_t>(b.size));
    for (double& e : v) e = normal(gen);
    double gv = 0.0;
    for (std::int64_t k = 0; k < b.size; ++k)
      gv += g[static_cast<std::size_t>(b.offset + k)] * v[static_cast<std::size_t>(k)];
    auto difference = [&](double step) {
      auto shifted = [&](double sign) {
        for (std::int64_t k = 0; k < b.size; ++k)
          theta[static_cast<std::size_t>(b.offset + k)] += sign * step * v[static_cast<std::size_t>(k)];
        const double y = f.forward(x.view());
        for (std::int64_t k = 0; k < b.size; ++k)
          theta[static_cast<std::size_t>(b.offset + k)] -= sign * step * v[static_cast<std::size_t>(k)];
        return y;
      };
      return (shifted(1.0) - shifted(-1.0)) / (2.0 * step);
    };
    const double d1 = difference(h), d2 = difference(h / 2);
    const double tol = std::abs(d1 - d2) + 4.0 * u / h;
    EXPECT_NEAR(d2, gv, tol) << "stage " << b.stage << (b.kind == ParameterKind::weight ? " weights" : " biases");
    EXPECT_GT(std::abs(gv), 100.0 * tol) << "stage " << b.stage << ": the check has no power here";
  }
}

TEST(FiniteGradient, GroupNetworkMatchesCentralDifferences) {
  expect_gradients_match_differences(
      "lift:k=3:pad=same:w=1.3:b=0.4,relu,gconv:k=3:pad=valid:b=0.3,erf,gconv:k=3:pad=circular:w=0.8:b=0.2,id,"
      "gpool,dense:b=0.5,relu,dense:w=1.1:b=0.3",
      {2, 7, 7}, 3);
}

TEST(FiniteGradient, GroupFlattenNetworkMatchesCentralDifferences) {
  expect_gradients_match_differences(
      "lift:k=5:pad=valid:b=0.2,erf,gconv:k=3:pad=circular:b=0.4,relu,flatten,dense:b=0.3", {1, 6, 6}, 3);
}

TEST(FiniteGradient, CnnMatchesCentralDifferences) {
  expect_gradients_match_differences(
      "conv:k=3:pad=same:b=0.4,relu,conv:k=5:pad=valid:b=0.3,erf,conv:k=3:pad=circular:b=0.2,gap,dense:b=0.5,erf",
      {2, 7, 6}, 3);
  expect_gradients_match_differences("conv:k=1:pad=same:b=0.1,relu,flatten,dense:b=0.2", {2, 3, 3}, 4);
}

TEST(FiniteGradient, MlpOnFlattenedInputMatchesCentralDifferences) {
  expect_gradients_match_differences("flatten,dense:b=0.5,relu,dense:b=0.1,erf,dense:b=0.2", {2, 3, 4}, 5);
}

TEST(FiniteGradient, AvgpoolAndResGroupNetworksMatchCentralDifferences) {
  // Nested and consecutive blocks (δ reaches a block's input both through its body and around it).
  expect_gradients_match_differences(
      "lift:k=3:b=0.2,relu,res(gconv:k=3:b=0.3,relu,gconv:k=3:pad=circular:b=0.1),avgpool:s=2,gconv:k=3:b=0.2,erf,"
      "res(gconv:k=3:b=0.1,erf,res(gconv:k=3:b=0.2,relu,gconv:k=1:b=0.1)),res(gconv:k=1:b=0.3,id),gpool,dense:b=0.3",
      {2, 6, 6}, 3);
  expect_gradients_match_differences(
      "lift:k=3:group=p4m:b=0.2,erf,avgpool:s=2,res(gconv:k=3:b=0.1,erf,gconv:k=3:b=0.2),erf,flatten,dense:b=0.1",
      {1, 4, 4}, 2);
}

TEST(FiniteGradient, AvgpoolAndResCnnMatchesCentralDifferences) {
  expect_gradients_match_differences(
      "conv:k=3:b=0.1,relu,res(conv:k=3:b=0.2,relu,conv:k=3:b=0.1),res(conv:k=1:b=0.2,erf),avgpool:s=2,"
      "conv:k=3:pad=valid:b=0.1,relu,avgpool:s=2,flatten,dense:b=0.2,relu,dense:b=0.1",
      {2, 8, 12}, 3);
}

// ---------------------------------------------------------------------------------------------------
// 3. Symmetry
// ---------------------------------------------------------------------------------------------------

TEST(FiniteSymmetry, GroupPooledNetworkIsInvariantUnderAllFourRotations) {
  for (const std::string pad : {"same", "valid", "circular"})
    for (const std::int64_t size : {6, 7}) {
      const std::string arch =
          "lift:k=3:pad=" + pad + ":b=0.3,relu,gconv:k=3:pad=" + pad + ":b=0.2,erf,gpool,dense:b=0.1";
      SCOPED_TRACE(arch + " on " + std::to_string(size) + "x" + std::to_string(size));
      const Network net = make_net(arch, {2, size, size});
      FiniteNetwork f(net, 8, 21);
      const Image x = gaussian_image(net.input_shape(), 4);
      const double f0 = f.forward(x.view());
      for (int r = 0; r < 4; ++r) {
        const Image xr = eqntk::group::rot90(x.view(), r);
        EXPECT_NEAR(f.forward(xr.view()), f0, 1e-12 * std::max(1.0, std::abs(f0))) << "r = " << r;
      }
    }
}

// f(ρ(e)x) = f(x) to 1e-12 for every e ∈ G, and differs by more than `outside` (relative) for every other
// element of D4.
void expect_invariant_under_group_only(FiniteNetwork& f, const Image& x, eqntk::group::PointGroup g, double outside) {
  const double f0 = f.forward(x.view());
  for (const eqntk::group::Element e : eqntk::group::elements(eqntk::group::PointGroup::D4)) {
    const double fe = f.forward(eqntk::group::transform(x.view(), e).view());
    if (eqntk::group::index_of(g, e) >= 0)
      EXPECT_NEAR(fe, f0, 1e-12 * std::max(1.0, std::abs(f0))) << "(" << e.r << "," << e.m << ")";
    else
      EXPECT_GT(std::abs(fe - f0), outside * std::max(1.0, std::abs(f0))) << "(" << e.r << "," << e.m << ")";
  }
}

TEST(FiniteSymmetry, EveryPointGroupNetworkIsInvariantUnderItsGroupOnly) {
  // MATH.md §10 at finite width: with gpool the output is invariant under ρ(g) for g ∈ G, and a random
  // finite network is not invariant under the elements of D4 outside G.
  for (const eqntk::group::PointGroup g : eqntk::group::kAllGroups) {
    const std::string arch = "lift:k=3:group=" + std::string(eqntk::group::name(g)) +
                             ":b=0.3,relu,gconv:k=3:b=0.2,erf,gpool,dense:b=0.1";
    SCOPED_TRACE(arch);
    const Network net = make_net(arch, {2, 6, 6});
    FiniteNetwork f(net, 6, 17);
    const Image x = gaussian_image(net.input_shape(), 5);
    expect_invariant_under_group_only(f, x, g, 1e-8);
  }
}

TEST(FiniteSymmetry, AvgpoolAndResNetworksAreInvariantUnderTheirGroupOnly) {
  // The avgpool cells of an s-strided grid on an image whose size s divides are permuted by every element of
  // D4 about the image centre, and h + F(h) is equivariant when F is: with gpool a p4 / p4m network with
  // avgpool and res blocks is invariant under its group; a D2 network (half turn and mirrors) is not
  // invariant under a quarter turn.
  for (const std::string g : {"p4", "p4m", "D2"})
    for (const std::string pad : {"same", "circular"}) {
      const std::string arch = "lift:k=3:group=" + g + ":pad=" + pad + ":b=0.3,relu,res(gconv:k=3:pad=" + pad +
                               ":b=0.2,relu,gconv:k=3:pad=" + pad + "),avgpool:s=2,gconv:k=3:pad=" + pad +
                               ",erf,res(gconv:k=3:b=0.1,relu,gconv:k=1),gpool,dense:b=0.1";
      SCOPED_TRACE(arch);
      const Network net = make_net(arch, {2, 6, 6});
      FiniteNetwork f(net, 4, 23);
      const Image x = gaussian_image(net.input_shape(), 7);
      expect_invariant_under_group_only(f, x, net.group(), 1e-6);
    }
}

TEST(FiniteSymmetry, GroupFeatureMapsAreEquivariant) {
  // F[ρx](t, r) = F[x](R⁻¹t, r − 1) (MATH.md §2): rotation slice r of the rotated input's maps is the
  // rot90 of slice r − 1 of the original's, for the lift and for every later gconv.
  for (const std::string pad : {"same", "valid", "circular"}) {
    const std::string arch = "lift:k=3:pad=" + pad + ":b=0.3,relu,gconv:k=3:pad=" + pad + ":b=0.2,relu,gpool,dense";
    SCOPED_TRACE(arch);
    const Network net = make_net(arch, {1, 7, 7});
    FiniteNetwork f(net, 3, 5);
    const Image x = gaussian_image(net.input_shape(), 8);
    (void)f.forward(x.view());
    std::vector<std::vector<double>> base;
    for (std::size_t s : {0u, 2u}) base.emplace_back(f.stage_output(s).begin(), f.stage_output(s).end());
    for (int rho = 0; rho < 4; ++rho) {
      const Image xr = eqntk::group::rot90(x.view(), rho);
      (void)f.forward(xr.view());
      for (std::size_t idx = 0; idx < 2; ++idx) {
        const Stage& st = net.stages()[idx == 0 ? 0 : 2];
        const auto got = f.stage_output(idx == 0 ? 0 : 2);
        const std::int64_t hw = st.h_out * st.w_out;
        for (std::int64_t o = 0; o < 3; ++o)
          for (int r = 0; r < 4; ++r) {
            const int r_src = ((r - rho) % 4 + 4) % 4;
            const eqntk::data::ImageView slice{base[idx].data() + (o * 4 + r_src) * hw, 1, st.h_out, st.w_out};
            const Image want = eqntk::group::rot90(slice, rho);
            for (std::int64_t k = 0; k < hw; ++k)
              ASSERT_NEAR(got[static_cast<std::size_t>((o * 4 + r) * hw + k)], want.pixels[static_cast<std::size_t>(k)],
                          1e-12)
                  << "stage " << (idx == 0 ? 0 : 2) << " rho " << rho << " r " << r;
          }
      }
    }
  }
}

TEST(FiniteSymmetry, CnnIsNotInvariant) {
  // A random CNN's output changes under rotation by O(its own size); 1e-3 of it is far above rounding.
  const Network net = make_net("conv:k=3:pad=same:b=0.3,relu,conv:k=3:pad=same:b=0.2,erf,gap,dense:b=0.1", {2, 7, 7});
  FiniteNetwork f(net, 8, 21);
  const Image x = gaussian_image(net.input_shape(), 4);
  const double f0 = f.forward(x.view());
  for (int r = 1; r < 4; ++r) {
    const Image xr = eqntk::group::rot90(x.view(), r);
    EXPECT_GT(std::abs(f.forward(xr.view()) - f0), 1e-3 * std::abs(f0)) << "r = " << r;
  }
}

// ---------------------------------------------------------------------------------------------------
// 4. Monte Carlo against the analytic kernels (MATH.md §8)
// ---------------------------------------------------------------------------------------------------

struct McWidth {
  std::int64_t width = 0;
  // Per pair: samples over initializations.
  std::vector<std::vector<double>> ntk, nngp, nngp_cond;
};

// One Monte Carlo experiment: the analytic kernels of the image pairs (0,0), (0,1), (1,1) and, for every
// width, `inits` independent initializations' empirical kernels on them. Initialization i of width n is
// seeded 1000003·n + i, so the samples (and the test) are the same for every thread count.
struct McRun {
  std::vector<std::pair<std::int64_t, std::int64_t>> pairs = {{0, 0}, {0, 1}, {1, 1}};
  std::vector<std::pair<double, double>> analytic;  // (nngp, ntk) per pair
  std::vector<McWidth> widths;
};

McRun run_monte_carlo(const std::string& arch, InputShape shape, const std::vector<std::int64_t>& widths,
                      std::int64_t inits) {
  McRun run;
  const Network net = make_net(arch, shape);
  ImageSet images{net.input_shape(), 2, {}};
  for (std::uint64_t i = 0; i < 2; ++i) {
    const Image x = gaussian_image(net.input_shape(), 100 + i);
    images.pixels.insert(images.pixels.end(), x.pixels.begin(), x.pixels.end());
  }
  eqntk::kernel::PairKernel pk(net);
  const auto s0 = pk.self_chain(images.view(0)), s1 = pk.self_chain(images.view(1));
  const eqntk::kernel::SelfChain* chains[2] = {&s0, &s1};
  for (const auto& [a, b] : run.pairs) {
    const auto v = pk.evaluate(images.view(a), *chains[a], images.view(b), *chains[b]);
    run.analytic.emplace_back(v.nngp, v.ntk);
  }
  for (const std::int64_t n : widths) {
    McWidth w;
    w.width = n;
    w.ntk.assign(run.pairs.size(), std::vector<double>(static_cast<std::size_t>(inits)));
    w.nngp = w.ntk;
    w.nngp_cond = w.ntk;
#pragma omp parallel for schedule(dynamic, 1)
    for (std::int64_t i = 0; i < inits; ++i) {
      FiniteNetwork f(net, n, 1000003ULL * static_cast<std::uint64_t>(n) + static_cast<std::uint64_t>(i));
      const auto k = eqntk::finite::empirical_kernels(f, images);
      for (std::size_t p = 0; p < run.pairs.size(); ++p) {
        const auto idx = static_cast<std::size_t>(run.pairs[p].first * 2 + run.pairs[p].second);
        w.ntk[p][static_cast<std::size_t>(i)] = k.ntk[idx];
        w.nngp[p][static_cast<std::size_t>(i)] = k.nngp[idx];
        w.nngp_cond[p][static_cast<std::size_t>(i)] = k.nngp_cond[idx];
      }
    }
    run.widths.push_back(std::move(w));
  }
  return run;
}

double mean(const std::vector<double>& v) {
  double s = 0.0;
  for (double e : v) s += e;
  return s / static_cast<double>(v.size());
}

double standard_error(const std::vector<double>& v) {
  const double m = mean(v);
  double s = 0.0;
  for (double e : v) s += (e - m) * (e - m);
  return std::sqrt(s / static_cast<double>(v.size() - 1) / static_cast<double>(v.size()));
}

// √(mean_i (Θ_i − Θ)²)/|Θ|, and the standard error of that estimate by the delta method:
// SE(s²) = sd_i((Θ_i − Θ)²)/√M, SE(s) = SE(s²)/(2s).
std::pair<double, double> spread(const std::vector<double>& v, double exact) {
  std::vector<double> sq;
  for (double e : v) sq.push_back((e - exact) * (e - exact) / (exact * exact));
  const double s2 = mean(sq);
  return {std::sqrt(s2), standard_error(sq) / (2.0 * std::sqrt(s2))};
}

// At the largest width the analytic NNGP/NTK lie within 5 standard errors of the Monte Carlo means, and the
// check has power: 5 standard errors of the NTK are at most `power` of it.
void expect_analytic_within_five_standard_errors(const McRun& run, double power) {
  const McWidth& w = run.widths.back();
  for (std::size_t p = 0; p < run.pairs.size(); ++p) {
    SCOPED_TRACE("pair " + std::to_string(run.pairs[p].first) + "," + std::to_string(run.pairs[p].second));
    const auto [nngp, ntk] = run.analytic[p];
    EXPECT_NEAR(mean(w.ntk[p]), ntk, 5.0 * standard_error(w.ntk[p]));
    EXPECT_NEAR(mean(w.nngp[p]), nngp, 5.0 * standard_error(w.nngp[p]));
    EXPECT_NEAR(mean(w.nngp_cond[p]), nngp, 5.0 * standard_error(w.nngp_cond[p]));
    EXPECT_LT(5.0 * standard_error(w.ntk[p]), power * ntk);
  }
}

// From the smallest to the largest width the NTK spread shrinks by √(n_small/n_large), within 5 standard
// errors of the measured ratio; the conditional NNGP's spread falls too (the plain f(x)f(x') keeps the
// variance of a product of Gaussians).
void expect_spread_falls_like_inverse_square_root(const McRun& run) {
  const McWidth& small = run.widths.front();
  const McWidth& large = run.widths.back();
  const double expected = std::sqrt(static_cast<double>(small.width) / static_cast<double>(large.width));
  for (std::size_t p = 0; p < run.pairs.size(); ++p) {
    SCOPED_TRACE("pair " + std::to_string(run.pairs[p].first) + "," + std::to_string(run.pairs[p].second));
    const auto [nngp, ntk] = run.analytic[p];
    const auto [s_small, e_small] = spread(small.ntk[p], ntk);
    const auto [s_large, e_large] = spread(large.ntk[p], ntk);
    const double ratio = s_large / s_small;
    const double ratio_se = ratio * std::hypot(e_small / s_small, e_large / s_large);
    EXPECT_NEAR(ratio, expected, 5.0 * ratio_se);
    EXPECT_LT(ratio + 5.0 * ratio_se, 1.0) << "the spread does not fall";
    const auto [c_small, ce_small] = spread(small.nngp_cond[p], nngp);
    const auto [c_large, ce_large] = spread(large.nngp_cond[p], nngp);
    EXPECT_LT(c_large / c_small, 1.0);
  }
}

class FiniteMonteCarlo : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    run_ = run_monte_carlo("lift:k=3:pad=same,relu,gconv:k=3:pad=same,relu,gpool,dense", {1, 4, 4}, {8, 64}, 400);
  }
  static inline McRun run_;
};

TEST_F(FiniteMonteCarlo, AnalyticKernelsLieWithinFiveStandardErrorsAtTheLargestWidth) {
  // 5 standard errors are a few per cent of the NTK (a wrong scaling factor, e.g. a missing 1/4 of the
  // s-sum or 1/q², moves it by tens of per cent).
  expect_analytic_within_five_standard_errors(run_, 0.06);
}

TEST_F(FiniteMonteCarlo, NtkSpreadFallsLikeInverseSquareRootOfWidth) {
  // n = 8 → 64: the spread should shrink by √8 ≈ 2.83.
  expect_spread_falls_like_inverse_square_root(run_);
}

// The same checks for average pooling and a residual block (MATH.md §10): the independent check of the
// engines' avgpool (the off-diagonal cell sums) and res (K + K_F, Θ + Θ_F) against actual finite networks —
// a p4 network reading out by gpool and a CNN reading out by flatten after the avgpool (the readout then
// sees pooled same-position entries, which need the off-diagonal entries of every cell). The p4 network's
// gconvs dominate the run time, so its largest width is 32; 5 standard errors there are ≤ 8 % of the NTK
// (≤ 6 % for the CNN at 64), while dropping the res block's saved input in the engine moves the NTK by
// 60–70 %, and pooling only same-offset pairs of a cell by 70–130 %.
// One test per network, each running only its own Monte Carlo (ctest runs every test in a process of its own).
TEST(FiniteMonteCarloAvgpoolRes, GroupNetworkWithResAndAvgpool) {
  const std::string arch = "lift:k=3,relu,res(gconv:k=3,relu,gconv:k=3),avgpool:s=2,gconv:k=3,relu,gpool,dense";
  SCOPED_TRACE(arch);
  const McRun run = run_monte_carlo(arch, {1, 4, 4}, {8, 32}, 400);
  expect_analytic_within_five_standard_errors(run, 0.1);
  expect_spread_falls_like_inverse_square_root(run);  // n = 8 → 32: the spread shrinks by 2
}

TEST(FiniteMonteCarloAvgpoolRes, CnnWithResAndFlattenAfterAvgpool) {
  const std::string arch = "conv:k=3,relu,res(conv:k=3,relu,conv:k=3),avgpool:s=2,conv:k=3,relu,flatten,dense";
  SCOPED_TRACE(arch);
  const McRun run = run_monte_carlo(arch, {1, 6, 6}, {8, 64}, 400);
  expect_analytic_within_five_standard_errors(run, 0.08);
  expect_spread_falls_like_inverse_square_root(run);  // n = 8 → 64: by √8
}

}  // namespace
