#include "eqntk/gpu/device.hpp"

#include <algorithm>
#include <fstream>
#include <vector>

#include "eqntk/gpu/kernels_cl.hpp"
#include "opencl.hpp"

namespace eqntk::gpu {

const char* cl_error_name(cl_int code) {
  switch (code) {
    case CL_DEVICE_NOT_FOUND: return "CL_DEVICE_NOT_FOUND";
    case CL_DEVICE_NOT_AVAILABLE: return "CL_DEVICE_NOT_AVAILABLE";
    case CL_COMPILER_NOT_AVAILABLE: return "CL_COMPILER_NOT_AVAILABLE";
    case CL_MEM_OBJECT_ALLOCATION_FAILURE: return "CL_MEM_OBJECT_ALLOCATION_FAILURE";
    case CL_OUT_OF_RESOURCES: return "CL_OUT_OF_RESOURCES";
    case CL_OUT_OF_HOST_MEMORY: return "CL_OUT_OF_HOST_MEMORY";
    case CL_BUILD_PROGRAM_FAILURE: return "CL_BUILD_PROGRAM_FAILURE";
    case CL_INVALID_VALUE: return "CL_INVALID_VALUE";
    case CL_INVALID_PLATFORM: return "CL_INVALID_PLATFORM";
    case CL_INVALID_DEVICE: return "CL_INVALID_DEVICE";
    case CL_INVALID_CONTEXT: return "CL_INVALID_CONTEXT";
    case CL_INVALID_COMMAND_QUEUE: return "CL_INVALID_COMMAND_QUEUE";
    case CL_INVALID_MEM_OBJECT: return "CL_INVALID_MEM_OBJECT";
    case CL_INVALID_BUFFER_SIZE: return "CL_INVALID_BUFFER_SIZE";
    case CL_INVALID_PROGRAM_EXECUTABLE: return "CL_INVALID_PROGRAM_EXECUTABLE";
    case CL_INVALID_KERNEL_NAME: return "CL_INVALID_KERNEL_NAME";
    case CL_INVALID_KERNEL_ARGS: return "CL_INVALID_KERNEL_ARGS";
    case CL_INVALID_ARG_INDEX: return "CL_INVALID_ARG_INDEX";
    case CL_INVALID_ARG_VALUE: return "CL_INVALID_ARG_VALUE";
    case CL_INVALID_ARG_SIZE: return "CL_INVALID_ARG_SIZE";
    case CL_INVALID_WORK_GROUP_SIZE: return "CL_INVALID_WORK_GROUP_SIZE";
    case CL_INVALID_WORK_ITEM_SIZE: return "CL_INVALID_WORK_ITEM_SIZE";
    case CL_INVALID_GLOBAL_WORK_SIZE: return "CL_INVALID_GLOBAL_WORK_SIZE";
    case CL_INVALID_OPERATION: return "CL_INVALID_OPERATION";
    case -1001: return "CL_PLATFORM_NOT_FOUND_KHR";
    default: return "OpenCL error";
  }
}

void check(cl_int code, const char* call) {
  if (code != CL_SUCCESS)
    throw ClError(std::string("OpenCL ") + call + " failed: " + cl_error_name(code) + " (" + std::to_string(code) + ")" +
                      (out_of_memory(code) ? " - the device is out of memory" : ""),
                  code);
}

namespace {

std::string device_string(cl_device_id d, cl_device_info what) {
  std::size_t n = 0;
  if (clGetDeviceInfo(d, what, 0, nullptr, &n) != CL_SUCCESS) return {};
  std::string s(n, '\0');
  clGetDeviceInfo(d, what, n, s.data(), nullptr);
  while (!s.empty() && (s.back() == '\0' || s.back() == ' ')) s.pop_back();
  return s;
}

template <class T>
T device_value(cl_device_id d, cl_device_info what) {
  T v{};
  clGetDeviceInfo(d, what, sizeof v, &v, nullptr);
  return v;
}

struct Listed {
  DeviceInfo info;
  cl_platform_id platform;
  cl_device_id device;
};

std::vector<Listed> enumerate() {
  cl_uint np = 0;
  const cl_int rc = clGetPlatformIDs(0, nullptr, &np);
  if (rc != CL_SUCCESS || np == 0)
    throw DeviceError(
        "no OpenCL platform found: install an OpenCL driver (e.g. pocl-opencl-icd, or the GPU vendor's) and make its "
        ".icd file visible to the ICD loader (/etc/OpenCL/vendors or OCL_ICD_VENDORS)");
  std::vector<cl_platform_id> platforms(np);
  check(clGetPlatformIDs(np, platforms.data(), nullptr), "clGetPlatformIDs");
  std::vector<Listed> all;
  for (cl_platform_id p : platforms) {
    cl_uint nd = 0;
    if (clGetDeviceIDs(p, CL_DEVICE_TYPE_ALL, 0, nullptr, &nd) != CL_SUCCESS || nd == 0) continue;
    std::vector<cl_device_id> devices(nd);
    check(clGetDeviceIDs(p, CL_DEVICE_TYPE_ALL, nd, devices.data(), nullptr), "clGetDeviceIDs");
    std::size_t pn = 0;
    clGetPlatformInfo(p, CL_PLATFORM_NAME, 0, nullptr, &pn);
    std::string pname(pn, '\0');
    clGetPlatformInfo(p, CL_PLATFORM_NAME, pn, pname.data(), nullptr);
    while (!pname.empty() && pname.back() == '\0') pname.pop_back();
    for (cl_device_id d : devices) {
      Listed l{{}, p, d};
      l.info.name = device_string(d, CL_DEVICE_NAME);
      l.info.platform = pname;
      const auto type = device_value<cl_device_type>(d, CL_DEVICE_TYPE);
      l.info.gpu = (type & (CL_DEVICE_TYPE_GPU | CL_DEVICE_TYPE_ACCELERATOR)) != 0;
      l.info.fp64 = device_string(d, CL_DEVICE_EXTENSIONS).find("cl_khr_fp64") != std::string::npos;
      l.info.global_mem = device_value<cl_ulong>(d, CL_DEVICE_GLOBAL_MEM_SIZE);
      l.info.max_alloc = device_value<cl_ulong>(d, CL_DEVICE_MAX_MEM_ALLOC_SIZE);
      l.info.local_mem = device_value<cl_ulong>(d, CL_DEVICE_LOCAL_MEM_SIZE);
      l.info.dedicated_local = device_value<cl_device_local_mem_type>(d, CL_DEVICE_LOCAL_MEM_TYPE) == CL_LOCAL;
      l.info.max_work_group = device_value<std::size_t>(d, CL_DEVICE_MAX_WORK_GROUP_SIZE);
      all.push_back(l);
    }
  }
  if (all.empty()) throw DeviceError("no OpenCL device found on any of " + std::to_string(np) + " OpenCL platform(s)");
  if (std::any_of(all.begin(), all.end(), [](const Listed& l) { return l.info.gpu; }))
    std::erase_if(all, [](const Listed& l) { return !l.info.gpu; });
  return all;
}

}  // namespace

std::vector<DeviceInfo> list_devices() {
  std::vector<DeviceInfo> out;
  for (const Listed& l : enumerate()) out.push_back(l.info);
  return out;
}

bool fp64_device_available() {
  try {
    const auto d = list_devices();
    return std::any_of(d.begin(), d.end(), [](const DeviceInfo& i) { return i.fp64; });
  } catch (const Error&) {
    return false;
  }
}

DeviceState::~DeviceState() {
  if (program != nullptr) clReleaseProgram(program);
  if (queue != nullptr) clReleaseCommandQueue(queue);
  if (context != nullptr) clReleaseContext(context);
}

Buffer DeviceState::buffer(std::size_t bytes) const {
  cl_int rc = CL_SUCCESS;
  cl_mem m = clCreateBuffer(context, CL_MEM_READ_WRITE, std::max<std::size_t>(bytes, 8), nullptr, &rc);
  check(rc, "clCreateBuffer");
  return Buffer(m);
}

cl_program DeviceState::build(const std::string& source) const {
  const char* text = source.c_str();
  const std::size_t length = source.size();
  cl_int rc = CL_SUCCESS;
  cl_program prog = clCreateProgramWithSource(context, 1, &text, &length, &rc);
  check(rc, "clCreateProgramWithSource");
  // No fast-math options: the results must match the CPU engine to rounding, NaN-free at zero variance.
  rc = clBuildProgram(prog, 1, &device, "-cl-std=CL1.2", nullptr, nullptr);
  if (rc != CL_SUCCESS) {
    std::size_t n = 0;
    clGetProgramBuildInfo(prog, device, CL_PROGRAM_BUILD_LOG, 0, nullptr, &n);
    std::string log(n, '\0');
    clGetProgramBuildInfo(prog, device, CL_PROGRAM_BUILD_LOG, n, log.data(), nullptr);
    clReleaseProgram(prog);
    std::ofstream f(build_log_path, std::ios::binary | std::ios::trunc);
    f << log;
    throw DeviceError("OpenCL kernel build failed on '" + info.name + "': " + cl_error_name(rc) +
                      (f ? " (build log in " + build_log_path + ")" : " (could not write the build log to " + build_log_path + ")"));
  }
  return prog;
}

cl_kernel DeviceState::kernel(const char* name) const {
  cl_int rc = CL_SUCCESS;
  cl_kernel k = clCreateKernel(program, name, &rc);
  check(rc, "clCreateKernel");
  return k;
}

Device::Device(const DeviceOptions& options) : state_(std::make_unique<DeviceState>()) {
  const std::vector<Listed> all = enumerate();
  const int count = static_cast<int>(all.size());
  if (options.index >= count)
    throw InvalidArgument("--gpu-index " + std::to_string(options.index) + " is out of range: " + std::to_string(count) +
                          " OpenCL device(s) (" + all.front().info.name + (count > 1 ? ", ..." : "") + ")");
  const int index = options.index >= 0 ? options.index : std::max(options.local_rank, 0) % count;
  const Listed& chosen = all[static_cast<std::size_t>(index)];
  DeviceState& s = *state_;
  s.info = chosen.info;
  s.platform = chosen.platform;
  s.device = chosen.device;
  s.build_log_path = options.build_log;
  s.local_passes = options.local_passes < 0 ? s.info.dedicated_local : options.local_passes > 0;
  s.max_tile = options.max_tile;
  if (!s.info.fp64)
    throw DeviceError("OpenCL device '" + s.info.name + "' has no cl_khr_fp64 (double precision), which eqntk's GPU kernels need");
  cl_int rc = CL_SUCCESS;
  s.context = clCreateContext(nullptr, 1, &s.device, nullptr, nullptr, &rc);
  check(rc, "clCreateContext");
  s.queue = clCreateCommandQueue(s.context, s.device, 0, &rc);
  check(rc, "clCreateCommandQueue");
  s.program = s.build(std::string(kKernelSource));
}

Device::~Device() = default;
Device::Device(Device&&) noexcept = default;
Device& Device::operator=(Device&&) noexcept = default;

const DeviceInfo& Device::info() const { return state_->info; }

void Device::build_program(const std::string& source) const { clReleaseProgram(state_->build(source)); }

}  // namespace eqntk::gpu
