#include "eqntk/kernel/image.hpp"

#include "eqntk/error.hpp"

namespace eqntk::kernel {

Image transform(const ImageView& x, group::Element g) {
  if (g.r % 2 == 1 && x.height != x.width)
    throw InvalidArgument("rotating an image by an odd number of quarter turns needs a square image");
  Image out{x.shape(), std::vector<double>(static_cast<std::size_t>(x.channels * x.height * x.width))};
  group::transform_planes(g, x.data, x.channels, x.height, x.width, out.pixels.data());
  return out;
}

Image rot90(const ImageView& x, int r) { return transform(x, group::rotation(r)); }

}  // namespace eqntk::kernel
