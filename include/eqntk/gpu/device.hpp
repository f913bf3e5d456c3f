// OpenCL devices for the GPU backend: discovery, selection, the context/queue of the chosen device and
// the build of eqntk's kernels (src/gpu/kernels.cl, embedded in the binary) for it.
//
// Selection: every OpenCL device of every platform the ICD loader finds is listed; when at least one is a
// GPU or accelerator only those count, otherwise the CPU devices do (e.g. PoCL on a machine without a
// GPU). A rank takes device `index` of that list, or, when index < 0, device (node-local rank mod count).
// The device must support cl_khr_fp64: kernels are float64 throughout.
//
// Errors (one line each, eqntk::gpu::DeviceError, a runtime error): no OpenCL platform, no device,
// a device without cl_khr_fp64, a failed kernel build (its build log is written to a file named in the
// message), any other OpenCL call failing (named with its error code). An index outside the list is an
// InvalidArgument. Not collective; no MPI here.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "eqntk/error.hpp"

namespace eqntk::gpu {

/// A failure of the OpenCL runtime or device (exit code 1 in the CLI).
class DeviceError : public Error {
 public:
  using Error::Error;
};

/// How a rank chooses and uses its device.
struct DeviceOptions {
  int index = -1;                 ///< position in the device list; < 0: local_rank mod count
  int local_rank = 0;             ///< this process's rank among the processes of its node
  std::string build_log = "eqntk_opencl_build.log";  ///< where a failed build's log goes
  /// Window passes of the pair executor through local memory (tiles marching through a ring of window
  /// planes, src/gpu/kernels.cl): 1 always, 0 never, < 0 where the device's local memory is dedicated
  /// on-chip memory (GPUs) rather than emulated in global memory (CPU devices such as PoCL).
  int local_passes = -1;
  /// Largest tile extent of those passes along each trailing dim (0: as the work-group size and local
  /// memory allow). Small tiles split even small images into many tiles (tests).
  int max_tile = 0;
};

/// What a listed device is.
struct DeviceInfo {
  std::string name;      ///< CL_DEVICE_NAME (trimmed)
  std::string platform;  ///< CL_PLATFORM_NAME
  bool gpu = false;      ///< GPU or accelerator
  bool fp64 = false;     ///< cl_khr_fp64 supported
  std::uint64_t global_mem = 0, max_alloc = 0, local_mem = 0;
  bool dedicated_local = false;  ///< CL_DEVICE_LOCAL_MEM_TYPE is CL_LOCAL (on-chip), not CL_GLOBAL
  std::size_t max_work_group = 1;
};

/// The devices selection chooses from (GPUs/accelerators if any, else all). Throws DeviceError when the
/// ICD loader finds no platform or no device.
[[nodiscard]] std::vector<DeviceInfo> list_devices();

/// True when at least one listed device has cl_khr_fp64 (tests skip otherwise). Never throws.
[[nodiscard]] bool fp64_device_available();

struct DeviceState;  // OpenCL handles (src/gpu/opencl.hpp)

/// The chosen device with its context, in-order queue and built program. Move-only.
class Device {
 public:
  /// Selects and opens the device, builds the embedded kernels. Throws as described above.
  explicit Device(const DeviceOptions& options = {});
  ~Device();
  Device(Device&&) noexcept;
  Device& operator=(Device&&) noexcept;

  [[nodiscard]] const DeviceInfo& info() const;
  /// Builds `source` as an extra program (tests of the build-failure path). Throws DeviceError with the
  /// log path on failure.
  void build_program(const std::string& source) const;
  [[nodiscard]] DeviceState& state() const { return *state_; }

 private:
  std::unique_ptr<DeviceState> state_;
};

}  // namespace eqntk::gpu
