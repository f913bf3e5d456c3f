// experiment_da: data augmentation = GCNN (MATH.md §7, §10) on real Fashion-MNIST images.
//
// --group G (C1 C2 C4 D1 D2 D4, p4 = C4 the default, p4m = D4) puts the lift of --arch in the point group G
// and augments by all |G| transformations ρ(g); everything below holds with 4 replaced by |G| (§10):
// μ^DA_t = μ^G_{|G|t} for the sum loss.
//
// A p4 architecture (--arch) and its CNN of MATH §5.2 (lift/gconv → conv, gpool → gap, same windows,
// padding and σ's, linear head). N training images X (standardised, downsampled) and X_aug, their 4N
// rotations image-major with labels repeated (io::prepare with augment, exactly what `eqntk run
// --augment` trains on). Every kernel comes from kernel::gram_matrices:
//   A  = Θ^CNN(X_aug, X_aug) (4N×4N, computed directly, no symmetry used),   A* = Θ^CNN(Z, X_aug),
//   G  = Θ^p4(X, X) (N×N, the library's 4-block p4 engine),                   G* = Θ^p4(Z, X),
// and the same for the NNGP K. Z are the 4 rotations of every evaluation image: training images
// (on the data), real test images and Gaussian noise images (off the data).
//
// The identity checked (MATH §7): with E the 4N×N "repeat" matrix, A E = 4 E G (MATH §5.2), so A maps the
// span of E into itself and for every analytic f, f(A) E = E f(4G). With an absolute ridge ε on the
// augmented problem this gives, for every x,
//   μ^DA_t(x)  [A + εI, sum loss, time t]  =  μ^GCNN_{4t}(x)  [G + (ε/4) I, sum loss, time 4t]
//   μ^DA_t(x)  [mean loss: t/(4N·K)]       =  μ^GCNN_t(x)     [mean loss: t/(N·K)]
// — an exact identity in exact arithmetic: the ridge ε/4 on the GCNN side is the one that corresponds to
// ε on the DA side (a relative ridge would not match: tr A/(4N) ≠ 4·tr G/N in general). The check
// prints max over points of ‖μ^DA − μ^GCNN‖₂/‖μ^GCNN‖₂ (norm over the K outputs), per time.
//
// Emergent invariance: the relative standard deviation of the predictions over the 4 rotations of
// each real test image, sqrt(mean_r ‖μ(ρ^r x) − μ̄‖²)/sqrt(mean_r ‖μ(ρ^r x)‖²), averaged over the test
// images, for the plain CNN NTK (trained on X only: the r = 0 rows/columns of A), the DA CNN NTK and
// the p4 NTK, at t = ∞ (with the ridge, if any; the largest finite time if t = ∞ could not be solved).
//
// Last line: max_rel_diff=<d> orbit_rsd_cnn=<a> orbit_rsd_da=<b> orbit_rsd_gcnn=<c>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "eqntk/data/image.hpp"
#include "eqntk/error.hpp"
#include "eqntk/group/image_action.hpp"
#include "eqntk/group/point_group.hpp"
#include "eqntk/io/dataset.hpp"
#include "eqntk/kernel/network.hpp"
#include "experiment_common.hpp"
#include "input_check.hpp"
#include "tool_options.hpp"

