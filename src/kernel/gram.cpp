#include "eqntk/kernel/gram.hpp"

#include <omp.h>

#include <exception>
#include <memory>

#include "eqntk/error.hpp"
#include "eqntk/kernel/pair_kernel.hpp"

namespace eqntk::kernel {

GramPair gram_matrices(const Network& net, const ImageSet& x1, const ImageSet* x2, int threads, Precision precision) {
  const bool symmetric = x2 == nullptr;
  const ImageSet& y = symmetric ? x1 : *x2;
  if (!(x1.shape == net.input_shape()) || !(y.shape == net.input_shape()))
    throw InvalidArgument("gram_matrices: image shape does not match the network input");
  threads = std::max(1, threads);
  std::vector<std::unique_ptr<PairKernel>> engines;
  for (int t = 0; t < threads; ++t) engines.push_back(std::make_unique<PairKernel>(net, precision));
  std::vector<SelfChain> c1(static_cast<std::size_t>(x1.count)), c2(symmetric ? 0 : static_cast<std::size_t>(y.count));
  const std::int64_t n_chains = x1.count + (symmetric ? 0 : y.count);
  std::exception_ptr error;
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads)
  for (std::int64_t i = 0; i < n_chains; ++i) {
    try {
      PairKernel& e = *engines[static_cast<std::size_t>(omp_get_thread_num())];
      if (i < x1.count) c1[static_cast<std::size_t>(i)] = e.self_chain(x1.view(i));
      else c2[static_cast<std::size_t>(i - x1.count)] = e.self_chain(y.view(i - x1.count));
    } catch (...) {
#pragma omp critical
      error = std::current_exception();
    }
  }
  if (error) std::rethrow_exception(error);
  const auto& cy = symmetric ? c1 : c2;
  GramPair g{x1.count, y.count, std::vector<double>(static_cast<std::size_t>(x1.count * y.count)), {}};
  g.ntk.resize(g.nngp.size());
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads)
  for (std::int64_t i = 0; i < x1.count; ++i) {
    PairKernel& e = *engines[static_cast<std::size_t>(omp_get_thread_num())];
    for (std::int64_t j = 0; j < (symmetric ? i + 1 : y.count); ++j) {
      const KernelValue v = e.evaluate(x1.view(i), c1[static_cast<std::size_t>(i)], y.view(j), cy[static_cast<std::size_t>(j)]);
      g.nngp[static_cast<std::size_t>(i * y.count + j)] = v.nngp;
      g.ntk[static_cast<std::size_t>(i * y.count + j)] = v.ntk;
      if (symmetric) {
        g.nngp[static_cast<std::size_t>(j * y.count + i)] = v.nngp;
        g.ntk[static_cast<std::size_t>(j * y.count + i)] = v.ntk;
      }
    }
  }
  return g;
}

}  // namespace eqntk::kernel
