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

}  // namespace

So3SignalItems::So3SignalItems(const Network& net, const std::vector<Signal>& train, const std::vector<Signal>& test)
    : net_(net), train_(train), test_(test) {
  for (int set = 0; set < 2; ++set) {
    const auto& x = items(set);
    for (std::size_t i = 0; i < x.size(); ++i) check_signal(net_, x[i], std::string(set_name(set)) + " signal " + std::to_string(i));
  }
}

MoleculeItems::MoleculeItems(const Network& net, MoleculeSum sum, int slots, const std::vector<std::vector<Signal>>& train,
                             const std::vector<std::vector<Signal>>& test)
    : net_(net), sum_(sum), slots_(slots), train_(train), test_(test) {
  if (net.channels() != kMoleculeChannels)
    throw InvalidArgument("molecule kernel: the network must have " + std::to_string(kMoleculeChannels) +
                          " input channels (5 elements x 2 powers), got " + std::to_string(net.channels()));
  if (slots < 0) throw InvalidArgument("molecule kernel: slots must be >= 0, got " + std::to_string(slots));
  for (int set = 0; set < 2; ++set) {
    const auto& x = items(set);
    for (std::size_t i = 0; i < x.size(); ++i) {
      const std::string what = std::string(set_name(set)) + " molecule " + std::to_string(i);
      if (x[i].empty()) throw InvalidArgument(what + " is empty (no atoms)");
      if (sum == MoleculeSum::same_slot && slots > 0 && static_cast<int>(x[i].size()) > slots)
        throw InvalidArgument(what + " has " + std::to_string(x[i].size()) + " atoms, more than the " +
                              std::to_string(slots) + " slots");
      for (std::size_t a = 0; a < x[i].size(); ++a) check_signal(net_, x[i][a], what + " atom " + std::to_string(a));
    }
  }
}

}  // namespace eqntk::so3
