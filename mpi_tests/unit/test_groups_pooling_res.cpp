// Issue 11: every point group of the square lattice, avgpool and residual blocks (MATH.md §10).
//
// The fast engine (|G| blocks B_h, separable window sums, self chains through the full recursion when
// pooling needs them) against the reference engine (all |G|² label blocks, literal s-sums, literal
// cell averages); the symmetries of §10 on the reference and the fast engine; and closed forms built in
// the test from explicit shift and pooling matrices.
// The fast engine is the CPU's, or with EQNTK_TEST_DEVICE=gpu the OpenCL executor (support/engine.hpp).
//
// Tolerance: kTol = 1e-12 relative, judged on max(|b|, Cauchy–Schwarz scale) as in test_reference.cpp
// (whose header derives the rounding bound: per layer ≤ |G|·q² + pooling terms, all well below 1e-12).
// An avgpool adds a sum of s⁴ ≤ 256 terms per entry, still ~3e-14·Σ|terms| at worst.
#include <gtest/gtest.h>

#include <Eigen/Dense>
#include <algorithm>
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
#include "eqntk/group/point_group.hpp"
#include "eqntk/kernel/architecture.hpp"
#include "eqntk/kernel/network.hpp"
#include "eqntk/kernel/pair_kernel.hpp"
#include "eqntk/kernel/reference_kernel.hpp"

namespace ek = eqntk::kernel;
namespace data = eqntk::data;
namespace grp = eqntk::group;
using grp::PointGroup;

using eqntk::testing::deviation;
using eqntk::testing::fast_kernel;
using eqntk::testing::make_network;
constexpr auto random_image = eqntk::testing::uniform_image;

namespace {

constexpr double kTol = 1e-12;
constexpr double kTiny = 1e-300;

std::string gname(PointGroup g) { return std::string(grp::name(g)); }

struct Case {
  std::string arch;
  std::int64_t channels = 2;
  std::int64_t size = 6;
};

// A covering set: every group × every padding × relu/erf/id × avgpool s = 2, 3, 4 × res blocks (single,
// consecutive, nested) × gpool/flatten readouts × linear/nonlinear heads, plus the CNN forms.
std::vector<Case> covering_cases() {
  std::vector<Case> cases;
  const char* pads[] = {"same", "valid", "circular"};
  int index = 0;
  for (const PointGroup g : grp::kAllGroups) {
    const std::string G = ":group=" + gname(g);
    const std::string p = std::string(":pad=") + pads[index % 3];
    const std::string p2 = std::string(":pad=") + pads[(index + 1) % 3];
    const bool valid = index % 3 == 1;
    // avgpool s=2 between group convolutions, pooled readout, linear head.
    cases.push_back({"lift:k=3" + p + G + ",relu,gconv:k=3" + p + ":b=0.3,relu,avgpool:s=2,gconv:k=3" + p2 +
                         ",erf,gpool,dense",
                     2, valid ? 10 : 8});
    // A residual block, avgpool s=3 and a flatten readout (needs the off-diagonal self chain), nonlinear head.
    const std::string pr = index % 2 == 0 ? ":pad=same" : ":pad=circular";  // res bodies keep the size
    cases.push_back({"lift:k=3" + G + ":w=1.2:b=0.1,erf,res(gconv:k=3" + pr + ",erf,gconv:k=1" + pr +
                         "),id,avgpool:s=3,flatten,dense:b=0.2,relu,dense",
                     1, 6});
    // Consecutive and nested res blocks, relu after the sum, nonlinear head on a pooled readout.
    cases.push_back({"lift:k=3:pad=circular" + G + ",relu,res(gconv:k=3:pad=circular,relu,res(gconv:k=3:pad=circular:b=0.2,"
                     "relu,gconv:k=1:pad=circular)),res(gconv:k=3:pad=circular),relu,gpool,dense,erf,dense",
                     2, 5});
    // avgpool s=4 straight after the lift (Θ = K still), then a 1×1 group conv.
    cases.push_back({"lift:k=3" + p + G + ":b=0.2,relu,avgpool:s=4,gconv:k=1:w=0.9,id,gpool,dense", 1, valid ? 10 : 8});
    // flatten without avgpool: the diagonal-only path with a residual block.
    cases.push_back({"lift:k=3" + p + G + ",relu,res(gconv:k=3:pad=same,erf,gconv:k=3:pad=same),relu,flatten,dense,erf,dense",
                     2, valid ? 7 : 5});
    ++index;
  }
  // CNNs with the same layers.
  cases.push_back({"conv:k=3:pad=circular,relu,avgpool:s=2,res(conv:k=3:pad=circular,relu,conv:k=3:pad=circular),relu,gap,dense",
                   2, 6});
  cases.push_back({"conv:k=3:pad=valid:b=0.1,erf,avgpool:s=2,res(conv:k=3,erf,conv:k=1),flatten,dense,relu,dense", 1, 8});
  cases.push_back({"conv:k=5:pad=same,id,avgpool:s=3,avgpool:s=2,gap,dense", 1, 6});
  return cases;
}

}  // namespace

