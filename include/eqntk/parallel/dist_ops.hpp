// Small collective helpers on DistMatrix: checked PBLAS calls, replication to and from every rank,
// symmetrisation of a lower triangle. Each function is collective over the matrix's grid.
#pragma once

#include <cstdint>
#include <vector>

#include "eqntk/parallel/process_grid.hpp"

namespace eqntk::parallel {

/// C = α op(A) op(B) + β C (pdgemm). trans_a/trans_b are 'N' or 'T'. Shapes must agree (throws InvalidArgument).
void gemm(char trans_a, char trans_b, double alpha, const DistMatrix& a, const DistMatrix& b, double beta, DistMatrix& c);

/// A DistMatrix holding the row-major rows×cols matrix `full`, which every rank holds (no communication).
[[nodiscard]] DistMatrix distribute(const ProcessGrid& grid, const std::vector<double>& full, std::int64_t rows,
                                    std::int64_t cols, std::int64_t nb);

/// The whole matrix, row-major, on every rank (MPI_Allreduce of the disjoint local parts: exact).
[[nodiscard]] std::vector<double> replicate(const DistMatrix& a);

/// The full symmetric matrix from its lower triangle (upper part of `lower` ignored): S = L + Lᵀ − diag(L).
[[nodiscard]] DistMatrix symmetrize_lower(const DistMatrix& lower);

/// Σ_j a(i,j)·b(i,j) for every row i, replicated on every rank. a and b must have the same layout.
[[nodiscard]] std::vector<double> row_dots(const DistMatrix& a, const DistMatrix& b);

/// Σ_i a(i,i) over the diagonal, on every rank.
[[nodiscard]] double trace(const DistMatrix& a);

/// Entries of `a` that are NaN or ±∞ (only i ≥ j when `lower_only`), counted over every rank, and the
/// first such (row, col) in column-major global order, or (−1, −1) when there is none. Collective.
struct NonFinite {
  std::int64_t count = 0, row = -1, col = -1;
};
[[nodiscard]] NonFinite find_non_finite(const DistMatrix& a, bool lower_only);

/// a(i,i) += value for every diagonal entry.
void add_to_diagonal(DistMatrix& a, double value);

}  // namespace eqntk::parallel
