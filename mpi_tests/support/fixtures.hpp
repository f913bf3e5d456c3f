// Test fixtures shared by several test executables (header-only: each links what it uses). The fast path
// of the unit tests (fast_kernel, FastPath) is in engine.hpp.
#pragma once

#include <zlib.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "eqntk/data/image.hpp"
#include "eqntk/kernel/architecture.hpp"
#include "eqntk/kernel/network.hpp"

namespace eqntk::testing {

/// An image of independent standard normal pixels, the same for the same seed on every platform run
/// with libstdc++ (mt19937_64 is specified; normal_distribution is libstdc++'s).
inline data::Image gaussian_image(data::InputShape shape, std::uint64_t seed) {
  std::mt19937_64 gen(seed);
  std::normal_distribution<double> normal(0.0, 1.0);
  data::Image x{shape, std::vector<double>(static_cast<std::size_t>(shape.channels * shape.height * shape.width))};
  for (double& v : x.pixels) v = normal(gen);
  return x;
}

/// A square-or-not image of pixels uniform in [−0.5, 1) (positive mean: pooled kernels far from zero).
inline data::Image uniform_image(data::InputShape shape, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(-0.5, 1.0);
  data::Image img{shape, std::vector<double>(static_cast<std::size_t>(shape.channels * shape.height * shape.width))};
  for (double& v : img.pixels) v = u(rng);
  return img;
}

/// `arch` on channels × size × size images.
inline kernel::Network make_network(const std::string& arch, std::int64_t channels, std::int64_t size) {
  return kernel::Network(kernel::Architecture::parse(arch), data::InputShape{channels, size, size});
}

/// Relative deviation |a − b| / max(|b|, scale), for messages and "must differ" checks.
inline double deviation(double a, double b, double scale = 0.0) {
  return std::abs(a - b) / std::max({std::abs(b), scale, 1e-300});
}

/// A one-member gzip stream of `data` (deflate, as gzip(1) writes).
inline std::string gzip(const std::string& data) {
  z_stream zs{};
  if (deflateInit2(&zs, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
    throw std::runtime_error("deflateInit2");
  std::string out(deflateBound(&zs, static_cast<uLong>(data.size())) + 64, '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  zs.avail_in = static_cast<uInt>(data.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  const int rc = deflate(&zs, Z_FINISH);
  out.resize(zs.total_out);
  deflateEnd(&zs);
  if (rc != Z_STREAM_END) throw std::runtime_error("deflate");
  return out;
}

}  // namespace eqntk::testing
