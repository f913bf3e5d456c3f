// The reference engine (full 16-block kernel matrices, MATH.md §3–§4) against closed forms, the fast
// 4-block engine against the reference, and the symmetries of MATH.md §5.
// The fast engine is the CPU's, or with EQNTK_TEST_DEVICE=gpu the OpenCL executor (support/engine.hpp:
// FastPath, fast_kernel); tests that read the CPU engine's blocks (evaluate_observed) call PairKernel itself.
//
// Tolerances. Every value compared here is a composition of at most three window sums of
// n ≤ |S|·q² = 100 terms per layer, a pool of at most (4·h·w)² terms, and dual activations that are
// accurate to a few ulps (u = 2⁻⁵³ ≈ 1.1e-16). A floating-point sum of n terms is off by at most
// (n−1)·u·Σ|terms| and typically √n·u·Σ|terms|. The fast engine pools with per-slab partial sums
// (n_eff ≈ 2·h·w ≤ 450) and the reference with compensated summation, so two correct engines differ
// by about depth·(100 + 450)·u·Σ|terms| ≲ 2e-13·Σ|terms| in the worst case. The inputs are drawn from
// U(−0.5, 1): mostly positive, like images, so Σ|terms| stays within a small factor of |Σ terms|.
// Entries that are small only through cancellation are judged on their natural scale instead, the
// Cauchy–Schwarz bound √(K_gg(x,x)·K_g'g'(x',x')) (every state, Σ̇⊙Θ included, is a PSD kernel),
// which bounds the magnitude of the terms that were summed. Hence the criterion used throughout:
//   |a − b| ≤ kTol · max(|b|, scale),   kTol = 1e-12,
// a factor ≥ 5 above the worst-case rounding bound and ~1e3 above its typical size, while a wrong
// index, padding rule or rotation direction changes values at the 1e-2 level. (Measured: the largest
// deviation anywhere in this file is ~3e-15.) The one exception, relu at exactly perfect correlation,
// is ill-conditioned for every engine and is tested on its own with a √u-based bound.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "../support/engine.hpp"
#include "../support/fixtures.hpp"
#include "eqntk/data/image.hpp"
#include "eqntk/error.hpp"
#include "eqntk/group/image_action.hpp"
#include "eqntk/kernel/architecture.hpp"
#include "eqntk/kernel/dual.hpp"
#include "eqntk/kernel/network.hpp"
#include "eqntk/kernel/pair_kernel.hpp"
#include "eqntk/kernel/reference_kernel.hpp"

namespace ek = eqntk::kernel;
namespace data = eqntk::data;

using eqntk::testing::deviation;
using eqntk::testing::FastPath;
using eqntk::testing::fast_kernel;
using eqntk::testing::make_network;
constexpr auto random_image = eqntk::testing::uniform_image;

namespace {

constexpr double kTol = 1e-12;
constexpr double kTiny = 1e-300;

bool close(double a, double b, double scale, double tol = kTol) {
  return std::abs(a - b) <= tol * std::max({std::abs(b), scale, kTiny});
}

// Scale of a pooled pair value: the Cauchy–Schwarz bound √(K(x,x)·K(x',x')) of the PSD pooled kernel.
ek::KernelValue pooled_scale(const ek::KernelValue& self1, const ek::KernelValue& self2) {
  return {std::sqrt(std::abs(self1.nngp * self2.nngp)), std::sqrt(std::abs(self1.ntk * self2.ntk))};
}

// Caps the number of reported mismatches in grid loops; the loop still counts every case.
struct FailureLog {
  int failures = 0;
  int cases = 0;
  void report(const std::string& what) {
    if (++failures <= 12) ADD_FAILURE() << what;
  }
};

// ---- architecture grid --------------------------------------------------------------------------

struct GridCase {
  std::string arch;
  std::int64_t channels = 1;
  std::int64_t size = 5;
  std::uint64_t seed = 0;
};

enum class Readout { pool, flatten };

const char* pad_name(ek::Padding p) {
  return p == ek::Padding::same ? "same" : p == ek::Padding::valid ? "valid" : "circular";
}

// `depth` spatial layers (lift + gconvs, or convs), each followed by `act`, a readout and a head
// ("dense", or "dense,<head_act>,dense" to exercise pooled self-kernels). With `bias` every linear
// layer gets σ_b > 0 and σ_w ≠ 1.
std::string build_arch(bool p4, int depth, int k, ek::Padding pad, const std::string& act, bool bias, Readout readout,
                       const std::string& head_act) {
  std::ostringstream a;
  const std::string wb = bias ? ":w=1.3:b=0.4" : "";
  for (int d = 0; d < depth; ++d) {
    a << (d == 0 ? (p4 ? "lift" : "conv") : (p4 ? "gconv" : "conv")) << ":k=" << k << ":pad=" << pad_name(pad) << wb
      << "," << act << ",";
  }
  a << (readout == Readout::flatten ? "flatten" : (p4 ? "gpool" : "gap"));
  if (head_act.empty()) {
    a << ",dense" << wb;
  } else {
    a << ",dense:w=1.1" << (bias ? ":b=0.2" : "") << "," << head_act << ",dense" << wb;
  }
  return a.str();
}

// Square images big enough for `valid` to leave a 3×3 map after `depth` layers; 5–7 pixels otherwise.
std::int64_t image_size(int depth, int k, ek::Padding pad, int index) {
  if (pad == ek::Padding::valid) return std::max<std::int64_t>(5, 3 + static_cast<std::int64_t>(depth) * (k - 1));
  return 5 + index % 3;
}

std::vector<GridCase> grid(bool p4, Readout readout) {
  std::vector<GridCase> cases;
  const ek::Padding pads[] = {ek::Padding::same, ek::Padding::valid, ek::Padding::circular};
  const char* acts[] = {"relu", "erf", "id"};
  int index = 0;
  for (const ek::Padding pad : pads)
    for (const int k : {1, 3, 5})
      for (int depth = 1; depth <= 3; ++depth)
        for (const char* act : acts)
          for (const bool bias : {false, true})
            for (const bool head_nl : {false, true}) {
              GridCase c;
              c.arch = build_arch(p4, depth, k, pad, act, bias, readout, head_nl ? (index % 2 ? "relu" : "erf") : "");
              // A 1-channel network of k = 1 layers without biases is rank one: every pre-activation pair
              // is perfectly (anti)correlated, where relu's Σ̇ is determined only to √u (see
              // RankOneReluNetworksAgreeToSqrtRounding). Two channels keep the grid well conditioned.
              c.channels = (k == 1 && !bias) ? 2 : 1 + index % 2;
              c.size = image_size(depth, k, pad, index);
              c.seed = 1000 + static_cast<std::uint64_t>(index);
              cases.push_back(c);
              ++index;
            }
  return cases;
}

// Compares the pooled fast and reference kernels of x, x2 (and scales by the reference self-kernels).
void compare_pooled(const GridCase& c, FailureLog& log) {
  ++log.cases;
  const ek::Network net = make_network(c.arch, c.channels, c.size);
  const data::Image x = random_image(net.input_shape(), c.seed);
  const data::Image x2 = random_image(net.input_shape(), c.seed + 7919);
  const ek::ReferenceKernel ref(net);
  const ek::KernelValue want = ref.evaluate(x.view(), x2.view());
  const ek::KernelValue got = fast_kernel(net, x.view(), x2.view());
  if (close(got.nngp, want.nngp, 0.0) && close(got.ntk, want.ntk, 0.0)) return;
  // Only a value that fails the plain relative test needs its Cauchy–Schwarz scale (two more runs).
  const ek::KernelValue scale = pooled_scale(ref.evaluate(x.view(), x.view()), ref.evaluate(x2.view(), x2.view()));
  if (!close(got.nngp, want.nngp, scale.nngp) || !close(got.ntk, want.ntk, scale.ntk)) {
    std::ostringstream m;
    m.precision(17);
    m << c.arch << " C=" << c.channels << " " << c.size << "x" << c.size << ": fast (K, Θ) = (" << got.nngp << ", "
      << got.ntk << "), reference (" << want.nngp << ", " << want.ntk << "), deviations "
      << deviation(got.nngp, want.nngp, scale.nngp) << ", " << deviation(got.ntk, want.ntk, scale.ntk);
    log.report(m.str());
  }
}

// Maximum over the entries of two states of |a − b| / max(|b|, √(self1_gg · self2_g'g')), for K and Θ,
// after mapping the entry (g, g') of `b` to the entry map(g), map(g') of `a`.
struct StateDeviation {
  double nngp = 0.0;
  double ntk = 0.0;
};

}  // namespace

