// SO(3) Gram matrices through the distributed builder (parallel::build_gram over so3::So3SignalProblem and
// so3::MoleculeProblem): every entry bitwise identical to the serial so3::gram_matrices /
// molecule_gram_matrices for every process grid of the rank count, several block sizes and thread counts.
// Registered at 1, 2, 3 and 4 ranks. Every assertion is on a value reduced over all ranks.
#include <gtest/gtest.h>
#include <mpi.h>

#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "../support/mpi_test_main.hpp"
#include "eqntk/parallel/dist_ops.hpp"
#include "eqntk/parallel/gram_builder.hpp"
#include "eqntk/error.hpp"
#include "eqntk/so3/gram.hpp"
#include "eqntk/so3/grid_choice.hpp"
#include "eqntk/so3/problem.hpp"

namespace {

using eqntk::testing::all_ranks;
namespace parallel = eqntk::parallel;
namespace so3 = eqntk::so3;

// Every factorisation p·q of the rank count.
std::vector<std::pair<int, int>> grids() {
  std::vector<std::pair<int, int>> g;
  for (int p = 1; p <= eqntk::testing::size(); ++p)
    if (eqntk::testing::size() % p == 0) g.emplace_back(p, eqntk::testing::size() / p);
  return g;
}

parallel::BuildOptions quiet_options(int threads, bool test_self = false) {
  parallel::BuildOptions o;
  o.threads = threads;
  o.quiet = true;
  o.progress_interval = 0.01;  // exercise the progress rounds
  o.test_self = test_self;
  return o;
}

// Bitwise comparison of the replicated lower triangle (train) or whole matrix (test) with a serial Gram.
bool same_bits(const parallel::DistMatrix& a, const std::vector<double>& serial, bool lower_only) {
  const std::vector<double> full = parallel::replicate(a);
  bool ok = full.size() == serial.size();
  for (std::int64_t i = 0; ok && i < a.rows(); ++i)
    for (std::int64_t j = 0; j < a.cols(); ++j) {
      if (lower_only && j > i) continue;
      const std::size_t e = static_cast<std::size_t>(i * a.cols() + j);
      ok = ok && std::memcmp(&full[e], &serial[e], sizeof(double)) == 0;
    }
  return ok;
}

bool matches(const parallel::GramMatrices& g, const eqntk::kernel::GramPair& train, const eqntk::kernel::GramPair& test) {
  return same_bits(g.train_nngp, train.nngp, true) && same_bits(g.train_ntk, train.ntk, true) &&
         same_bits(g.test_nngp, test.nngp, false) && same_bits(g.test_ntk, test.ntk, false);
}

so3::Signal random_signal(int L, int C, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> g(0.0, 0.3);
  so3::Signal x(L, C);
  for (int c = 0; c < C; ++c)
    for (int l = 0; l < L; ++l)
      for (int m = 0; m <= l; ++m) x.set(c, l, m, {g(rng), m == 0 ? 0.0 : g(rng)});
  return x;
}

// Small molecules of H, C, N, O, F with 1 to 5 atoms, deterministic and distinct.
std::vector<so3::Molecule> molecules(int count, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> pos(-1.4, 1.4);
  const int zs[5] = {1, 6, 7, 8, 9};
  std::vector<so3::Molecule> out;
  for (int i = 0; i < count; ++i) {
    so3::Molecule m;
    m.source = "test molecule " + std::to_string(i);
    const int n = 1 + static_cast<int>((seed + static_cast<std::uint64_t>(i) * 3) % 5);
    for (int a = 0; a < n; ++a) m.atoms.push_back({zs[rng() % 5], {pos(rng), pos(rng), pos(rng)}});
    out.push_back(m);
  }
  return out;
}

std::vector<std::vector<so3::Signal>> atom_signals(const std::vector<so3::Molecule>& ms, int L,
                                                   const std::vector<double>& scale) {
  so3::AtomSignalOptions o;
  o.channel_scale = scale;
  std::vector<std::vector<so3::Signal>> out;
  for (const auto& m : ms) out.push_back(so3::atom_signals(m, L, o));
  return out;
}

const char* const kArchs[] = {"s2lift:w=1.3:b=0.2,erf,so3conv:w=1.1:b=0.1,erf,so3pool,dense:w=0.9:b=0.05",
                              "s2lift:b=0.1,relu,so3pool,dense,relu,dense:w=1.2"};

TEST(So3GramBuilder, SignalEntriesAreBitwiseIdenticalToTheSerialGramForEveryGridBlockSizeAndThreadCount) {
  constexpr int L = 4, C = 3;
  std::vector<so3::Signal> train, test;
  for (int i = 0; i < 9; ++i) train.push_back(random_signal(L, C, 100 + static_cast<std::uint64_t>(i)));
  for (int i = 0; i < 5; ++i) test.push_back(random_signal(L, C, 200 + static_cast<std::uint64_t>(i)));
  for (const char* text : kArchs) {
    const so3::Network net(so3::Architecture::parse(text), L, C);
    const auto serial_train = so3::gram_matrices(net, train, nullptr);
    const auto serial_test = so3::gram_matrices(net, test, &train);
    for (const auto& [p, q] : grids()) {
      const parallel::ProcessGrid grid(p, q);
      for (const std::int64_t nb : {1, 3, 16}) {  // 16 > N: one tile, most ranks own nothing
        for (const int threads : {1, 2}) {
          so3::So3SignalProblem problem(net, train, test);
          const auto g = parallel::build_gram(grid, problem, nb, quiet_options(threads));
          EXPECT_TRUE(all_ranks(matches(g, serial_train, serial_test)))
              << text << " grid " << p << "x" << q << " nb " << nb << " threads " << threads;
          EXPECT_EQ(g.stats.pairs_total, 9 * 10 / 2 + 5 * 9);
        }
      }
    }
  }
}

// The grid chosen to the default tolerance (so3::choose_grid, as rank 0 of `eqntk run` does and broadcasts)
// is the same on every rank and every rank count: each rank chooses on its own copy of the items, the choices
// (N, the ladder, the estimate's bits, the coarse grid and its threshold) agree on all ranks and with the
// single-threaded choice, and the Gram on those grids is bitwise the serial one for every process grid and
// block size.
TEST(So3GramBuilder, GridChosenOnEveryRankIsTheSameAndItsGramIsBitwiseSerial) {
  constexpr int L = 4, C = 2;
  std::vector<so3::Signal> train, test;
  for (int i = 0; i < 6; ++i) train.push_back(random_signal(L, C, 300 + static_cast<std::uint64_t>(i)));
  for (int i = 0; i < 3; ++i) test.push_back(random_signal(L, C, 400 + static_cast<std::uint64_t>(i)));
  std::vector<const so3::Signal*> items;
  for (const auto* set : {&train, &test})
    for (const auto& x : *set) items.push_back(&x);
  const so3::Architecture arch = so3::Architecture::parse(kArchs[0]);
  const so3::GridChoice choice = so3::choose_grid(arch, L, C, items, {1e-12, 0, 2, true});
  const so3::GridChoice serial_choice = so3::choose_grid(arch, L, C, items, {1e-12, 0, 1, true});
  EXPECT_TRUE(all_ranks(choice.n == serial_choice.n && choice.estimate == serial_choice.estimate &&
                        choice.coarse_n == serial_choice.coarse_n && choice.coarse_n_beta == serial_choice.coarse_n_beta &&
                        choice.coarse_peak == serial_choice.coarse_peak));
  std::int64_t mine[6] = {choice.n, static_cast<std::int64_t>(choice.ladder.size()), 0, choice.coarse_n,
                          choice.coarse_n_beta, 0};
  std::memcpy(&mine[2], &choice.estimate, sizeof(double));
  std::memcpy(&mine[5], &choice.coarse_peak, sizeof(double));
  std::int64_t low[6], high[6];
  MPI_Allreduce(mine, low, 6, MPI_INT64_T, MPI_MIN, MPI_COMM_WORLD);
  MPI_Allreduce(mine, high, 6, MPI_INT64_T, MPI_MAX, MPI_COMM_WORLD);
  for (int k = 0; k < 6; ++k) EXPECT_EQ(low[k], high[k]) << k;
  EXPECT_FALSE(choice.capped);
  EXPECT_GT(choice.n, so3::grid_start(arch, L));  // these items need more than the §4.2 default
  // The two grids (cross pairs on the coarse one): the per-pair choice is made inside the pair kernel, the
  // same for (i, j) on every rank, tile and thread.
  EXPECT_GT(choice.coarse_n, 0) << choice.summary();
  const so3::Network net(arch, L, C, so3::GridOptions{choice.n, 0}, choice.coarse());
  const auto serial_train = so3::gram_matrices(net, train, nullptr);
  const auto serial_test = so3::gram_matrices(net, test, &train);
  for (const auto& [p, q] : grids()) {
    const parallel::ProcessGrid grid(p, q);
    for (const std::int64_t nb : {1, 4}) {
      so3::So3SignalProblem problem(net, train, test);
      const auto g = parallel::build_gram(grid, problem, nb, quiet_options(1));
      EXPECT_TRUE(all_ranks(matches(g, serial_train, serial_test))) << "grid " << p << "x" << q << " nb " << nb;
    }
  }
}

TEST(So3GramBuilder, MoleculeEntriesAreBitwiseIdenticalToTheSerialGramForEverySumGridAndBlockSize) {
  constexpr int L = 4;
  const auto train_mols = molecules(8, 7), test_mols = molecules(5, 11);
  // Scaled signals (channel_rms_scale of the training atoms), as `eqntk run --channel-scale rms` uses them.
  const auto raw = atom_signals(train_mols, L, {});
  const auto scale = so3::channel_rms_scale(raw);
  const auto train = atom_signals(train_mols, L, scale), test = atom_signals(test_mols, L, scale);
  struct Sum {
    so3::MoleculeSum sum;
    int slots;
  };
  for (const Sum s : {Sum{so3::MoleculeSum::same_slot, 0}, Sum{so3::MoleculeSum::same_slot, 6},
                      Sum{so3::MoleculeSum::all_pairs, 0}}) {
    for (const char* text : kArchs) {
      const so3::Network net(so3::Architecture::parse(text), L, so3::kMoleculeChannels);
      const auto serial_train = so3::molecule_gram_matrices(net, s.sum, s.slots, train, nullptr);
      const auto serial_test = so3::molecule_gram_matrices(net, s.sum, s.slots, test, &train);
      for (const auto& [p, q] : grids()) {
        const parallel::ProcessGrid grid(p, q);
        for (const std::int64_t nb : {1, 3, 16}) {
          const int threads = nb == 3 ? 2 : 1;
          so3::MoleculeProblem problem(net, s.sum, s.slots, train, test);
          const auto g = parallel::build_gram(grid, problem, nb, quiet_options(threads));
          EXPECT_TRUE(all_ranks(matches(g, serial_train, serial_test)))
              << text << " sum " << static_cast<int>(s.sum) << " slots " << s.slots << " grid " << p << "x" << q
              << " nb " << nb;
        }
      }
    }
  }
}

// K(x*, x*) for variances comes from the self chains: bitwise MoleculeKernel::self_chain().self, and the
// Gram diagonal K(x*, x*) of the serial engine to rounding (all_pairs sums the atom pairs of a self chain
// as Σ_i + 2Σ_{i<j}, the Gram entry as Σ_i Σ_j).
TEST(So3GramBuilder, TestSelfKernelsAreTheSelfChainsAndTheSerialDiagonal) {
  constexpr int L = 3;
  const auto train_mols = molecules(4, 3), test_mols = molecules(6, 5);
  const auto train = atom_signals(train_mols, L, {}), test = atom_signals(test_mols, L, {});
  const so3::Network net(so3::Architecture::parse(kArchs[0]), L, so3::kMoleculeChannels, so3::GridOptions{8 * L, 0});
  const auto serial = so3::molecule_gram_matrices(net, so3::MoleculeSum::all_pairs, 0, test, nullptr);
  so3::MoleculeKernel engine(net, so3::MoleculeSum::all_pairs, 0);
  const parallel::ProcessGrid grid(1, eqntk::testing::size());
  so3::MoleculeProblem problem(net, so3::MoleculeSum::all_pairs, 0, train, test);
  const auto g = parallel::build_gram(grid, problem, 2, quiet_options(1, true));
  bool ok = g.test_self_nngp.size() == test.size() && g.test_self_ntk.size() == test.size();
  for (std::size_t i = 0; ok && i < test.size(); ++i) {
    const so3::KernelValue self = engine.self_chain(test[i]).self;
    const std::size_t d = i * test.size() + i;
    ok = std::memcmp(&g.test_self_nngp[i], &self.nngp, sizeof(double)) == 0 &&
         std::memcmp(&g.test_self_ntk[i], &self.ntk, sizeof(double)) == 0 &&
         std::abs(self.nngp - serial.nngp[d]) <= 1e-12 * std::abs(serial.nngp[d]) &&
         std::abs(self.ntk - serial.ntk[d]) <= 1e-12 * std::abs(serial.ntk[d]);
  }
  EXPECT_TRUE(all_ranks(ok));
}

TEST(So3GramBuilder, ProblemsRejectItemsThatDoNotFitTheNetwork) {
  const so3::Network net(so3::Architecture::parse(kArchs[0]), 3, so3::kMoleculeChannels);
  const std::vector<std::vector<so3::Signal>> none, empty_molecule{{}}, wrong_l{{so3::Signal(4, so3::kMoleculeChannels)}};
  const std::vector<std::vector<so3::Signal>> four_atoms{std::vector<so3::Signal>(4, so3::Signal(3, so3::kMoleculeChannels))};
  EXPECT_THROW(so3::MoleculeProblem(net, so3::MoleculeSum::all_pairs, 0, empty_molecule, none), eqntk::InvalidArgument);
  EXPECT_THROW(so3::MoleculeProblem(net, so3::MoleculeSum::all_pairs, 0, none, wrong_l), eqntk::InvalidArgument);
  EXPECT_THROW(so3::MoleculeProblem(net, so3::MoleculeSum::same_slot, 3, four_atoms, none), eqntk::InvalidArgument);
  EXPECT_NO_THROW(so3::MoleculeProblem(net, so3::MoleculeSum::all_pairs, 3, four_atoms, none));
  const std::vector<so3::Signal> signals{so3::Signal(3, 2)};
  EXPECT_THROW(so3::So3SignalProblem(net, signals, {}), eqntk::InvalidArgument);  // C = 2, network C = 10
}

}  // namespace
