// Block-cyclic index arithmetic (ScaLAPACK layout) and the sizes that follow from it: tiles and pairs a
// rank owns, local matrix sizes, ScaLAPACK's int limits, file offsets. Pure functions with no MPI, all in
// 64-bit (N² exceeds 2³¹ from N = 46 341), testable on one rank at any N without allocating matrices.
//
// A dimension of n global indices is cut into blocks of nb; block b lives on process b mod P (source
// process 0). Worked example, n = 10, nb = 3, P = 2: blocks {0,1,2}→p0, {3,4,5}→p1, {6,7,8}→p0, {9}→p1;
// p0 holds globals 0,1,2,6,7,8 at locals 0..5 and p1 holds 3,4,5,9 at locals 0..3.
//
// Tiles (gram_builder.hpp): the nb×nb blocks of the N×N training matrix on or below the diagonal
// (block row ≥ block column) and all blocks of the M×N test matrix; a pair is one kernel entry a tile
// must evaluate: K(x_i, x_j) for i ≥ j in the training matrix (N(N+1)/2 in all), every (m, n) in the
// test matrix (M·N). Worked example, N = 5, M = 2, nb = 2, grid 1×2: training blocks 3×3, lower tiles
// (0,0) (1,0) (1,1) (2,0) (2,1) (2,2); process column 0 owns (0,0) (1,0) (2,0) (2,2) with 3+4+2+1 = 10
// pairs, column 1 owns (1,1) (2,1) with 3+2 = 5; 15 = 5·6/2.
#pragma once

#include <algorithm>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "eqntk/error.hpp"

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
  /// Width of block b (nb, or what is left for the last block).
  [[nodiscard]] std::int64_t block_width(std::int64_t b) const { return std::min(nb, n - b * nb); }
  /// Number of blocks b in [0, count) that process `proc` owns.
  [[nodiscard]] std::int64_t owned_blocks_below(std::int64_t count, int proc) const {
    return count <= proc ? 0 : (count - 1 - proc) / nprocs + 1;
  }
};

/// Tiles and pairs (kernel entries to evaluate) of one rank, or of all ranks summed.
struct TileCounts {
  std::int64_t tiles = 0;
  std::int64_t pairs = 0;
  TileCounts& operator+=(const TileCounts& o) {
    tiles += o.tiles;
    pairs += o.pairs;
    return *this;
  }
};

/// Tiles and pairs that process (myrow, mycol) of a prows×pcols grid owns in the Gram build of N
/// training and M test items with block size nb (the layout of gram_builder.hpp; see the worked example
/// above). O(blocks / prows) operations, no allocation. Preconditions: n_train, n_test ≥ 0, nb ≥ 1.
[[nodiscard]] inline TileCounts owned_tiles(std::int64_t n_train, std::int64_t n_test, std::int64_t nb, int prows,
                                            int pcols, int myrow, int mycol) {
  const BlockCyclic1D train_rows{n_train, nb, prows}, test_rows{n_test, nb, prows}, cols{n_train, nb, pcols};
  const std::int64_t col_blocks = cols.blocks();
  TileCounts c;
  // Training matrix: block columns bj ≤ bi owned by mycol. All but the last block are nb wide, and the
  // last (partial) one is ≤ bi only when bi is the last block itself.
  for (std::int64_t bi = myrow; bi < train_rows.blocks(); bi += prows) {
    const std::int64_t rows = train_rows.block_width(bi);
    const std::int64_t below = cols.owned_blocks_below(bi, mycol);  // bj < bi: full nb-wide blocks
    c.tiles += below;
    c.pairs += below * rows * nb;
    if (bi % pcols == mycol) {  // the diagonal tile: entries i ≥ j of a rows×rows block
      c.tiles += 1;
      c.pairs += rows * (rows + 1) / 2;
    }
  }
  // Test matrix: every owned block; the owned column widths sum to the local column count.
  const std::int64_t owned_cols = cols.local_size(mycol);
  const std::int64_t owned_col_blocks = cols.owned_blocks_below(col_blocks, mycol);
  for (std::int64_t bi = myrow; bi < test_rows.blocks(); bi += prows) {
    c.tiles += owned_col_blocks;
    c.pairs += test_rows.block_width(bi) * owned_cols;
  }
  return c;
}

/// Sum of owned_tiles over the grid: tiles of the whole build, pairs = N(N+1)/2 + M·N.
[[nodiscard]] inline TileCounts total_tiles(std::int64_t n_train, std::int64_t n_test, std::int64_t nb) {
  return owned_tiles(n_train, n_test, nb, 1, 1, 0, 0);
}

/// The global indices process `proc` owns in `d`, increasing (its rows or columns of a matrix).
[[nodiscard]] inline std::vector<std::int64_t> owned_indices(const BlockCyclic1D& d, int proc) {
  std::vector<std::int64_t> out;
  out.reserve(static_cast<std::size_t>(d.local_size(proc)));
  for (std::int64_t b = proc; b < d.blocks(); b += d.nprocs)
    for (std::int64_t g = b * d.nb; g < b * d.nb + d.block_width(b); ++g) out.push_back(g);
  return out;
}