TEST(GroupsFastVsReference, PooledKernelsAgreeOverTheCoveringSet) {
  int failures = 0;
  std::uint64_t seed = 11;
  for (const Case& c : covering_cases()) {
    const ek::Network net = make_network(c.arch, c.channels, c.size);
    const data::Image x = random_image(net.input_shape(), seed++);
    const data::Image x2 = random_image(net.input_shape(), seed++);
    const ek::KernelValue want = ek::ReferenceKernel(net).evaluate(x.view(), x2.view());
    const ek::KernelValue got = fast_kernel(net, x.view(), x2.view());
    const double d = std::max(deviation(got.nngp, want.nngp), deviation(got.ntk, want.ntk));
    if (d > kTol && ++failures <= 10)
      ADD_FAILURE() << c.arch << " " << c.size << "x" << c.size << ": fast (" << got.nngp << ", " << got.ntk
                    << ") reference (" << want.nngp << ", " << want.ntk << ") deviation " << d;
  }
  EXPECT_EQ(failures, 0);
}

TEST(GroupsFastVsReference, SelfKernelsAgreeWithTheReference) {
  // The Gram diagonal K(x, x) comes from the self chain (full recursion once an avgpool is present).
  for (const Case& c : covering_cases()) {
    const ek::Network net = make_network(c.arch, c.channels, c.size);
    const data::Image x = random_image(net.input_shape(), 99);
    eqntk::testing::FastPath pk(net);
    const ek::KernelValue got = pk.self_chain(x.view()).self;
    const ek::KernelValue want = ek::ReferenceKernel(net).evaluate(x.view(), x.view());
    EXPECT_LE(deviation(got.nngp, want.nngp), kTol) << c.arch;
    EXPECT_LE(deviation(got.ntk, want.ntk), kTol) << c.arch;
  }
}

