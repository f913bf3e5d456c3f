#include "eqntk/kernel/problem.hpp"

#include "eqntk/error.hpp"
#include "isa.hpp"

namespace eqntk::kernel {

const char* instruction_set() {
  return detail::isa_name(detail::best_isa());
}

ImageItems::ImageItems(const Network& net, const data::ImageSet& train, const data::ImageSet& test, Precision precision)
    : net_(net), train_(train), test_(test), precision_(precision) {
  if (!(train.shape == net.input_shape()) || !(test.shape == net.input_shape()))
    throw InvalidArgument("image shapes do not match the network input");
}

}  // namespace eqntk::kernel
