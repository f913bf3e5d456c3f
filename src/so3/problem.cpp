#include "eqntk/so3/problem.hpp"

#include <string>

#include "eqntk/error.hpp"

namespace eqntk::so3 {
namespace {

const char* set_name(int set) { return set == 0 ? "training" : "test"; }

void check_signal(const Network& net, const Signal& x, const std::string& what) {
  if (x.band_limit() != net.band_limit() || x.channels() != net.channels())
    throw InvalidArgument(what + " has L=" + std::to_string(x.band_limit()) + ", C=" + std::to_string(x.channels()) +
                          " but the network expects L=" + std::to_string(net.band_limit()) +
                          ", C=" + std::to_string(net.channels()));
}

struct SignalWorker final : kernel::KernelProblem::Worker {
  explicit SignalWorker(const Network& net) : engine(net) {}
  PairKernel engine;
};

struct MoleculeWorker final : kernel::KernelProblem::Worker {
  MoleculeWorker(const Network& net, MoleculeSum sum, int slots) : engine(net, sum, slots) {}
  MoleculeKernel engine;
};

}  // namespace

So3SignalProblem::So3SignalProblem(const Network& net, const std::vector<Signal>& train, const std::vector<Signal>& test)
    : net_(net), train_(train), test_(test) {
  for (int set = 0; set < 2; ++set) {
    const auto& items = set == 0 ? train_ : test_;
    for (std::size_t i = 0; i < items.size(); ++i)
      check_signal(net_, items[i], std::string(set_name(set)) + " signal " + std::to_string(i));
  }
  chains_[0].resize(train_.size());
  chains_[1].resize(test_.size());
}

std::unique_ptr<kernel::KernelProblem::Worker> So3SignalProblem::make_worker() const {
  return std::make_unique<SignalWorker>(net_);
}

void So3SignalProblem::prepare(Worker& worker, int set, std::int64_t i) {
  const auto& items = set == 0 ? train_ : test_;
  chains_[set][static_cast<std::size_t>(i)] =
      static_cast<SignalWorker&>(worker).engine.self_chain(items[static_cast<std::size_t>(i)]);
}

KernelValue So3SignalProblem::evaluate(Worker& worker, int set, std::int64_t i, std::int64_t j) const {
  const auto& rows = set == 0 ? train_ : test_;
  const auto a = static_cast<std::size_t>(i), b = static_cast<std::size_t>(j);
  return static_cast<SignalWorker&>(worker).engine.evaluate(rows[a], chains_[set][a], train_[b], chains_[0][b]);
}

KernelValue So3SignalProblem::self(int set, std::int64_t i) const { return chains_[set][static_cast<std::size_t>(i)].self; }

MoleculeProblem::MoleculeProblem(const Network& net, MoleculeSum sum, int slots,
                                 const std::vector<std::vector<Signal>>& train,
                                 const std::vector<std::vector<Signal>>& test)
    : net_(net), sum_(sum), slots_(slots), train_(train), test_(test) {
  if (net.channels() != kMoleculeChannels)
    throw InvalidArgument("molecule kernel: the network must have " + std::to_string(kMoleculeChannels) +
                          " input channels (5 elements x 2 powers), got " + std::to_string(net.channels()));
  if (slots < 0) throw InvalidArgument("molecule kernel: slots must be >= 0, got " + std::to_string(slots));
  for (int set = 0; set < 2; ++set) {
    const auto& items = set == 0 ? train_ : test_;
    for (std::size_t i = 0; i < items.size(); ++i) {
      const std::string what = std::string(set_name(set)) + " molecule " + std::to_string(i);
      if (items[i].empty()) throw InvalidArgument(what + " is empty (no atoms)");
      if (sum == MoleculeSum::same_slot && slots > 0 && static_cast<int>(items[i].size()) > slots)
        throw InvalidArgument(what + " has " + std::to_string(items[i].size()) + " atoms, more than the " +
                              std::to_string(slots) + " slots");
      for (std::size_t a = 0; a < items[i].size(); ++a) check_signal(net_, items[i][a], what + " atom " + std::to_string(a));
    }
  }
  chains_[0].resize(train_.size());
  chains_[1].resize(test_.size());
}

std::unique_ptr<kernel::KernelProblem::Worker> MoleculeProblem::make_worker() const {
  return std::make_unique<MoleculeWorker>(net_, sum_, slots_);
}

void MoleculeProblem::prepare(Worker& worker, int set, std::int64_t i) {
  const auto& items = set == 0 ? train_ : test_;
  chains_[set][static_cast<std::size_t>(i)] =
      static_cast<MoleculeWorker&>(worker).engine.self_chain(items[static_cast<std::size_t>(i)]);
}

KernelValue MoleculeProblem::evaluate(Worker& worker, int set, std::int64_t i, std::int64_t j) const {
  return static_cast<MoleculeWorker&>(worker).engine.evaluate(chains_[set][static_cast<std::size_t>(i)],
                                                             chains_[0][static_cast<std::size_t>(j)]);
}

KernelValue MoleculeProblem::self(int set, std::int64_t i) const { return chains_[set][static_cast<std::size_t>(i)].self; }

}  // namespace eqntk::so3