TEST(GroupsFastVsReference, BlocksAgreeAfterEveryStage) {
  // B_h(t,t') = K_{(t,e),(t',h)} after every stage before the readout, and by right invariance also
  // K_{(t,g),(t',h g)}... here K_{(t,g),(t',g'')} with g'' = h·g? No: right invariance is
  // K_{(t,gs),(t',g's)} = K_{(t,g),(t',g')}, so B_h equals K_{(t,s),(t',h s)} for every s ∈ G.
  const std::vector<std::string> archs = {
      "lift:k=3:pad=same:group=D4,relu,avgpool:s=2,res(gconv:k=3:pad=circular,erf,gconv:k=3:pad=circular),relu,gpool,dense",
      "lift:k=3:pad=valid:group=D2:b=0.2,erf,res(gconv:k=3,relu,gconv:k=1),avgpool:s=2,gconv:k=3:pad=valid,relu,gpool,dense",
      "lift:k=3:pad=circular:group=D1,id,gconv:k=3:pad=circular,relu,avgpool:s=3,gconv:k=1,gpool,dense",
      "lift:k=5:group=C2,relu,res(gconv:k=3),avgpool:s=2,gpool,dense",
      "lift:k=3:group=C1,relu,avgpool:s=2,gconv:k=3,erf,gpool,dense",
      "lift:k=3:group=p4,relu,res(gconv:k=3:pad=same,relu,gconv:k=3),relu,avgpool:s=2,gconv:k=3,gpool,dense",
  };
  std::uint64_t seed = 500;
  for (const std::string& arch : archs) {
    const ek::Network net = make_network(arch, 2, arch.find("pad=valid") != std::string::npos ? 8 : 6);
    const auto el = grp::elements(net.group());
    const data::Image x = random_image(net.input_shape(), seed++);
    const data::Image x2 = random_image(net.input_shape(), seed++);
    const std::vector<ek::FullState> want = ek::ReferenceKernel(net).trace(x.view(), x2.view());
    ek::PairKernel pk(net);
    const ek::SelfChain s1 = pk.self_chain(x.view());
    const ek::SelfChain s2 = pk.self_chain(x2.view());
    std::vector<int> seen(want.size(), 0);
    double worst = 0.0;
    std::string where;
    (void)pk.evaluate_observed(x.view(), s1, x2.view(), s2, [&](std::size_t stage, int block, const ek::BlockView& b) {
      ASSERT_LT(stage, want.size());
      ++seen[stage];
      const ek::FullState& st = want[stage];
      ASSERT_EQ(b.h, st.h);
      double scale = 0.0;
      for (std::size_t e = 0; e < st.nngp.size(); ++e) scale = std::max({scale, std::abs(st.nngp[e]), std::abs(st.ntk[e])});
      for (std::size_t s = 0; s < el.size(); ++s) {
        const int r = static_cast<int>(s);
        const int r2 = grp::index_of(net.group(), grp::compose(el[static_cast<std::size_t>(block)], el[s]));
        for (std::int64_t i = 0; i < st.h; ++i)
          for (std::int64_t j = 0; j < st.w; ++j)
            for (std::int64_t i2 = 0; i2 < st.h; ++i2)
              for (std::int64_t j2 = 0; j2 < st.w; ++j2) {
                const std::int64_t e = b.index(i, j, i2, j2);
                const double d = std::max(deviation(b.nngp[e], st.at_k(r, i, j, r2, i2, j2), scale),
                                          deviation(b.ntk[e], st.at_theta(r, i, j, r2, i2, j2), scale));
                if (d > worst) {
                  worst = d;
                  where = "stage " + std::to_string(stage) + " (" + net.stages()[stage].spec.token + ") block " +
                          std::to_string(block);
                }
              }
      }
    });
    for (std::size_t s = 0; s < want.size(); ++s) EXPECT_EQ(seen[s], net.rotations()) << arch << " stage " << s;
    EXPECT_LE(worst, kTol) << arch << " at " << where;
  }
}

// ---- symmetries (MATH.md §10) -------------------------------------------------------------------

namespace {

// One group network per group with avgpool and a residual block, each padding in turn.
std::string symmetric_arch(PointGroup g, const std::string& pad) {
  return "lift:k=3:pad=" + pad + ":group=" + gname(g) + ",relu,res(gconv:k=3:pad=same:b=0.2,erf,gconv:k=3),relu,"
         "avgpool:s=2,gconv:k=3:pad=" + pad + ",relu,gpool,dense,relu,dense";
}
std::int64_t symmetric_size(const std::string& pad) { return pad == "valid" ? 10 : 8; }

std::vector<grp::Element> all_d4() {
  const auto el = grp::elements(PointGroup::D4);
  return {el.begin(), el.end()};
}

}  // namespace

