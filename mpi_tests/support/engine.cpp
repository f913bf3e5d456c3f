// The fast-path engine switch of the unit tests (engine.hpp).
#include "engine.hpp"

#include <atomic>
#include <cstdlib>
#include <string_view>

#include "eqntk/error.hpp"

namespace eqntk::testing {

namespace {

std::atomic<std::int64_t> g_device_work{0};

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
    *what = options.local_passes != 0
                ? "window passes through local memory in tiles of at most " + std::to_string(options.max_tile) + "x" +
                      std::to_string(options.max_tile)
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

std::int64_t device_work() { return g_device_work.load(); }

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
}

FastPath::~FastPath() = default;

kernel::SelfChain FastPath::self_chain(const data::ImageView& x) {
  if (cpu_) return cpu_->self_chain(x);
  kernel::SelfChain s = gpu_->self_chain(x);
  ++g_device_work;
  return s;
}

kernel::KernelValue FastPath::evaluate(const data::ImageView& x, const kernel::SelfChain& sx,
                                       const data::ImageView& x2, const kernel::SelfChain& sx2) {
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
  return out;
}

kernel::KernelValue fast_kernel(const kernel::Network& net, const data::ImageView& x, const data::ImageView& x2) {
  FastPath pk(net);
  const kernel::SelfChain s1 = pk.self_chain(x);
  const kernel::SelfChain s2 = pk.self_chain(x2);
  return pk.evaluate(x, s1, x2, s2);
}

}  // namespace eqntk::testing