// ---- the reference engine on its own ------------------------------------------------------------

TEST(ReferenceKernel, OnePixelImageMatchesClosedForm) {
  // On a 1×1 image with `same` padding only the window centre y = 0 is in range for every rotation, so
  // K¹ = σ_w²/9 · K⁰ + σ_b², Θ¹ = K¹; the relu maps (K¹(x,x), K¹(x',x'), K¹) through relu_dual; the
  // gconv's s-sum adds 4 equal terms of the single pixel: K² = σ_w²/9 · Σ + σ_b², Θ² = K² + σ_w²/9 Σ̇Θ¹.
  const ek::Network net = make_network("lift:k=3:w=1.5:b=0.5,relu,gconv:k=3:w=0.8:b=0.3,gpool,dense:w=2:b=0.1", 2, 1);
  const std::vector<double> xv{0.7, -0.2}, x2v{0.4, 0.9};
  const data::ImageView x{xv.data(), 2, 1, 1}, x2{x2v.data(), 2, 1, 1};
  const auto lift = [](double k0) { return 1.5 * 1.5 / 9 * k0 + 0.25; };
  const double k1 = lift((0.7 * 0.4 - 0.2 * 0.9) / 2);
  const double q1 = lift((0.7 * 0.7 + 0.2 * 0.2) / 2);
  const double q2 = lift((0.4 * 0.4 + 0.9 * 0.9) / 2);
  const ek::DualValue d = ek::relu_dual(q1, q2, k1);
  const double k2 = 0.64 / 9 * d.sigma + 0.09;
  const double t2 = k2 + 0.64 / 9 * d.sigma_dot * k1;
  const double k_out = 4 * k2 + 0.01;
  const double t_out = k_out + 4 * t2;

  const ek::KernelValue v = ek::ReferenceKernel(net).evaluate(x, x2);

  EXPECT_NEAR(v.nngp, k_out, 1e-14 * k_out);
  EXPECT_NEAR(v.ntk, t_out, 1e-14 * t_out);
}

TEST(ReferenceKernel, ValidLiftOnWindowSizedImageIsRotatedInnerProduct) {
  // A q×q image under a `valid` q×q lift leaves one pixel, the centre c, and
  //   K_{(c,r),(c,r')} = σ_w²/q² Σ_y K⁰(c + R^r y, c + R^{r'} y) = σ_w²/q² ⟨ρ(−r)x, ρ(−r')x'⟩ / C,
  // because (ρ(m)x)(c + y) = x(c + R^{−m} y) for ρ = numpy.rot90 (MATH.md §1). This pins the rotation
  // direction of the reference to image.hpp's rot90 independently of the fast engine.
  const ek::Network net = make_network("lift:k=5:pad=valid:w=1.2,relu,gpool,dense", 2, 5);
  const data::Image x = random_image(net.input_shape(), 11);
  const data::Image x2 = random_image(net.input_shape(), 12);

  const std::vector<ek::FullState> states = ek::ReferenceKernel(net).trace(x.view(), x2.view());

  ASSERT_EQ(states.front().h, 1);
  ASSERT_EQ(states.front().rotations, 4);
  for (int r = 0; r < 4; ++r)
    for (int r2 = 0; r2 < 4; ++r2) {
      const data::Image a = eqntk::group::rot90(x.view(), -r);
      const data::Image b = eqntk::group::rot90(x2.view(), -r2);
      double dot = 0.0, mag = 0.0;
      for (std::size_t p = 0; p < a.pixels.size(); ++p) {
        dot += a.pixels[p] * b.pixels[p];
        mag += std::abs(a.pixels[p] * b.pixels[p]);
      }
      const double want = 1.44 / 25 * dot / 2;
      // 50 products summed in different orders: ≤ 50 u Σ|terms|.
      EXPECT_NEAR(states.front().at_k(r, 0, 0, r2, 0, 0), want, 1e-14 * 1.44 / 25 * mag) << "r=" << r << " r'=" << r2;
    }
}

