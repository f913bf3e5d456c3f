// experiment_molecules: SO(3)-invariant NTK vs a non-equivariant MLP NTK on real molecules (G2/97
// atomization energies, tools/convert_g2.py), and the change of each kernel under random rotations.
// Results and commands: tools/README_so3.md.
//
// Both kernels see the same per-atom signals (SO3_MATH.md Appendix B: exact spherical-harmonic coefficients of
// the Gaussian bumps toward the neighbours, 10 channels, band limit L = 6, per-channel RMS scale of all atoms —
// unsupervised, computed once over all molecules):
//   SO(3)  `s2lift:w=0.125,erf,so3conv,erf,so3pool,dense` on the atom signals (so3::MoleculeKernel, all-pairs);
//   MLP    `flatten,dense:w=0.125,erf,dense,erf,dense` of the planar library on the real coefficient vectors
//          v = √(D/4πC)·(a_l0, √2 Re a_lm, √2 Im a_lm)_{c,l,m>0} (D = C·L² features, 1×1 "images" with D
//          channels), so that the MLP's input kernel ⟨v,v'⟩/D equals the SO(3) correlation at the identity
//          ⟨x,x'⟩/(4πC); the same all-pairs sum over atoms.
// With this scaling the SO(3) kernel is exactly the Haar average of the MLP kernel, K_SO3(x,x') = ⟨K_MLP(x,Λ_P x')⟩_P
// (SO3_MATH.md §3, corollary); the program checks it by Monte Carlo on one atom pair. The MLP kernel depends
// on the orientation of the molecule; the SO(3) kernel does not.
// Why w = 0.125: the erf integrand over SO(3) is analytic but sharp when the atom variances q are large (the
// RMS-scaled signals reach q ≈ 14, and the dual's arcsine nears its branch point), so the quadrature — and with
// it the rotation invariance — converges slowly there (w = 1: 1e-9 at N = 72). A first-layer weight of 0.125
// (q/64) makes it converge fast (README_so3.md has the numbers). The grid N is chosen to --so3-tol (default
// 1e-12) on the atoms as `eqntk run` does (so3/grid_choice.hpp), or forced by --so3-grid; it is printed with its
// estimated relative error.
// Inputs are checked before anything is computed: a missing --xyz file ends the program at once with one
// line naming it and the command that makes it (tools/input_check.hpp).
//
// Molecule kernel: K(M,M') = Σ_i Σ_j k(x_i, x'_j) (an additive model E = Σ_atoms ε(environment), invariant to
// the atom order); the heads have no bias, so the molecule NTK/NNGP is exactly the sum of the atom ones.
// Regression: NTK (and NNGP) at t = ∞, i.e. kernel ridge, on the residual of a linear baseline in the element
// counts (dressed atoms; --baseline mean: the training mean) fitted on the training fold; the ridge
// λ = ρ·tr(Θ_train)/n with ρ ∈ {1e-10, ..., 1e2} chosen by closed-form leave-one-out on the training fold
// only (a large ρ turns the kernel off, so a useless kernel cannot do worse than the baseline by much).
// Protocol: --splits random train/test splits (--train-fraction), and leave-one-out over all molecules (with the
// inner ridge selection on the others). Errors in meV.
// Rotations: every molecule rotated by two independent Haar-random rotations A_i, B_i; the change of each
// kernel max_ij |K(A_i M_i, B_j M_j) − K(M_i, M_j)| / max_ij |K(M_i, M_j)| (NNGP and NTK).
//
// Last line: mae_so3_mev=<a> mae_mlp_mev=<b> max_rot_change_so3=<c> (a, b: NTK, repeated splits).
#include <Eigen/Dense>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <complex>
#include <cstdio>
#include <cstdlib>
#include <numbers>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "eqntk/error.hpp"
#include "eqntk/kernel/architecture.hpp"
#include "eqntk/kernel/gram.hpp"
#include "eqntk/kernel/network.hpp"
#include "eqntk/so3/gram.hpp"
#include "eqntk/so3/grid_choice.hpp"
#include "eqntk/so3/molecule.hpp"
#include "eqntk/so3/network.hpp"
#include "eqntk/so3/signal.hpp"
#include "input_check.hpp"
#include "tool_options.hpp"

