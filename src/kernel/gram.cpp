#include "eqntk/kernel/gram.hpp"

#include <omp.h>

#include <algorithm>
#include <exception>
#include <functional>
#include <memory>

#include "eqntk/error.hpp"

namespace eqntk::kernel {
namespace {

// Runs body(thread, k) for k in [0, n) on `threads` OpenMP threads with dynamic scheduling. An exception
// must not leave an OpenMP region (it would terminate the process): the first one is kept and rethrown
// after the loop; the remaining iterations are skipped.
void parallel_for(std::int64_t n, int threads, const std::function<void(int, std::int64_t)>& body) {
  std::exception_ptr error;
  bool failed = false;
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads)
  for (std::int64_t k = 0; k < n; ++k) {
    bool skip = false;
#pragma omp atomic read
    skip = failed;
    if (skip) continue;
    try {
      body(omp_get_thread_num(), k);
    } catch (...) {
#pragma omp critical(eqntk_dense_gram_error)
      if (!error) error = std::current_exception();
#pragma omp atomic write
      failed = true;
    }
  }
  if (error) std::rethrow_exception(error);
}

}  // namespace

GramPair dense_gram(KernelProblem& problem, bool symmetric, int threads) {
  threads = std::max(1, threads);
  const int rows_set = symmetric ? 0 : 1;
  const std::int64_t n0 = problem.count(0), n_rows = problem.count(rows_set);
  std::vector<std::unique_ptr<KernelProblem::Worker>> workers;
  for (int t = 0; t < threads; ++t) workers.push_back(problem.make_worker());
  // Self chains: set 0, then set 1 unless symmetric.
  const std::int64_t n_chains = n0 + (symmetric ? 0 : n_rows);
  parallel_for(n_chains, threads, [&](int t, std::int64_t k) {
    if (k < n0)
      problem.prepare(*workers[static_cast<std::size_t>(t)], 0, k);
    else
      problem.prepare(*workers[static_cast<std::size_t>(t)], 1, k - n0);
  });
  GramPair g{n_rows, n0, std::vector<double>(static_cast<std::size_t>(n_rows * n0)), {}};
  g.ntk.resize(g.nngp.size());
  // One batch per row: (i, 0..i) for the symmetric matrix, (i, 0..n0-1) otherwise. A batched problem (an
  // accelerator) takes its batches from one thread.
  parallel_for(n_rows, problem.batched() ? 1 : threads, [&](int t, std::int64_t i) {
    const std::int64_t cols = symmetric ? i + 1 : n0;
    std::vector<std::pair<std::int64_t, std::int64_t>> pairs(static_cast<std::size_t>(cols));
    for (std::int64_t j = 0; j < cols; ++j) pairs[static_cast<std::size_t>(j)] = {i, j};
    std::vector<KernelValue> values(pairs.size());
    problem.evaluate_batch(*workers[static_cast<std::size_t>(t)], rows_set, pairs, values.data());
    for (std::int64_t j = 0; j < cols; ++j) {
      const KernelValue v = values[static_cast<std::size_t>(j)];
      g.nngp[static_cast<std::size_t>(i * n0 + j)] = v.nngp;
      g.ntk[static_cast<std::size_t>(i * n0 + j)] = v.ntk;
      if (symmetric) {
        g.nngp[static_cast<std::size_t>(j * n0 + i)] = v.nngp;
        g.ntk[static_cast<std::size_t>(j * n0 + i)] = v.ntk;
      }
    }
  });
  return g;
}

GramPair gram_matrices(const Network& net, const data::ImageSet& x1, const data::ImageSet* x2, int threads,
                       Precision precision) {
  if (!(x1.shape == net.input_shape()) || (x2 != nullptr && !(x2->shape == net.input_shape())))
    throw InvalidArgument("gram_matrices: image shape does not match the network input");
  if (x2 == nullptr) {
    const data::ImageSet none{net.input_shape(), 0, {}};
    ImageProblem problem(net, x1, none, precision);
    return dense_gram(problem, true, threads);
  }
  // Set 0 (the columns) is x2, set 1 (the rows) is x1: entry (i, j) is evaluate(1, i, j) = K(x1_i, x2_j).
  ImageProblem problem(net, *x2, x1, precision);
  return dense_gram(problem, false, threads);
}

}  // namespace eqntk::kernel
