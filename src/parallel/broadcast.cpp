#include "eqntk/parallel/broadcast.hpp"

#include <mpi.h>

#include <algorithm>
#include <cstdint>
#include <vector>

#include "eqntk/parallel/block_cyclic.hpp"

namespace eqntk::parallel {
namespace {

template <typename T>
void broadcast_vector(std::vector<T>& v, MPI_Datatype type) {
  std::int64_t n = static_cast<std::int64_t>(v.size());
  MPI_Bcast(&n, 1, MPI_INT64_T, 0, MPI_COMM_WORLD);
  v.resize(static_cast<std::size_t>(n));
  constexpr std::int64_t kChunk = std::int64_t{1} << 26;
  for (std::int64_t off = 0; off < n; off += kChunk)
    MPI_Bcast(v.data() + off, static_cast<int>(std::min(kChunk, n - off)), type, 0, MPI_COMM_WORLD);
}

void broadcast_set(io::LabeledSet& s) {
  std::int64_t meta[6] = {s.images.shape.channels,          s.images.shape.height, s.images.shape.width, s.images.count,
                          s.targets.classification ? 1 : 0, s.targets.dim};
  MPI_Bcast(meta, 6, MPI_INT64_T, 0, MPI_COMM_WORLD);
  s.images.shape = {meta[0], meta[1], meta[2]};
  s.images.count = meta[3];
  s.targets.classification = meta[4] != 0;
  s.targets.dim = meta[5];
  broadcast_vector(s.images.pixels, MPI_DOUBLE);
  broadcast_vector(s.targets.classes, MPI_INT64_T);
  broadcast_vector(s.targets.values, MPI_DOUBLE);
  broadcast_vector(s.source_index, MPI_INT64_T);
  broadcast_vector(s.rotation, MPI_INT);
}

// Sends / receives doubles in chunks whose MPI counts fit in int.
void send_doubles(const std::vector<double>& v, int dest) {
  constexpr std::int64_t kChunk = std::int64_t{1} << 26;
  const auto n = static_cast<std::int64_t>(v.size());
  for (std::int64_t off = 0; off < n; off += kChunk)
    MPI_Send(v.data() + off, static_cast<int>(std::min(kChunk, n - off)), MPI_DOUBLE, dest, 0, MPI_COMM_WORLD);
}
void recv_doubles(std::vector<double>& v) {
  constexpr std::int64_t kChunk = std::int64_t{1} << 26;
  const auto n = static_cast<std::int64_t>(v.size());
  for (std::int64_t off = 0; off < n; off += kChunk)
    MPI_Recv(v.data() + off, static_cast<int>(std::min(kChunk, n - off)), MPI_DOUBLE, 0, 0, MPI_COMM_WORLD,
             MPI_STATUS_IGNORE);
}

// The images `held` of a dense set, packed in order.
std::vector<double> pack(const data::ImageSet& dense, const std::vector<std::int64_t>& held) {
  const std::int64_t sz = dense.image_size();
  std::vector<double> out(static_cast<std::size_t>(sz * static_cast<std::int64_t>(held.size())));
  for (std::size_t k = 0; k < held.size(); ++k)
    std::copy_n(dense.pixels.begin() + held[k] * sz, sz, out.begin() + static_cast<std::int64_t>(k) * sz);
  return out;
}

// Makes `set` hold exactly `held` (dense when that is every image).
void adopt(data::ImageSet& set, std::vector<std::int64_t> held, std::vector<double> pixels) {
  const bool all = static_cast<std::int64_t>(held.size()) == set.count;
  set.pixels = std::move(pixels);
  set.held = all ? std::vector<std::int64_t>{} : std::move(held);
}

}  // namespace

void distribute_dataset(io::Dataset& d, int prows, int pcols, std::int64_t nb) {
  int rank = 0, size = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  // Everything but the pixels goes to every rank.
  std::vector<double> train_pixels = std::move(d.train.images.pixels), test_pixels = std::move(d.test.images.pixels);
  d.train.images.pixels.clear();
  d.test.images.pixels.clear();
  broadcast_dataset(d);
  const std::int64_t n = d.train.images.count, m = d.test.images.count;
  const auto held_of = [&](int r) { return held_images(n, m, nb, prows, pcols, r / pcols, r % pcols); };
  if (rank == 0) {
    d.train.images.pixels = std::move(train_pixels);
    d.test.images.pixels = std::move(test_pixels);
    for (int r = 1; r < size; ++r) {  // one destination's share at a time: rank 0 adds at most one share
      const HeldImages h = held_of(r);
      send_doubles(pack(d.train.images, h.train), r);
      send_doubles(pack(d.test.images, h.test), r);
    }
    HeldImages mine = held_of(0);
    std::vector<double> train_mine = pack(d.train.images, mine.train), test_mine = pack(d.test.images, mine.test);
    adopt(d.train.images, std::move(mine.train), std::move(train_mine));
    adopt(d.test.images, std::move(mine.test), std::move(test_mine));
  } else {
    HeldImages mine = held_of(rank);
    std::vector<double> train_mine(static_cast<std::size_t>(static_cast<std::int64_t>(mine.train.size()) *
                                                            d.train.images.image_size()));
    std::vector<double> test_mine(static_cast<std::size_t>(static_cast<std::int64_t>(mine.test.size()) *
                                                           d.test.images.image_size()));
    recv_doubles(train_mine);
    recv_doubles(test_mine);
    adopt(d.train.images, std::move(mine.train), std::move(train_mine));
    adopt(d.test.images, std::move(mine.test), std::move(test_mine));
  }
}

void broadcast_dataset(io::Dataset& d) {
  broadcast_set(d.train);
  broadcast_set(d.test);
  MPI_Bcast(&d.num_classes, 1, MPI_INT64_T, 0, MPI_COMM_WORLD);
}

}  // namespace eqntk::parallel