TEST(GroupsSymmetry, PooledKernelsAreInvariantUnderEveryElementOfG) {
  const char* pads[] = {"same", "valid", "circular"};
  int index = 0;
  for (const PointGroup g : grp::kAllGroups) {
    const std::string pad = pads[index++ % 3];
    const ek::Network net = make_network(symmetric_arch(g, pad), 2, symmetric_size(pad));
    const data::Image x = random_image(net.input_shape(), 70 + index);
    const data::Image x2 = random_image(net.input_shape(), 80 + index);
    const ek::KernelValue base = fast_kernel(net, x.view(), x2.view());
    for (const grp::Element e : grp::elements(g)) {
      const data::Image gx = grp::transform(x.view(), e);
      const data::Image gx2 = grp::transform(x2.view(), e);
      const ek::KernelValue left = fast_kernel(net, gx.view(), x2.view());
      const ek::KernelValue right = fast_kernel(net, x.view(), gx2.view());
      for (const ek::KernelValue& v : {left, right}) {
        EXPECT_LE(deviation(v.nngp, base.nngp), kTol) << gname(g) << " (" << e.r << "," << e.m << ") " << pad;
        EXPECT_LE(deviation(v.ntk, base.ntk), kTol) << gname(g) << " (" << e.r << "," << e.m << ") " << pad;
      }
    }
  }
}

TEST(GroupsSymmetry, D2AndC4KernelsAreNotInvariantOutsideTheirGroup) {
  // The transformations of D4 outside G change the kernel at the 1e-3 level, far above rounding.
  for (const PointGroup g : {PointGroup::D2, PointGroup::C4}) {
    const ek::Network net = make_network(symmetric_arch(g, "same"), 2, 8);
    const data::Image x = random_image(net.input_shape(), 5);
    const data::Image x2 = random_image(net.input_shape(), 6);
    const ek::KernelValue base = fast_kernel(net, x.view(), x2.view());
    int outside = 0;
    for (const grp::Element e : all_d4()) {
      if (grp::index_of(g, e) >= 0) continue;
      ++outside;
      const data::Image gx2 = grp::transform(x2.view(), e);
      const ek::KernelValue v = fast_kernel(net, x.view(), gx2.view());
      EXPECT_GT(deviation(v.ntk, base.ntk), 1e-6) << gname(g) << " (" << e.r << "," << e.m << ")";
    }
    EXPECT_EQ(outside, 8 - grp::order(g));
  }
}

TEST(GroupsSymmetry, UnpooledKernelsAreEquivariant) {
  // K_{(A_h t, h g),(A_h t', h g')}(ρ(h)x, ρ(h)x') = K_{(t,g),(t',g')}(x, x') after every stage, h ∈ G
  // (positions about the centre of each stage's grid: valid padding and avgpool cells keep it centred).
  for (const PointGroup g : {PointGroup::C2, PointGroup::D1, PointGroup::D2, PointGroup::D4}) {
    const std::string arch = "lift:k=3:pad=valid:group=" + gname(g) +
                             ",relu,res(gconv:k=3:b=0.1,erf,gconv:k=1),avgpool:s=2,gconv:k=3:pad=circular,relu,gpool,dense";
    const ek::Network net = make_network(arch, 1, 6);
    const auto el = grp::elements(g);
    const data::Image x = random_image(net.input_shape(), 31);
    const data::Image x2 = random_image(net.input_shape(), 32);
    const ek::ReferenceKernel ref(net);
    const std::vector<ek::FullState> base = ref.trace(x.view(), x2.view());
    for (const grp::Element h : el) {
      const data::Image hx = grp::transform(x.view(), h);
      const data::Image hx2 = grp::transform(x2.view(), h);
      const std::vector<ek::FullState> moved = ref.trace(hx.view(), hx2.view());
      double worst = 0.0;
      for (std::size_t s = 0; s < base.size(); ++s) {
        const ek::FullState& b = base[s];
        const ek::FullState& a = moved[s];
        double scale = 0.0;
        for (const double v : b.nngp) scale = std::max(scale, std::abs(v));
        const bool labelled = b.rotations > 1;
        for (int r = 0; r < b.rotations; ++r)
          for (int r2 = 0; r2 < b.rotations; ++r2) {
            const int hr = labelled ? grp::index_of(g, grp::compose(h, el[static_cast<std::size_t>(r)])) : 0;
            const int hr2 = labelled ? grp::index_of(g, grp::compose(h, el[static_cast<std::size_t>(r2)])) : 0;
            for (std::int64_t i = 0; i < b.h; ++i)
              for (std::int64_t j = 0; j < b.w; ++j)
                for (std::int64_t i2 = 0; i2 < b.h; ++i2)
                  for (std::int64_t j2 = 0; j2 < b.w; ++j2) {
                    const grp::Offset t = grp::act_on_pixel(h, b.h, b.w, i, j);
                    const grp::Offset t2 = grp::act_on_pixel(h, b.h, b.w, i2, j2);
                    worst = std::max({worst,
                                      deviation(a.at_k(hr, t.a, t.b, hr2, t2.a, t2.b), b.at_k(r, i, j, r2, i2, j2), scale),
                                      deviation(a.at_theta(hr, t.a, t.b, hr2, t2.a, t2.b), b.at_theta(r, i, j, r2, i2, j2),
                                                scale)});
                  }
          }
      }
      EXPECT_LE(worst, kTol) << arch << " h = (" << h.r << "," << h.m << ")";
    }
  }
}

