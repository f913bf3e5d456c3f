// Images as every module sees them (the kernel engines, io, the GPU executor, the SO(3) and finite
// networks, the tools): C×H×W, channel-major, float64, contiguous. Plain data, no dependencies; the group
// action on images (rot90, transform) is in group/image_action.hpp, the loaders in io/dataset.hpp.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

namespace eqntk::data {

/// Shape of one input image: C channels, H×W pixels.
struct InputShape {
  std::int64_t channels = 1;
  std::int64_t height = 1;
  std::int64_t width = 1;
  friend bool operator==(const InputShape&, const InputShape&) = default;
};

/// Non-owning view of one image in CHW order: data[(c·H + i)·W + j].
struct ImageView {
  const double* data = nullptr;
  std::int64_t channels = 0;
  std::int64_t height = 0;
  std::int64_t width = 0;
  [[nodiscard]] InputShape shape() const { return {channels, height, width}; }
  [[nodiscard]] double at(std::int64_t c, std::int64_t i, std::int64_t j) const { return data[(c * height + i) * width + j]; }
};

/// An owning CHW image.
struct Image {
  InputShape shape;
  std::vector<double> pixels;  // size C·H·W
  [[nodiscard]] ImageView view() const { return {pixels.data(), shape.channels, shape.height, shape.width}; }
};

/// A set of `count` images of one shape, CHW float64 each, contiguous. Dense (held empty): image i starts
/// at pixels[i·C·H·W]. Partial (a rank's share of a distributed set): only the images listed in `held`
/// (strictly increasing indices into the whole set) are stored, the k-th of them at pixels[k·C·H·W];
/// view(i) of an image not held is a precondition violation.
struct ImageSet {
  InputShape shape;
  std::int64_t count = 0;
  std::vector<double> pixels;
  std::vector<std::int64_t> held{};
  [[nodiscard]] std::int64_t image_size() const { return shape.channels * shape.height * shape.width; }
  /// Position of image i in `pixels` (i itself for a dense set); -1 when a partial set lacks it.
  [[nodiscard]] std::int64_t slot(std::int64_t i) const {
    if (held.empty()) return i;
    const auto it = std::lower_bound(held.begin(), held.end(), i);
    return it != held.end() && *it == i ? it - held.begin() : -1;
  }
  [[nodiscard]] ImageView view(std::int64_t i) const {
    return {pixels.data() + slot(i) * image_size(), shape.channels, shape.height, shape.width};
  }
};

}  // namespace eqntk::data