TEST(ReferenceKernel, TraceHasOneStatePerStageBeforeTheReadout) {
  const ek::Network net = make_network("lift:k=3:pad=valid,relu,gconv:k=3:pad=same,erf,gpool,dense", 1, 6);
  const data::Image x = random_image(net.input_shape(), 3);

  const std::vector<ek::FullState> states = ek::ReferenceKernel(net).trace(x.view(), x.view());

  ASSERT_EQ(states.size(), net.readout_stage());
  for (std::size_t s = 0; s < states.size(); ++s) {
    EXPECT_EQ(states[s].rotations, 4);
    EXPECT_EQ(states[s].h, net.stages()[s].h_out);
    EXPECT_EQ(states[s].w, net.stages()[s].w_out);
    EXPECT_EQ(states[s].nngp.size(), static_cast<std::size_t>(states[s].n() * states[s].n()));
    EXPECT_EQ(states[s].ntk.size(), states[s].nngp.size());
  }
}

TEST(ReferenceKernel, RejectsInvalidFilterRotations) {
  const ek::Network net = make_network("lift,relu,gconv,relu,gpool,dense", 1, 5);
  EXPECT_THROW(ek::ReferenceKernel(net, {}), eqntk::InvalidArgument);
  EXPECT_THROW(ek::ReferenceKernel(net, {0, 4}), eqntk::InvalidArgument);
  EXPECT_THROW(ek::ReferenceKernel(net, {-1}), eqntk::InvalidArgument);
  EXPECT_THROW(ek::ReferenceKernel(net, {1, 1}), eqntk::InvalidArgument);
}

TEST(ReferenceKernel, RejectsImagesOfAnotherShape) {
  const ek::ReferenceKernel ref(make_network("lift,relu,gpool,dense", 1, 5));
  const data::Image good = random_image({1, 5, 5}, 1);
  const data::Image bad = random_image({1, 6, 6}, 2);
  EXPECT_THROW((void)ref.evaluate(good.view(), bad.view()), eqntk::InvalidArgument);
  EXPECT_THROW((void)ref.trace(bad.view(), good.view()), eqntk::InvalidArgument);
}

TEST(ReferenceKernel, NineByNineDepthThreePairTakesWellUnderASecond) {
  // The budget the tests and benchmarks rely on: ~60 ms measured in Release, so ~15× headroom for a
  // loaded machine. Unoptimised builds are not held to it.
#ifndef NDEBUG
  GTEST_SKIP() << "timing is only meaningful in optimised (NDEBUG) builds";
#endif
  const ek::Network net = make_network("lift:k=3,relu,gconv:k=3,relu,gconv:k=3,relu,gpool,dense,relu,dense", 1, 9);
  const data::Image x = random_image(net.input_shape(), 5);
  const data::Image x2 = random_image(net.input_shape(), 6);
  const ek::ReferenceKernel ref(net);

  const auto start = std::chrono::steady_clock::now();
  const ek::KernelValue v = ref.evaluate(x.view(), x2.view());
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

  EXPECT_TRUE(std::isfinite(v.ntk));
  EXPECT_LT(seconds, 1.0);
}

// ---- fast engine against the reference ----------------------------------------------------------

TEST(FastVsReference, GroupPooledNetworksAgree) {
  FailureLog log;
  for (const GridCase& c : grid(true, Readout::pool)) compare_pooled(c, log);
  EXPECT_EQ(log.failures, 0) << "of " << log.cases << " architectures";
}

TEST(FastVsReference, AveragePooledCnnsAgree) {
  FailureLog log;
  for (const GridCase& c : grid(false, Readout::pool)) compare_pooled(c, log);
  EXPECT_EQ(log.failures, 0) << "of " << log.cases << " architectures";
}

TEST(FastVsReference, FlattenReadoutsAgree) {
  FailureLog log;
  for (const bool p4 : {true, false})
    for (const GridCase& c : grid(p4, Readout::flatten)) compare_pooled(c, log);
  EXPECT_EQ(log.failures, 0) << "of " << log.cases << " architectures";
}

TEST(FastVsReference, IrregularArchitecturesAgree) {
  // Mixed filter sizes and paddings, linear layers without a nonlinearity between them, pooling
  // straight after a linear layer, several head nonlinearities, flatten on the raw input.
  const char* archs[] = {
      "lift:k=5:pad=circular:b=0.2,relu,gconv:k=3:pad=valid:w=0.7,erf,gconv:k=1:pad=same:b=1,relu,gpool,dense",
      "lift:k=3:pad=valid,gconv:k=3:pad=same,relu,gpool,dense:b=0.5,erf,dense:w=2,relu,dense",
      "lift:k=3:pad=same,relu,gconv:k=5:pad=same,gpool,dense",
      "lift:k=1:pad=valid:w=2,id,gconv:k=3:pad=circular,relu,flatten,dense,relu,dense",
      "conv:k=5:pad=valid,relu,conv:k=1:pad=circular:b=0.1,conv:k=3:pad=same,erf,gap,dense:b=0.3,relu,dense",
      "conv:k=3:pad=same:w=0.5:b=2,erf,conv:k=3:pad=valid,flatten,dense,erf,dense",
      "flatten,dense:b=0.5,relu,dense",
      "lift:k=3:pad=same,relu,gpool,dense,relu,dense,relu,dense",
  };
  FailureLog log;
  int index = 0;
  for (const char* arch : archs) {
    for (const std::int64_t channels : {1, 3})
      compare_pooled(GridCase{arch, channels, 7, 500 + static_cast<std::uint64_t>(index++)}, log);
  }
  EXPECT_EQ(log.failures, 0) << "of " << log.cases << " architectures";
}

