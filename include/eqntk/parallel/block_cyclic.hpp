// Block-cyclic index arithmetic (ScaLAPACK layout), pure functions with no MPI.
//
// A dimension of n global indices is cut into blocks of nb; block b lives on process b mod P (source
// process 0). Worked example, n = 10, nb = 3, P = 2: blocks {0,1,2}→p0, {3,4,5}→p1, {6,7,8}→p0, {9}→p1;
// p0 holds globals 0,1,2,6,7,8 at locals 0..5 and p1 holds 3,4,5,9 at locals 0..3.
#pragma once

#include <cstdint>

namespace eqntk::parallel {

/// One dimension of a block-cyclic distribution. Preconditions: n ≥ 0, nb ≥ 1, nprocs ≥ 1.
struct BlockCyclic1D {
  std::int64_t n = 0;
  std::int64_t nb = 1;
  int nprocs = 1;

  /// Process that owns global index g.
  [[nodiscard]] int owner(std::int64_t g) const { return static_cast<int>((g / nb) % nprocs); }
  /// Local index of global g on its owner.
  [[nodiscard]] std::int64_t local_index(std::int64_t g) const { return (g / (nb * nprocs)) * nb + g % nb; }
  /// Global index of local index l on process `proc`.
  [[nodiscard]] std::int64_t global_index(std::int64_t l, int proc) const {
    return ((l / nb) * nprocs + proc) * nb + l % nb;
  }
  /// Number of indices process `proc` owns (ScaLAPACK's NUMROC).
  [[nodiscard]] std::int64_t local_size(int proc) const {
    const std::int64_t blocks = n / nb;
    std::int64_t size = (blocks / nprocs) * nb;
    const std::int64_t extra = blocks % nprocs;
    if (proc < extra) size += nb;
    else if (proc == extra) size += n % nb;
    return size;
  }
  /// The most indices any process owns (process 0's share): equal on every rank, so checks based on it
  /// reach the same verdict everywhere.
  [[nodiscard]] std::int64_t max_local_size() const { return local_size(0); }
  /// Number of blocks (the last may be partial).
  [[nodiscard]] std::int64_t blocks() const { return (n + nb - 1) / nb; }
};

}  // namespace eqntk::parallel