/// The images process (myrow, mycol) of a prows×pcols grid needs in the Gram build of N training and M
/// test images (block size nb): exactly the rows and columns of the tiles it owns (training images of its
/// block rows and block columns, test images of its block rows), O(N/prows + N/pcols + M/prows) of them,
/// increasing.
struct HeldImages {
  std::vector<std::int64_t> train, test;
};
[[nodiscard]] inline HeldImages held_images(std::int64_t n_train, std::int64_t n_test, std::int64_t nb, int prows,
                                            int pcols, int myrow, int mycol) {
  const BlockCyclic1D rows{n_train, nb, prows}, test_rows{n_test, nb, prows};
  const std::int64_t blocks = rows.blocks();
  // Training block bi is a row of an owned lower tile iff some owned column block bj ≤ bi exists
  // (bi ≥ mycol); block bj is a column of one iff an owned test row block exists or some owned
  // training row block bi ≥ bj does (the last owned one is ≥ bj).
  const std::int64_t last_row_block = blocks - 1 - ((blocks - 1 - myrow) % prows + prows) % prows;
  const bool test_rows_owned = test_rows.blocks() > myrow;
  HeldImages h;
  for (std::int64_t b = 0; b < blocks; ++b) {
    const bool as_row = b % prows == myrow && b >= mycol;
    const bool as_col = b % pcols == mycol && (test_rows_owned || (blocks > myrow && b <= last_row_block));
    if (as_row || as_col)
      for (std::int64_t g = b * nb; g < b * nb + rows.block_width(b); ++g) h.train.push_back(g);
  }
  h.test = owned_indices(test_rows, myrow);
  return h;
}

/// Largest local part (elements) of an m×n matrix over the ranks of a prows×pcols grid, block size nb:
/// the local part of process (0, 0), which owns the most rows and columns.
[[nodiscard]] inline std::int64_t max_local_part(std::int64_t m, std::int64_t n, std::int64_t nb, int prows, int pcols) {
  return BlockCyclic1D{m, nb, prows}.local_size(0) * BlockCyclic1D{n, nb, pcols}.local_size(0);
}

/// ScaLAPACK (LP64) stores dimensions and leading dimensions in int and indexes a local array with int
/// arithmetic (lld·(j−1)+i), so m, n, nb and every local part's element count must stay below 2³¹.
/// Throws InvalidArgument naming the matrix, the grid and the remedy otherwise.
inline void check_scalapack_sizes(const std::string& what, std::int64_t m, std::int64_t n, std::int64_t nb, int prows,
                                  int pcols) {
  constexpr std::int64_t kIntMax = std::numeric_limits<int>::max();
  if (m > kIntMax || n > kIntMax || nb > kIntMax)
    throw InvalidArgument(what + " is " + std::to_string(m) + "x" + std::to_string(n) + " with block size " +
                          std::to_string(nb) + ": ScaLAPACK dimensions must be below 2^31");
  const std::int64_t local = max_local_part(m, n, nb, prows, pcols);
  if (local > kIntMax)
    throw InvalidArgument(what + " (" + std::to_string(m) + "x" + std::to_string(n) + ") on a " + std::to_string(prows) +
                          "x" + std::to_string(pcols) + " grid puts " + std::to_string(local) +
                          " entries on one rank, more than ScaLAPACK's int indexing allows (2^31 - 1): use more ranks");
}

/// Minimal pdsyevr workspace LWORK (doubles) for all eigenpairs of an n×n matrix with block size nb on a
/// prows×pcols grid, the formula of pdsyevr's documentation (JOBZ='V', NEIG = n):
///   2 + 5n + max(18·NN, NP0·MQ0 + 2·nb²) + (2 + ⌈n / (prows·pcols)⌉)·NN,  NN = max(n, nb, 2),
///   NP0 = NUMROC(n, nb, 0, 0, prows), MQ0 = NUMROC(NN, nb, 0, 0, pcols).
/// Example: n = 10, nb = 3, 2×2 grid: NN = 10, NP0 = MQ0 = 6, LWORK = 2 + 50 + 180 + 5·10 = 282.
[[nodiscard]] inline std::int64_t pdsyevr_lwork(std::int64_t n, std::int64_t nb, int prows, int pcols) {
  const std::int64_t nn = std::max({n, nb, std::int64_t{2}});
  const std::int64_t np0 = BlockCyclic1D{n, nb, prows}.local_size(0);
  const std::int64_t mq0 = BlockCyclic1D{nn, nb, pcols}.local_size(0);
  const std::int64_t p = std::int64_t{prows} * pcols;
  return 2 + 5 * n + std::max(18 * nn, np0 * mq0 + 2 * nb * nb) + (2 + (n + p - 1) / p) * nn;
}

/// Byte offset of entry (i, j) of a rows×cols float64 matrix stored in C order after a header of
/// header_bytes bytes (an .npy file written with MPI-IO). 64-bit: N² · 8 exceeds 2³¹ from N = 16 384.
[[nodiscard]] inline std::int64_t npy_entry_offset(std::int64_t header_bytes, std::int64_t i, std::int64_t j,
                                                   std::int64_t cols) {
  return header_bytes + (i * cols + j) * static_cast<std::int64_t>(sizeof(double));
}

/// Bytes of one checkpoint record of a rows×cols tile (io/checkpoint.hpp: a 56-byte header, then the
/// NNGP and NTK values as float64).
[[nodiscard]] inline std::int64_t checkpoint_record_bytes(std::int64_t rows, std::int64_t cols) {
  return 56 + 2 * rows * cols * static_cast<std::int64_t>(sizeof(double));
}

}  // namespace eqntk::parallel
