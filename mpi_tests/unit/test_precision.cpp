// Precision::mixed: float32 storage of the covariance planes, float64 arithmetic.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>

#include "../support/fixtures.hpp"
#include "eqntk/kernel/pair_kernel.hpp"

namespace {

using namespace eqntk::kernel;
using namespace eqntk::data;
using eqntk::testing::gaussian_image;

// Each stored value is rounded to float32 (relative 2^-24 ≈ 6e-8) once per layer; the recursion is
// Lipschitz with constants O(1) per layer (window means, duals with |dΣ/dc| ≤ 1, |Σ̇| ≤ 1/2 for relu),
// so a depth-3 network stays within a few 1e-7 entry-wise; pooling can only average that. 1e-6 leaves a
// safety factor; a float64-only path would give exactly 0, which the second check rules out.
TEST(MixedPrecision, AgreesWithFloat64ToFloat32RoundingAndIsReallyFloat32) {
  for (const char* arch : {"lift:k=3:b=0.1,relu,gconv:k=3,relu,gconv:k=3:pad=circular,relu,gpool,dense",
                           "conv:k=3,erf,conv:k=5:pad=valid:b=0.3,erf,gap,dense,relu,dense",
                           "lift:k=5:pad=circular,relu,gconv:k=1,relu,gpool,dense"}) {
    const Network net(Architecture::parse(arch), {2, 9, 9});
    PairKernel f64(net), f32(net, Precision::mixed);
    bool any_difference = false;
    for (int p = 0; p < 4; ++p) {
      const Image a = gaussian_image(net.input_shape(), 10 + p), b = gaussian_image(net.input_shape(), 20 + p);
      const SelfChain sa = f64.self_chain(a.view()), sb = f64.self_chain(b.view());
      const KernelValue r = f64.evaluate(a.view(), sa, b.view(), sb), m = f32.evaluate(a.view(), sa, b.view(), sb);
      EXPECT_NEAR(m.nngp, r.nngp, 1e-6 * std::abs(r.nngp)) << arch;
      EXPECT_NEAR(m.ntk, r.ntk, 1e-6 * std::abs(r.ntk)) << arch;
      any_difference = any_difference || m.nngp != r.nngp || m.ntk != r.ntk;
    }
    EXPECT_TRUE(any_difference) << arch << ": mixed precision gave float64 results bit for bit";
  }
}

}  // namespace