namespace {

namespace so3 = eqntk::so3;
namespace kernel = eqntk::kernel;
namespace data = eqntk::data;
namespace po = boost::program_options;
using Clock = std::chrono::steady_clock;
using Matrix = Eigen::MatrixXd;
using Vector = Eigen::VectorXd;
using Atoms = std::vector<so3::Signal>;

constexpr double kMeVPerEV = 1000.0;

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

struct Args {
  std::string xyz = std::string(EQNTK_SOURCE_DIR) + "/tools/data/g2/g2.xyz";
  std::string target_key = "D0_eV";
  std::string so3_arch = "s2lift:w=0.125,erf,so3conv,erf,so3pool,dense";
  std::string mlp_arch = "flatten,dense:w=0.125,erf,dense,erf,dense";
  int band_limit = 6;
  int grid = 0;       // SO(3) grid N; 0: chosen to so3_tol (so3/grid_choice.hpp)
  double so3_tol = 1e-12;
  int splits = 20;
  double train_fraction = 0.8;
  int threads = 2;
  std::uint64_t seed = 1;
  int mc_rotations = 4000;
  int max_molecules = 0;  // 0: all (a smaller number for quick trials)
  bool element_baseline = true;
};

Args parse(int argc, char** argv) {
  Args a;
  po::options_description flags = eqntk::tools::tool_flags();
  using eqntk::tools::at_least;
  using eqntk::tools::defaulted;
  flags.add_options()
      ("xyz", defaulted(&a.xyz), "molecules with targets (from tools/convert_g2.py)")
      ("target-key", defaulted(&a.target_key), "the target of each molecule (eV)")
      ("so3-arch", defaulted(&a.so3_arch), "SO(3) architecture on the atom signals")
      ("mlp-arch", defaulted(&a.mlp_arch), "MLP architecture on the coefficient vectors")
      ("band-limit", defaulted(&a.band_limit)->notifier(at_least("--band-limit", 1)),
       "band limit L of the atom signals")
      ("so3-grid", defaulted(&a.grid)->notifier(at_least("--so3-grid", 0)),
       "SO(3) grid N; 0: chosen to --so3-tol")
      ("so3-tol", defaulted(&a.so3_tol, "1e-12"), "relative error the grid is chosen to")
      ("splits", defaulted(&a.splits)->notifier(at_least("--splits", 1)),
       "random train/test splits")
      ("train-fraction", defaulted(&a.train_fraction, "0.8"), "training share of a split")
      ("threads", defaulted(&a.threads)->notifier(at_least("--threads", 1)), "threads")
      ("seed", defaulted(&a.seed), "seed of the splits and rotations")
      ("mc-rotations", defaulted(&a.mc_rotations)->notifier(at_least("--mc-rotations", 1)),
       "Haar rotations of the Monte Carlo check K_SO3 = <K_MLP>")
      ("max-molecules", defaulted(&a.max_molecules)->notifier(at_least("--max-molecules", 0)),
       "the first M molecules only (0: all)")
      ("baseline", po::value<std::string>()->default_value("elements")->notifier([&a](const std::string& v) {
         if (v != "mean" && v != "elements") throw po::error("--baseline must be elements or mean, got '" + v + "'");
         a.element_baseline = v == "elements";
       }), "elements: linear in the element counts; mean: the training mean");
  eqntk::tools::parse_options("experiment_molecules", flags, argc, argv,
                              "SO(3) NTK vs MLP NTK on G2/97 atomization energies (tools/README_so3.md).\n");
  return a;
}

so3::Euler haar_rotation(std::mt19937_64& rng) {
  std::uniform_real_distribution<double> u(0.0, 1.0);
  return {2 * std::numbers::pi * u(rng), std::acos(1.0 - 2.0 * u(rng)), 2 * std::numbers::pi * u(rng)};
}

so3::Molecule rotated(const so3::Molecule& m, const so3::Euler& e) {
  const so3::Matrix3 r = so3::rotation_matrix(e);
  so3::Molecule out = m;
  for (so3::Atom& a : out.atoms) {
    const auto p = a.position;
    for (int i = 0; i < 3; ++i) a.position[static_cast<std::size_t>(i)] = r[3 * i] * p[0] + r[3 * i + 1] * p[1] + r[3 * i + 2] * p[2];
  }
  return out;
}

// The MLP input: real coefficient vector with ⟨v, v'⟩/D = ⟨x, x'⟩/(4πC).
std::vector<double> features(const so3::Signal& x) {
  const int L = x.band_limit(), C = x.channels();
  const double d = static_cast<double>(C) * L * L;
  const double s = std::sqrt(d / (4 * std::numbers::pi * C));
  std::vector<double> v;
  v.reserve(static_cast<std::size_t>(d));
  for (int c = 0; c < C; ++c)
    for (int l = 0; l < L; ++l) {
      v.push_back(s * x.at(c, l, 0).real());
      for (int m = 1; m <= l; ++m) {
        v.push_back(s * std::sqrt(2.0) * x.at(c, l, m).real());
        v.push_back(s * std::sqrt(2.0) * x.at(c, l, m).imag());
      }
    }
  return v;
}

data::ImageSet atom_images(const std::vector<Atoms>& molecules) {
  data::ImageSet set;
  for (const Atoms& m : molecules)
    for (const so3::Signal& x : m) {
      const auto v = features(x);
      set.shape = {static_cast<std::int64_t>(v.size()), 1, 1};
      set.pixels.insert(set.pixels.end(), v.begin(), v.end());
      ++set.count;
    }
  return set;
}

// Molecule Gram matrices from atom Gram matrices: block sums over the atoms of each molecule.
struct Gram {
  Matrix nngp, ntk;
};

Gram molecule_sums(const kernel::GramPair& atoms, const std::vector<Atoms>& rows, const std::vector<Atoms>& cols) {
  std::vector<std::int64_t> r0{0}, c0{0};
  for (const Atoms& m : rows) r0.push_back(r0.back() + static_cast<std::int64_t>(m.size()));
  for (const Atoms& m : cols) c0.push_back(c0.back() + static_cast<std::int64_t>(m.size()));
  Gram g{Matrix::Zero(static_cast<Eigen::Index>(rows.size()), static_cast<Eigen::Index>(cols.size())), {}};
  g.ntk = g.nngp;
  for (std::size_t i = 0; i < rows.size(); ++i)
    for (std::size_t j = 0; j < cols.size(); ++j)
      for (std::int64_t a = r0[i]; a < r0[i + 1]; ++a)
        for (std::int64_t b = c0[j]; b < c0[j + 1]; ++b) {
          const auto e = static_cast<std::size_t>(a * atoms.cols + b);
          g.nngp(static_cast<Eigen::Index>(i), static_cast<Eigen::Index>(j)) += atoms.nngp[e];
          g.ntk(static_cast<Eigen::Index>(i), static_cast<Eigen::Index>(j)) += atoms.ntk[e];
        }
  return g;
}

Gram from_pair(const kernel::GramPair& g) {
  Gram out;
  out.nngp = Eigen::Map<const Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>>(g.nngp.data(), g.rows, g.cols);
  out.ntk = Eigen::Map<const Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>>(g.ntk.data(), g.rows, g.cols);
  return out;
}

Gram mlp_gram(const kernel::Network& net, const std::vector<Atoms>& rows, const std::vector<Atoms>* cols, int threads) {
  const data::ImageSet r = atom_images(rows);
  if (cols == nullptr) return molecule_sums(kernel::gram_matrices(net, r, nullptr, threads), rows, rows);
  const data::ImageSet c = atom_images(*cols);
  return molecule_sums(kernel::gram_matrices(net, r, &c, threads), rows, *cols);
}

Gram so3_gram(const so3::Network& net, const std::vector<Atoms>& rows, const std::vector<Atoms>* cols, int threads) {
  return from_pair(so3::molecule_gram_matrices(net, so3::MoleculeSum::all_pairs, 0, rows, cols, threads));
}

// Kernel ridge prediction on a split with the ridge chosen by closed-form leave-one-out on the training fold:
// for (K + λI)⁻¹ = U diag(1/(s+λ)) Uᵀ, the LOO residual of training point i is α_i / [(K + λI)⁻¹]_ii.
// The baseline b(M) = xᵀβ fitted by least squares on the training fold (x: the rows of `baseline`, e.g. a
// constant 1 and the element counts of the molecule); the kernel models the residual y − b.
Vector baseline_fit(const Matrix& x, const Vector& y, const std::vector<int>& train) {
  Matrix a(static_cast<Eigen::Index>(train.size()), x.cols());
  Vector b(static_cast<Eigen::Index>(train.size()));
  for (std::size_t i = 0; i < train.size(); ++i) {
    a.row(static_cast<Eigen::Index>(i)) = x.row(train[i]);
    b[static_cast<Eigen::Index>(i)] = y[train[i]];
  }
  // A tiny ridge keeps elements absent from the fold (all-zero columns) at β = 0.
  const Matrix ata = a.transpose() * a + 1e-9 * Matrix::Identity(x.cols(), x.cols());
  return ata.ldlt().solve(a.transpose() * b);
}

Vector predict(const Matrix& k, const Matrix& baseline, const Vector& y, const std::vector<int>& train,
               const std::vector<int>& test, double* chosen_ridge = nullptr) {
  const auto n = static_cast<Eigen::Index>(train.size());
  const Vector beta = baseline_fit(baseline, y, train);
  Matrix kt(n, n);
  Vector yt(n);
  for (Eigen::Index a = 0; a < n; ++a) {
    yt[a] = y[train[static_cast<std::size_t>(a)]] - baseline.row(train[static_cast<std::size_t>(a)]).dot(beta);
    for (Eigen::Index b = 0; b < n; ++b) kt(a, b) = k(train[static_cast<std::size_t>(a)], train[static_cast<std::size_t>(b)]);
  }
  const Eigen::SelfAdjointEigenSolver<Matrix> eig(kt);
  const Matrix& u = eig.eigenvectors();
  const Vector s = eig.eigenvalues().cwiseMax(0.0);
  const Vector uty = u.transpose() * yt;
  const double scale = kt.trace() / static_cast<double>(n);
  Vector out(static_cast<Eigen::Index>(test.size()));
  for (std::size_t t = 0; t < test.size(); ++t) out[static_cast<Eigen::Index>(t)] = baseline.row(test[t]).dot(beta);
  if (!(scale > 0)) return out;  // no kernel: the baseline alone
  double best = INFINITY, best_lambda = 0;
  for (int e = -10; e <= 2; ++e) {
    const double lambda = std::pow(10.0, e) * scale;
    const Vector inv = (s.array() + lambda).inverse();
    const Vector alpha = u * (inv.cwiseProduct(uty));
    const Vector diag = (u.array().square().matrix() * inv);
    const double loo = (alpha.array() / diag.array()).square().mean();
    if (loo < best) {
      best = loo;
      best_lambda = lambda;
    }
  }
  const Vector alpha = u * ((s.array() + best_lambda).inverse().matrix().cwiseProduct(uty));
  if (chosen_ridge != nullptr) *chosen_ridge = best_lambda / scale;
  for (std::size_t t = 0; t < test.size(); ++t)
    for (Eigen::Index a = 0; a < n; ++a) out[static_cast<Eigen::Index>(t)] += k(test[t], train[static_cast<std::size_t>(a)]) * alpha[a];
  return out;
}

struct Errors {
  double abs_sum = 0, sq_sum = 0;
  std::int64_t count = 0;
  void add(double e) {
    abs_sum += std::abs(e);
    sq_sum += e * e;
    ++count;
  }
  [[nodiscard]] double mae() const { return abs_sum / static_cast<double>(count); }
  [[nodiscard]] double rmse() const { return std::sqrt(sq_sum / static_cast<double>(count)); }
};

struct Scores {
  Errors splits, loo;
  std::vector<double> ridges;
};

Scores evaluate(const Matrix& k, const Matrix& baseline, const Vector& y, const std::vector<std::vector<int>>& split_train,
                const std::vector<std::vector<int>>& split_test) {
  Scores s;
  for (std::size_t r = 0; r < split_train.size(); ++r) {
    double ridge = 0;
    const Vector p = predict(k, baseline, y, split_train[r], split_test[r], &ridge);
    s.ridges.push_back(ridge);
    for (std::size_t t = 0; t < split_test[r].size(); ++t) s.splits.add(p[static_cast<Eigen::Index>(t)] - y[split_test[r][t]]);
  }
  const int n = static_cast<int>(y.size());
  for (int i = 0; i < n; ++i) {
    std::vector<int> train;
    for (int j = 0; j < n; ++j)
      if (j != i) train.push_back(j);
    s.loo.add(predict(k, baseline, y, train, {i})[0] - y[i]);
  }
  return s;
}

double relative_change(const Matrix& rotated, const Matrix& original) {
  return (rotated - original).cwiseAbs().maxCoeff() / original.cwiseAbs().maxCoeff();
}

}  // namespace

