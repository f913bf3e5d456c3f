// experiment_classify: classification of rotated-and-mirrored test images, test accuracy against
// training-set size, for CNN, p4 (C4) and p4m (D4) NTKs and NNGPs (MATH.md §6, §10), each with a plain
// architecture and a Myrtle-style pooled one, at t = ∞ and one finite t.
//
// Data sets: Fashion-MNIST (Debian's dataset-fashion-mnist, IDX, 28×28, --downsample F, default 2 → 14×14)
// and the 8×8 optdigits of Debian's python3-sklearn (1797 digits, converted to .npy by
// tools/convert_optdigits.py). For each:
//   1. io::prepare: seeded subset of max(--sizes) training and --n-test test images, standardisation with
//      training statistics; then every test image is transformed by a seeded random element of D4
//      (a rotation by a multiple of 90°, possibly after a mirror: ρ(g), group/point_group.hpp);
//   2. a seeded permutation of the training images; the training set of size n is its first n images
//      (nested sets: one Gram matrix of the largest size serves every size);
//   3. for every architecture, kernels from kernel::gram_matrices: G = Θ(X,X), G* = Θ(X*,X) (and K);
//   4. Eigen solves on one process (tools/experiment_common.hpp), t = ∞ and --t in neural-tangents' mean-loss
//      convention (t → t/(n·K)); a relative ridge --ridge ε: ε·tr(T)/n.
// Architectures (the CNN is the MATH §5.2 counterpart: lift/gconv → conv, gpool → gap):
//   plain   lift:k=3,relu,gconv:k=3,relu,gpool,dense                               (--arch)
//   myrtle  lift:k=3,relu,gconv:k=3,relu,avgpool:s=2,gconv:k=3,relu,gpool,dense   (--myrtle-arch)
// each as CNN, p4 and p4m (methods cnn, p4, p4m, cnn-myrtle, p4-myrtle, p4m-myrtle).
// Every input (options, data files, image sizes against every architecture, the output directory, the
// plot script) is checked before the first kernel.
//
// Writes <out>/classify.csv (one row per data set, kernel, t, n, method) and <out>/classify.png (via
// tools/plot_classify.py and Debian's python3-matplotlib).
// Last line: n_train=<n> acc_cnn=<a> acc_p4=<b> acc_p4m=<c> acc_p4m_myrtle=<d>   (largest size, NTK, t = ∞,
// Fashion-MNIST; the first data set when Fashion-MNIST is not run).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
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
#include "tool_options.hpp"

#ifndef EQNTK_SOURCE_DIR
#define EQNTK_SOURCE_DIR "."
#endif

