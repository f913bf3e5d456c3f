#include "eqntk/blas_check.hpp"

#include <unistd.h>

#include <cstdlib>

extern "C" char* openblas_get_corename() __attribute__((weak));

namespace eqntk {

std::string blas_core() { return openblas_get_corename != nullptr ? std::string(openblas_get_corename()) : ""; }

std::string better_blas_core() {
  if (std::getenv("OPENBLAS_CORETYPE") != nullptr) return "";
  const std::string core = blas_core();
  const bool generic = core == "Prescott" || core == "Core2" || core == "Katmai" || core == "Coppermine" ||
                       core == "Northwood" || core == "Banias" || core == "Atom" || core == "Nehalem";
  if (!generic) return "";
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq")) return "SkylakeX";
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return "Haswell";
  return "";
}

void reexec_with_better_blas_core(char** argv) {
  const std::string core = better_blas_core();
  if (core.empty()) return;
  ::setenv("OPENBLAS_CORETYPE", core.c_str(), 1);
  ::execv("/proc/self/exe", argv);  // only returns on failure: carry on with the generic kernels
}

}  // namespace eqntk