TEST(FastVsReference, RankOneReluNetworksAgreeToSqrtRounding) {
  // One channel, k = 1 everywhere, no biases: K⁰(p, p') = x(p)x'(p') is rank one, so after the first relu
  // every pre-activation pair has correlation exactly ±1 in exact arithmetic. There relu's
  // Σ̇ = (π − θ)/2π with θ = atan2(√(q1 q2 − c²), c) is discontinuous: q1 q2 − c² is a difference of
  // equal numbers, off by O(u·q1 q2) in each engine (the fast engine takes q from its diagonal chain,
  // the reference from its full self-state), so s = O(√u·c) and Σ̇ differs by O(√u/2π) ≈ 2e-9 per
  // entry and layer. Any correct engine has this conditioning, so Θ is compared at 1e-7
  // (≈ 3 layers × a few √u); K, which is smooth in c (∂Σ/∂c = Σ̇ ≤ 1/2), still agrees to kTol.
  FailureLog log;
  for (const ek::Padding pad : {ek::Padding::same, ek::Padding::valid, ek::Padding::circular})
    for (int depth = 2; depth <= 3; ++depth) {
      const std::string arch = build_arch(true, depth, 1, pad, "relu", false, Readout::pool, "");
      const ek::Network net = make_network(arch, 1, 5);
      const data::Image x = random_image(net.input_shape(), 700 + static_cast<std::uint64_t>(depth));
      const data::Image x2 = random_image(net.input_shape(), 800 + static_cast<std::uint64_t>(depth));
      const ek::ReferenceKernel ref(net);
      const ek::KernelValue want = ref.evaluate(x.view(), x2.view());
      const ek::KernelValue got = fast_kernel(net, x.view(), x2.view());
      ++log.cases;
      if (!close(got.nngp, want.nngp, 0.0) || !close(got.ntk, want.ntk, 0.0, 1e-7)) {
        std::ostringstream m;
        m << arch << ": deviations K " << deviation(got.nngp, want.nngp) << ", Θ " << deviation(got.ntk, want.ntk);
        log.report(m.str());
      }
    }
  EXPECT_EQ(log.failures, 0) << "of " << log.cases << " architectures";
}

TEST(FastVsReference, RotationBlocksAgreeAfterEveryStage) {
  // PairKernel::evaluate_observed reports B_Δ(t,t') = K_{(t,0),(t',Δ)} (MATH.md §5.1) after every spatial
  // stage; by right invariance the same block must equal K_{(t,r),(t',r+Δ)} for every r, so each block
  // is compared with all four of the 16 reference blocks it stands for.
  FailureLog log;
  int index = 0;
  const ek::Padding pads[] = {ek::Padding::same, ek::Padding::valid, ek::Padding::circular};
  const char* acts[] = {"relu", "erf", "id"};
  for (const bool p4 : {true, false})
    for (const ek::Padding pad : pads)
      for (const int k : {1, 3, 5})
        for (int depth = 1; depth <= 3; ++depth)
          for (const bool bias : {false, true}) {
            const std::string arch = build_arch(p4, depth, k, pad, acts[index % 3], bias, Readout::pool, "");
            const ek::Network net =
                make_network(arch, (k == 1 && !bias) ? 2 : 1 + index % 2, image_size(depth, k, pad, index));
            const data::Image x = random_image(net.input_shape(), 2000 + static_cast<std::uint64_t>(index));
            const data::Image x2 = random_image(net.input_shape(), 3000 + static_cast<std::uint64_t>(index));
            ++index;
            ++log.cases;
            const ek::ReferenceKernel ref(net);
            const std::vector<ek::FullState> want = ref.trace(x.view(), x2.view());
            const std::vector<ek::FullState> self1 = ref.trace(x.view(), x.view());
            const std::vector<ek::FullState> self2 = ref.trace(x2.view(), x2.view());
            ek::PairKernel pk(net);
            const ek::SelfChain s1 = pk.self_chain(x.view());
            const ek::SelfChain s2 = pk.self_chain(x2.view());
            std::vector<int> seen(want.size(), 0);
            StateDeviation worst;
            std::string where;
            (void)pk.evaluate_observed(
                x.view(), s1, x2.view(), s2, [&](std::size_t stage, int delta, const ek::BlockView& b) {
                  ASSERT_LT(stage, want.size());
                  ++seen[stage];
                  const ek::FullState& st = want[stage];
                  ASSERT_EQ(b.h, st.h);
                  ASSERT_EQ(b.w, st.w);
                  for (int r = 0; r < st.rotations; ++r) {
                    const int r2 = (r + delta) % st.rotations;
                    for (std::int64_t i = 0; i < st.h; ++i)
                      for (std::int64_t j = 0; j < st.w; ++j)
                        for (std::int64_t i2 = 0; i2 < st.h; ++i2)
                          for (std::int64_t j2 = 0; j2 < st.w; ++j2) {
                            const std::int64_t e = b.index(i, j, i2, j2);
                            const double sk = std::sqrt(std::abs(self1[stage].at_k(r, i, j, r, i, j) *
                                                                 self2[stage].at_k(r2, i2, j2, r2, i2, j2)));
                            const double st_ = std::sqrt(std::abs(self1[stage].at_theta(r, i, j, r, i, j) *
                                                                  self2[stage].at_theta(r2, i2, j2, r2, i2, j2)));
                            const double dk = deviation(b.nngp[e], st.at_k(r, i, j, r2, i2, j2), sk);
                            const double dt = deviation(b.ntk[e], st.at_theta(r, i, j, r2, i2, j2), st_);
                            if (std::max(dk, dt) > std::max(worst.nngp, worst.ntk))
                              where = "stage " + std::to_string(stage) + " (" + net.stages()[stage].spec.token +
                                      ") block Δ=" + std::to_string(delta) + " r=" + std::to_string(r) + " t=(" +
                                      std::to_string(i) + "," + std::to_string(j) + ") t'=(" + std::to_string(i2) +
                                      "," + std::to_string(j2) + ")";
                            worst.nngp = std::max(worst.nngp, dk);
                            worst.ntk = std::max(worst.ntk, dt);
                          }
                  }
                });
            for (std::size_t s = 0; s < want.size(); ++s)
              EXPECT_EQ(seen[s], net.rotations()) << arch << ": stage " << s << " reported " << seen[s] << " blocks";
            if (worst.nngp > kTol || worst.ntk > kTol) {
              std::ostringstream m;
              m << arch << ": worst deviation K " << worst.nngp << ", Θ " << worst.ntk << " at " << where;
              log.report(m.str());
            }
          }
  EXPECT_EQ(log.failures, 0) << "of " << log.cases << " architectures";
}

