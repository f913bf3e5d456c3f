#include "eqntk/parallel/broadcast.hpp"

#include <mpi.h>

#include <algorithm>
#include <complex>
#include <cstdint>
#include <vector>

#include "eqntk/parallel/block_cyclic.hpp"

namespace eqntk::parallel {
namespace {

// `per_element`: MPI items of `type` per element (2 for std::complex<double> as MPI_DOUBLE).
template <typename T>
void broadcast_vector(std::vector<T>& v, MPI_Datatype type, int per_element = 1) {
  std::int64_t n = static_cast<std::int64_t>(v.size());
  MPI_Bcast(&n, 1, MPI_INT64_T, 0, MPI_COMM_WORLD);
  v.resize(static_cast<std::size_t>(n));
  constexpr std::int64_t kChunk = std::int64_t{1} << 26;
  for (std::int64_t off = 0; off < n; off += kChunk)
    MPI_Bcast(v.data() + off, static_cast<int>(std::min(kChunk, n - off) * per_element), type, 0, MPI_COMM_WORLD);
}

void append(std::vector<std::complex<double>>& out, const so3::Signal& x) {
  out.insert(out.end(), x.coefficients().begin(), x.coefficients().end());
}

so3::Signal take(const std::complex<double>*& p, int band_limit, int channels) {
  so3::Signal x(band_limit, channels);
  for (int c = 0; c < channels; ++c)
    for (int l = 0; l < band_limit; ++l)
      for (int m = 0; m <= l; ++m) x.set(c, l, m, *p++);
  return x;
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

void broadcast_so3_items(io::So3Items& items) {
  std::int64_t meta[4] = {items.molecules ? 1 : 0, static_cast<std::int64_t>(items.kind), items.band_limit, items.channels};
  MPI_Bcast(meta, 4, MPI_INT64_T, 0, MPI_COMM_WORLD);
  items.molecules = meta[0] != 0;
  items.kind = static_cast<io::InputKind>(meta[1]);
  items.band_limit = static_cast<int>(meta[2]);
  items.channels = static_cast<int>(meta[3]);
  broadcast_vector(items.channel_scale, MPI_DOUBLE);
  for (int s = 0; s < 2; ++s) {
    // Atom counts per molecule (molecules) or the item count (signals), then every coefficient.
    std::vector<std::int64_t> sizes;
    std::vector<std::complex<double>> coeffs;
    if (items.molecules)
      for (const auto& m : items.atoms[s]) {
        sizes.push_back(static_cast<std::int64_t>(m.size()));
        for (const so3::Signal& x : m) append(coeffs, x);
      }
    else {
      sizes.push_back(static_cast<std::int64_t>(items.signals[s].size()));
      for (const so3::Signal& x : items.signals[s]) append(coeffs, x);
    }
    broadcast_vector(sizes, MPI_INT64_T);
    broadcast_vector(coeffs, MPI_DOUBLE, 2);  // std::complex<double> is two doubles
    const std::complex<double>* p = coeffs.data();
    if (items.molecules) {
      items.atoms[s].assign(sizes.size(), {});
      for (std::size_t i = 0; i < sizes.size(); ++i)
        for (std::int64_t a = 0; a < sizes[i]; ++a) items.atoms[s][i].push_back(take(p, items.band_limit, items.channels));
    } else {
      items.signals[s].clear();
      for (std::int64_t i = 0; i < sizes.at(0); ++i) items.signals[s].push_back(take(p, items.band_limit, items.channels));
    }
  }
}

void broadcast_grid_choice(so3::GridChoice& g) {
  std::int64_t ints[8] = {g.n, g.forced ? 1 : 0, g.capped ? 1 : 0, g.n_max, g.sample_items,
                          static_cast<std::int64_t>(g.ladder.size()), g.coarse_n, g.coarse_n_beta};
  double reals[4] = {g.estimate, g.tolerance, g.coarse_peak, g.coarse_estimate};
  MPI_Bcast(ints, 8, MPI_INT64_T, 0, MPI_COMM_WORLD);
  MPI_Bcast(reals, 4, MPI_DOUBLE, 0, MPI_COMM_WORLD);
  g.ladder.resize(static_cast<std::size_t>(ints[5]));
  MPI_Bcast(g.ladder.data(), static_cast<int>(g.ladder.size()), MPI_INT, 0, MPI_COMM_WORLD);
  g.n = static_cast<int>(ints[0]);
  g.forced = ints[1] != 0;
  g.capped = ints[2] != 0;
  g.n_max = static_cast<int>(ints[3]);
  g.sample_items = static_cast<int>(ints[4]);
  g.coarse_n = static_cast<int>(ints[6]);
  g.coarse_n_beta = static_cast<int>(ints[7]);
  g.estimate = reals[0];
  g.tolerance = reals[1];
  g.coarse_peak = reals[2];
  g.coarse_estimate = reals[3];
}

}  // namespace eqntk::parallel
