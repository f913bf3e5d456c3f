// The fast-path engine switch of the unit tests (engine.hpp).
#include "engine.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <mutex>
#include <sstream>
#include <string_view>

#include "eqntk/error.hpp"

namespace eqntk::testing {

namespace {

std::atomic<std::int64_t> g_device_work{0};
constexpr double kCrossTolerance = 1e-12;
std::mutex g_check_mutex;
CrossCheck g_check;

double deviation_on(double a, double b, double scale) {
  if (!std::isfinite(a) || !std::isfinite(b)) return a == b ? 0.0 : INFINITY;
  return std::abs(a - b) / std::max({std::abs(b), scale, 1e-300});
}

// Records the deviation of a device value from the CPU engine's (CrossCheck).
void cross_check(const kernel::KernelValue& dev, const kernel::KernelValue& cpu, const kernel::KernelValue& self1,
                 const kernel::KernelValue& self2, const char* what) {
  const double d = std::max(deviation_on(dev.nngp, cpu.nngp, std::sqrt(std::abs(self1.nngp * self2.nngp))),
                            deviation_on(dev.ntk, cpu.ntk, std::sqrt(std::abs(self1.ntk * self2.ntk))));
  const std::lock_guard lock(g_check_mutex);
  ++g_check.values;
  if (g_check.values > 1 && d <= g_check.deviation && d <= kCrossTolerance) return;
  const ::testing::TestInfo* t = ::testing::UnitTest::GetInstance()->current_test_info();
  std::ostringstream w;
  w.precision(17);
  w << (t != nullptr ? std::string(t->test_suite_name()) + "." + t->name() : "(no test)") << ", " << what
    << ": device (" << dev.nngp << ", " << dev.ntk << "), CPU engine (" << cpu.nngp << ", " << cpu.ntk << ")";
  // The bound: the device agrees with the CPU engine to 1e-12 relative (measured on PoCL: ≤ 3e-15).
  if (d > kCrossTolerance)
    ADD_FAILURE() << "device and CPU engine differ by " << d << " > " << kCrossTolerance << ": " << w.str();
  if (g_check.values == 1 || d > g_check.deviation) {
    g_check.deviation = d;
    g_check.where = w.str();
  }
}

// EQNTK_TEST_LOCAL_PASSES as DeviceOptions (mpi_tests/gpu reads it the same way); `what` describes it.
gpu::DeviceOptions device_options(std::string* what) {
  gpu::DeviceOptions options;
  const char* v = std::getenv("EQNTK_TEST_LOCAL_PASSES");
  if (v == nullptr || *v == '\0') {
    if (what != nullptr) *what = "window passes of the device's choice";
    return options;
  }
  options.max_tile = std::atoi(v);
  options.local_passes = options.max_tile > 0 ? 1 : 0;
  if (what != nullptr)
    *what = options.local_passes != 0 ? "window passes through local memory in tiles of at most " +
                                            std::to_string(options.max_tile) + "x" + std::to_string(options.max_tile)
                                      : "window passes reading global memory";
  return options;
}

}  // namespace

Engine active_engine() {
  const char* v = std::getenv("EQNTK_TEST_DEVICE");
  const std::string_view s = v == nullptr ? "" : v;
  if (s.empty() || s == "cpu") return Engine::cpu;
  if (s == "gpu") return Engine::gpu;
  throw InvalidArgument("EQNTK_TEST_DEVICE must be cpu or gpu, not '" + std::string(s) + "'");
}

const gpu::Device* test_device() {
  if (active_engine() != Engine::gpu) return nullptr;
  // Built once; the kernels are compiled for the device here (seconds on PoCL, cached by PoCL afterwards).
  static const std::unique_ptr<gpu::Device> device =
      gpu::fp64_device_available() ? std::make_unique<gpu::Device>(device_options(nullptr)) : nullptr;
  return device.get();
}

std::string engine_description() {
  if (active_engine() == Engine::cpu) return "CPU engine (kernel::PairKernel)";
  const gpu::Device* d = test_device();
  if (d == nullptr) return "no OpenCL device with cl_khr_fp64";
  std::string passes;
  (void)device_options(&passes);
  return "OpenCL device '" + d->info().name + "' (platform '" + d->info().platform + "'), " + passes;
}

std::int64_t device_work() {
  return g_device_work.load();
}

CrossCheck device_vs_cpu() {
  const std::lock_guard lock(g_check_mutex);
  return g_check;
}

FastPath::FastPath(const kernel::Network& net) : net_(net) {
  if (active_engine() == Engine::cpu) {
    cpu_.emplace(net_);
    return;
  }
  const gpu::Device* d = test_device();
  if (d == nullptr) throw gpu::DeviceError("EQNTK_TEST_DEVICE=gpu but no OpenCL device with cl_khr_fp64 exists");
  // Batches of up to 256 pairs: the tests' networks are small, and buffers for the memory-sized default
  // batch would be allocated even for one pair.
  gpu_ = std::make_unique<gpu::PairExecutor>(net_, *d, 256);
  check_.emplace(net_);
}

FastPath::~FastPath() = default;

kernel::SelfChain FastPath::self_chain(const data::ImageView& x) {
  if (cpu_) return cpu_->self_chain(x);
  kernel::SelfChain s = gpu_->self_chain(x);
  ++g_device_work;
  const kernel::KernelValue cpu = check_->self_chain(x).self;
  cross_check(s.self, cpu, cpu, cpu, "self chain");
  return s;
}

kernel::KernelValue FastPath::evaluate(const data::ImageView& x, const kernel::SelfChain& sx, const data::ImageView& x2,
                                       const kernel::SelfChain& sx2) {
  if (cpu_) return cpu_->evaluate(x, sx, x2, sx2);
  const PairRef pair{x, &sx, x2, &sx2};
  return evaluate(std::span<const PairRef>(&pair, 1)).front();
}

std::vector<kernel::KernelValue> FastPath::evaluate(std::span<const PairRef> pairs) {
  if (cpu_) {
    std::vector<kernel::KernelValue> out;
    out.reserve(pairs.size());
    for (const PairRef& p : pairs) out.push_back(cpu_->evaluate(p.x, *p.sx, p.x2, *p.sx2));
    return out;
  }
  std::vector<kernel::KernelValue> out = gpu_->evaluate(pairs);
  g_device_work += static_cast<std::int64_t>(pairs.size());
  for (std::size_t i = 0; i < pairs.size(); ++i) {
    const PairRef& p = pairs[i];
    cross_check(out[i], check_->evaluate(p.x, *p.sx, p.x2, *p.sx2), p.sx->self, p.sx2->self, "pair");
  }
  return out;
}

kernel::KernelValue fast_kernel(const kernel::Network& net, const data::ImageView& x, const data::ImageView& x2) {
  FastPath pk(net);
  const kernel::SelfChain s1 = pk.self_chain(x);
  const kernel::SelfChain s2 = pk.self_chain(x2);
  return pk.evaluate(x, s1, x2, s2);
}

}  // namespace eqntk::testing
