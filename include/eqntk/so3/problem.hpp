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
#include <vector>

#include "eqntk/kernel/problem.hpp"
#include "eqntk/so3/molecule.hpp"
#include "eqntk/so3/network.hpp"
#include "eqntk/so3/pair_kernel.hpp"
#include "eqntk/so3/signal.hpp"

namespace eqntk::so3 {

/// Spherical signals x: S² → R^C, one PairKernel per worker.
class So3SignalProblem final : public kernel::KernelProblem {
 public:
  /// Keeps references: net, train and test must outlive the problem. Throws InvalidArgument (naming the set
  /// and item) unless every signal has the network's band limit L and channel count C.
  So3SignalProblem(const Network& net, const std::vector<Signal>& train, const std::vector<Signal>& test);
  [[nodiscard]] std::int64_t count(int set) const override {
    return static_cast<std::int64_t>(set == 0 ? train_.size() : test_.size());
  }
  [[nodiscard]] std::unique_ptr<Worker> make_worker() const override;
  void prepare(Worker& worker, int set, std::int64_t i) override;
  [[nodiscard]] KernelValue evaluate(Worker& worker, int set, std::int64_t i, std::int64_t j) const override;
  [[nodiscard]] KernelValue self(int set, std::int64_t i) const override;

 private:
  const Network& net_;
  const std::vector<Signal>& train_;
  const std::vector<Signal>& test_;
  std::vector<SelfChain> chains_[2];
};

/// Molecules as per-atom signals (atom_signals), one MoleculeKernel(net, sum, slots) per worker
/// (molecule.hpp: same_slot / all_pairs, slot padding).
class MoleculeProblem final : public kernel::KernelProblem {
 public:
  /// Keeps references: net, train and test must outlive the problem. Throws InvalidArgument (naming the set
  /// and molecule) if net.channels() != 10, slots < 0, a molecule is empty, a same_slot molecule has more
  /// atoms than slots > 0, or an atom signal does not have the network's L and C.
  MoleculeProblem(const Network& net, MoleculeSum sum, int slots, const std::vector<std::vector<Signal>>& train,
                  const std::vector<std::vector<Signal>>& test);
  [[nodiscard]] std::int64_t count(int set) const override {
    return static_cast<std::int64_t>(set == 0 ? train_.size() : test_.size());
  }
  [[nodiscard]] std::unique_ptr<Worker> make_worker() const override;
  void prepare(Worker& worker, int set, std::int64_t i) override;
  [[nodiscard]] KernelValue evaluate(Worker& worker, int set, std::int64_t i, std::int64_t j) const override;
  [[nodiscard]] KernelValue self(int set, std::int64_t i) const override;

 private:
  const Network& net_;
  MoleculeSum sum_;
  int slots_;
  const std::vector<std::vector<Signal>>& train_;
  const std::vector<std::vector<Signal>>& test_;
  std::vector<MoleculeChain> chains_[2];
};

}  // namespace eqntk::so3
