// SO(3) kernel families as the distributed Gram builder sees them (kernel::KernelProblem): spherical
// signals through PairKernel and molecules through MoleculeKernel. No MPI here.
//
// Set 0 is the training set, set 1 the test set. prepare(w, s, i) computes and keeps the self chain of item
// i of set s (SelfChain / MoleculeChain, SO3_MATH.md §3 "variances" and the pooled self-kernel);
// evaluate(w, s, i, j) is K(item i of s, training item j), Θ likewise, with the arguments in exactly the
// order of so3::gram_matrices / molecule_gram_matrices (train: K(x_i, x_j) with i ≥ j; test: K(x*_m, x_n)),
// so a Gram matrix built across ranks by parallel::build_gram is bitwise identical to the serial one for any
// rank count, grid, block size and thread count.
//
// Thread safety: as kernel::KernelProblem. Each Worker owns one PairKernel / MoleculeKernel (its FFT
// workspace); the Network's grid and Wigner table are shared read-only.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "eqntk/kernel/problem.hpp"
#include "eqntk/so3/molecule.hpp"
#include "eqntk/so3/network.hpp"
#include "eqntk/so3/pair_kernel.hpp"
#include "eqntk/so3/signal.hpp"

namespace eqntk::so3 {

/// Spherical signals x: S² → R^C, one PairKernel per worker: the two sets of a So3SignalProblem.
class So3SignalItems {
 public:
  using Engine = PairKernel;
  using Chain = SelfChain;
  /// Keeps references: net, train and test must outlive the problem. Throws InvalidArgument (naming the set
  /// and item) unless every signal has the network's band limit L and channel count C.
  So3SignalItems(const Network& net, const std::vector<Signal>& train, const std::vector<Signal>& test);
  [[nodiscard]] std::int64_t count(int set) const { return static_cast<std::int64_t>(items(set).size()); }
  [[nodiscard]] std::unique_ptr<Engine> make_engine() const { return std::make_unique<PairKernel>(net_); }
  [[nodiscard]] Chain self_chain(Engine& e, int set, std::int64_t i) const {
    return e.self_chain(items(set)[static_cast<std::size_t>(i)]);
  }
  [[nodiscard]] KernelValue evaluate(Engine& e, int set, std::int64_t i, const Chain& ci, std::int64_t j,
                                     const Chain& cj) const {
    return e.evaluate(items(set)[static_cast<std::size_t>(i)], ci, train_[static_cast<std::size_t>(j)], cj);
  }
  [[nodiscard]] std::string precision() const { return "float64"; }

 private:
  [[nodiscard]] const std::vector<Signal>& items(int set) const { return set == 0 ? train_ : test_; }
  const Network& net_;
  const std::vector<Signal>& train_;
  const std::vector<Signal>& test_;
};

/// Molecules as per-atom signals (atom_signals), one MoleculeKernel(net, sum, slots) per worker
/// (molecule.hpp: same_slot / all_pairs, slot padding): the two sets of a MoleculeProblem.
class MoleculeItems {
 public:
  using Engine = MoleculeKernel;
  using Chain = MoleculeChain;
  /// Keeps references: net, train and test must outlive the problem. Throws InvalidArgument (naming the set
  /// and molecule) if net.channels() != 10, slots < 0, a molecule is empty, a same_slot molecule has more
  /// atoms than slots > 0, or an atom signal does not have the network's L and C.
  MoleculeItems(const Network& net, MoleculeSum sum, int slots, const std::vector<std::vector<Signal>>& train,
                const std::vector<std::vector<Signal>>& test);
  [[nodiscard]] std::int64_t count(int set) const { return static_cast<std::int64_t>(items(set).size()); }
  [[nodiscard]] std::unique_ptr<Engine> make_engine() const { return std::make_unique<MoleculeKernel>(net_, sum_, slots_); }
  [[nodiscard]] Chain self_chain(Engine& e, int set, std::int64_t i) const {
    return e.self_chain(items(set)[static_cast<std::size_t>(i)]);
  }
  [[nodiscard]] KernelValue evaluate(Engine& e, int, std::int64_t, const Chain& ci, std::int64_t, const Chain& cj) const {
    return e.evaluate(ci, cj);
  }
  [[nodiscard]] std::string precision() const { return "float64"; }

 private:
  [[nodiscard]] const std::vector<std::vector<Signal>>& items(int set) const { return set == 0 ? train_ : test_; }
  const Network& net_;
  MoleculeSum sum_;
  int slots_;
  const std::vector<std::vector<Signal>>& train_;
  const std::vector<std::vector<Signal>>& test_;
};

/// Spherical signals through so3::PairKernel (validation: So3SignalItems).
class So3SignalProblem final : public kernel::EngineProblem<So3SignalItems> {
 public:
  So3SignalProblem(const Network& net, const std::vector<Signal>& train, const std::vector<Signal>& test)
      : EngineProblem(So3SignalItems(net, train, test)) {}
};

/// Molecules through so3::MoleculeKernel (validation: MoleculeItems).
class MoleculeProblem final : public kernel::EngineProblem<MoleculeItems> {
 public:
  MoleculeProblem(const Network& net, MoleculeSum sum, int slots, const std::vector<std::vector<Signal>>& train,
                  const std::vector<std::vector<Signal>>& test)
      : EngineProblem(MoleculeItems(net, sum, slots, train, test)) {}
};

}  // namespace eqntk::so3
