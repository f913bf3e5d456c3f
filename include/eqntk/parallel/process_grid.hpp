// The BLACS process grid (Elemental-style: one object owns the context) and distributed matrices in
// ScaLAPACK block-cyclic layout.
#pragma once

#include <array>
#include <cstdint>
#include <string_view>
#include <utility>
#include <vector>

#include "eqntk/parallel/block_cyclic.hpp"

namespace eqntk::parallel {

/// A prows×pcols BLACS grid over MPI_COMM_WORLD in row-major rank order (rank = myrow·pcols + mycol).
/// Construction and destruction are collective. Requires prows·pcols == number of MPI ranks.
class ProcessGrid {
 public:
  ProcessGrid(int prows, int pcols);
  ~ProcessGrid();
  ProcessGrid(const ProcessGrid&) = delete;
  ProcessGrid& operator=(const ProcessGrid&) = delete;

  /// The most nearly square factorisation prows·pcols = nranks with prows ≤ pcols (e.g. 6 → 2×3, 7 → 1×7).
  [[nodiscard]] static std::pair<int, int> near_square(int nranks);
  /// Parses "PxQ" and checks P·Q == nranks; "" or "auto" gives near_square. Throws InvalidArgument.
  [[nodiscard]] static std::pair<int, int> parse_shape(std::string_view text, int nranks);

  [[nodiscard]] int context() const { return context_; }
  [[nodiscard]] int prows() const { return prows_; }
  [[nodiscard]] int pcols() const { return pcols_; }
  [[nodiscard]] int myrow() const { return myrow_; }
  [[nodiscard]] int mycol() const { return mycol_; }
  [[nodiscard]] int rank() const { return myrow_ * pcols_ + mycol_; }
  [[nodiscard]] int size() const { return prows_ * pcols_; }

 private:
  int context_ = -1;
  int prows_ = 1, pcols_ = 1, myrow_ = 0, mycol_ = 0;
};

/// A dense m×n matrix distributed block-cyclically with square nb×nb blocks over a ProcessGrid; each
/// rank stores its local part column-major with leading dimension lld() ≥ 1 (ScaLAPACK convention).
class DistMatrix {
 public:
  /// Collective-free. Throws InvalidArgument when m, n < 0, nb < 1 or an index exceeds int range.
  DistMatrix(const ProcessGrid& grid, std::int64_t m, std::int64_t n, std::int64_t nb);

  [[nodiscard]] std::int64_t rows() const { return rows_.n; }
  [[nodiscard]] std::int64_t cols() const { return cols_.n; }
  [[nodiscard]] std::int64_t block_size() const { return rows_.nb; }
  [[nodiscard]] const BlockCyclic1D& row_dist() const { return rows_; }
  [[nodiscard]] const BlockCyclic1D& col_dist() const { return cols_; }
  [[nodiscard]] std::int64_t local_rows() const { return local_rows_; }
  [[nodiscard]] std::int64_t local_cols() const { return local_cols_; }
  [[nodiscard]] int lld() const { return desc_[8]; }
  [[nodiscard]] const int* desc() const { return desc_.data(); }
  [[nodiscard]] double* data() { return local_.data(); }
  [[nodiscard]] const double* data() const { return local_.data(); }
  [[nodiscard]] double& local(std::int64_t li, std::int64_t lj) { return local_[static_cast<std::size_t>(li + lj * lld())]; }
  [[nodiscard]] double local(std::int64_t li, std::int64_t lj) const { return local_[static_cast<std::size_t>(li + lj * lld())]; }
  /// Global row/column of a local index on this rank.
  [[nodiscard]] std::int64_t global_row(std::int64_t li) const { return rows_.global_index(li, myrow_); }
  [[nodiscard]] std::int64_t global_col(std::int64_t lj) const { return cols_.global_index(lj, mycol_); }
  [[nodiscard]] const ProcessGrid& grid() const { return *grid_; }

 private:
  const ProcessGrid* grid_;
  BlockCyclic1D rows_, cols_;
  int myrow_ = 0, mycol_ = 0;
  std::int64_t local_rows_ = 0, local_cols_ = 0;
  std::array<int, 9> desc_{};
  std::vector<double> local_;
};

}  // namespace eqntk::parallel
