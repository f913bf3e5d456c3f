#include <cstdlib>
#include <string>

#include "pointwise.hpp"

namespace eqntk::so3::detail {

namespace {

// 0 baseline, 1 avx2, 2 avx512, chosen once.
int cpu_level() {
  static const int chosen = [] {
    __builtin_cpu_init();
    int level = 0;  // 0 baseline, 1 avx2, 2 avx512 (the same rule as the planar engine's best_isa)
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) level = 1;
    if (level == 1 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq")) level = 2;
    if (const char* want = std::getenv("EQNTK_ISA")) {
      const std::string w = want;
      if (w == "baseline") level = 0;
      else if (w == "avx2" && level == 2) level = 1;
    }
    return level;
  }();
  return chosen;
}

}  // namespace

ChainFn chain_for_cpu() {
  const int level = cpu_level();
  return level == 2 ? &isa_avx512::chain : level == 1 ? &isa_avx2::chain : &isa_baseline::chain;
}

GridChainFn grid_chain_for_cpu() {
  const int level = cpu_level();
  return level == 2 ? &isa_avx512::grid_chain : level == 1 ? &isa_avx2::grid_chain : &isa_baseline::grid_chain;
}

}  // namespace eqntk::so3::detail
