// Dense Gram matrices on one process (the `eqntk kernel` command, tests and tools).
#pragma once

#include <cstdint>
#include <vector>

#include "eqntk/data/image.hpp"
#include "eqntk/kernel/network.hpp"
#include "eqntk/kernel/pair_kernel.hpp"
#include "eqntk/kernel/problem.hpp"

namespace eqntk::kernel {

/// Row-major n1×n2 NNGP and NTK matrices.
struct GramPair {
  std::int64_t rows = 0, cols = 0;
  std::vector<double> nngp, ntk;
};

/// The one dense driver of every kernel family. symmetric: the n0×n0 Gram matrix of set 0, entries i ≥ j
/// evaluated once as evaluate(0, i, j) and mirrored (exactly symmetric); otherwise the n1×n0 matrix
/// evaluate(1, i, j) of set 1 against set 0. Self chains and rows of pairs (one evaluate_batch per row) run
/// on `threads` OpenMP threads, one Worker each; the result does not depend on the thread count. An
/// exception in any thread is rethrown after the parallel loop (the first one caught).
[[nodiscard]] GramPair dense_gram(KernelProblem& problem, bool symmetric, int threads = 1);

/// K(x1_i, x2_j), Θ(x1_i, x2_j) for all i, j; with x2 == nullptr the symmetric Gram matrix of x1, whose
/// entries (i ≥ j) are evaluated once as K(x1_i, x1_j) and mirrored, so it is exactly symmetric and
/// every entry equals the one `eqntk run` computes for the same pair. Pairs run on `threads` OpenMP
/// threads; the result does not depend on the thread count. Throws InvalidArgument on shape mismatch.
[[nodiscard]] GramPair gram_matrices(const Network& net, const data::ImageSet& x1, const data::ImageSet* x2,
                                     int threads = 1, Precision precision = Precision::float64);

}  // namespace eqntk::kernel
