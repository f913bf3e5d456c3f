// The point-group action on whole images (MATH.md §1, §10): ρ(g)x for a data::Image, built on
// transform_planes (point_group.hpp), which holds the index rule. point_group.hpp itself stays free of
// any image type; this header is where the group meets the data module.
#pragma once

#include "eqntk/data/image.hpp"
#include "eqntk/group/point_group.hpp"

namespace eqntk::group {

/// ρ(g)x = numpy.rot90(mirror^m x, r) for g = (r, m) (MATH.md §10; mirror reverses the column axis).
/// Throws InvalidArgument for odd r on a non-square image.
[[nodiscard]] data::Image transform(const data::ImageView& x, Element g);

/// ρ(r)x = numpy.rot90(x, r, axes=(H, W)) for every channel (MATH.md §1): out[i][j] = x[j][W−1−i] for r = 1.
/// r may be any integer (taken mod 4). Requires a square image for odd r; throws InvalidArgument otherwise.
[[nodiscard]] data::Image rot90(const data::ImageView& x, int r);

}  // namespace eqntk::group