TEST(GroupsSymmetry, EquivarianceCheckRejectsAWrongLabelAction) {
  // The same check with labels moved by g·h instead of h·g must fail for the non-abelian D4.
  const ek::Network net = make_network("lift:k=3:group=D4,relu,gconv:k=3,gpool,dense", 1, 5);
  const auto el = grp::elements(PointGroup::D4);
  const data::Image x = random_image(net.input_shape(), 41);
  const data::Image x2 = random_image(net.input_shape(), 42);
  const ek::ReferenceKernel ref(net);
  const ek::FullState b = ref.trace(x.view(), x2.view()).back();
  const grp::Element h{1, 0};
  const ek::FullState a = ref.trace(grp::transform(x.view(), h).view(), grp::transform(x2.view(), h).view()).back();
  double worst = 0.0;
  for (int r = 0; r < 8; ++r)
    for (int r2 = 0; r2 < 8; ++r2) {
      const int hr = grp::index_of(PointGroup::D4, grp::compose(el[static_cast<std::size_t>(r)], h));
      const int hr2 = grp::index_of(PointGroup::D4, grp::compose(el[static_cast<std::size_t>(r2)], h));
      for (std::int64_t i = 0; i < b.h; ++i)
        for (std::int64_t j = 0; j < b.w; ++j) {
          const grp::Offset t = grp::act_on_pixel(h, b.h, b.w, i, j);
          worst = std::max(worst, deviation(a.at_k(hr, t.a, t.b, hr2, t.a, t.b), b.at_k(r, i, j, r2, i, j)));
        }
    }
  EXPECT_GT(worst, 1e-6);
}

TEST(GroupsSymmetry, GroupCnnEqualsOrbitAveragedCnnForEveryGroup) {
  // Θ^G(x, x') = (1/|G|) Σ_{g∈G} Θ^CNN(x, ρ(g)x') with avgpool and residual blocks, linear head (§10).
  const std::string body = ",relu,res(#G:k=3:b=0.1,erf,#G:k=3),relu,avgpool:s=2,#G:k=3:pad=circular:w=1.2,erf,#P,dense:b=0.3";
  for (const PointGroup g : grp::kAllGroups) {
    std::string garch = "lift:k=3:group=" + gname(g) + body, carch = "conv:k=3" + body;
    for (std::string* a : {&garch, &carch}) {
      const bool group_net = a == &garch;
      for (std::size_t p; (p = a->find("#G")) != std::string::npos;) a->replace(p, 2, group_net ? "gconv" : "conv");
      for (std::size_t p; (p = a->find("#P")) != std::string::npos;) a->replace(p, 2, group_net ? "gpool" : "gap");
    }
    const ek::Network gnet = make_network(garch, 2, 6);
    const ek::Network cnet = make_network(carch, 2, 6);
    const data::Image x = random_image(gnet.input_shape(), 200);
    const data::Image x2 = random_image(gnet.input_shape(), 201);
    const ek::KernelValue want_g = fast_kernel(gnet, x.view(), x2.view());
    ek::KernelValue avg;
    for (const grp::Element e : grp::elements(g)) {
      const ek::KernelValue v = fast_kernel(cnet, x.view(), grp::transform(x2.view(), e).view());
      avg.nngp += v.nngp / grp::order(g);
      avg.ntk += v.ntk / grp::order(g);
    }
    EXPECT_LE(deviation(want_g.nngp, avg.nngp), kTol) << garch;
    EXPECT_LE(deviation(want_g.ntk, avg.ntk), kTol) << garch;
  }
}

