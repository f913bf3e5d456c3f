// Issue 11: every point group of the square lattice, avgpool and residual blocks (MATH.md §10).
//
// The fast engine (|G| blocks B_h, separable window sums, self chains through the full recursion when
// pooling needs them) against the reference engine (all |G|² label blocks, literal s-sums, literal
// cell averages); the symmetries of §10 on the reference and the fast engine; and closed forms built in
// the test from explicit shift and pooling matrices.
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

#include "eqntk/error.hpp"
#include "eqntk/group/point_group.hpp"
#include "eqntk/kernel/architecture.hpp"
#include "eqntk/kernel/image.hpp"
#include "eqntk/kernel/network.hpp"
#include "eqntk/kernel/pair_kernel.hpp"
#include "eqntk/kernel/reference_kernel.hpp"

namespace ek = eqntk::kernel;
namespace grp = eqntk::group;
using grp::PointGroup;

namespace {

constexpr double kTol = 1e-12;
constexpr double kTiny = 1e-300;

ek::Image random_image(ek::InputShape shape, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(-0.5, 1.0);
  ek::Image img{shape, std::vector<double>(static_cast<std::size_t>(shape.channels * shape.height * shape.width))};
  for (double& v : img.pixels) v = u(rng);
  return img;
}

ek::Network make_network(const std::string& arch, std::int64_t channels, std::int64_t size) {
  return ek::Network(ek::Architecture::parse(arch), ek::InputShape{channels, size, size});
}

ek::KernelValue fast_kernel(const ek::Network& net, const ek::ImageView& x, const ek::ImageView& x2) {
  ek::PairKernel pk(net);
  const ek::SelfChain s1 = pk.self_chain(x);
  const ek::SelfChain s2 = pk.self_chain(x2);
  return pk.evaluate(x, s1, x2, s2);
}

double deviation(double a, double b, double scale = 0.0) {
  return std::abs(a - b) / std::max({std::abs(b), scale, kTiny});
}

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
    const ek::Image x = random_image(net.input_shape(), seed++);
    const ek::Image x2 = random_image(net.input_shape(), seed++);
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
    const ek::Image x = random_image(net.input_shape(), 99);
    ek::PairKernel pk(net);
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
    const ek::Image x = random_image(net.input_shape(), seed++);
    const ek::Image x2 = random_image(net.input_shape(), seed++);
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
