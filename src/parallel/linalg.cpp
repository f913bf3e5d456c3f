#include "eqntk/parallel/linalg.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "eqntk/parallel/block_cyclic.hpp"
#include "scalapack.hpp"

namespace eqntk::parallel {
namespace {

constexpr std::int64_t kIntMax = std::numeric_limits<int>::max();

int to_int(std::int64_t v) {
  return static_cast<int>(v);
}  // callers checked the range (DistMatrix dims ≤ INT_MAX)

std::int64_t iceil(std::int64_t a, std::int64_t b) {
  return (a + b - 1) / b;
}

}  // namespace

std::string describe_illegal_argument(const std::string& routine, int info) {
  const int code = -info;
  if (code > 100)
    return routine + ": illegal value in entry " + std::to_string(code % 100) + " of argument " +
           std::to_string(code / 100) + " (info=" + std::to_string(info) + ")";
  return routine + ": illegal value in argument " + std::to_string(code) + " (info=" + std::to_string(info) + ")";
}

int check_arguments(const std::string& routine, int info) {
  if (info < 0)
    throw ScalapackError(routine, info,
                         describe_illegal_argument(routine, info) + " -- an eqntk bug, please report it");
  return info;
}

DistMatrix transpose(const DistMatrix& a) {
  DistMatrix t(a.grid(), a.cols(), a.rows(), a.block_size());
  if (a.rows() > 0 && a.cols() > 0) {
    const int m = to_int(a.cols()), n = to_int(a.rows()), one = 1;
    const double alpha = 1.0, beta = 0.0;
    pdtran_(&m, &n, &alpha, a.data(), &one, &one, a.desc(), &beta, t.data(), &one, &one, t.desc());
  }
  return t;
}

void cholesky(DistMatrix& a) {
  const int n = to_int(a.rows()), one = 1;
  int info = 0;
  pdpotrf_("L", &n, a.data(), &one, &one, a.desc(), &info);
  if (check_arguments("pdpotrf", info) > 0)
    throw NotPositiveDefinite(info, n,
                              "pdpotrf: the leading minor of order " + std::to_string(info) + " (of " +
                                  std::to_string(n) + ") is not positive definite");
}

void cholesky_solve(const DistMatrix& l, DistMatrix& b) {
  if (b.cols() == 0) return;
  const int n = to_int(l.rows()), nrhs = to_int(b.cols()), one = 1;
  int info = 0;
  pdpotrs_("L", &n, &nrhs, l.data(), &one, &one, l.desc(), b.data(), &one, &one, b.desc(), &info);
  check_arguments("pdpotrs", info);
}

std::int64_t eigen_workspace_bound(std::int64_t n, std::int64_t nb, int prows, int pcols) {
  // Two terms, whichever is larger. PDSYEVR's documented minimum: 2 + 5N + max(18·NN, NP0·MQ0 + 2·NB²) +
  // (2 + ⌈N/(P·Q)⌉)·NN with NN = max(N, NB, 2), NP0 = numroc(N, NB, 0, 0, P), MQ0 = numroc(NN, NB, 0, 0, Q).
  // And its tridiagonal reduction (PDSYNTRD), which works on a ⌊√(P·Q)⌋-square grid whatever P×Q is: about
  // 2·NPS² with NPS = max(⌈N/⌊√(P·Q)⌋⌉, 2·ANB) (ANB ≤ 64), so a 1×Q grid needs ~2N² per rank (measured: the
  // query returns 2·(N/⌊√(P·Q)⌋)² + O(N) on 1×1, 1×2, 1×3, 2×2).
  const std::int64_t documented = pdsyevr_lwork(n, nb, prows, pcols);
  const auto sqnpc = static_cast<std::int64_t>(std::sqrt(static_cast<double>(prows) * pcols));
  const std::int64_t nps = std::max<std::int64_t>(iceil(n, sqnpc), 128);
  const std::int64_t need = std::max(documented, 2 * (nps + 4) * nps + 5 * n);
  // eigen_symmetric allocates 1.2× the query and 4096 more: 30 % and 16384 cover both.
  return need + 3 * (need / 10) + 16384;
}

EigenWorkspace eigen_workspace(DistMatrix& a, DistMatrix& z) {
  const int n = to_int(a.rows()), one = 1;
  int info = 0, lwork = -1, liwork = -1, found = 0, found_vectors = 0;
  const double vl = 0, vu = 0;
  const int il = 0, iu = 0;
  double work_query = 0.0;
  int iwork_query = 0;
  std::vector<double> w(static_cast<std::size_t>(std::max(n, 1)));
  pdsyevr_("V", "A", "L", &n, a.data(), &one, &one, a.desc(), &vl, &vu, &il, &iu, &found, &found_vectors, w.data(),
           z.data(), &one, &one, z.desc(), &work_query, &lwork, &iwork_query, &liwork, &info);
  check_arguments("pdsyevr (workspace query)", info);
  // Headroom: the query is tight on some versions. The sizes are narrowed to ScaLAPACK's int, checked.
  const double lwork_wanted = std::ceil(work_query * 1.2) + 4096.0;
  EigenWorkspace ws{static_cast<std::int64_t>(std::min(lwork_wanted, 9.0e18)), std::int64_t{iwork_query} + 1024};
  if (ws.lwork > kIntMax || ws.liwork > kIntMax)
    throw InvalidArgument("the eigensolver (pdsyevr) workspace of " + std::to_string(ws.lwork) +
                          " doubles exceeds ScaLAPACK's int range (2^31-1) for N = " + std::to_string(n) +
                          ": use more ranks or a squarer --grid");
  return ws;
}

void eigen_symmetric(DistMatrix& a, DistMatrix& z, std::vector<double>& w) {
  const int n = to_int(a.rows()), one = 1;
  w.assign(static_cast<std::size_t>(n), 0.0);
  const EigenWorkspace ws = eigen_workspace(a, z);
  int info = 0, found = 0, found_vectors = 0;
  int lwork = to_int(ws.lwork), liwork = to_int(ws.liwork);
  const double vl = 0, vu = 0;
  const int il = 0, iu = 0;
  std::vector<double> work(static_cast<std::size_t>(lwork));
  std::vector<int> iwork(static_cast<std::size_t>(liwork));
  pdsyevr_("V", "A", "L", &n, a.data(), &one, &one, a.desc(), &vl, &vu, &il, &iu, &found, &found_vectors, w.data(),
           z.data(), &one, &one, z.desc(), work.data(), &lwork, iwork.data(), &liwork, &info);
  check_arguments("pdsyevr", info);
  if (info > 0 || found != n || found_vectors != n)
    throw NumericalError("pdsyevr computed " + std::to_string(found_vectors) + " of " + std::to_string(n) +
                         " eigenvectors (info=" + std::to_string(info) +
                         "): the MRRR eigensolver failed on this matrix (badly scaled or clustered spectrum)");
}

}  // namespace eqntk::parallel