// ---- closed forms -------------------------------------------------------------------------------

namespace {

using Mat = Eigen::MatrixXd;
using Vec = Eigen::VectorXd;

// S_y on an n×n grid with zero padding: (S_y v)(t) = v(t + y) when t + y is inside, else 0.
Mat shift(std::int64_t n, int a, int b) {
  Mat s = Mat::Zero(n * n, n * n);
  for (std::int64_t i = 0; i < n; ++i)
    for (std::int64_t j = 0; j < n; ++j)
      if (i + a >= 0 && i + a < n && j + b >= 0 && j + b < n) s(i * n + j, (i + a) * n + j + b) = 1.0;
  return s;
}

// P: the s×s cell average from an n×n grid to (n/s)×(n/s).
Mat cell_average(std::int64_t n, int s) {
  const std::int64_t m = n / s;
  Mat p = Mat::Zero(m * m, n * n);
  for (std::int64_t i = 0; i < n; ++i)
    for (std::int64_t j = 0; j < n; ++j) p((i / s) * m + j / s, i * n + j) = 1.0 / (s * s);
  return p;
}

}  // namespace

TEST(GroupsClosedForm, LinearNetworkWithAvgpoolAndResidualBlockIsAQuadraticForm) {
  // conv:k=3:w=w1 (same), id, avgpool:s=2, res(conv:k=3:w=w2 (same)), gap, dense:w=wd:b=bd on one channel.
  // With A_y = P S_y (lift then pool) and B_{y'} = S'_{y'} on the pooled grid, the readouts before the head are
  //   a = gap(K²)   = xᵀ Q_a x',  Q_a = w1²/(q² M²) Σ_y u_y u_yᵀ,         u_y = A_yᵀ 1,
  //   f = gap(F(K²)) = xᵀ Q_f x', Q_f = w1² w2²/(q⁴ M²) Σ_{y,y'} v v ᵀ,   v = A_yᵀ B_{y'}ᵀ 1,
  // and K = wd²(a + f) + bd², Θ = K + wd² gap(Θ³) with Θ³ = Θ² + K_F + Θ_F = K² + 2F(K²):
  //   Θ = wd²(a + f) + bd² + wd²(a + 2f).
  const std::int64_t n = 6, m = 3;
  const double w1 = 1.3, w2 = 0.7, wd = 1.1, bd = 0.4;
  const ek::Network net = make_network("conv:k=3:w=1.3,id,avgpool:s=2,res(conv:k=3:w=0.7),gap,dense:w=1.1:b=0.4", 1, n);
  const data::Image x = random_image(net.input_shape(), 7);
  const data::Image x2 = random_image(net.input_shape(), 8);
  const Eigen::Map<const Vec> xv(x.pixels.data(), n * n), x2v(x2.pixels.data(), n * n);
  const Mat p = cell_average(n, 2);
  Mat qa = Mat::Zero(n * n, n * n), qf = Mat::Zero(n * n, n * n);
  const Vec ones = Vec::Ones(m * m);
  for (int a = -1; a <= 1; ++a)
    for (int b = -1; b <= 1; ++b) {
      const Mat ay = p * shift(n, a, b);
      const Vec u = ay.transpose() * ones;
      qa += u * u.transpose();
      for (int a2 = -1; a2 <= 1; ++a2)
        for (int b2 = -1; b2 <= 1; ++b2) {
          const Vec v = ay.transpose() * (shift(m, a2, b2).transpose() * ones);
          qf += v * v.transpose();
        }
    }
  qa *= w1 * w1 / (9.0 * m * m * m * m);
  qf *= w1 * w1 * w2 * w2 / (81.0 * m * m * m * m);
  const double ra = xv.dot(qa * x2v), rf = xv.dot(qf * x2v);
  const double want_k = wd * wd * (ra + rf) + bd * bd;
  const double want_t = want_k + wd * wd * (ra + 2.0 * rf);
  const ek::KernelValue fast = fast_kernel(net, x.view(), x2.view());
  const ek::KernelValue ref = ek::ReferenceKernel(net).evaluate(x.view(), x2.view());
  EXPECT_LE(deviation(fast.nngp, want_k), kTol);
  EXPECT_LE(deviation(fast.ntk, want_t), kTol);
  EXPECT_LE(deviation(ref.nngp, want_k), kTol);
  EXPECT_LE(deviation(ref.ntk, want_t), kTol);
}

