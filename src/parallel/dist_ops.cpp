#include "eqntk/parallel/dist_ops.hpp"

#include <mpi.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "eqntk/error.hpp"
#include "scalapack.hpp"

namespace eqntk::parallel {
namespace {

int as_int(std::int64_t v) { return static_cast<int>(v); }  // DistMatrix checked the range on construction

}  // namespace

void gemm(char trans_a, char trans_b, double alpha, const DistMatrix& a, const DistMatrix& b, double beta,
          DistMatrix& c) {
  const std::int64_t m = trans_a == 'N' ? a.rows() : a.cols();
  const std::int64_t k = trans_a == 'N' ? a.cols() : a.rows();
  const std::int64_t kb = trans_b == 'N' ? b.rows() : b.cols();
  const std::int64_t n = trans_b == 'N' ? b.cols() : b.rows();
  if (k != kb || c.rows() != m || c.cols() != n)
    throw InvalidArgument("gemm: op(A) is " + std::to_string(m) + "x" + std::to_string(k) + ", op(B) is " +
                          std::to_string(kb) + "x" + std::to_string(n) + ", C is " + std::to_string(c.rows()) + "x" +
                          std::to_string(c.cols()));
  if (m == 0 || n == 0) return;
  if (k == 0) {
    for (std::int64_t j = 0; j < c.local_cols(); ++j)
      for (std::int64_t i = 0; i < c.local_rows(); ++i) c.local(i, j) *= beta;
    return;
  }
  const int im = as_int(m), in = as_int(n), ik = as_int(k), one = 1;
  pdgemm_(&trans_a, &trans_b, &im, &in, &ik, &alpha, a.data(), &one, &one, a.desc(), b.data(), &one, &one, b.desc(),
          &beta, c.data(), &one, &one, c.desc());
}

DistMatrix distribute(const ProcessGrid& grid, const std::vector<double>& full, std::int64_t rows, std::int64_t cols,
                      std::int64_t nb) {
  DistMatrix a(grid, rows, cols, nb);
  for (std::int64_t lj = 0; lj < a.local_cols(); ++lj) {
    const std::int64_t gj = a.global_col(lj);
    for (std::int64_t li = 0; li < a.local_rows(); ++li) a.local(li, lj) = full[static_cast<std::size_t>(a.global_row(li) * cols + gj)];
  }
  return a;
}

std::vector<double> replicate(const DistMatrix& a) {
  std::vector<double> full(static_cast<std::size_t>(a.rows() * a.cols()), 0.0);
  for (std::int64_t lj = 0; lj < a.local_cols(); ++lj) {
    const std::int64_t gj = a.global_col(lj);
    for (std::int64_t li = 0; li < a.local_rows(); ++li) full[static_cast<std::size_t>(a.global_row(li) * a.cols() + gj)] = a.local(li, lj);
  }
  // Each entry is non-zero on one rank only, so the sum is an exact copy.
  if (!full.empty())
    MPI_Allreduce(MPI_IN_PLACE, full.data(), static_cast<int>(full.size()), MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
  return full;
}

DistMatrix symmetrize_lower(const DistMatrix& lower) {
  DistMatrix transposed(lower.grid(), lower.cols(), lower.rows(), lower.block_size());
  if (lower.rows() > 0) {
    const int m = as_int(lower.rows()), n = as_int(lower.cols()), one = 1;
    const double alpha = 1.0, beta = 0.0;
    pdtran_(&n, &m, &alpha, lower.data(), &one, &one, lower.desc(), &beta, transposed.data(), &one, &one, transposed.desc());
  }
  DistMatrix full = lower;
  for (std::int64_t lj = 0; lj < full.local_cols(); ++lj) {
    const std::int64_t gj = full.global_col(lj);
    for (std::int64_t li = 0; li < full.local_rows(); ++li)
      if (full.global_row(li) < gj) full.local(li, lj) = transposed.local(li, lj);
  }
  return full;
}

std::vector<double> row_dots(const DistMatrix& a, const DistMatrix& b) {
  if (a.rows() != b.rows() || a.cols() != b.cols() || a.block_size() != b.block_size())
    throw InvalidArgument("row_dots: matrices of different layout");
  std::vector<double> dots(static_cast<std::size_t>(a.rows()), 0.0);
  for (std::int64_t li = 0; li < a.local_rows(); ++li) {
    double s = 0.0;
    for (std::int64_t lj = 0; lj < a.local_cols(); ++lj) s += a.local(li, lj) * b.local(li, lj);
    dots[static_cast<std::size_t>(a.global_row(li))] = s;
  }
  if (!dots.empty())
    MPI_Allreduce(MPI_IN_PLACE, dots.data(), static_cast<int>(dots.size()), MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
  return dots;
}

double trace(const DistMatrix& a) {
  // Gather the diagonal exactly, then sum in index order: the result does not depend on the grid.
  const std::int64_t n = std::min(a.rows(), a.cols());
  std::vector<double> diag(static_cast<std::size_t>(n), 0.0);
  for (std::int64_t lj = 0; lj < a.local_cols(); ++lj) {
    const std::int64_t gj = a.global_col(lj);
    for (std::int64_t li = 0; li < a.local_rows(); ++li)
      if (a.global_row(li) == gj) diag[static_cast<std::size_t>(gj)] = a.local(li, lj);
  }
  if (n > 0) MPI_Allreduce(MPI_IN_PLACE, diag.data(), static_cast<int>(n), MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
  double s = 0.0;
  for (const double d : diag) s += d;
  return s;
}

void add_to_diagonal(DistMatrix& a, double value) {
  for (std::int64_t lj = 0; lj < a.local_cols(); ++lj) {
    const std::int64_t gj = a.global_col(lj);
    for (std::int64_t li = 0; li < a.local_rows(); ++li)
      if (a.global_row(li) == gj) a.local(li, lj) += value;
  }
}

NonFinite find_non_finite(const DistMatrix& a, bool lower_only) {
  // Local count and the first position in column-major order (col·rows + row), minimised over the ranks.
  std::int64_t local[2] = {0, std::numeric_limits<std::int64_t>::max()};
  for (std::int64_t lj = 0; lj < a.local_cols(); ++lj) {
    const std::int64_t j = a.global_col(lj);
    for (std::int64_t li = 0; li < a.local_rows(); ++li) {
      const std::int64_t i = a.global_row(li);
      if ((lower_only && i < j) || std::isfinite(a.local(li, lj))) continue;
      ++local[0];
      local[1] = std::min(local[1], j * a.rows() + i);
    }
  }
  std::int64_t count = 0, first = 0;
  MPI_Allreduce(&local[0], &count, 1, MPI_INT64_T, MPI_SUM, MPI_COMM_WORLD);
  MPI_Allreduce(&local[1], &first, 1, MPI_INT64_T, MPI_MIN, MPI_COMM_WORLD);
  if (count == 0) return {};
  return {count, first % a.rows(), first / a.rows()};
}

}  // namespace eqntk::parallel