// ---- symmetries (MATH.md §5) --------------------------------------------------------------------

namespace {

// Largest deviation between state `a` at the mapped entry and state `b`, on the Cauchy–Schwarz scale
// of the self-states s1, s2 of b's inputs. `map` sends (r, i, j) of b to (r, i, j) of a.
template <class Map>
StateDeviation state_deviation(const ek::FullState& a, const ek::FullState& b, const ek::FullState& s1,
                               const ek::FullState& s2, Map map) {
  StateDeviation d;
  for (int r = 0; r < b.rotations; ++r)
    for (std::int64_t i = 0; i < b.h; ++i)
      for (std::int64_t j = 0; j < b.w; ++j)
        for (int r2 = 0; r2 < b.rotations; ++r2)
          for (std::int64_t i2 = 0; i2 < b.h; ++i2)
            for (std::int64_t j2 = 0; j2 < b.w; ++j2) {
              int ra = r, ra2 = r2;
              std::int64_t ia = i, ja = j, ia2 = i2, ja2 = j2;
              map(ra, ia, ja);
              map(ra2, ia2, ja2);
              const double sk = std::sqrt(std::abs(s1.at_k(r, i, j, r, i, j) * s2.at_k(r2, i2, j2, r2, i2, j2)));
              const double st =
                  std::sqrt(std::abs(s1.at_theta(r, i, j, r, i, j) * s2.at_theta(r2, i2, j2, r2, i2, j2)));
              d.nngp = std::max(d.nngp, deviation(a.at_k(ra, ia, ja, ra2, ia2, ja2), b.at_k(r, i, j, r2, i2, j2), sk));
              d.ntk = std::max(d.ntk,
                               deviation(a.at_theta(ra, ia, ja, ra2, ia2, ja2), b.at_theta(r, i, j, r2, i2, j2), st));
            }
  return d;
}

// p4 architectures for the symmetry tests, one per padding and with a dense head nonlinearity.
std::vector<std::string> p4_archs(ek::Padding pad) {
  const std::string p = std::string(":pad=") + pad_name(pad);
  return {
      "lift:k=3" + p + ",relu,gconv:k=3" + p + ":b=0.3,relu,gconv:k=3" + p + ",erf,gpool,dense",
      "lift:k=5" + p + ":w=1.4:b=0.2,erf,gconv:k=1" + p + ",relu,gpool,dense,relu,dense",
  };
}

// Image size per padding: `valid` with two k=3 and a k=1/k=3 layer needs ≥ 7 to keep 1 pixel; 7 for all.
constexpr std::int64_t kSymSize = 7;

}  // namespace

TEST(Symmetry, ReferenceStatesAreRightInvariant) {
  // MATH.md §5.1: K_{(t,r+s),(t',r'+s)} = K_{(t,r),(t',r')} after every stage (lift, nonlinearity, gconv).
  for (const ek::Padding pad : {ek::Padding::same, ek::Padding::valid, ek::Padding::circular})
    for (const std::string& arch : p4_archs(pad)) {
      const ek::Network net = make_network(arch, 2, kSymSize);
      const data::Image x = random_image(net.input_shape(), 41);
      const data::Image x2 = random_image(net.input_shape(), 42);
      const ek::ReferenceKernel ref(net);
      const auto states = ref.trace(x.view(), x2.view());
      const auto self1 = ref.trace(x.view(), x.view());
      const auto self2 = ref.trace(x2.view(), x2.view());
      for (std::size_t s = 0; s < states.size(); ++s)
        for (int shift = 1; shift < 4; ++shift) {
          const StateDeviation d =
              state_deviation(states[s], states[s], self1[s], self2[s],
                              [shift](int& r, std::int64_t&, std::int64_t&) { r = (r + shift) % 4; });
          EXPECT_LE(d.nngp, kTol) << arch << " stage " << s << " shift " << shift;
          EXPECT_LE(d.ntk, kTol) << arch << " stage " << s << " shift " << shift;
        }
    }
}