TEST(GroupsFastVsReference, EveryGroupAndPaddingAgree) {
  // The full group × padding product on one network with avgpool and a residual block.
  int failures = 0;
  std::uint64_t seed = 900;
  for (const PointGroup g : grp::kAllGroups)
    for (const std::string pad : {"same", "valid", "circular"}) {
      const std::string body_pad = pad == "valid" ? "circular" : pad;
      const std::string arch = "lift:k=3:pad=" + pad + ":group=" + gname(g) + ":b=0.1,erf,res(gconv:k=3:pad=" + body_pad +
                               ",relu,gconv:k=1),avgpool:s=2,gconv:k=3:pad=" + pad + ",id,gpool,dense";
      const ek::Network net = make_network(arch, 2, pad == "valid" ? 8 : 6);
      const data::Image x = random_image(net.input_shape(), seed++);
      const data::Image x2 = random_image(net.input_shape(), seed++);
      const ek::KernelValue want = ek::ReferenceKernel(net).evaluate(x.view(), x2.view());
      const ek::KernelValue got = fast_kernel(net, x.view(), x2.view());
      const double d = std::max(deviation(got.nngp, want.nngp), deviation(got.ntk, want.ntk));
      if (d > kTol && ++failures <= 10) ADD_FAILURE() << arch << ": deviation " << d;
    }
  EXPECT_EQ(failures, 0);
}

TEST(GroupsFastVsReference, MixedPrecisionStaysCloseWithAvgpoolAndResidualBlocks) {
  // float32 storage (Precision::mixed) through the recorded self chain: ~1e-6 relative, not 1e-12.
  const ek::Network net = make_network(
      "lift:k=3:group=p4m,relu,res(gconv:k=3,relu,gconv:k=3),avgpool:s=2,gconv:k=3,erf,flatten,dense,relu,dense", 2, 6);
  const data::Image x = random_image(net.input_shape(), 1);
  const data::Image x2 = random_image(net.input_shape(), 2);
  const ek::KernelValue want = fast_kernel(net, x.view(), x2.view());
  ek::PairKernel mixed(net, ek::Precision::mixed);
  const ek::SelfChain s1 = mixed.self_chain(x.view()), s2 = mixed.self_chain(x2.view());
  const ek::KernelValue got = mixed.evaluate(x.view(), s1, x2.view(), s2);
  EXPECT_LE(deviation(got.nngp, want.nngp), 1e-5);
  EXPECT_LE(deviation(got.ntk, want.ntk), 1e-5);
  EXPECT_GT(deviation(got.ntk, want.ntk) + deviation(got.nngp, want.nngp), 0.0);  // float storage is in use
}
