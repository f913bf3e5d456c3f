#include "eqntk/parallel/size_limits.hpp"

#include <algorithm>
#include <limits>
#include <string>

#include "eqntk/error.hpp"
#include "eqntk/parallel/block_cyclic.hpp"
#include "eqntk/parallel/linalg.hpp"

namespace eqntk::parallel {
namespace {

constexpr std::int64_t kIntMax = std::numeric_limits<int>::max();

std::string grid_text(const JobSizes& s) {
  return std::to_string(s.prows) + "x" + std::to_string(s.pcols) + " grid with block size " + std::to_string(s.nb);
}

}  // namespace

void check_size_limits(const JobSizes& s) {
  for (const auto& [name, value] : {std::pair<const char*, std::int64_t>{"training set size N", s.n_train},
                                    std::pair<const char*, std::int64_t>{"test set size M", s.n_test},
                                    std::pair<const char*, std::int64_t>{"block size", s.nb}})
    if (value > kIntMax)
      throw InvalidArgument(std::string(name) + " " + std::to_string(value) +
                            " exceeds ScaLAPACK's int range (2^31-1)");
  // The solver's largest operands are N×N (training kernel, eigenvectors) and M×N (test kernel, Θ*V).
  const std::int64_t rows = std::max(s.n_train, s.n_test);
  const std::int64_t local = max_local_part(rows, s.n_train, s.nb, s.prows, s.pcols);
  if (local > kIntMax)
    throw InvalidArgument("size limit: a rank's local block of the " + std::to_string(rows) + "x" +
                          std::to_string(s.n_train) + " kernel matrix on a " + grid_text(s) + " has " +
                          std::to_string(local) + " elements, over the 2^31-1 that ScaLAPACK's int indexing" +
                          (s.save_kernels ? " and the MPI-IO count of --save-kernels allow" : " allows") +
                          ": use more ranks or a squarer --grid");
  if (s.eigensolver) {
    const std::int64_t work = eigen_workspace_bound(s.n_train, s.nb, s.prows, s.pcols);
    if (work > kIntMax)
      throw InvalidArgument("size limit: the eigensolver (pdsyevr, finite --times) needs a workspace of about " +
                            std::to_string(work) + " doubles per rank for N = " + std::to_string(s.n_train) + " on a " +
                            grid_text(s) + ", over ScaLAPACK's int range 2^31-1: use more ranks or a squarer --grid");
  }
}

}  // namespace eqntk::parallel