namespace {

using namespace eqntk;
using tools::Matrix;
namespace po = boost::program_options;

struct Args {
  std::vector<std::string> datasets;  // --datasets
  std::vector<std::int64_t> sizes;  // --sizes
  std::int64_t n_test = 100;
  int downsample = 2;
  std::string arch = "lift:k=3:pad=same,relu,gconv:k=3:pad=same,relu,gpool,dense";
  std::string myrtle_arch =
      "lift:k=3:pad=same,relu,gconv:k=3:pad=same,relu,avgpool:s=2,gconv:k=3:pad=same,relu,gpool,dense";
  double t = 1e5;
  bool mean_loss = true;
  double eta = 1.0;
  double ridge = 1e-8;
  std::uint64_t seed = 1;
  int threads = 2;
  std::string out = "out-exp/classify";
  std::string fashion_dir = "/usr/share/datasets/fashion-mnist";
  std::string digits_dir = std::string(EQNTK_SOURCE_DIR) + "/.cache/optdigits";
  std::string plot_script = std::string(EQNTK_SOURCE_DIR) + "/tools/plot_classify.py";
  std::string python = "/usr/bin/python3";
  bool plot = true;
};

const char* kNotes =
    "Accuracy on rotated and mirrored test images against training-set size, CNN vs p4 vs p4m NTK/NNGP\n"
    "(tools/README_experiments.md).\n"
    "  digits needs /usr/bin/python3 tools/convert_optdigits.py first (Debian python3-sklearn -> .npy).\n"
    "  The architectures must start with lift (no group= key): each runs as CNN, p4 and p4m.\n";

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
  po::options_description flags = tools::tool_flags();
  flags.add_options()
      ("datasets", po::value<std::string>()->default_value("fashion,digits")->notifier([&a](const std::string& v) {
         a.datasets = split_list(v);
       }), "comma-separated data sets: fashion, digits")
      ("sizes", po::value<std::string>()->default_value("50,100,200")->notifier([&a](const std::string& v) {
         a.sizes = tools::parse_sizes(v);
       }), "comma-separated training-set sizes")
      ("n-test", tools::defaulted(&a.n_test), "test images per data set")
      ("downsample", tools::defaulted(&a.downsample),
       "downsampling factor of Fashion-MNIST (28x28); the digits are 8x8")
      ("arch", tools::defaulted(&a.arch), "plain group architecture (starts with lift)")
      ("myrtle-arch", tools::defaulted(&a.myrtle_arch), "Myrtle-style group architecture")
      ("t", tools::defaulted(&a.t, "1e5"), "the finite training time (besides t = inf)")
      ("loss", po::value<std::string>()->default_value("mean")->notifier([&a](const std::string& v) {
         if (v != "mean" && v != "sum") throw InvalidArgument("--loss must be mean or sum");
         a.mean_loss = v == "mean";
       }), "mean (neural-tangents' convention: t -> t/(n K)) or sum")
      ("eta", tools::defaulted(&a.eta), "learning rate")
      ("ridge", tools::defaulted(&a.ridge, "1e-8"), "relative ridge eps: eps tr(T)/n")
      ("seed", tools::defaulted(&a.seed), "seed of the subsets and test transformations")
      ("threads", tools::defaulted(&a.threads), "threads")
      ("out", tools::defaulted(&a.out), "output directory (classify.csv, classify.png)")
      ("fashion-dir", tools::defaulted(&a.fashion_dir), "Fashion-MNIST directory")
      ("digits-dir", tools::defaulted(&a.digits_dir), "directory of the converted digits")
      ("plot-script", tools::defaulted(&a.plot_script), "plotting script")
      ("python", tools::defaulted(&a.python), "Python with matplotlib for the plot")
      ("no-plot", po::bool_switch()->notifier([&a](bool v) { a.plot = !v; }), "write no classify.png");
  tools::parse_options("experiment_classify", flags, argc, argv, kNotes);
  for (const auto& d : a.datasets)
    if (d != "fashion" && d != "digits") throw InvalidArgument("unknown data set '" + d + "' (fashion or digits)");
  if (a.datasets.empty() || a.sizes.empty()) throw InvalidArgument("--datasets and --sizes must not be empty");
  std::sort(a.sizes.begin(), a.sizes.end());
  a.sizes.erase(std::unique(a.sizes.begin(), a.sizes.end()), a.sizes.end());
  if (a.sizes.front() < 1) throw InvalidArgument("--sizes must be positive");
  if (a.n_test < 1 || !(a.t > 0) || std::isinf(a.t) || !(a.eta > 0) || !(a.ridge >= 0) || a.threads < 1 ||
      a.downsample < 1)
    throw InvalidArgument("need n-test >= 1, finite t > 0, eta > 0, ridge >= 0, threads >= 1, downsample >= 1");
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
    const std::filesystem::path d = args.digits_dir;
    if (!std::filesystem::exists(d / "train-images.npy"))
      throw InvalidArgument("no " + (d / "train-images.npy").string() +
                            ": run /usr/bin/python3 tools/convert_optdigits.py first (or --datasets fashion)");
    train = io::labeled(io::load_images(d / "train-images.npy", io::ImageLayout::nhwc), io::load_targets(d / "train-labels.npy"));
    test = io::labeled(io::load_images(d / "test-images.npy", io::ImageLayout::nhwc), io::load_targets(d / "test-labels.npy"));
  }
  if (train.images.count < 1 || test.images.count < 1)
    throw InvalidArgument(name + ": empty training or test set");
  io::Preprocessing pre;
  pre.n_train = args.sizes.back();
  pre.n_test = args.n_test;
  pre.seed = args.seed;
  pre.downsample = name == "fashion" ? args.downsample : 1;
  pre.num_classes = 10;
  io::Dataset data = io::prepare(std::move(train), std::move(test), pre);
  if (data.train.images.count < args.sizes.back())
    throw InvalidArgument(name + ": only " + std::to_string(data.train.images.count) +
                          " training images, --sizes asks for " + std::to_string(args.sizes.back()));
  if (data.train.images.shape.height != data.train.images.shape.width)
    throw InvalidArgument(name + ": the images must be square for p4 and p4m");
  // Every test image by a seeded random element of D4: rotated and mirrored.
  const auto d4 = group::elements(group::PointGroup::D4);
  std::mt19937_64 rng(args.seed ^ 0x6434ULL);
  data::ImageSet& t = data.test.images;
  for (std::int64_t i = 0; i < t.count; ++i) {
    const group::Element g = d4[static_cast<std::size_t>(rng() % d4.size())];
    const data::Image im = group::transform(t.view(i), g);
    std::copy(im.pixels.begin(), im.pixels.end(), t.pixels.begin() + i * t.image_size());
  }
  return data;
}

