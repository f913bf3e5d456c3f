#include <cstdlib>
#include <string>
#include <variant>

#include "pipeline.hpp"

namespace eqntk::kernel::detail {

void Workspace::reserve(const Plan& plan, bool mixed_precision) {
  mixed = mixed_precision;
  pad = plan.max_p;
  guard = std::max<std::int64_t>(pad, 8);
  const auto with_guards = [&](std::int64_t n) { return static_cast<std::size_t>(n + 2 * guard); };
  const std::size_t item = mixed ? sizeof(float) : sizeof(double);
  // Res slot n saves its block's input, K in saved[2n] and Θ in saved[2n + 1].
  saved.assign(2 * static_cast<std::size_t>(plan.saved_slots), {});
  std::int64_t block_size = 0, mid = 0, plane = 0, pool_plane = 0;
  for (const Unit& unit : plan.units) {
    if (const auto* u = std::get_if<unit::Linear>(&unit)) {
      const std::int64_t in_plane = u->ih * (u->iw + 2 * pad), out_plane = u->oh * (u->ow + 2 * pad);
      block_size = std::max({block_size, u->ih * u->iw * in_plane, u->oh * u->ow * out_plane});
      mid = std::max(mid, u->iw * in_plane);  // iw mid planes, each at most ih rows of the input stride
      plane = std::max({plane, in_plane, out_plane});
    } else if (const auto* r = std::get_if<unit::ResBegin>(&unit)) {
      const std::int64_t n = r->h * r->w * r->h * (r->w + 2 * pad);
      for (std::size_t k = 0; k < 2; ++k)
        saved[2 * static_cast<std::size_t>(r->slot) + k].assign(with_guards(n) * item, std::byte{0});
    } else if (const auto* a = std::get_if<unit::AvgPool>(&unit)) {
      pool_plane = std::max(pool_plane, a->ih * a->iw);  // one cell's input planes, summed
    }
  }
  for (auto& b : block) b.assign(with_guards(block_size) * item, std::byte{0});
  for (auto* v : {&mid_k, &mid_t}) v->assign(with_guards(mid) * item, std::byte{0});
  for (auto* v : {&plane_k, &plane_t}) v->assign(with_guards(plane) * item, std::byte{0});
  for (auto* v : {&in_a, &in_b, &out_a, &out_b}) v->assign(with_guards(plane), 0.0);
  pool_sum.assign(static_cast<std::size_t>(pool_plane), 0.0);
  x2_padded.assign(with_guards(plan.input.channels * plan.input.height * (plan.input.width + 2 * pad)), 0.0);
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
