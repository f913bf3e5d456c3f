// OpenCL handles and checked calls, private to src/gpu.
#pragma once

#define CL_TARGET_OPENCL_VERSION 120
#include <CL/cl.h>

#include <string>

#include "eqntk/gpu/device.hpp"

namespace eqntk::gpu {

/// Name of an OpenCL error code (e.g. "CL_OUT_OF_RESOURCES").
[[nodiscard]] const char* cl_error_name(cl_int code);

/// True for the codes that mean the device (or host) ran out of memory.
[[nodiscard]] inline bool out_of_memory(cl_int code) {
  return code == CL_MEM_OBJECT_ALLOCATION_FAILURE || code == CL_OUT_OF_RESOURCES || code == CL_OUT_OF_HOST_MEMORY;
}

/// An OpenCL call failed; `code` tells whether it was memory.
class ClError : public DeviceError {
 public:
  ClError(const std::string& what, cl_int c) : DeviceError(what), code(c) {}
  cl_int code;
};

/// Throws ClError "OpenCL <call> failed: <name> (<code>)" unless code == CL_SUCCESS.
void check(cl_int code, const char* call);

/// Owning handle of a cl_mem (released on destruction).
class Buffer {
 public:
  Buffer() = default;
  explicit Buffer(cl_mem m) : mem_(m) {}
  ~Buffer() { reset(); }
  Buffer(Buffer&& o) noexcept : mem_(o.mem_) { o.mem_ = nullptr; }
  Buffer& operator=(Buffer&& o) noexcept {
    if (this != &o) {
      reset();
      mem_ = o.mem_;
      o.mem_ = nullptr;
    }
    return *this;
  }
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  void reset() {
    if (mem_ != nullptr) clReleaseMemObject(mem_);
    mem_ = nullptr;
  }
  [[nodiscard]] cl_mem get() const { return mem_; }

 private:
  cl_mem mem_ = nullptr;
};

struct DeviceState {
  DeviceInfo info;
  cl_platform_id platform = nullptr;
  cl_device_id device = nullptr;
  cl_context context = nullptr;
  cl_command_queue queue = nullptr;
  cl_program program = nullptr;
  std::string build_log_path;
  bool local_passes = false;  // the executor's window passes go through local memory (DeviceOptions)
  int max_tile = 0;           // DeviceOptions::max_tile
  ~DeviceState();
  /// A device buffer of `bytes` bytes (at least 8). Throws ClError.
  [[nodiscard]] Buffer buffer(std::size_t bytes) const;
  /// Builds `source` for the device; on failure writes the log to build_log_path and throws DeviceError.
  [[nodiscard]] cl_program build(const std::string& source) const;
  [[nodiscard]] cl_kernel kernel(const char* name) const;
};

}  // namespace eqntk::gpu
