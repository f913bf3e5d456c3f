#include "../kernel/isa.hpp"
#include "pointwise.hpp"

namespace eqntk::so3::detail {

using kernel::detail::Isa;

ChainFn chain_for_cpu() {
  const Isa isa = kernel::detail::best_isa();
  return isa == Isa::avx512 ? &isa_avx512::chain : isa == Isa::avx2 ? &isa_avx2::chain : &isa_baseline::chain;
}

GridChainFn grid_chain_for_cpu() {
  const Isa isa = kernel::detail::best_isa();
  return isa == Isa::avx512 ? &isa_avx512::grid_chain
         : isa == Isa::avx2 ? &isa_avx2::grid_chain
                            : &isa_baseline::grid_chain;
}

}  // namespace eqntk::so3::detail