int main(int argc, char** argv) {
  const Args args = parse(argc, argv);
  eqntk::tools::require_file("experiment_molecules", args.xyz,
                             "make it with /usr/bin/python3 tools/convert_g2.py (needs python3-ase: tools/setup_debian.sh --experiments)");
  std::setvbuf(stdout, nullptr, _IOLBF, 0);  // progress lines appear as they are printed, also in a log file
  const auto t_start = Clock::now();
  try {
    // Molecules and targets.
    std::vector<so3::Molecule> molecules = so3::read_xyz(args.xyz);
    if (args.max_molecules > 0 && static_cast<std::size_t>(args.max_molecules) < molecules.size())
      molecules.resize(static_cast<std::size_t>(args.max_molecules));
    const int n = static_cast<int>(molecules.size());
    Vector y(n);
    std::size_t atoms_total = 0;
    for (int i = 0; i < n; ++i) {
      const auto v = so3::comment_value(molecules[static_cast<std::size_t>(i)], args.target_key);
      if (!v) throw eqntk::InvalidArgument(molecules[static_cast<std::size_t>(i)].source + ": no " + args.target_key + "=");
      y[i] = *v * kMeVPerEV;
      atoms_total += molecules[static_cast<std::size_t>(i)].atoms.size();
    }
    const int L = args.band_limit;
    std::vector<Atoms> raw;
    for (const auto& m : molecules) raw.push_back(so3::atom_signals(m, L));
    so3::AtomSignalOptions scale;
    scale.channel_scale = so3::channel_rms_scale(raw);
    const auto signals_of = [&](const std::vector<so3::Molecule>& ms) {
      std::vector<Atoms> out;
      for (const auto& m : ms) out.push_back(so3::atom_signals(m, L, scale));
      return out;
    };
    const std::vector<Atoms> atoms = signals_of(molecules);
    std::vector<double> q;
    for (const Atoms& m : atoms)
      for (const so3::Signal& x : m) q.push_back(x.variance());
    std::sort(q.begin(), q.end());
    std::printf("data: %d molecules (%zu atoms) from %s, target %s (meV: mean %.0f, std %.0f), L = %d, %d channels, "
                "per-channel RMS scale over all atoms; atom variances q(x) median %.3g, max %.3g\n",
                n, atoms_total, args.xyz.c_str(), args.target_key.c_str(), y.mean(),
                std::sqrt((y.array() - y.mean()).square().mean()), L, so3::kMoleculeChannels, q[q.size() / 2], q.back());

    const so3::Architecture so3_arch = so3::Architecture::parse(args.so3_arch);
    std::vector<const Atoms*> all_atoms;
    for (const Atoms& m : atoms) all_atoms.push_back(&m);
    auto t_grid = Clock::now();
    const so3::GridChoice grid =
        so3::choose_molecule_grid(so3_arch, L, all_atoms, so3::GridChoiceOptions{args.so3_tol, args.grid, args.threads});
    std::printf("%s, chosen in %.1f s\n", grid.summary().c_str(), seconds_since(t_grid));
    if (grid.capped) std::fprintf(stderr, "experiment_molecules: warning: %s\n", grid.warning().c_str());
    const so3::Network so3_net(so3_arch, L, so3::kMoleculeChannels, so3::GridOptions{grid.n, 0});
    const kernel::Network mlp_net(kernel::Architecture::parse(args.mlp_arch),
                                  {static_cast<std::int64_t>(so3::kMoleculeChannels) * L * L, 1, 1});
    std::printf("SO(3) NTK: %s, grid N = %d, %d beta nodes; MLP NTK: %s on %d features per atom; all-pairs atom sums\n",
                so3_arch.canonical().c_str(), so3_net.grid().n(), so3_net.grid().n_beta(),
                mlp_net.architecture().canonical().c_str(), so3::kMoleculeChannels * L * L);

    // The corollary: SO(3) kernel = Haar average of the MLP kernel (Monte Carlo over rotations of x').
    {
      std::mt19937_64 rng(args.seed ^ 0x51ULL);
      // Two carbon atoms with carbon and hydrogen neighbours (ethylene, ethane in G2 order): a pair whose
      // channels overlap, so that the kernel is not trivially the value at zero correlation.
      const so3::Signal& x = atoms[std::min<std::size_t>(12, atoms.size() - 1)][0];
      const so3::Signal& x2 = atoms[std::min<std::size_t>(13, atoms.size() - 1)][0];
      const std::vector<Atoms> one{{x}};
      std::vector<Atoms> turned(1);
      for (int r = 0; r < args.mc_rotations; ++r) turned[0].push_back(so3::rotate(x2, haar_rotation(rng)));
      const data::ImageSet a = atom_images(one), b = atom_images(turned);
      const kernel::GramPair g = kernel::gram_matrices(mlp_net, a, &b, args.threads);
      double mean = 0, sq = 0;
      for (const double v : g.ntk) {
        mean += v;
        sq += v * v;
      }
      mean /= static_cast<double>(g.ntk.size());
      const double se = std::sqrt((sq / static_cast<double>(g.ntk.size()) - mean * mean) / static_cast<double>(g.ntk.size()));
      const std::vector<Atoms> other{{x2}};
      const Gram exact = so3_gram(so3_net, one, &other, 1);
      std::printf("check: SO(3) NTK of an atom pair %.8g, Haar average of the MLP NTK over %d rotations %.8g +- %.3g "
                  "(z = %.2f)\n",
                  exact.ntk(0, 0), args.mc_rotations, mean, se, (mean - exact.ntk(0, 0)) / se);
    }

    // Gram matrices.
    auto t0 = Clock::now();
    const Gram k_so3 = so3_gram(so3_net, atoms, nullptr, args.threads);
    const double s_so3 = seconds_since(t0);
    t0 = Clock::now();
    const Gram k_mlp = mlp_gram(mlp_net, atoms, nullptr, args.threads);
    const double s_mlp = seconds_since(t0);
    std::printf("gram: SO(3) %dx%d in %.1f s (grid N = %d, estimated relative error %.1e), MLP in %.2f s\n", n, n,
                s_so3, grid.n, grid.estimate, s_mlp);

    // Rotations.
    std::mt19937_64 rng(args.seed ^ 0xA5ULL);
    std::vector<so3::Molecule> rot_a, rot_b;
    for (const auto& m : molecules) {
      rot_a.push_back(rotated(m, haar_rotation(rng)));
      rot_b.push_back(rotated(m, haar_rotation(rng)));
    }
    const std::vector<Atoms> atoms_a = signals_of(rot_a), atoms_b = signals_of(rot_b);
    t0 = Clock::now();
    const Gram r_so3 = so3_gram(so3_net, atoms_a, &atoms_b, args.threads);
    const Gram r_mlp = mlp_gram(mlp_net, atoms_a, &atoms_b, args.threads);
    const double rot_so3_ntk = relative_change(r_so3.ntk, k_so3.ntk), rot_so3_nngp = relative_change(r_so3.nngp, k_so3.nngp);
    const double rot_mlp_ntk = relative_change(r_mlp.ntk, k_mlp.ntk), rot_mlp_nngp = relative_change(r_mlp.nngp, k_mlp.nngp);
    std::printf("rotations (every molecule turned by two independent Haar-random rotations, %.1f s): "
                "max |K(A M_i, B M_j) - K(M_i, M_j)| / max |K|\n"
                "  SO(3)  NTK %.2e  NNGP %.2e\n  MLP    NTK %.2e  NNGP %.2e\n",
                seconds_since(t0), rot_so3_ntk, rot_so3_nngp, rot_mlp_ntk, rot_mlp_nngp);

    // Regression.
    std::mt19937_64 split_rng(args.seed);
    std::vector<std::vector<int>> split_train, split_test;
    const int n_train = static_cast<int>(std::lround(args.train_fraction * n));
    for (int r = 0; r < args.splits; ++r) {
      std::vector<int> idx(static_cast<std::size_t>(n));
      std::iota(idx.begin(), idx.end(), 0);
      std::shuffle(idx.begin(), idx.end(), split_rng);
      split_train.emplace_back(idx.begin(), idx.begin() + n_train);
      split_test.emplace_back(idx.begin() + n_train, idx.end());
    }
    // Baseline columns: a constant, and with --baseline elements the counts of H, C, N, O, F.
    Matrix baseline = Matrix::Ones(n, args.element_baseline ? 6 : 1);
    if (args.element_baseline)
      for (int i = 0; i < n; ++i) {
        for (int e = 0; e < 5; ++e) baseline(i, 1 + e) = 0.0;
        for (const so3::Atom& a : molecules[static_cast<std::size_t>(i)].atoms) baseline(i, 1 + so3::element_index(a.z)) += 1.0;
      }
    const Matrix no_kernel = Matrix::Zero(n, n);
    const Scores base = evaluate(no_kernel, baseline, y, split_train, split_test);
    std::printf("regression: %d random splits %d/%d and leave-one-out over %d; NTK and NNGP at t = inf on the residual "
                "of the %s fitted on the training fold, ridge by inner leave-one-out; errors in meV\n",
                args.splits, n_train, n - n_train, n,
                args.element_baseline ? "linear baseline in the element counts" : "training mean");
    std::printf("  %-22s %12s %12s %12s %12s   %s\n", "kernel", "split MAE", "split RMSE", "LOO MAE", "LOO RMSE",
                "median ridge");
    std::printf("  %-22s %12.1f %12.1f %12.1f %12.1f\n", args.element_baseline ? "baseline alone" : "training mean",
                base.splits.mae(), base.splits.rmse(), base.loo.mae(), base.loo.rmse());
    double mae_so3 = 0, mae_mlp = 0;
    for (const auto& [name, k] : std::vector<std::pair<std::string, const Matrix*>>{{"SO(3) NTK", &k_so3.ntk},
                                                                                    {"MLP NTK", &k_mlp.ntk},
                                                                                    {"SO(3) NNGP", &k_so3.nngp},
                                                                                    {"MLP NNGP", &k_mlp.nngp}}) {
      Scores s = evaluate(*k, baseline, y, split_train, split_test);
      std::nth_element(s.ridges.begin(), s.ridges.begin() + static_cast<std::ptrdiff_t>(s.ridges.size() / 2), s.ridges.end());
      std::printf("  %-22s %12.1f %12.1f %12.1f %12.1f   %.0e\n", name.c_str(), s.splits.mae(), s.splits.rmse(),
                  s.loo.mae(), s.loo.rmse(), s.ridges[s.ridges.size() / 2]);
      if (name == "SO(3) NTK") mae_so3 = s.splits.mae();
      if (name == "MLP NTK") mae_mlp = s.splits.mae();
    }
    std::printf("wall time %.1f s (%d threads)\n", seconds_since(t_start), args.threads);
    std::printf("mae_so3_mev=%.1f mae_mlp_mev=%.1f max_rot_change_so3=%.2e\n", mae_so3, mae_mlp,
                std::max(rot_so3_ntk, rot_so3_nngp));
  } catch (const eqntk::Error& e) {
    std::fprintf(stderr, "experiment_molecules: %s\n", e.what());
    return 2;
  }
  return 0;
}
