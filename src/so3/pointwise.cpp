#include <cstdlib>
#include <string>

#include "pointwise.hpp"

namespace eqntk::so3::detail {

ChainFn chain_for_cpu() {
  static const ChainFn fn = [] {
    __builtin_cpu_init();
    int level = 0;  // 0 baseline, 1 avx2, 2 avx512 (the same rule as the planar engine's best_isa)
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) level = 1;
    if (level == 1 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq")) level = 2;
    if (const char* want = std::getenv("EQNTK_ISA")) {
      const std::string w = want;
      if (w == "baseline") level = 0;
      else if (w == "avx2" && level == 2) level = 1;
    }
    return level == 2 ? &isa_avx512::chain : level == 1 ? &isa_avx2::chain : &isa_baseline::chain;
  }();
  return fn;
}

}  // namespace eqntk::so3::detail
