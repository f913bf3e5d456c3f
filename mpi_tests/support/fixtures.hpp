// Test fixtures shared by several test executables (header-only: each links what it uses).
#pragma once

#include <zlib.h>

#include <cstdint>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "eqntk/kernel/image.hpp"

namespace eqntk::testing {

/// An image of independent standard normal pixels, the same for the same seed on every platform run
/// with libstdc++ (mt19937_64 is specified; normal_distribution is libstdc++'s).
inline kernel::Image gaussian_image(kernel::InputShape shape, std::uint64_t seed) {
  std::mt19937_64 gen(seed);
  std::normal_distribution<double> normal(0.0, 1.0);
  kernel::Image x{shape, std::vector<double>(static_cast<std::size_t>(shape.channels * shape.height * shape.width))};
  for (double& v : x.pixels) v = normal(gen);
  return x;
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
