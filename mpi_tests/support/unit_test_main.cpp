// main() of eqntk_unit_tests: GoogleTest, plus the engine switch of engine.hpp. With EQNTK_TEST_DEVICE=gpu
//   - the run names its device in the log, or skips every test (GTEST_SKIP, one line) when no OpenCL device
//     with cl_khr_fp64 exists;
//   - every test that passes must have run work on the device: a test that never reaches FastPath (one
//     that checks only the reference engine, or CPU-engine internals) would pass vacuously, so the run
//     fails at the end naming it — such tests belong in the rerun's exclusion list (mpi_tests/CMakeLists.txt).
// An EQNTK_TEST_DEVICE other than cpu/gpu is a usage error (one line, exit 2).
#include <gtest/gtest.h>

#include <iostream>
#include <string>
#include <vector>

#include "engine.hpp"
#include "eqntk/error.hpp"

namespace {

namespace et = eqntk::testing;

// Names the passed tests that added nothing to et::device_work().
class DeviceUseListener : public ::testing::EmptyTestEventListener {
 public:
  void OnTestStart(const ::testing::TestInfo&) override { start_ = et::device_work(); }
  void OnTestEnd(const ::testing::TestInfo& info) override {
    if (info.result()->Passed() && et::device_work() == start_)
      idle.push_back(std::string(info.test_suite_name()) + "." + info.name());
  }
  std::vector<std::string> idle;

 private:
  std::int64_t start_ = 0;
};

class DeviceEnvironment : public ::testing::Environment {
 public:
  explicit DeviceEnvironment(const DeviceUseListener* listener) : listener_(listener) {}
  void SetUp() override {
    try {
      if (et::test_device() == nullptr)
        GTEST_SKIP() << "EQNTK_TEST_DEVICE=gpu: no OpenCL platform with a cl_khr_fp64 device, device tests skipped";
    } catch (const std::exception& e) {
      FAIL() << "EQNTK_TEST_DEVICE=gpu: the OpenCL device could not be opened: " << e.what();
    }
    std::cout << "[ engine   ] fast path on " << et::engine_description() << std::endl;
  }
  void TearDown() override {
    const et::CrossCheck c = et::device_vs_cpu();
    std::cout << "[ engine   ] " << c.values << " device values against the CPU engine, largest deviation "
              << c.deviation << (c.values > 0 ? " (" + c.where + ")" : "") << std::endl;
    if (listener_->idle.empty()) return;
    std::string names;
    for (const std::string& n : listener_->idle) names += (names.empty() ? "" : ", ") + n;
    ADD_FAILURE() << "EQNTK_TEST_DEVICE=gpu, yet these tests ran nothing on the device (exclude them from the "
                     "device rerun's filter or compute their fast path through testing::FastPath): "
                  << names;
  }

 private:
  const DeviceUseListener* listener_;
};

}  // namespace

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  try {
    if (et::active_engine() == et::Engine::gpu) {
      auto* listener = new DeviceUseListener;  // owned by GoogleTest
      ::testing::UnitTest::GetInstance()->listeners().Append(listener);
      ::testing::AddGlobalTestEnvironment(new DeviceEnvironment(listener));
    }
  } catch (const eqntk::Error& e) {
    std::cerr << "eqntk_unit_tests: " << e.what() << "\n";
    return 2;
  }
  return RUN_ALL_TESTS();
}
