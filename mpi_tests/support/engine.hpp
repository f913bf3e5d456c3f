// The production fast path of the equivalence tests (mpi_tests/unit) on either engine: the CPU engine
// (kernel::PairKernel) by default, or the OpenCL executor (gpu::PairExecutor) on one process-wide device
// when EQNTK_TEST_DEVICE=gpu. The tests compare what FastPath / fast_kernel return against the reference
// engine, closed forms and symmetries, so the same tests, with the same tolerances, check either engine;
// CMake reruns the fast-path suites with EQNTK_TEST_DEVICE=gpu (eqntk_unit_equivalence_device_gpu*).
//
// Environment:
//   EQNTK_TEST_DEVICE        unset, "" or "cpu": the CPU engine; "gpu": the OpenCL device (gpu::Device with
//                            default selection: the first GPU, else the first CPU device such as PoCL).
//   EQNTK_TEST_LOCAL_PASSES  with gpu: n > 0 forces the local-memory window passes in tiles of at most n × n
//                            outputs (gpu::DeviceOptions::local_passes, max_tile), 0 forbids them; unset: the
//                            device's choice.
// Block-by-block observers (PairKernel::evaluate_observed) and float32 storage (Precision::mixed) are CPU
// engine internals: tests of those call PairKernel directly and stay out of the device rerun.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "eqntk/data/image.hpp"
#include "eqntk/gpu/device.hpp"
#include "eqntk/gpu/pair_executor.hpp"
#include "eqntk/kernel/network.hpp"
#include "eqntk/kernel/pair_kernel.hpp"

namespace eqntk::testing {

enum class Engine { cpu, gpu };

/// The engine EQNTK_TEST_DEVICE selects. Throws InvalidArgument for any other value than cpu/gpu.
[[nodiscard]] Engine active_engine();

/// The device of Engine::gpu, opened and built once per process on first use; nullptr when no OpenCL
/// device with cl_khr_fp64 exists (the unit-test main then skips every test of the run) or when the
/// engine is the CPU's.
[[nodiscard]] const gpu::Device* test_device();

/// "CPU engine" or "OpenCL device '<name>' (<platform>), <window passes>": for the log of a run.
[[nodiscard]] std::string engine_description();

/// Self chains plus pairs the device has computed in this process (the unit-test main checks that every
/// test of a device rerun added to it).
[[nodiscard]] std::int64_t device_work();

/// The largest deviation of a device value from the CPU engine's so far (device runs only). Every self chain
/// and pair FastPath computes on the device is computed by the CPU engine too (a pair from the same self
/// chains); deviation = |device − CPU| / max(|CPU|, s), s the Cauchy–Schwarz scale √|K(x,x)·K(x',x')| of
/// the pair (of K for K, of Θ for Θ), the larger of the K and Θ deviations. A deviation above 1e-12 fails
/// the running test (issue 13's bound for the device against the CPU engine).
struct CrossCheck {
  double deviation = 0.0;
  std::string where;        ///< test and value of the largest one
  std::int64_t values = 0;  ///< values compared
};
[[nodiscard]] CrossCheck device_vs_cpu();

/// One pair of images with their self chains (from FastPath::self_chain of the same network).
using PairRef = gpu::PairRef;

/// kernel::PairKernel's production interface, run by the active engine.
class FastPath {
 public:
  /// Throws as PairKernel, or as gpu::PairExecutor on the device.
  explicit FastPath(const kernel::Network& net);
  ~FastPath();
  FastPath(const FastPath&) = delete;
  FastPath& operator=(const FastPath&) = delete;

  [[nodiscard]] kernel::SelfChain self_chain(const data::ImageView& x);
  [[nodiscard]] kernel::KernelValue evaluate(const data::ImageView& x, const kernel::SelfChain& sx,
                                             const data::ImageView& x2, const kernel::SelfChain& sx2);
  /// Many pairs at once (one batch on the device).
  [[nodiscard]] std::vector<kernel::KernelValue> evaluate(std::span<const PairRef> pairs);

 private:
  kernel::Network net_;  // gpu::PairExecutor keeps a reference; callers may pass a temporary
  std::optional<kernel::PairKernel> cpu_;
  std::optional<kernel::PairKernel> check_;  // the CPU engine beside the device (device_vs_cpu)
  std::unique_ptr<gpu::PairExecutor> gpu_;
};

/// The fast path exactly as production uses it: self_chain per image, then evaluate.
[[nodiscard]] kernel::KernelValue fast_kernel(const kernel::Network& net, const data::ImageView& x,
                                              const data::ImageView& x2);

}  // namespace eqntk::testing
