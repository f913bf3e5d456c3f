// The OpenCL pair executor against the CPU engine and the symmetries of MATH.md §5, on whatever OpenCL
// device the ICD loader offers (PoCL on the CPU in CI). Every test is skipped with one line when no
// device with cl_khr_fp64 is present.
//
// Tolerance: both engines sum the same terms in different orders; every kernel entry is a pooled mean of
// O(q²·L) rounded operations per entry, so the two agree to a few hundred ulps. 1e-12 relative is the
// issue's acceptance bound (~4500 ulps), far below any indexing or formula error (≥ 1e-4 here).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "../support/fixtures.hpp"
#include "eqntk/gpu/device.hpp"
#include "eqntk/gpu/pair_executor.hpp"
#include "eqntk/group/image_action.hpp"
#include "eqntk/kernel/box.hpp"
#include "eqntk/kernel/gram.hpp"
#include "eqntk/kernel/pair_kernel.hpp"

namespace {

using eqntk::gpu::Device;
using eqntk::gpu::PairExecutor;
using eqntk::gpu::PairRef;
using namespace eqntk::kernel;
using namespace eqntk::data;

constexpr double kTol = 1e-12;

// One device (and one kernel build) for the whole program. EQNTK_TEST_LOCAL_PASSES chooses the window passes
// (CMake registers every test with 0 and 3): 0 reads global memory directly, n > 0 marches through local
// memory in tiles of at most n × n outputs (DeviceOptions::local_passes, max_tile; small tiles split the
// test images into many); unset: the device's choice.
const Device* device() {
  static const std::unique_ptr<Device> d = [] {
    eqntk::gpu::DeviceOptions options;
    if (const char* v = std::getenv("EQNTK_TEST_LOCAL_PASSES")) {
      options.max_tile = std::atoi(v);
      options.local_passes = options.max_tile > 0 ? 1 : 0;
    }
    return eqntk::gpu::fp64_device_available() ? std::make_unique<Device>(options) : std::unique_ptr<Device>{};
  }();
  return d.get();
}

#define REQUIRE_DEVICE()                                                                          \
  if (device() == nullptr) GTEST_SKIP() << "no OpenCL platform with a cl_khr_fp64 device: GPU tests skipped"

// Gaussian images with a zero border (zero-variance receptive fields, MATH §4: never NaN).
ImageSet image_set(InputShape shape, int count, std::uint64_t seed) {
  ImageSet s{shape, count, {}};
  for (int n = 0; n < count; ++n) {
    Image x = eqntk::testing::gaussian_image(shape, seed + static_cast<std::uint64_t>(n));
    for (std::int64_t c = 0; c < shape.channels; ++c)
      for (std::int64_t i = 0; i < shape.height; ++i)
        for (std::int64_t j = 0; j < shape.width; ++j)
          if (i == 0 || j == 0) x.pixels[static_cast<std::size_t>((c * shape.height + i) * shape.width + j)] = 0.0;
    s.pixels.insert(s.pixels.end(), x.pixels.begin(), x.pixels.end());
  }
  return s;
}

double rel(double a, double b) { return std::abs(a - b) / std::max(std::abs(b), 1e-300); }

// Largest relative difference between two Gram pairs (NNGP and NTK); fails on NaN.
double max_rel(const GramPair& got, const GramPair& want) {
  double worst = 0.0;
  for (std::size_t e = 0; e < want.nngp.size(); ++e) {
    for (const auto& [g, w] : {std::pair{got.nngp[e], want.nngp[e]}, std::pair{got.ntk[e], want.ntk[e]}}) {
      if (!std::isfinite(g)) return INFINITY;
      worst = std::max(worst, rel(g, w));
    }
  }
  return worst;
}

// ---- Fast-path equivalence: paddings × relu/erf/id × p4/CNN, and inside each case pooled/flatten ×
// linear/nonlinear head × k = 1, 3, 5.
using Case = std::tuple<bool, Padding, LayerKind>;  // p4?, padding, nonlinearity

class GpuEquivalence : public ::testing::TestWithParam<Case> {};

std::string arch_text(bool p4, Padding pad, LayerKind act, bool flatten, bool nonlinear_head, int k) {
  const std::string keys = ":k=" + std::to_string(k) + ":pad=" + std::string(to_string(pad));
  const std::string a(to_string(act));
  std::string s = p4 ? "lift" + keys + ":w=1.1:b=0.2," + a + ",gconv" + keys + ":w=0.9:b=0.1," + a + ","
                     : "conv" + keys + ":w=1.1:b=0.2," + a + ",conv" + keys + ":w=0.9:b=0.1," + a + ",";
  s += flatten ? "flatten," : (p4 ? "gpool," : "gap,");
  s += nonlinear_head ? "dense:b=0.3," + a + ",dense" : "dense";
  return s;
}

TEST_P(GpuEquivalence, MatchesCpuEngine) {
  REQUIRE_DEVICE();
  const auto [p4, pad, act] = GetParam();
  // 9 pixels: two valid k=5 layers leave 1; the CNN is not square (it needs no C4 symmetry).
  const InputShape shape{2, 9, p4 ? 9 : 10};
  const ImageSet x = image_set(shape, 4, 11);
  const ImageSet y = image_set(shape, 2, 31);
  for (const bool flatten : {false, true})
    for (const bool nonlinear_head : {false, true})
      for (const int k : {1, 3, 5}) {
        const std::string text = arch_text(p4, pad, act, flatten, nonlinear_head, k);
        SCOPED_TRACE(text);
        const Network net(Architecture::parse(text), shape);
        const double sym = max_rel(eqntk::gpu::gram_matrices(net, x, nullptr, *device()), gram_matrices(net, x, nullptr));
        const double cross = max_rel(eqntk::gpu::gram_matrices(net, x, &y, *device()), gram_matrices(net, x, &y));
        EXPECT_LE(sym, kTol);
        EXPECT_LE(cross, kTol);
      }
}

std::string case_name(const ::testing::TestParamInfo<Case>& info) {
  const auto [p4, pad, act] = info.param;
  return std::string(p4 ? "p4_" : "cnn_") + std::string(to_string(pad)) + "_" + std::string(to_string(act));
}

INSTANTIATE_TEST_SUITE_P(AllLayers, GpuEquivalence,
                         ::testing::Combine(::testing::Bool(),
                                            ::testing::Values(Padding::same, Padding::valid, Padding::circular),
                                            ::testing::Values(LayerKind::relu, LayerKind::erf, LayerKind::id)),
                         case_name);

TEST(GpuExecutor, MatchesCpuEngineOnEdgeArchitectures) {
  REQUIRE_DEVICE();
  const InputShape shape{3, 7, 7};
  const ImageSet x = image_set(shape, 3, 51);
  for (const std::string text :
       {"flatten,dense", "flatten,dense:b=0.5,erf,dense", "lift:k=3,gconv:k=5:pad=valid,gpool,dense",
        "conv:k=1:w=2,relu,gap,dense:w=0.5,relu,dense:b=1", "lift:k=7:pad=circular,id,flatten,dense",
        "conv:k=3,relu,conv:k=3,relu,conv:k=3:pad=valid,relu,conv:k=1,erf,gap,dense"}) {
    SCOPED_TRACE(text);
    const Network net(Architecture::parse(text), shape);
    EXPECT_LE(max_rel(eqntk::gpu::gram_matrices(net, x, nullptr, *device()), gram_matrices(net, x, nullptr)), kTol);
  }
}

// Every point group of MATH §10 runs on the device with one block per element: the CPU engine (itself
// checked against the |G|²-label reference) is the independent value.
TEST(GpuExecutor, EveryPointGroupMatchesTheCpuEngine) {
  REQUIRE_DEVICE();
  const InputShape shape{2, 6, 6};
  const ImageSet x = image_set(shape, 3, 61), y = image_set(shape, 2, 62);
  for (const char* g : {"C1", "C2", "C4", "D1", "D2", "D4"})
    for (const char* pad : {"same", "valid", "circular"}) {
      const std::string text = std::string("lift:k=3:b=0.3:pad=") + pad + ":group=" + g + ",relu,gconv:k=3:pad=" + pad +
                               ",erf,gpool,dense:b=0.2,relu,dense";
      SCOPED_TRACE(text);
      const Network net(Architecture::parse(text), shape);
      EXPECT_LE(max_rel(eqntk::gpu::gram_matrices(net, x, &y, *device()), gram_matrices(net, x, &y)), kTol);
    }
}

// ---- MATH §10's avgpool and residual blocks on the device, against the CPU engine (itself checked against
// the |G|²-label reference engine), NNGP and NTK.

// Gram matrices of `text` on `shape`: symmetric (3 images) and cross (3 × 2), device vs CPU engine.
void expect_device_equals_cpu(const std::string& text, InputShape shape) {
  SCOPED_TRACE(text);
  const Network net(Architecture::parse(text), shape);
  const ImageSet x = image_set(shape, 3, 71), y = image_set(shape, 2, 72);
  EXPECT_LE(max_rel(eqntk::gpu::gram_matrices(net, x, nullptr, *device()), gram_matrices(net, x, nullptr)), kTol);
  EXPECT_LE(max_rel(eqntk::gpu::gram_matrices(net, x, &y, *device()), gram_matrices(net, x, &y)), kTol);
}

TEST(GpuExecutor, AvgpoolOnGroupAndPlaneMapsMatchesTheCpuEngine) {
  REQUIRE_DEVICE();
  for (const std::string text : {
           // group maps, s = 2 and 3, a layer after the pool and the pool right before the readout
           "lift:k=3:b=0.2,relu,avgpool:s=2,gconv:k=3:pad=circular,relu,gpool,dense",
           "lift:k=3:pad=circular,erf,avgpool:s=3,gconv:k=1:b=0.1,relu,gpool,dense:b=0.2,relu,dense",
           "lift:k=3:group=D4,relu,gconv:k=3,relu,avgpool:s=2,gpool,dense",
           // plane maps (gap), a nonlinearity right after the pool
           "conv:k=3:b=0.1,avgpool:s=2,relu,conv:k=3:pad=valid,erf,gap,dense",
           "conv:k=3:pad=circular,relu,avgpool:s=3,gap,dense:b=0.3,erf,dense",
           // flatten after avgpool reads the e-block's same-position entries
           "conv:k=3,relu,avgpool:s=2,flatten,dense:b=0.1,relu,dense",
           "lift:k=3:group=C4,relu,avgpool:s=2,gconv:k=3,relu,flatten,dense",
           "lift:k=3:group=D2:b=0.2,erf,avgpool:s=3,flatten,dense",
           // two pools
           "conv:k=3,relu,avgpool:s=2,conv:k=3,relu,avgpool:s=3,gap,dense"})
    expect_device_equals_cpu(text, {2, 6, 6});
}

TEST(GpuExecutor, ResidualBlocksMatchTheCpuEngine) {
  REQUIRE_DEVICE();
  for (const std::string text : {
           // consecutive and nested blocks, circular/same/valid (k=1 keeps the size) paddings in the bodies
           "lift:k=3,relu,res(gconv:k=3:pad=circular,relu,gconv:k=3),relu,"
           "res(gconv:k=3,erf,res(gconv:k=1:pad=valid,relu,gconv:k=3:pad=circular)),gpool,dense",
           "conv:k=3:b=0.2,relu,res(conv:k=3:pad=circular:b=0.1,relu),res(conv:k=1:pad=valid,erf,conv:k=3),gap,"
           "dense:b=0.1,relu,dense",
           // a block right before the readout (no fused pooling), a nonlinearity after a block
           "conv:k=3,erf,res(conv:k=3,relu,conv:k=3),gap,dense",
           // flatten without avgpool: residual blocks on the same-position chain
           "conv:k=3,relu,res(conv:k=3:pad=circular,relu,conv:k=3),relu,flatten,dense",
           "lift:k=3:group=D1,relu,res(gconv:k=3,relu,res(gconv:k=1,erf)),flatten,dense:b=0.2,relu,dense"})
    expect_device_equals_cpu(text, {2, 5, 5});
}

TEST(GpuExecutor, EveryPointGroupWithAvgpoolAndResidualBlocksMatchesTheCpuEngine) {
  REQUIRE_DEVICE();
  for (const char* g : {"C1", "C2", "C4", "D1", "D2", "D4"})
    for (const char* pad : {"same", "circular"})
      expect_device_equals_cpu(std::string("lift:k=3:b=0.3:pad=") + pad + ":group=" + g +
                                   ",relu,res(gconv:k=3:pad=circular,relu,gconv:k=3:pad=" + pad +
                                   "),avgpool:s=2,gconv:k=3:pad=" + pad + ",erf,gpool,dense:b=0.2,relu,dense",
                               {1, 4, 4});
}

// With an avgpool the self chain is the full recursion of (x, x) (MATH §10): its variance maps, head
// variances and K(x, x) against the CPU engine's.
TEST(GpuExecutor, SelfChainsWithAvgpoolAndResidualBlocksMatchTheCpuEngine) {
  REQUIRE_DEVICE();
  for (const std::string text : {"lift:k=3:b=0.2:group=D4,relu,res(gconv:k=3,erf,gconv:k=3),relu,avgpool:s=2,gconv:k=3,"
                                 "relu,gpool,dense:b=0.3,relu,dense",
                                 "conv:k=3,avgpool:s=3,relu,conv:k=1,erf,flatten,dense,erf,dense",
                                 "conv:k=3,relu,res(conv:k=3,erf),relu,gap,dense:b=0.1,relu,dense"}) {
    SCOPED_TRACE(text);
    const Network net(Architecture::parse(text), {2, 6, 6});
    const Image x = eqntk::testing::gaussian_image({2, 6, 6}, 23);
    PairKernel cpu(net);
    PairExecutor exec(net, *device());
    const SelfChain want = cpu.self_chain(x.view()), got = exec.self_chain(x.view());
    ASSERT_EQ(got.var.size(), want.var.size());
    for (std::size_t s = 0; s < want.var.size(); ++s) {
      ASSERT_EQ(got.var[s].size(), want.var[s].size()) << "stage " << s;
      for (std::size_t e = 0; e < want.var[s].size(); ++e) EXPECT_LE(rel(got.var[s][e], want.var[s][e]), kTol);
      EXPECT_LE(rel(got.head_var[s], want.head_var[s]), kTol) << "stage " << s;
    }
    EXPECT_LE(rel(got.self.nngp, want.self.nngp), kTol);
    EXPECT_LE(rel(got.self.ntk, want.self.ntk), kTol);
  }
}

// ---- Symmetries on the device (MATH §5.2, §5.5).

// Θ and K of (x, x2) on the device, self chains included.
KernelValue device_pair(const Network& net, const Image& x, const Image& x2) {
  PairExecutor exec(net, *device());
  const SelfChain sx = exec.self_chain(x.view()), sx2 = exec.self_chain(x2.view());
  const PairRef pair{x.view(), &sx, x2.view(), &sx2};
  return exec.evaluate(std::span(&pair, 1))[0];
}

class GpuSymmetry : public ::testing::TestWithParam<Padding> {};

TEST_P(GpuSymmetry, PooledP4KernelIsInvariantUnderAll16RotationPairs) {
  REQUIRE_DEVICE();
  const std::string keys = ":k=3:pad=" + std::string(to_string(GetParam()));
  const Network net(Architecture::parse("lift" + keys + ",relu,gconv" + keys + ",relu,gpool,dense"), {2, 7, 7});
  const Image x = eqntk::testing::gaussian_image({2, 7, 7}, 5), x2 = eqntk::testing::gaussian_image({2, 7, 7}, 6);
  const KernelValue base = device_pair(net, x, x2);
  // All 16 (r, s) in one batch: rotated images are distinct arrays.
  PairExecutor exec(net, *device());
  std::vector<Image> rx, rx2;
  std::vector<SelfChain> cx, cx2;
  for (int r = 0; r < 4; ++r) {
    rx.push_back(eqntk::group::rot90(x.view(), r));
    rx2.push_back(eqntk::group::rot90(x2.view(), r));
  }
  for (int r = 0; r < 4; ++r) {
    cx.push_back(exec.self_chain(rx[static_cast<std::size_t>(r)].view()));
    cx2.push_back(exec.self_chain(rx2[static_cast<std::size_t>(r)].view()));
  }
  std::vector<PairRef> pairs;
  for (std::size_t r = 0; r < 4; ++r)
    for (std::size_t s = 0; s < 4; ++s) pairs.push_back({rx[r].view(), &cx[r], rx2[s].view(), &cx2[s]});
  const auto v = exec.evaluate(pairs);
  for (std::size_t e = 0; e < v.size(); ++e) {
    SCOPED_TRACE("r = " + std::to_string(e / 4) + ", s = " + std::to_string(e % 4));
    EXPECT_LE(rel(v[e].nngp, base.nngp), kTol);
    EXPECT_LE(rel(v[e].ntk, base.ntk), kTol);
  }
}

TEST_P(GpuSymmetry, GcnnEqualsOrbitAveragedCnn) {
  REQUIRE_DEVICE();
  const std::string keys = ":k=3:pad=" + std::string(to_string(GetParam()));
  const InputShape shape{1, 7, 7};
  const Network p4(Architecture::parse("lift" + keys + ",relu,gconv" + keys + ":b=0.5,erf,gpool,dense"), shape);
  const Network cnn(Architecture::parse("conv" + keys + ",relu,conv" + keys + ":b=0.5,erf,gap,dense"), shape);
  const Image x = eqntk::testing::gaussian_image(shape, 8), x2 = eqntk::testing::gaussian_image(shape, 9);
  const KernelValue g = device_pair(p4, x, x2);
  KernelValue avg;
  for (int r = 0; r < 4; ++r) {
    const KernelValue c = device_pair(cnn, x, eqntk::group::rot90(x2.view(), r));
    avg.nngp += c.nngp / 4;
    avg.ntk += c.ntk / 4;
  }
  EXPECT_LE(rel(g.nngp, avg.nngp), kTol);
  EXPECT_LE(rel(g.ntk, avg.ntk), kTol);
  // Not vacuous: a single rotation differs.
  const KernelValue one = device_pair(cnn, x, x2);
  EXPECT_GT(rel(one.ntk, g.ntk), 1e-6);
}

INSTANTIATE_TEST_SUITE_P(Paddings, GpuSymmetry, ::testing::Values(Padding::same, Padding::valid, Padding::circular),
                         [](const auto& p) { return std::string(to_string(p.param)); });

// MATH §10: with gpool the kernel is invariant under ρ(g) of either input for g ∈ G, avgpool and residual
// blocks included; all |G|² pairs in one batch. A C4 network is not invariant under a mirror (not vacuous).
TEST(GpuSymmetry, AvgpoolResidualKernelIsInvariantUnderTheGroup) {
  REQUIRE_DEVICE();
  const InputShape shape{1, 4, 4};
  const Image x = eqntk::testing::gaussian_image(shape, 15), x2 = eqntk::testing::gaussian_image(shape, 16);
  for (const char* g : {"D4", "C4"}) {
    const std::string text = std::string("lift:k=3:b=0.1:group=") + g +
                             ",relu,res(gconv:k=3:pad=circular,erf,gconv:k=3),avgpool:s=2,gconv:k=3,relu,gpool,dense";
    SCOPED_TRACE(text);
    const Network net(Architecture::parse(text), shape);
    const KernelValue base = device_pair(net, x, x2);
    PairExecutor exec(net, *device());
    std::vector<Image> gx, gx2;
    for (const auto e : eqntk::group::elements(net.group())) {
      gx.push_back(eqntk::group::transform(x.view(), e));
      gx2.push_back(eqntk::group::transform(x2.view(), e));
    }
    std::vector<SelfChain> cx, cx2;
    for (std::size_t i = 0; i < gx.size(); ++i) {
      cx.push_back(exec.self_chain(gx[i].view()));
      cx2.push_back(exec.self_chain(gx2[i].view()));
    }
    std::vector<PairRef> pairs;
    for (std::size_t i = 0; i < gx.size(); ++i)
      for (std::size_t j = 0; j < gx.size(); ++j) pairs.push_back({gx[i].view(), &cx[i], gx2[j].view(), &cx2[j]});
    const auto v = exec.evaluate(pairs);
    for (std::size_t e = 0; e < v.size(); ++e) {
      EXPECT_LE(rel(v[e].nngp, base.nngp), kTol) << "pair " << e;
      EXPECT_LE(rel(v[e].ntk, base.ntk), kTol) << "pair " << e;
    }
    if (std::string(g) == "C4") {
      const KernelValue mirrored = device_pair(net, x, eqntk::group::transform(x2.view(), {0, 1}));
      EXPECT_GT(rel(mirrored.ntk, base.ntk), 1e-6);
    }
  }
}

// ---- Self chains on the device = the CPU engine's (variance maps, head variances, K(x, x)).

TEST(GpuExecutor, SelfChainsMatchTheCpuEngine) {
  REQUIRE_DEVICE();
  for (const std::string text : {"lift:k=3:b=0.2,relu,gconv:k=5:pad=circular,erf,gpool,dense:b=0.3,relu,dense",
                                 "conv:k=3:pad=valid,erf,conv:k=3,id,flatten,dense,erf,dense"}) {
    SCOPED_TRACE(text);
    const Network net(Architecture::parse(text), {2, 9, 9});
    const Image x = eqntk::testing::gaussian_image({2, 9, 9}, 21);
    PairKernel cpu(net);
    PairExecutor exec(net, *device());
    const SelfChain want = cpu.self_chain(x.view()), got = exec.self_chain(x.view());
    ASSERT_EQ(got.var.size(), want.var.size());
    int maps = 0;
    for (std::size_t s = 0; s < want.var.size(); ++s) {
      ASSERT_EQ(got.var[s].size(), want.var[s].size()) << "stage " << s;
      maps += want.var[s].empty() ? 0 : 1;
      for (std::size_t e = 0; e < want.var[s].size(); ++e) EXPECT_LE(rel(got.var[s][e], want.var[s][e]), kTol);
      EXPECT_LE(rel(got.head_var[s], want.head_var[s]), kTol) << "stage " << s;
    }
    EXPECT_EQ(maps, 2);
    EXPECT_LE(rel(got.self.nngp, want.self.nngp), kTol);
    EXPECT_LE(rel(got.self.ntk, want.self.ntk), kTol);
  }
}

// ---- Batching does not change a bit.

TEST(GpuExecutor, ResultsAreBitwiseIndependentOfTheBatchSize) {
  REQUIRE_DEVICE();
  const InputShape shape{1, 6, 6};
  const Network net(Architecture::parse("lift:k=3,relu,gconv:k=3,relu,gpool,dense:b=0.2,relu,dense"), shape);
  const ImageSet x = image_set(shape, 5, 3);
  const GramPair all = eqntk::gpu::gram_matrices(net, x, nullptr, *device(), 0);
  for (const std::int64_t batch : {1, 2, 3}) {
    const GramPair b = eqntk::gpu::gram_matrices(net, x, nullptr, *device(), batch);
    EXPECT_EQ(b.nngp, all.nngp) << "batch " << batch;
    EXPECT_EQ(b.ntk, all.ntk) << "batch " << batch;
  }
}

TEST(GpuExecutor, AvgpoolResidualResultsAreBitwiseIndependentOfTheBatchSize) {
  REQUIRE_DEVICE();
  const InputShape shape{1, 4, 4};
  const Network net(
      Architecture::parse("lift:k=3:group=D2,relu,res(gconv:k=3,relu,gconv:k=3),avgpool:s=2,gconv:k=1,relu,gpool,dense"),
      shape);
  const ImageSet x = image_set(shape, 4, 9);
  const GramPair all = eqntk::gpu::gram_matrices(net, x, nullptr, *device(), 0);
  for (const std::int64_t batch : {1, 3}) {
    const GramPair b = eqntk::gpu::gram_matrices(net, x, nullptr, *device(), batch);
    EXPECT_EQ(b.nngp, all.nngp) << "batch " << batch;
    EXPECT_EQ(b.ntk, all.ntk) << "batch " << batch;
  }
}

// ---- Errors.

TEST(GpuDevice, FailedKernelBuildWritesItsLogAndSaysWhere) {
  REQUIRE_DEVICE();
  const std::filesystem::path log = std::filesystem::temp_directory_path() / "eqntk_gpu_test_build.log";
  std::filesystem::remove(log);
  eqntk::gpu::DeviceOptions options;
  options.build_log = log.string();
  const Device d(options);
  try {
    d.build_program("__kernel void broken(__global double* x) { x[0] = undeclared_name; }");
    FAIL() << "a kernel with an undeclared name built";
  } catch (const eqntk::gpu::DeviceError& e) {
    EXPECT_NE(std::string(e.what()).find(log.string()), std::string::npos) << e.what();
    EXPECT_EQ(std::string(e.what()).find('\n'), std::string::npos) << "one line";
  }
  ASSERT_TRUE(std::filesystem::exists(log));
  std::ifstream f(log);
  const std::string text((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  EXPECT_NE(text.find("undeclared_name"), std::string::npos) << text;
  std::filesystem::remove(log);
}

TEST(GpuDevice, IndexBeyondTheDeviceListIsRejectedWithOneLine) {
  REQUIRE_DEVICE();
  eqntk::gpu::DeviceOptions options;
  options.index = 1000;
  try {
    const Device d(options);
    FAIL() << "device 1000 was accepted";
  } catch (const eqntk::InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("--gpu-index 1000"), std::string::npos) << e.what();
  }
}

}  // namespace
