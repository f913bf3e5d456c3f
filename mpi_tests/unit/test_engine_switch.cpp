// The fast-path engine switch of the tests (mpi_tests/support/engine.hpp): EQNTK_TEST_DEVICE=gpu really
// sends FastPath / fast_kernel to the OpenCL device, and the CPU run never touches one.
#include <gtest/gtest.h>

#include <cmath>
#include <iostream>

#include "../support/engine.hpp"
#include "../support/fixtures.hpp"
#include "eqntk/kernel/pair_kernel.hpp"

namespace ek = eqntk::kernel;
namespace et = eqntk::testing;

TEST(TestEngine, FastPathRunsOnTheSelectedEngine) {
  const ek::Network net = et::make_network("lift:k=3:b=0.1,relu,gconv:k=3,erf,gpool,dense,relu,dense", 2, 6);
  const eqntk::data::Image x = et::uniform_image(net.input_shape(), 1);
  const eqntk::data::Image x2 = et::uniform_image(net.input_shape(), 2);
  const std::int64_t before = et::device_work();
  const ek::KernelValue got = et::fast_kernel(net, x.view(), x2.view());
  ek::PairKernel cpu(net);
  const ek::KernelValue want = cpu.evaluate(x.view(), cpu.self_chain(x.view()), x2.view(), cpu.self_chain(x2.view()));
  std::cout.precision(17);
  std::cout << "fast path on " << et::engine_description() << ": K " << got.nngp << " (CPU engine " << want.nngp
            << "), Θ " << got.ntk << " (CPU engine " << want.ntk << ")\n";
  if (et::active_engine() == et::Engine::gpu) {
    ASSERT_NE(et::test_device(), nullptr);
    EXPECT_EQ(et::device_work() - before, 3) << "two self chains and one pair on the device";
  } else {
    EXPECT_EQ(et::test_device(), nullptr);
    EXPECT_EQ(et::device_work(), before);
  }
  EXPECT_LE(et::deviation(got.nngp, want.nngp), 1e-12);
  EXPECT_LE(et::deviation(got.ntk, want.ntk), 1e-12);
}
