#include "eqntk/group/image_action.hpp"

#include "eqntk/error.hpp"

namespace eqntk::group {

data::Image transform(const data::ImageView& x, Element g) {
  if (g.r % 2 == 1 && x.height != x.width)
    throw InvalidArgument("rotating an image by an odd number of quarter turns needs a square image");
  data::Image out{x.shape(), std::vector<double>(static_cast<std::size_t>(x.channels * x.height * x.width))};
  transform_planes(g, x.data, x.channels, x.height, x.width, out.pixels.data());
  return out;
}

data::Image rot90(const data::ImageView& x, int r) { return transform(x, rotation(r)); }

}  // namespace eqntk::group