// One architecture of the comparison: a method name and its parsed form (CNN, p4 or p4m version).
struct Method {
  std::string name;
  kernel::Architecture arch;
};

std::vector<Method> methods(const Args& args) {
  std::vector<Method> out;
  for (const auto& [suffix, text] : {std::pair<std::string, std::string>{"", args.arch}, {"-myrtle", args.myrtle_arch}}) {
    const kernel::Architecture base = kernel::Architecture::parse(text);
    if (!base.is_group_network() || text.find("group=") != std::string::npos)
      throw InvalidArgument("architecture '" + text + "' must start with lift and have no group= key");
    const std::size_t comma = text.find(',');
    out.push_back({"cnn" + suffix, tools::cnn_counterpart(base)});
    out.push_back({"p4" + suffix, base});
    out.push_back({"p4m" + suffix, kernel::Architecture::parse(text.substr(0, comma) + ":group=p4m" + text.substr(comma))});
  }
  return out;
}

struct Row {
  std::string dataset, kernel, t, method;
  std::int64_t n = 0;
  double acc = 0;
};

int run(const Args& args) {
  const auto t_start = std::chrono::steady_clock::now();
  // Every check before the first kernel: architectures, data, shapes, output directory, plot script.
  const std::vector<Method> all = methods(args);
  std::vector<io::Dataset> data;
  for (const auto& name : args.datasets) {
    data.push_back(load_dataset(args, name));
    for (const Method& m : all) (void)kernel::Network(m.arch, data.back().train.images.shape);
  }
  std::filesystem::create_directories(args.out);
  const std::filesystem::path csv = std::filesystem::path(args.out) / "classify.csv";
  {
    const std::string probe_path = csv.string() + ".partial";
    if (!std::ofstream(probe_path)) throw IoError("cannot write in " + args.out);
    std::filesystem::remove(probe_path);
  }
  if (args.plot && !std::filesystem::exists(args.plot_script))
    throw InvalidArgument("no plot script " + args.plot_script + " (or pass --no-plot)");
  for (const Method& m : all) std::printf("%-11s %s\n", m.name.c_str(), m.arch.canonical().c_str());

  std::vector<Row> rows;
  const std::vector<double> times = {std::numeric_limits<double>::infinity(), args.t};
  for (std::size_t di = 0; di < data.size(); ++di) {
    const std::string& name = args.datasets[di];
    const io::Dataset& d = data[di];
    const std::int64_t n_max = args.sizes.back(), kk = d.outputs();
    const auto perm = tools::seeded_permutation(d.train.images.count, args.seed ^ 0x7065726DULL);
    const std::vector<std::int64_t> first(perm.begin(), perm.begin() + n_max);
    const data::ImageSet x = tools::select_images(d.train.images, first);
    std::vector<std::int64_t> labels;
    for (const auto p : first) labels.push_back(d.train.targets.classes[static_cast<std::size_t>(p)]);
    const std::vector<std::int64_t>& test_labels = d.test.targets.classes;
    std::printf("%s: %lld train, %lld rotated-and-mirrored test images, %lldx%lld, K = %lld\n", name.c_str(),
                static_cast<long long>(n_max), static_cast<long long>(d.test.images.count),
                static_cast<long long>(x.shape.height), static_cast<long long>(x.shape.width), static_cast<long long>(kk));
    std::fflush(stdout);
    for (const Method& m : all) {
      const kernel::Network net(m.arch, x.shape);
      const auto t0 = std::chrono::steady_clock::now();
      const tools::Grams g = tools::library_grams(net, x, nullptr, args.threads);
      const tools::Grams g_star = tools::library_grams(net, d.test.images, &x, args.threads);
      const double sec = tools::seconds_since(t0);
      for (const bool ntk : {true, false})
        for (const std::int64_t n : args.sizes) {
          const std::vector<std::int64_t> lab(labels.begin(), labels.begin() + n);
          const Matrix y = tools::one_hot_targets(lab, kk);
          const Matrix gn = g.get(ntk).topLeftCorner(n, n);
          const std::vector<double> eff{times[0], args.mean_loss ? args.t / static_cast<double>(n * kk) : args.t};
          const tools::Solved s =
              tools::solve(gn, g_star.get(ntk).leftCols(n), y, eff, args.eta, args.ridge * gn.trace() / static_cast<double>(n));
          for (std::size_t ti = 0; ti < times.size(); ++ti)
            rows.push_back({name, ntk ? "ntk" : "nngp", tools::time_text(times[ti]), m.name, n,
                            tools::accuracy(s.mean[ti], test_labels)});
        }
      std::printf("  %-11s kernels %.1f s;", m.name.c_str(), sec);
      for (const auto& r : rows)
        if (r.dataset == name && r.method == m.name && r.kernel == "ntk" && r.t == "inf")
          std::printf(" n=%lld %.3f", static_cast<long long>(r.n), r.acc);
      std::printf("  (NTK, t = inf)\n");
      std::fflush(stdout);
    }
  }

  {
    std::ofstream f(csv.string() + ".partial");
    f << "dataset,kernel,t,loss,n_train,method,accuracy,n_test,downsample\n";
    for (const auto& r : rows)
      f << r.dataset << ',' << r.kernel << ',' << r.t << ',' << (args.mean_loss ? "mean" : "sum") << ',' << r.n << ','
        << r.method << ',' << r.acc << ',' << args.n_test << ',' << (r.dataset == "fashion" ? args.downsample : 1)
        << '\n';
    if (!f) throw IoError("cannot write " + csv.string());
  }
  std::filesystem::rename(csv.string() + ".partial", csv);
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
  const char* heads[4] = {"cnn", "p4", "p4m", "p4m-myrtle"};
  double acc[4] = {0, 0, 0, 0};
  for (const auto& r : rows)
    if (r.dataset == headline && r.kernel == "ntk" && r.t == "inf" && r.n == args.sizes.back())
      for (int m = 0; m < 4; ++m)
        if (r.method == heads[m]) acc[m] = r.acc;
  std::printf("n_train=%lld acc_cnn=%.4f acc_p4=%.4f acc_p4m=%.4f acc_p4m_myrtle=%.4f\n",
              static_cast<long long>(args.sizes.back()), acc[0], acc[1], acc[2], acc[3]);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return eqntk::tools::guarded_main("experiment_classify", [&] { return run(parse_args(argc, argv)); });
}