TEST(Symmetry, GroupPooledKernelsAreInvariantUnderRotatingEitherInput) {
  // MATH.md §5.5: Θ(ρ(r)x, ρ(s)x') = Θ(x, x') for all 16 (r, s), same for K, with the fast engine.
  for (const ek::Padding pad : {ek::Padding::same, ek::Padding::valid, ek::Padding::circular})
    for (const std::string& arch : p4_archs(pad))
      for (const std::int64_t size : {kSymSize, kSymSize + 1}) {
        const ek::Network net = make_network(arch, 2, size);
        const data::Image x = random_image(net.input_shape(), 51);
        const data::Image x2 = random_image(net.input_shape(), 52);
        FastPath pk(net);
        const ek::SelfChain s1 = pk.self_chain(x.view());
        const ek::SelfChain s2 = pk.self_chain(x2.view());
        const ek::KernelValue base = pk.evaluate(x.view(), s1, x2.view(), s2);
        const ek::KernelValue scale = pooled_scale(s1.self, s2.self);
        for (int r = 0; r < 4; ++r)
          for (int s = 0; s < 4; ++s) {
            const data::Image rx = eqntk::group::rot90(x.view(), r);
            const data::Image sx2 = eqntk::group::rot90(x2.view(), s);
            const ek::KernelValue v = fast_kernel(net, rx.view(), sx2.view());
            EXPECT_TRUE(close(v.nngp, base.nngp, scale.nngp))
                << arch << " " << size << "px r=" << r << " s=" << s << " dev " << deviation(v.nngp, base.nngp);
            EXPECT_TRUE(close(v.ntk, base.ntk, scale.ntk))
                << arch << " " << size << "px r=" << r << " s=" << s << " dev " << deviation(v.ntk, base.ntk);
          }
      }
}

TEST(Symmetry, CnnKernelIsNotInvariantUnderRotatingOneInput) {
  // The control for the test above: a plain CNN with gap is only jointly invariant, so rotating one
  // input changes its kernel by far more than rounding.
  const ek::Network net = make_network("conv:k=3,relu,conv:k=3,relu,gap,dense", 2, kSymSize);
  const data::Image x = random_image(net.input_shape(), 61);
  const data::Image x2 = random_image(net.input_shape(), 62);
  const ek::KernelValue base = fast_kernel(net, x.view(), x2.view());
  for (int r = 1; r < 4; ++r) {
    const data::Image rx = eqntk::group::rot90(x.view(), r);
    const ek::KernelValue v = fast_kernel(net, rx.view(), x2.view());
    EXPECT_GT(deviation(v.ntk, base.ntk), 1e-4) << "r=" << r;
    EXPECT_GT(deviation(v.nngp, base.nngp), 1e-4) << "r=" << r;
  }
}

namespace {

// Pixel (i, j) of an n×n map goes to (n−1−j, i) under ρ(1) = numpy.rot90(·, 1): out[i'][j'] = in[j'][n−1−i']
// so in[i][j] lands where j' = i and n−1−i' = j. In centred coordinates (a, b) ↦ (−b, a) = R(a, b).
void rotate_pixel(std::int64_t n, std::int64_t& i, std::int64_t& j) {
  const std::int64_t ni = n - 1 - j, nj = i;
  i = ni;
  j = nj;
}

// The inverse, R⁻¹: (i, j) ↦ (j, n−1−i). Used only to show the equivariance check can fail.
void rotate_pixel_inverse(std::int64_t n, std::int64_t& i, std::int64_t& j) {
  const std::int64_t ni = j, nj = n - 1 - i;
  i = ni;
  j = nj;
}

// Largest deviation, over every stage of every symmetry architecture, between
// K_{(Mt, r+1),(Mt', r'+1)}(ρx, ρx') and K_{(t,r),(t',r')}(x, x') for the pixel map M.
template <class PixelMap>
StateDeviation equivariance_deviation(PixelMap pixel_map, std::string* worst_where) {
  StateDeviation worst;
  for (const ek::Padding pad : {ek::Padding::same, ek::Padding::valid, ek::Padding::circular})
    for (const std::string& arch : p4_archs(pad))
      for (const std::int64_t size : {kSymSize, kSymSize + 1}) {
        const ek::Network net = make_network(arch, 2, size);
        const data::Image x = random_image(net.input_shape(), 71);
        const data::Image x2 = random_image(net.input_shape(), 72);
        const data::Image rx = eqntk::group::rot90(x.view(), 1);
        const data::Image rx2 = eqntk::group::rot90(x2.view(), 1);
        const ek::ReferenceKernel ref(net);
        const auto plain = ref.trace(x.view(), x2.view());
        const auto rotated = ref.trace(rx.view(), rx2.view());
        const auto self1 = ref.trace(x.view(), x.view());
        const auto self2 = ref.trace(x2.view(), x2.view());
        for (std::size_t s = 0; s < plain.size(); ++s) {
          const std::int64_t n = plain[s].h;
          const StateDeviation d =
              state_deviation(rotated[s], plain[s], self1[s], self2[s], [&](int& r, std::int64_t& i, std::int64_t& j) {
                r = (r + 1) % 4;
                pixel_map(n, i, j);
              });
          if (std::max(d.nngp, d.ntk) > std::max(worst.nngp, worst.ntk) && worst_where != nullptr)
            *worst_where = arch + " " + std::to_string(size) + "px stage " + std::to_string(s);
          worst.nngp = std::max(worst.nngp, d.nngp);
          worst.ntk = std::max(worst.ntk, d.ntk);
        }
      }
  return worst;
}

}  // namespace

TEST(Symmetry, UnpooledKernelsAreEquivariant) {
  // MATH.md §5.5 with h = (0, 1): F[ρ(1)x](Rt, r+1) = F[x](t, r) (§2), hence
  // K_{(Rt, r+1),(Rt', r'+1)}(ρx, ρx') = K_{(t,r),(t',r')}(x, x') for every entry of every state.
  // By right invariance the shift of r is immaterial (any common shift gives the same entry), so this
  // pins the pixel map; the direction of the filter rotation R^r itself is pinned by
  // ReferenceKernel.ValidLiftOnWindowSizedImageIsRotatedInnerProduct and the block-by-block comparison.
  std::string where;
  const StateDeviation d = equivariance_deviation(rotate_pixel, &where);
  EXPECT_LE(d.nngp, kTol) << "worst at " << where;
  EXPECT_LE(d.ntk, kTol) << "worst at " << where;
}