namespace {

using namespace eqntk;
using tools::Matrix;
namespace po = boost::program_options;

struct Args {
  std::string data_dir = "/usr/share/datasets/fashion-mnist";
  std::string arch = "lift:k=3:pad=same,relu,gconv:k=3:pad=same,relu,gconv:k=3:pad=same,relu,gpool,dense";
  std::int64_t n_train = 60;
  std::int64_t n_test = 20;
  std::int64_t n_noise = 10;
  std::int64_t n_on = 10;
  int downsample = 2;
  std::vector<double> times;  // --times
  double eta = 1.0;
  double ridge = 0.0;
  std::uint64_t seed = 1;
  int threads = 2;
  bool allow_nonlinear_head = false;
  std::int64_t symmetrize = 0;
  std::string group;  // empty: the group of --arch
};

const char* kNotes =
    "Data augmentation = GCNN (MATH.md §7, §10) on Fashion-MNIST; see tools/README_experiments.md.\n"
    "  Times are DA times t (sum loss; the GCNN is evaluated at |G|t) and mean-loss times (both sides at t).\n";

Args parse_args(int argc, char** argv) {
  Args a;
  po::options_description flags = tools::tool_flags();
  flags.add_options()
      ("n-train", tools::defaulted(&a.n_train), "training images N")
      ("n-test", tools::defaulted(&a.n_test), "real test images")
      ("n-noise", tools::defaulted(&a.n_noise), "Gaussian noise images (off the data)")
      ("n-on", tools::defaulted(&a.n_on), "training images evaluated (on the data), <= n-train")
      ("downsample", tools::defaulted(&a.downsample), "downsampling factor F of the 28x28 images")
      ("arch", tools::defaulted(&a.arch), "group architecture (starts with lift)")
      ("times", po::value<std::string>()->default_value("0.1,1,10,100,1000,inf")->notifier([&a](const std::string& v) {
         a.times = tools::parse_times(v);
       }), "comma-separated training times (inf allowed)")
      ("eta", tools::defaulted(&a.eta), "learning rate")
      ("ridge", tools::defaulted(&a.ridge),
       "absolute ridge eps*tr(A)/(|G|N) on the |G|N-point DA matrix A, 1/|G| of it on the N-point GCNN matrix "
       "(the equivalent ridge, see the file comment); 0 = none")
      ("seed", tools::defaulted(&a.seed), "seed of the subsets")
      ("threads", tools::defaulted(&a.threads), "threads")
      ("data-dir", tools::defaulted(&a.data_dir), "Fashion-MNIST directory")
      ("allow-nonlinear-head", po::bool_switch(&a.allow_nonlinear_head),
       "accept a nonlinearity after the readout (to see the identity fail)")
      ("symmetrize", tools::defaulted(&a.symmetrize),
       "replace the first S training images by their orbit averages (exactly symmetric), which makes the DA "
       "matrix exactly singular ((|G|-1)S zero eigenvalues)")
      ("group", tools::defaulted(&a.group, "the group of --arch"),
       "the lift's point group (C1 C2 C4 D1 D2 D4, p4 = C4, p4m = D4); augmentation by all of G");
  tools::parse_options("experiment_da", flags, argc, argv, kNotes);
  if (a.symmetrize < 0 || a.symmetrize > a.n_train) throw InvalidArgument("need 0 <= symmetrize <= n-train");
  if (a.n_train < 1 || a.n_test < 1 || a.n_noise < 0 || a.n_on < 0 || a.n_on > a.n_train)
    throw InvalidArgument("need n-train >= 1, n-test >= 1, n-noise >= 0, 0 <= n-on <= n-train");
  if (!(a.eta > 0) || !(a.ridge >= 0) || a.threads < 1) throw InvalidArgument("need eta > 0, ridge >= 0, threads >= 1");
  return a;
}

// ‖a_i − b_i‖₂/‖b_i‖₂ per row i.
std::vector<double> row_rel_diff(const Matrix& a, const Matrix& b) {
  std::vector<double> d(static_cast<std::size_t>(a.rows()));
  for (Eigen::Index i = 0; i < a.rows(); ++i) d[static_cast<std::size_t>(i)] = (a.row(i) - b.row(i)).norm() / b.row(i).norm();
  return d;
}

// Mean over base images b in [first, first+count) of the orbit RSD; rows of `pred` are base-major (m·b + g)
// for orbits of size m.
double orbit_rsd(const Matrix& pred, std::int64_t first, std::int64_t count, std::int64_t m) {
  double sum = 0.0;
  for (std::int64_t b = first; b < first + count; ++b) {
    const auto orbit = pred.middleRows(m * b, m);
    const Eigen::RowVectorXd mean = orbit.colwise().mean();
    const double var = (orbit.rowwise() - mean).squaredNorm() / static_cast<double>(m);
    const double ms = orbit.squaredNorm() / static_cast<double>(m);
    sum += std::sqrt(var / ms);
  }
  return sum / static_cast<double>(count);
}

// Fail before computing: the four Fashion-MNIST files this driver reads (tools/input_check.hpp).
void check_inputs(const Args& args) {
  for (const char* f : {"train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz",
                        "t10k-labels-idx1-ubyte.gz"})
    tools::require_file("experiment_da", std::filesystem::path(args.data_dir) / f,
                        "make it with apt-get install dataset-fashion-mnist (tools/setup_debian.sh), or give --data-dir DIR");
}

int run(const Args& args) {
  check_inputs(args);
  const auto t_start = std::chrono::steady_clock::now();
  kernel::Architecture p4_arch = kernel::Architecture::parse(args.arch);
  if (!p4_arch.is_group_network()) throw InvalidArgument("--arch must be a group network (starting with lift)");
  if (!args.group.empty()) {
    const auto g = group::from_name(args.group);
    if (!g) throw InvalidArgument("--group: unknown group '" + args.group + "' (expected C1 C2 C4 D1 D2 D4 p4 p4m)");
    if (args.arch.find("group=") != std::string::npos && p4_arch.group() != *g)
      throw InvalidArgument("--group " + args.group + " contradicts the group= of --arch");
    const std::size_t comma = args.arch.find(',');
    p4_arch = kernel::Architecture::parse(args.arch.substr(0, comma) + ":group=" + std::string(group::name(*g)) +
                                          args.arch.substr(comma));
  }
  const auto elements = group::elements(p4_arch.group());
  const std::int64_t m = static_cast<std::int64_t>(elements.size());  // |G|
  const kernel::Architecture cnn_arch = tools::cnn_counterpart(p4_arch);
  if (tools::head_is_nonlinear(p4_arch) && !args.allow_nonlinear_head)
    throw InvalidArgument("the head of --arch has a nonlinearity after the readout: MATH §5.2/§7 need a linear "
                          "head (pass --allow-nonlinear-head to see the identity fail)");

  // Data: the library's pipeline (subset, downsample, standardise with training statistics).
  const std::filesystem::path dir = args.data_dir;
  auto load = [&](const char* images, const char* labels) {
    return io::labeled(io::load_images(dir / images, io::ImageLayout::nhwc), io::load_targets(dir / labels));
  };
  const io::LabeledSet train_all = load("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz");
  const io::LabeledSet test_all = load("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz");
  io::Preprocessing pre;
  pre.n_train = args.n_train;
  pre.n_test = args.n_test;
  pre.seed = args.seed;
  pre.downsample = args.downsample;
  io::Dataset plain = io::prepare(train_all, test_all, pre);
  const std::int64_t sz = plain.train.images.image_size();
  // --symmetrize: x ← (1/|G|) Σ_g ρ(g)x, the orbit average (invariant up to rounding); the augmented set
  // then holds |G| bitwise identical copies of it.
  for (std::int64_t i = 0; i < args.symmetrize; ++i) {
    std::vector<double> sym(static_cast<std::size_t>(sz), 0.0);
    for (const group::Element e : elements) {
      const data::Image gx = group::transform(plain.train.images.view(i), e);
      for (std::size_t p = 0; p < sym.size(); ++p) sym[p] += gx.pixels[p] / static_cast<double>(m);
    }
    std::copy(sym.begin(), sym.end(), plain.train.images.pixels.begin() + i * sz);
  }
  // The augmented training set, image-major: row m·i + g is ρ(g)x_i (g in group::elements order), labels
  // repeated. For a symmetrised image the copies are the orbit average itself.
  io::Dataset augmented = plain;
  augmented.train.images.count = m * plain.train.images.count;
  augmented.train.images.pixels.clear();
  augmented.train.targets.classes.clear();
  for (std::int64_t i = 0; i < plain.train.images.count; ++i)
    for (const group::Element e : elements) {
      const data::Image gx = i < args.symmetrize ? group::transform(plain.train.images.view(i), {0, 0})
                                                   : group::transform(plain.train.images.view(i), e);
      augmented.train.images.pixels.insert(augmented.train.images.pixels.end(), gx.pixels.begin(), gx.pixels.end());
      augmented.train.targets.classes.push_back(plain.train.targets.classes[static_cast<std::size_t>(i)]);
    }
  const std::int64_t n = plain.train.images.count, k = plain.outputs();
  const data::InputShape shape = plain.train.images.shape;
  const kernel::Network p4(p4_arch, shape), cnn(cnn_arch, shape);

  // Evaluation points: on-data (training images), real test images, noise; each with its 4 rotations.
  data::ImageSet noise{shape, args.n_noise,
                       std::vector<double>(static_cast<std::size_t>(args.n_noise * plain.train.images.image_size()))};
  std::mt19937_64 rng(args.seed ^ 0x6E6F697365ULL);
  std::normal_distribution<double> normal;
  for (double& v : noise.pixels) v = normal(rng);
  std::vector<std::int64_t> on_rows(static_cast<std::size_t>(args.n_on));
  for (std::int64_t i = 0; i < args.n_on; ++i) on_rows[static_cast<std::size_t>(i)] = i;
  const data::ImageSet on = tools::select_images(plain.train.images, on_rows);
  const data::ImageSet bases = tools::concat({&on, &plain.test.images, &noise});
  data::ImageSet z{shape, m * bases.count, {}};
  for (std::int64_t b = 0; b < bases.count; ++b)
    for (const group::Element e : elements) {
      const data::Image im = group::transform(bases.view(b), e);
      z.pixels.insert(z.pixels.end(), im.pixels.begin(), im.pixels.end());
    }
  struct Group {
    const char* name;
    std::int64_t first, count;
  };
  const Group groups[] = {{"on-data", 0, args.n_on}, {"test", args.n_on, args.n_test}, {"noise", args.n_on + args.n_test, args.n_noise}};

  std::printf("experiment_da: Fashion-MNIST %lldx%lld, group %s, N = %lld train images (|G|N = %lld augmented), K = %lld\n",
              static_cast<long long>(shape.height), static_cast<long long>(shape.width),
              std::string(group::name(p4_arch.group())).c_str(), static_cast<long long>(n),
              static_cast<long long>(m * n), static_cast<long long>(k));
  std::printf("  evaluation images: %lld on-data + %lld real test + %lld noise, each in %lld transformations (%lld points)\n",
              static_cast<long long>(args.n_on), static_cast<long long>(args.n_test), static_cast<long long>(args.n_noise),
              static_cast<long long>(m), static_cast<long long>(z.count));
  std::printf("  p4  arch %s\n  CNN arch %s\n", p4_arch.canonical().c_str(), cnn_arch.canonical().c_str());
  std::fflush(stdout);

  auto t0 = std::chrono::steady_clock::now();
  const tools::Grams a = tools::library_grams(cnn, augmented.train.images, nullptr, args.threads);
  const tools::Grams a_star = tools::library_grams(cnn, z, &augmented.train.images, args.threads);
  const double sec_cnn = tools::seconds_since(t0);
  t0 = std::chrono::steady_clock::now();
  const tools::Grams g = tools::library_grams(p4, plain.train.images, nullptr, args.threads);
  const tools::Grams g_star = tools::library_grams(p4, z, &plain.train.images, args.threads);
  const double sec_p4 = tools::seconds_since(t0);
  std::printf("  kernels: CNN on the augmented set %.1f s (%lld pairs), p4 %.1f s (%lld pairs), %d threads\n", sec_cnn,
              static_cast<long long>(m * n * (m * n + 1) / 2 + z.count * m * n), sec_p4,
              static_cast<long long>(n * (n + 1) / 2 + z.count * n), args.threads);

  const tools::Matrix y = tools::one_hot_targets(plain.train.targets.classes, k);
  const tools::Matrix y_aug = tools::one_hot_targets(augmented.train.targets.classes, k);

  // Plain CNN (no augmentation): the r = 0 rows/columns of A, bitwise the same pair evaluations.
  std::vector<Eigen::Index> orig(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) orig[static_cast<std::size_t>(i)] = m * i;

  std::vector<double> times_mean_da, times_mean_g, times_sum_g;
  for (const double t : args.times) {
    times_sum_g.push_back(static_cast<double>(m) * t);
    times_mean_da.push_back(t / static_cast<double>(m * n * k));
    times_mean_g.push_back(t / static_cast<double>(n * k));
  }
  auto join = [](std::vector<double> x, const std::vector<double>& more) {
    x.insert(x.end(), more.begin(), more.end());
    return x;
  };

  double max_rel = 0.0, max_rel_finite = 0.0;
  double rsd[3] = {0, 0, 0};
  std::printf("\n  max_x ||mu_DA - mu_GCNN|| / ||mu_GCNN||   (DA: |G|N points, time t; GCNN: N points, time |G|t (sum loss), t (mean loss))\n");
  std::printf("  %-5s %-5s %-8s %12s %12s %12s\n", "kern", "loss", "t", "on-data", "test", "noise");
  for (const bool ntk : {true, false}) {
    const Matrix& am = a.get(ntk);
    const double eps_da = args.ridge * am.trace() / static_cast<double>(m * n);
    const double eps_g = eps_da / static_cast<double>(m);
    const tools::Solved da = tools::solve(am, a_star.get(ntk), y_aug, join(args.times, times_mean_da), args.eta, eps_da, false);
    const tools::Solved gc = tools::solve(g.get(ntk), g_star.get(ntk), y, join(times_sum_g, times_mean_g), args.eta, eps_g, false);
    if (da.infinite_failed || gc.infinite_failed)
      std::printf("  %s: t = inf skipped: the %s matrix + ridge is not positive definite (Cholesky failed); use --ridge\n",
                  ntk ? "NTK" : "NNGP", da.infinite_failed ? "DA" : "GCNN");
    const std::size_t nt = args.times.size();
    for (int loss = 0; loss < 2; ++loss)
      for (std::size_t ti = 0; ti < nt; ++ti) {
        if (da.mean[loss * nt + ti].size() == 0 || gc.mean[loss * nt + ti].size() == 0) continue;
        const auto d = row_rel_diff(da.mean[loss * nt + ti], gc.mean[loss * nt + ti]);
        std::printf("  %-5s %-5s %-8s", ntk ? "NTK" : "NNGP", loss ? "mean" : "sum", tools::time_text(args.times[ti]).c_str());
        for (const auto& grp : groups) {
          double worst = 0.0;
          for (std::int64_t p = m * grp.first; p < m * (grp.first + grp.count); ++p)
            worst = std::max(worst, d[static_cast<std::size_t>(p)]);
          if (grp.count > 0) std::printf(" %12.3e", worst);
          else std::printf(" %12s", "-");
          max_rel = std::max(max_rel, worst);
          if (!std::isinf(args.times[ti])) max_rel_finite = std::max(max_rel_finite, worst);
        }
        std::printf("\n");
      }
    std::printf("  %s spectra: DA (|G|N) lambda in [%.3e, %.3e], GCNN (N) lambda in [%.3e, %.3e] (x|G|: [%.3e, %.3e]); "
                "ridge DA %.3e, GCNN %.3e\n",
                ntk ? "NTK" : "NNGP", da.lambda_min, da.lambda_max, gc.lambda_min, gc.lambda_max,
                static_cast<double>(m) * gc.lambda_min, static_cast<double>(m) * gc.lambda_max, eps_da, eps_g);
    if (ntk) {
      // Emergent invariance at t = ∞, or at the largest time for which every solve succeeded.
      const Matrix c0 = am(orig, orig);
      const Matrix c0_star = a_star.ntk(Eigen::all, orig);
      const double eps_c = args.ridge * c0.trace() / static_cast<double>(n);
      const tools::Solved plain_all = tools::solve(c0, c0_star, y, args.times, args.eta, eps_c, false);
      std::size_t ti = nt;
      for (std::size_t i = 0; i < nt; ++i)
        if (plain_all.mean[i].size() > 0 && da.mean[i].size() > 0 && gc.mean[i].size() > 0 &&
            (ti == nt || args.times[i] > args.times[ti]))
          ti = i;
      if (ti == nt) throw NumericalError("no time at which all three predictors could be solved");
      const tools::Solved plain_cnn{{plain_all.mean[ti]}};
      rsd[0] = orbit_rsd(plain_cnn.mean[0], groups[1].first, groups[1].count, m);
      rsd[1] = orbit_rsd(da.mean[ti], groups[1].first, groups[1].count, m);
      rsd[2] = orbit_rsd(gc.mean[ti], groups[1].first, groups[1].count, m);
      const double rsd_noise[3] = {orbit_rsd(plain_cnn.mean[0], groups[2].first, groups[2].count, m),
                                   orbit_rsd(da.mean[ti], groups[2].first, groups[2].count, m),
                                   orbit_rsd(gc.mean[ti], groups[2].first, groups[2].count, m)};
      std::printf("  orbit RSD of NTK predictions at t = %s, real test images: CNN %.3e  DA-CNN %.3e  GCNN %.3e\n",
                  tools::time_text(args.times[ti]).c_str(), rsd[0], rsd[1], rsd[2]);
      if (args.n_noise > 0)
        std::printf("  orbit RSD of NTK predictions at t = %s, noise images:     CNN %.3e  DA-CNN %.3e  GCNN %.3e\n",
                    tools::time_text(args.times[ti]).c_str(), rsd_noise[0], rsd_noise[1], rsd_noise[2]);
    }
  }
  std::printf("\n  max relative difference: %.3e over all times, %.3e over finite times; total %.1f s\n", max_rel,
              max_rel_finite, tools::seconds_since(t_start));
  std::printf("max_rel_diff=%.3e orbit_rsd_cnn=%.3e orbit_rsd_da=%.3e orbit_rsd_gcnn=%.3e\n", max_rel, rsd[0], rsd[1], rsd[2]);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return eqntk::tools::guarded_main("experiment_da", [&] { return run(parse_args(argc, argv)); });
}
