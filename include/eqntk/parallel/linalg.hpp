// Typed ScaLAPACK/PBLAS wrappers on DistMatrix: the only module that calls the dense solvers. Every
// routine's `info` is checked here and decoded into a typed exception that names the routine and, for an
// illegal argument, the argument (ScaLAPACK's info = −(100·i + j) names entry j of array argument i,
// info = −i the scalar argument i). Every function is collective over the matrix's grid; ScaLAPACK returns
// the same info on every rank, so every rank throws together.
//
//   DistMatrix l = a;          // N×N, lower triangle valid
//   cholesky(l);               // throws NotPositiveDefinite{order} when a leading minor fails
//   cholesky_solve(l, b);      // b ← A⁻¹ b
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "eqntk/error.hpp"
#include "eqntk/parallel/process_grid.hpp"

namespace eqntk::parallel {

/// A ScaLAPACK routine reported an illegal argument or an internal failure (a bug or a corrupt
/// descriptor, not bad data): a runtime error.
class ScalapackError : public Error {
 public:
  ScalapackError(std::string routine, int info, const std::string& message)
      : Error(message), routine_(std::move(routine)), info_(info) {}
  [[nodiscard]] const std::string& routine() const { return routine_; }
  [[nodiscard]] int info() const { return info_; }

 private:
  std::string routine_;
  int info_;
};

/// The Cholesky factorisation found a leading minor that is not positive definite.
class NotPositiveDefinite : public NumericalError {
 public:
  NotPositiveDefinite(std::int64_t minor, std::int64_t order, const std::string& message)
      : NumericalError(message), minor_(minor), order_(order) {}
  [[nodiscard]] std::int64_t minor() const { return minor_; }  ///< 1-based order of the failing minor
  [[nodiscard]] std::int64_t order() const { return order_; }  ///< N

 private:
  std::int64_t minor_, order_;
};

/// "pdpotrf: illegal value in argument 3 (entry 2 of an array argument)"-style text of a negative info.
[[nodiscard]] std::string describe_illegal_argument(const std::string& routine, int info);

/// Throws ScalapackError for info < 0 (illegal argument, decoded). Returns info otherwise.
int check_arguments(const std::string& routine, int info);

/// Transpose (pdtran): returns Aᵀ with A's block size and grid.
[[nodiscard]] DistMatrix transpose(const DistMatrix& a);

/// Lower Cholesky factor of the square matrix `a` in place (pdpotrf, lower triangle read). Throws
/// NotPositiveDefinite when the leading minor of some order is not positive definite, ScalapackError on
/// an illegal argument.
void cholesky(DistMatrix& a);

/// Solves (L Lᵀ) X = B in place for the factor L of cholesky() (pdpotrs). Throws ScalapackError.
void cholesky_solve(const DistMatrix& l, DistMatrix& b);

/// Workspace sizes pdsyevr asks for (its query), and what eigen_symmetric allocates with headroom.
/// Throws InvalidArgument when the allocation would exceed ScaLAPACK's int workspace range (checked
/// narrowing, STYLE.md). Collective (the query is).
struct EigenWorkspace {
  std::int64_t lwork = 0, liwork = 0;
};
[[nodiscard]] EigenWorkspace eigen_workspace(DistMatrix& a, DistMatrix& z);

/// All eigenpairs a = Z diag(w) Zᵀ of the symmetric matrix `a` (pdsyevr, MRRR, lower triangle; `a` is
/// destroyed), w ascending. Throws ScalapackError on an illegal argument, NumericalError when the solver
/// does not find every eigenpair (info > 0: a failure inside the MRRR algorithm).
void eigen_symmetric(DistMatrix& a, DistMatrix& z, std::vector<double>& w);

/// Largest pdsyevr workspace (doubles) that eigen_symmetric can request for an n×n matrix of block size nb
/// on this grid, by ScaLAPACK's documented bound; size checks before any work use it.
[[nodiscard]] std::int64_t eigen_workspace_bound(std::int64_t n, std::int64_t nb, int prows, int pcols);

}  // namespace eqntk::parallel
