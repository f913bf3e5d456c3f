#include "eqntk/kernel/image.hpp"

#include "eqntk/error.hpp"

namespace eqntk::kernel {

Image rot90(const ImageView& x, int r) {
  r = ((r % 4) + 4) % 4;
  if (r % 2 == 1 && x.height != x.width) throw InvalidArgument("rot90 by an odd number of quarter turns needs a square image");
  Image out{x.shape(), std::vector<double>(static_cast<std::size_t>(x.channels * x.height * x.width))};
  const std::int64_t n = x.height, m = x.width;
  for (std::int64_t c = 0; c < x.channels; ++c)
    for (std::int64_t i = 0; i < n; ++i)
      for (std::int64_t j = 0; j < m; ++j) {
        // numpy.rot90 counter-clockwise: one quarter turn maps out[i][j] = in[j][n-1-i].
        std::int64_t si = i, sj = j;
        for (int k = 0; k < r; ++k) {
          const std::int64_t ti = sj, tj = n - 1 - si;
          si = ti;
          sj = tj;
        }
        out.pixels[static_cast<std::size_t>((c * n + i) * m + j)] = x.at(c, si, sj);
      }
  return out;
}

}  // namespace eqntk::kernel
