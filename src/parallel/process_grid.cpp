#include "eqntk/parallel/process_grid.hpp"

#include <mpi.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <limits>
#include <string>

#include "eqntk/error.hpp"
#include "scalapack.hpp"

namespace eqntk::parallel {

ProcessGrid::ProcessGrid(int prows, int pcols) : prows_(prows), pcols_(pcols) {
  int nranks = 0;
  MPI_Comm_size(MPI_COMM_WORLD, &nranks);
  if (prows < 1 || pcols < 1 || prows * pcols != nranks)
    throw InvalidArgument("process grid " + std::to_string(prows) + "x" + std::to_string(pcols) + " needs " +
                          std::to_string(prows * pcols) + " ranks, but the job has " + std::to_string(nranks));
  Cblacs_get(-1, 0, &context_);
  Cblacs_gridinit(&context_, "Row", prows, pcols);
  int pr = 0, pc = 0;
  Cblacs_gridinfo(context_, &pr, &pc, &myrow_, &mycol_);
  int world_rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &world_rank);
  // Row-major BLACS order over MPI_COMM_WORLD: MPI-IO darray types and rank-0 reductions rely on it.
  if (pr != prows || pc != pcols || myrow_ * pcols + mycol_ != world_rank)
    throw Error("BLACS grid initialisation gave an unexpected layout");
}

ProcessGrid::~ProcessGrid() {
  if (context_ >= 0) Cblacs_gridexit(context_);
}

std::pair<int, int> ProcessGrid::near_square(int nranks) {
  int p = static_cast<int>(std::sqrt(static_cast<double>(nranks)));
  while (p > 1 && nranks % p != 0) --p;
  p = std::max(p, 1);
  return {p, nranks / p};
}

std::pair<int, int> ProcessGrid::parse_shape(std::string_view text, int nranks) {
  if (text.empty() || text == "auto") return near_square(nranks);
  const auto x = text.find('x');
  int p = 0, q = 0;
  bool ok = x != std::string_view::npos;
  if (ok) {
    const auto r1 = std::from_chars(text.data(), text.data() + x, p);
    const auto r2 = std::from_chars(text.data() + x + 1, text.data() + text.size(), q);
    ok = r1.ec == std::errc() && r1.ptr == text.data() + x && r2.ec == std::errc() &&
         r2.ptr == text.data() + text.size() && p >= 1 && q >= 1;
  }
  if (!ok) throw InvalidArgument("--grid must look like PxQ with positive integers (e.g. 2x3), got '" + std::string(text) + "'");
  if (static_cast<long long>(p) * q != nranks)
    throw InvalidArgument("--grid " + std::string(text) + " needs " + std::to_string(static_cast<long long>(p) * q) +
                          " ranks, but the job has " + std::to_string(nranks));
  return {p, q};
}

DistMatrix::DistMatrix(const ProcessGrid& grid, std::int64_t m, std::int64_t n, std::int64_t nb) : grid_(&grid) {
  if (m < 0 || n < 0) throw InvalidArgument("matrix dimensions must be non-negative");
  if (nb < 1) throw InvalidArgument("block size must be at least 1, got " + std::to_string(nb));
  check_scalapack_sizes("a matrix", m, n, nb, grid.prows(), grid.pcols());
  rows_ = {m, nb, grid.prows()};
  cols_ = {n, nb, grid.pcols()};
  myrow_ = grid.myrow();
  mycol_ = grid.mycol();
  local_rows_ = rows_.local_size(myrow_);
  local_cols_ = cols_.local_size(mycol_);
  const std::int64_t lld = std::max<std::int64_t>(1, local_rows_);
  local_.assign(static_cast<std::size_t>(lld * local_cols_), 0.0);
  const int im = static_cast<int>(m), in = static_cast<int>(n), inb = static_cast<int>(nb), zero = 0;
  const int ctx = grid.context(), illd = static_cast<int>(lld);
  int info = 0;
  descinit_(desc_.data(), &im, &in, &inb, &inb, &zero, &zero, &ctx, &illd, &info);
  if (info != 0) throw InvalidArgument("descinit failed with info=" + std::to_string(info));
}

}  // namespace eqntk::parallel