TEST(Symmetry, EquivarianceCheckRejectsTheInverseRotation) {
  // The same check with the pixel map R⁻¹ in place of R must fail clearly, so the test above
  // really pins the direction of the rotation.
  const StateDeviation d = equivariance_deviation(rotate_pixel_inverse, nullptr);
  EXPECT_GT(d.nngp, 1e-3);
  EXPECT_GT(d.ntk, 1e-3);
}

TEST(Symmetry, GroupCnnEqualsOrbitAveragedCnn) {
  // MATH.md §5.2: Θ^{p4}(x, x') = (1/4) Σ_r Θ^{CNN}(x, ρ(r)x'), same for K, for the CNN with conv in
  // place of lift/gconv and gap in place of gpool (same k, pad, σ's, nonlinearities and head).
  // The head must be linear (dense layers only): a head nonlinearity acts on the pooled kernel, which
  // does not commute with the orbit average (its q1 would be the orbit-averaged K(x,x) on the p4 side
  // and the plain CNN K(x,x) on the other), so with `dense,relu,dense` the identity fails at the 1e-2 level.
  struct Pair {
    std::string p4, cnn;
  };
  std::vector<Pair> pairs;
  for (const ek::Padding pad : {ek::Padding::same, ek::Padding::valid, ek::Padding::circular}) {
    const std::string p = std::string(":pad=") + pad_name(pad);
    pairs.push_back({"lift:k=3" + p + ",relu,gconv:k=3" + p + ":b=0.3,relu,gpool,dense",
                     "conv:k=3" + p + ",relu,conv:k=3" + p + ":b=0.3,relu,gap,dense"});
    pairs.push_back(
        {"lift:k=5" + p + ":w=1.4:b=0.2,erf,gconv:k=1" + p + ",relu,gconv:k=3" + p + ",id,gpool,dense:b=0.5,dense:w=2",
         "conv:k=5" + p + ":w=1.4:b=0.2,erf,conv:k=1" + p + ",relu,conv:k=3" + p + ",id,gap,dense:b=0.5,dense:w=2"});
    pairs.push_back(
        {"lift:k=1" + p + ",gconv:k=3" + p + ",erf,gpool,dense", "conv:k=1" + p + ",conv:k=3" + p + ",erf,gap,dense"});
  }
  for (const Pair& pr : pairs)
    for (const std::int64_t size : {kSymSize, kSymSize + 1}) {
      const ek::Network p4 = make_network(pr.p4, 2, size);
      const ek::Network cnn = make_network(pr.cnn, 2, size);
      const data::Image x = random_image(p4.input_shape(), 81);
      const data::Image x2 = random_image(p4.input_shape(), 82);
      FastPath pk(p4);
      const ek::SelfChain s1 = pk.self_chain(x.view());
      const ek::SelfChain s2 = pk.self_chain(x2.view());
      const ek::KernelValue want = pk.evaluate(x.view(), s1, x2.view(), s2);
      const ek::KernelValue scale = pooled_scale(s1.self, s2.self);
      ek::KernelValue avg;
      for (int r = 0; r < 4; ++r) {
        const data::Image rx2 = eqntk::group::rot90(x2.view(), r);
        const ek::KernelValue v = fast_kernel(cnn, x.view(), rx2.view());
        avg.nngp += v.nngp / 4;
        avg.ntk += v.ntk / 4;
      }
      EXPECT_TRUE(close(avg.nngp, want.nngp, scale.nngp))
          << pr.p4 << " " << size << "px: K dev " << deviation(avg.nngp, want.nngp);
      EXPECT_TRUE(close(avg.ntk, want.ntk, scale.ntk))
          << pr.p4 << " " << size << "px: Θ dev " << deviation(avg.ntk, want.ntk);
    }
}

TEST(Symmetry, FilterRotationSupportDoesNotMatter) {
  // MATH.md §5.6: restricting the gconv's s-sum to S ⊂ C4 (normalised by |S|) leaves every state and
  // the pooled kernel unchanged, because right invariance makes the four s-terms equal.
  for (const ek::Padding pad : {ek::Padding::same, ek::Padding::valid, ek::Padding::circular})
    for (const std::string& arch : p4_archs(pad)) {
      const ek::Network net = make_network(arch, 2, kSymSize);
      const data::Image x = random_image(net.input_shape(), 91);
      const data::Image x2 = random_image(net.input_shape(), 92);
      const ek::ReferenceKernel full(net);
      const ek::KernelValue want = full.evaluate(x.view(), x2.view());
      const auto want_states = full.trace(x.view(), x2.view());
      const auto self1 = full.trace(x.view(), x.view());
      const auto self2 = full.trace(x2.view(), x2.view());
      const ek::KernelValue scale =
          pooled_scale(full.evaluate(x.view(), x.view()), full.evaluate(x2.view(), x2.view()));
      for (const std::vector<int>& support : {std::vector<int>{0}, std::vector<int>{0, 2}, std::vector<int>{1, 3}}) {
        const ek::ReferenceKernel restricted(net, support);
        const ek::KernelValue v = restricted.evaluate(x.view(), x2.view());
        const std::string label = arch + " S={" + std::to_string(support.front()) + (support.size() > 1 ? ",…}" : "}");
        EXPECT_TRUE(close(v.nngp, want.nngp, scale.nngp)) << label << " K dev " << deviation(v.nngp, want.nngp);
        EXPECT_TRUE(close(v.ntk, want.ntk, scale.ntk)) << label << " Θ dev " << deviation(v.ntk, want.ntk);
        const auto states = restricted.trace(x.view(), x2.view());
        for (std::size_t s = 0; s < states.size(); ++s) {
          const StateDeviation d =
              state_deviation(states[s], want_states[s], self1[s], self2[s], [](int&, std::int64_t&, std::int64_t&) {});
          EXPECT_LE(d.nngp, kTol) << label << " stage " << s;
          EXPECT_LE(d.ntk, kTol) << label << " stage " << s;
        }
      }
    }
}

