#include "eqntk/so3/gram.hpp"

#include <algorithm>
#include <cmath>
#include <exception>
#include <memory>
#include <numbers>

#include "eqntk/error.hpp"
#include "eqntk/so3/problem.hpp"

namespace eqntk::so3 {
kernel::GramPair gram_matrices(const Network& net, const std::vector<Signal>& x1, const std::vector<Signal>* x2,
                               int threads) {
  if (x2 == nullptr) {
    const std::vector<Signal> none;
    So3SignalProblem problem(net, x1, none);
    return kernel::dense_gram(problem, true, threads);
  }
  So3SignalProblem problem(net, *x2, x1);  // set 1 (rows) = x1, set 0 (columns) = x2
  return kernel::dense_gram(problem, false, threads);
}

kernel::GramPair molecule_gram_matrices(const Network& net, MoleculeSum sum, int slots,
                                        const std::vector<std::vector<Signal>>& m1,
                                        const std::vector<std::vector<Signal>>* m2, int threads) {
  if (m2 == nullptr) {
    const std::vector<std::vector<Signal>> none;
    MoleculeProblem problem(net, sum, slots, m1, none);
    return kernel::dense_gram(problem, true, threads);
  }
  MoleculeProblem problem(net, sum, slots, *m2, m1);
  return kernel::dense_gram(problem, false, threads);
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
