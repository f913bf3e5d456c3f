#include "eqntk/parallel/broadcast.hpp"

#include <mpi.h>

#include <algorithm>
#include <cstdint>
#include <vector>

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

}  // namespace

void broadcast_dataset(io::Dataset& d) {
  broadcast_set(d.train);
  broadcast_set(d.test);
  MPI_Bcast(&d.num_classes, 1, MPI_INT64_T, 0, MPI_COMM_WORLD);
}

}  // namespace eqntk::parallel
