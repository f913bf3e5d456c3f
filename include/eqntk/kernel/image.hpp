// Images as the kernel engines see them: C×H×W, channel-major, float64, contiguous.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "eqntk/group/point_group.hpp"
#include "eqntk/kernel/network.hpp"

namespace eqntk::kernel {

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

/// ρ(r)x = numpy.rot90(x, r, axes=(H, W)) for every channel (MATH.md §1): out[i][j] = x[j][W−1−i] for r = 1.
/// r may be any integer (taken mod 4). Requires a square image for odd r; throws InvalidArgument otherwise.
[[nodiscard]] Image rot90(const ImageView& x, int r);

/// ρ(g)x = numpy.rot90(mirror^m x, r) for g = (r, m) (MATH.md §10; mirror reverses the column axis).
/// Throws InvalidArgument for odd r on a non-square image.
[[nodiscard]] Image transform(const ImageView& x, group::Element g);

}  // namespace eqntk::kernel
