#include <cstdlib>
#include <string>

#include "pipeline.hpp"

namespace eqntk::kernel::detail {

void Workspace::reserve(const Network& net, bool mixed_precision) {
  mixed = mixed_precision;
  pad = 0;
  for (const Stage& st : net.stages())
    if (is_spatial_linear(st.spec.kind)) pad = std::max<std::int64_t>(pad, st.p);
  guard = std::max<std::int64_t>(pad, 8);
  std::int64_t block_size = 0, mid = 0, plane = 0;
  for (const Stage& st : net.stages()) {
    if (!is_spatial_linear(st.spec.kind)) continue;
    const std::int64_t in_plane = st.h_in * (st.w_in + 2 * pad), out_plane = st.h_out * (st.w_out + 2 * pad);
    block_size = std::max({block_size, st.h_in * st.w_in * in_plane, st.h_out * st.w_out * out_plane});
    mid = std::max(mid, st.w_in * in_plane);  // iw mid planes, each at most ih rows of the input stride
    plane = std::max({plane, in_plane, out_plane});
  }
  const auto with_guards = [&](std::int64_t n) { return static_cast<std::size_t>(n + 2 * guard); };
  const std::size_t item = mixed ? sizeof(float) : sizeof(double);
  for (auto& b : block) b.assign(with_guards(block_size) * item, std::byte{0});
  for (auto* v : {&mid_k, &mid_t}) v->assign(with_guards(mid) * item, std::byte{0});
  for (auto* v : {&plane_k, &plane_t}) v->assign(with_guards(plane) * item, std::byte{0});
  for (auto* v : {&in_a, &in_b, &out_a, &out_b}) v->assign(with_guards(plane), 0.0);
  // A res block saves its input block (K and Θ); an avgpool sums one cell's planes of its input.
  saved.clear();
  std::int64_t pool_plane = 0;
  for (const Stage& st : net.stages()) {
    if (st.spec.kind == LayerKind::res) {
      const std::int64_t n = st.h_in * st.w_in * st.h_in * (st.w_in + 2 * pad);
      for (int k = 0; k < 2; ++k) saved.emplace_back(with_guards(n) * item, std::byte{0});
    } else if (st.spec.kind == LayerKind::avgpool) {
      pool_plane = std::max(pool_plane, st.h_in * st.w_in);
    }
  }
  pool_sum.assign(static_cast<std::size_t>(pool_plane), 0.0);
  x2_padded.assign(with_guards(net.input_shape().channels * net.input_shape().height * (net.input_shape().width + 2 * pad)), 0.0);
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
