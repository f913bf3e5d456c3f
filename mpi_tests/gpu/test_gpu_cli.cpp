// `eqntk kernel --device gpu` through the real binary: the same matrices as --device cpu to 1e-12
// relative, and the rejections of the new options. Skipped with one line without an fp64 OpenCL device.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "../support/cli_fixture.hpp"
#include "../support/fixtures.hpp"
#include "eqntk/gpu/device.hpp"
#include "eqntk/io/npy.hpp"

namespace {

class GpuCli : public eqntk::testing::CliFixture {
 protected:
  GpuCli() : CliFixture("eqntk_gpu_cli_") {}
  void SetUp() override {
    CliFixture::SetUp();
    // 5 NHWC images 8×8×2 with a zero column (zero-variance windows).
    const std::vector<std::int64_t> shape{5, 8, 8, 2};
    std::vector<double> v;
    for (int n = 0; n < 5; ++n) {
      const auto im = eqntk::testing::gaussian_image({2, 8, 8}, 40 + static_cast<std::uint64_t>(n));
      for (int i = 0; i < 8; ++i)
        for (int j = 0; j < 8; ++j)
          for (int c = 0; c < 2; ++c) v.push_back(j == 0 ? 0.0 : im.pixels[static_cast<std::size_t>((c * 8 + i) * 8 + j)]);
    }
    eqntk::io::write_npy(path("x.npy"), shape, v);
  }
  std::vector<double> run(const std::string& arch, const std::string& device, const std::string& which) {
    const auto out = path(device + "_" + which + ".npy");
    const auto r = eqntk({"kernel", "--x1", path("x.npy").string(), "--arch", arch, "--" + which, out.string(),
                          "--device", device});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return eqntk::io::read_npy(out).real;
  }
};

#define REQUIRE_DEVICE()                   \
  if (!eqntk::gpu::fp64_device_available()) \
  GTEST_SKIP() << "no OpenCL platform with a cl_khr_fp64 device: GPU tests skipped"

TEST_F(GpuCli, KernelOnTheDeviceEqualsTheCpuEngine) {
  REQUIRE_DEVICE();
  for (const std::string arch : {"lift:k=3:pad=same:b=0.1,relu,gconv:k=3:pad=circular,erf,gpool,dense:b=0.2,relu,dense",
                                 "conv:k=5:pad=valid,relu,conv:k=1,relu,flatten,dense",
                                 "lift:k=3:group=D2,relu,res(gconv:k=3,relu,gconv:k=3:pad=circular),avgpool:s=2,"
                                 "gconv:k=3,erf,gpool,dense"})
    for (const std::string which : {"nngp", "ntk"}) {
      SCOPED_TRACE(arch + " " + which);
      const auto cpu = run(arch, "cpu", which), gpu = run(arch, "gpu", which);
      ASSERT_EQ(cpu.size(), 25u);
      ASSERT_EQ(gpu.size(), cpu.size());
      for (std::size_t e = 0; e < cpu.size(); ++e) EXPECT_LE(std::abs(gpu[e] - cpu[e]), 1e-12 * std::abs(cpu[e])) << e;
    }
}

TEST_F(GpuCli, UnknownDeviceIsRejected) {
  expect_rejected({"kernel", "--x1", path("x.npy").string(), "--arch", "conv:k=3,relu,gap,dense", "--nngp",
                   path("K.npy").string(), "--device", "tpu"},
                  1, 2, {"--device", "tpu"});
}

TEST_F(GpuCli, MixedPrecisionOnTheDeviceIsRejected) {
  expect_rejected({"kernel", "--x1", path("x.npy").string(), "--arch", "conv:k=3,relu,gap,dense", "--nngp",
                   path("K.npy").string(), "--device", "gpu", "--precision", "mixed"},
                  1, 2, {"--precision mixed", "GPU"});
}

TEST_F(GpuCli, DeviceIndexOutOfRangeIsRejected) {
  REQUIRE_DEVICE();
  expect_rejected({"kernel", "--x1", path("x.npy").string(), "--arch", "conv:k=3,relu,gap,dense", "--nngp",
                   path("K.npy").string(), "--device", "gpu", "--gpu-index", "99"},
                  1, 2, {"--gpu-index 99"});
}

TEST_F(GpuCli, NoOpenClPlatformIsOneRuntimeError) {
  // An ICD directory with no drivers: the loader finds no platform.
  std::filesystem::create_directories(root_ / "empty_icd");
  setenv("OCL_ICD_VENDORS", (root_ / "empty_icd").string().c_str(), 1);
  expect_rejected({"kernel", "--x1", path("x.npy").string(), "--arch", "conv:k=3,relu,gap,dense", "--nngp",
                   path("K.npy").string(), "--device", "gpu"},
                  1, 1, {"no OpenCL platform"});
  unsetenv("OCL_ICD_VENDORS");
}

}  // namespace
