#include "eqntk/so3/gram.hpp"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <exception>
#include <memory>
#include <numbers>

#include "eqntk/error.hpp"

namespace eqntk::so3 {
namespace {

// The shared driver: `Engine` has self_chain(item) → Chain and evaluate(a, ca, b, cb) → KernelValue.
template <typename Engine, typename Item, typename Chain, typename Make, typename SelfFn, typename PairFn>
kernel::GramPair gram(const std::vector<Item>& x1, const std::vector<Item>* x2, int threads, Make make, SelfFn self,
                      PairFn pair) {
  const bool symmetric = x2 == nullptr;
  const std::vector<Item>& y = symmetric ? x1 : *x2;
  const auto n1 = static_cast<std::int64_t>(x1.size()), n2 = static_cast<std::int64_t>(y.size());
  threads = std::max(1, threads);
  std::vector<std::unique_ptr<Engine>> engines;
  for (int t = 0; t < threads; ++t) engines.push_back(make());
  std::vector<Chain> c1(x1.size()), c2(symmetric ? 0 : y.size());
  const std::int64_t n_chains = n1 + (symmetric ? 0 : n2);
  std::exception_ptr error;
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads)
  for (std::int64_t i = 0; i < n_chains; ++i) {
    try {
      Engine& e = *engines[static_cast<std::size_t>(omp_get_thread_num())];
      if (i < n1) c1[static_cast<std::size_t>(i)] = self(e, x1[static_cast<std::size_t>(i)]);
      else c2[static_cast<std::size_t>(i - n1)] = self(e, y[static_cast<std::size_t>(i - n1)]);
    } catch (...) {
#pragma omp critical
      error = std::current_exception();
    }
  }
  if (error) std::rethrow_exception(error);
  const std::vector<Chain>& cy = symmetric ? c1 : c2;
  kernel::GramPair g{n1, n2, std::vector<double>(static_cast<std::size_t>(n1 * n2)), {}};
  g.ntk.resize(g.nngp.size());
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads)
  for (std::int64_t i = 0; i < n1; ++i) {
    try {
      Engine& e = *engines[static_cast<std::size_t>(omp_get_thread_num())];
      for (std::int64_t j = 0; j < (symmetric ? i + 1 : n2); ++j) {
        const KernelValue v = pair(e, x1[static_cast<std::size_t>(i)], c1[static_cast<std::size_t>(i)],
                                   y[static_cast<std::size_t>(j)], cy[static_cast<std::size_t>(j)]);
        g.nngp[static_cast<std::size_t>(i * n2 + j)] = v.nngp;
        g.ntk[static_cast<std::size_t>(i * n2 + j)] = v.ntk;
        if (symmetric) {
          g.nngp[static_cast<std::size_t>(j * n2 + i)] = v.nngp;
          g.ntk[static_cast<std::size_t>(j * n2 + i)] = v.ntk;
        }
      }
    } catch (...) {
#pragma omp critical
      error = std::current_exception();
    }
  }
  if (error) std::rethrow_exception(error);
  return g;
}

}  // namespace

kernel::GramPair gram_matrices(const Network& net, const std::vector<Signal>& x1, const std::vector<Signal>* x2,
                               int threads) {
  return gram<PairKernel, Signal, SelfChain>(
      x1, x2, threads, [&] { return std::make_unique<PairKernel>(net); },
      [](PairKernel& e, const Signal& x) { return e.self_chain(x); },
      [](PairKernel& e, const Signal& a, const SelfChain& ca, const Signal& b, const SelfChain& cb) {
        return e.evaluate(a, ca, b, cb);
      });
}

kernel::GramPair molecule_gram_matrices(const Network& net, MoleculeSum sum, int slots,
                                        const std::vector<std::vector<Signal>>& m1,
                                        const std::vector<std::vector<Signal>>* m2, int threads) {
  using Atoms = std::vector<Signal>;
  return gram<MoleculeKernel, Atoms, MoleculeChain>(
      m1, m2, threads, [&] { return std::make_unique<MoleculeKernel>(net, sum, slots); },
      [](MoleculeKernel& e, const Atoms& atoms) { return e.self_chain(atoms); },
      [](MoleculeKernel& e, const Atoms&, const MoleculeChain& ca, const Atoms&, const MoleculeChain& cb) {
        return e.evaluate(ca, cb);
      });
}

std::vector<double> channel_rms_scale(const std::vector<std::vector<Signal>>& train_atoms) {
  std::vector<double> sum(kMoleculeChannels, 0.0);
  std::int64_t atoms = 0;
  for (const auto& molecule : train_atoms)
    for (const Signal& x : molecule) {
      if (x.channels() != kMoleculeChannels)
        throw InvalidArgument("channel_rms_scale: atom signals need " + std::to_string(kMoleculeChannels) +
                              " channels, got " + std::to_string(x.channels()));
      ++atoms;
      for (int c = 0; c < kMoleculeChannels; ++c)
        for (int l = 0; l < x.band_limit(); ++l)
          for (int m = 0; m <= l; ++m)
            sum[static_cast<std::size_t>(c)] += (m == 0 ? 1.0 : 2.0) * std::norm(x.at(c, l, m)) / (4 * std::numbers::pi);
    }
  std::vector<double> scale(kMoleculeChannels, 1.0);
  for (int c = 0; c < kMoleculeChannels; ++c) {
    const double ms = atoms > 0 ? sum[static_cast<std::size_t>(c)] / static_cast<double>(atoms) : 0.0;
    if (ms > 0.0) scale[static_cast<std::size_t>(c)] = 1.0 / std::sqrt(ms);
  }
  return scale;
}

}  // namespace eqntk::so3
