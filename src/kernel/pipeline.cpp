#include <cstdlib>
#include <string>

#include "pipeline.hpp"

namespace eqntk::kernel::detail {

void Workspace::reserve(const Network& net) {
  std::int64_t block_size = 0, mid = 0, plane = 0;
  for (const Stage& st : net.stages()) {
    if (!is_spatial_linear(st.spec.kind)) continue;
    block_size = std::max({block_size, st.h_in * st.w_in * st.h_in * st.w_in, st.h_out * st.w_out * st.h_out * st.w_out});
    mid = std::max(mid, st.w_in * st.h_in * st.w_in);  // iw mid planes of at most ih·iw
    plane = std::max(plane, st.h_out * st.w_out);
  }
  for (auto& b : block) b.resize(static_cast<std::size_t>(block_size));
  mid_k.resize(static_cast<std::size_t>(mid));
  mid_t.resize(static_cast<std::size_t>(mid));
  plane_k.resize(static_cast<std::size_t>(plane));
  plane_t.resize(static_cast<std::size_t>(plane));
  const std::int64_t roots = std::max<std::int64_t>(plane, net.max_pixels());
  for (auto* v : {&in_a, &in_b, &out_a, &out_b}) v->resize(static_cast<std::size_t>(roots));
}

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::avx512: return "avx512";
    case Isa::avx2: return "avx2";
    default: return "baseline";
  }
}

Isa best_isa() {
  static const Isa isa = [] {
    __builtin_cpu_init();
    Isa best = Isa::baseline;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) best = Isa::avx2;
    if (best == Isa::avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq")) best = Isa::avx512;
    // EQNTK_ISA narrows the choice, e.g. to get bitwise-identical kernels on mixed clusters.
    if (const char* want = std::getenv("EQNTK_ISA")) {
      const std::string w = want;
      if (w == "baseline") best = Isa::baseline;
      else if (w == "avx2" && best == Isa::avx512) best = Isa::avx2;
    }
    return best;
  }();
  return isa;
}

SpatialFn spatial_for(Isa isa) {
  switch (isa) {
    case Isa::avx512: return &isa_avx512::spatial;
    case Isa::avx2: return &isa_avx2::spatial;
    default: return &isa_baseline::spatial;
  }
}

}  // namespace eqntk::kernel::detail
