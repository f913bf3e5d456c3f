// Dense Gram matrices on one process (the `eqntk kernel` command, tests and tools).
#pragma once

#include <cstdint>
#include <vector>

#include "eqntk/kernel/image.hpp"
#include "eqntk/kernel/network.hpp"
#include "eqntk/kernel/pair_kernel.hpp"

namespace eqntk::kernel {

/// Row-major n1×n2 NNGP and NTK matrices.
struct GramPair {
  std::int64_t rows = 0, cols = 0;
  std::vector<double> nngp, ntk;
};

/// K(x1_i, x2_j), Θ(x1_i, x2_j) for all i, j; with x2 == nullptr the symmetric Gram matrix of x1, whose
/// entries (i ≥ j) are evaluated once as K(x1_i, x1_j) and mirrored, so it is exactly symmetric and
/// every entry equals the one `eqntk run` computes for the same pair. Pairs run on `threads` OpenMP
/// threads; the result does not depend on the thread count. Throws InvalidArgument on shape mismatch.
[[nodiscard]] GramPair gram_matrices(const Network& net, const ImageSet& x1, const ImageSet* x2, int threads = 1,
                                     Precision precision = Precision::float64);

}  // namespace eqntk::kernel