TEST(Symmetry, ReferenceKernelIsSymmetricUnderSwappingInputs) {
  // MATH.md §5.4: K(x, x') = K(x', x)ᵀ entry by entry in every state, and the pooled values agree.
  for (const ek::Padding pad : {ek::Padding::same, ek::Padding::valid, ek::Padding::circular}) {
    const std::string arch = p4_archs(pad).back();
    const ek::Network net = make_network(arch, 2, kSymSize);
    const data::Image x = random_image(net.input_shape(), 101);
    const data::Image x2 = random_image(net.input_shape(), 102);
    const ek::ReferenceKernel ref(net);
    const auto ab = ref.trace(x.view(), x2.view());
    const auto ba = ref.trace(x2.view(), x.view());
    for (std::size_t s = 0; s < ab.size(); ++s) {
      double worst = 0.0;
      const std::int64_t n = ab[s].n();
      for (std::int64_t g = 0; g < n; ++g)
        for (std::int64_t g2 = 0; g2 < n; ++g2) {
          const std::size_t e = static_cast<std::size_t>(g * n + g2), et = static_cast<std::size_t>(g2 * n + g);
          worst = std::max({worst, deviation(ab[s].nngp[e], ba[s].nngp[et]), deviation(ab[s].ntk[e], ba[s].ntk[et])});
        }
      // Same terms, same order after transposition (the window loops are symmetric in the two sides),
      // except K⁰ = Σ_c x_c x'_c, whose products commute exactly: the states agree bitwise.
      EXPECT_EQ(worst, 0.0) << arch << " stage " << s;
    }
  }
}

TEST(Symmetry, FastBlocksSatisfyTransposeRule) {
  // MATH.md §5.4 in block form, the rule the Gram code relies on: B_Δ(x,x')(t,t') = B_{−Δ}(x',x)(t',t).
  for (const ek::Padding pad : {ek::Padding::same, ek::Padding::valid, ek::Padding::circular}) {
    const std::string arch = p4_archs(pad).front();
    const ek::Network net = make_network(arch, 2, kSymSize);
    const data::Image x = random_image(net.input_shape(), 111);
    const data::Image x2 = random_image(net.input_shape(), 112);
    ek::PairKernel pk(net);
    const ek::SelfChain s1 = pk.self_chain(x.view());
    const ek::SelfChain s2 = pk.self_chain(x2.view());
    // blocks[stage][Δ] = (K, Θ) copies for one order of the inputs.
    using Blocks = std::vector<std::vector<std::pair<std::vector<double>, std::vector<double>>>>;
    const auto collect = [&](const data::ImageView& a, const ek::SelfChain& sa, const data::ImageView& b,
                             const ek::SelfChain& sb, std::vector<std::int64_t>& hs) {
      Blocks out(net.readout_stage(), std::vector<std::pair<std::vector<double>, std::vector<double>>>(4));
      hs.assign(net.readout_stage(), 0);
      (void)pk.evaluate_observed(a, sa, b, sb, [&](std::size_t stage, int delta, const ek::BlockView& v) {
        const std::size_t m = static_cast<std::size_t>(v.h * v.w * v.h * v.w);
        out[stage][static_cast<std::size_t>(delta)] = {std::vector<double>(v.nngp, v.nngp + m),
                                                       std::vector<double>(v.ntk, v.ntk + m)};
        hs[stage] = v.h;
      });
      return out;
    };
    std::vector<std::int64_t> hs;
    const Blocks ab = collect(x.view(), s1, x2.view(), s2, hs);
    const Blocks ba = collect(x2.view(), s2, x.view(), s1, hs);
    // Cauchy–Schwarz scales from the reference's self-states (see the tolerance note at the top).
    const ek::ReferenceKernel ref(net);
    const auto self1 = ref.trace(x.view(), x.view());
    const auto self2 = ref.trace(x2.view(), x2.view());
    for (std::size_t s = 0; s < ab.size(); ++s) {
      const std::int64_t h = hs[s];
      const ek::BlockView geom{h, h, nullptr, nullptr};
      double worst = 0.0;
      for (int delta = 0; delta < 4; ++delta) {
        const auto& fwd = ab[s][static_cast<std::size_t>(delta)];
        const auto& bwd = ba[s][static_cast<std::size_t>((4 - delta) % 4)];
        for (std::int64_t i = 0; i < h; ++i)
          for (std::int64_t j = 0; j < h; ++j)
            for (std::int64_t i2 = 0; i2 < h; ++i2)
              for (std::int64_t j2 = 0; j2 < h; ++j2) {
                const auto e = static_cast<std::size_t>(geom.index(i, j, i2, j2));
                const auto et = static_cast<std::size_t>(geom.index(i2, j2, i, j));
                const double sk =
                    std::sqrt(std::abs(self1[s].at_k(0, i, j, 0, i, j) * self2[s].at_k(0, i2, j2, 0, i2, j2)));
                const double st =
                    std::sqrt(std::abs(self1[s].at_theta(0, i, j, 0, i, j) * self2[s].at_theta(0, i2, j2, 0, i2, j2)));
                worst = std::max(
                    {worst, deviation(fwd.first[e], bwd.first[et], sk), deviation(fwd.second[e], bwd.second[et], st)});
              }
      }
      EXPECT_LE(worst, kTol) << arch << " stage " << s;
    }
  }
}
