// `eqntk run`: the options and their validation (parse → validate; nothing heavy, nothing written).
#include <algorithm>
#include <cmath>
#include <fstream>
#include <limits>
#include <sstream>

#include "common.hpp"
#include "eqntk/error.hpp"
#include "eqntk/parallel/collective.hpp"
#include "eqntk/parallel/size_limits.hpp"
#include "run.hpp"

namespace eqntk::cli::detail {

namespace po = boost::program_options;

namespace {

std::vector<TimePoint> parse_times(const std::string& text) {
  std::vector<TimePoint> times;
  std::stringstream ss(text);
  std::string tok;
  while (std::getline(ss, tok, ',')) {
    tok.erase(0, tok.find_first_not_of(' '));
    tok.erase(tok.find_last_not_of(' ') + 1);
    TimePoint t{tok, 0.0};
    if (tok == "inf" || tok == "infinity") {
      t.token = "inf";
      t.value = std::numeric_limits<double>::infinity();
    } else {
      std::size_t used = 0;
      try {
        t.value = std::stod(tok, &used);
      } catch (const std::exception&) {
        used = 0;
      }
      if (used != tok.size() || tok.empty() || !std::isfinite(t.value) || t.value < 0)
        throw InvalidArgument("--times: '" + tok + "' is not a non-negative number or inf");
    }
    for (const auto& o : times)
      if (o.token == t.token) throw InvalidArgument("--times lists " + t.token + " twice");
    times.push_back(t);
  }
  if (times.empty()) throw InvalidArgument("--times is empty");
  return times;
}

}  // namespace

po::options_description run_options() {
  po::options_description desc(
      "eqntk run: distributed NTK/NNGP Gram matrices and infinite-width training dynamics\n\n"
      "Usage: mpirun -np P eqntk run --train-images A --train-labels B --test-images C --test-labels D\n"
      "         --arch ARCH --times inf,0.5,5 --kernel both --out DIR [options]\n"
      "Image and label files are .npy or MNIST IDX (gzipped or not), recognised by content. With an SO(3)\n"
      "architecture (s2lift ... so3pool) the inputs are spherical signals (.npy coefficients or Driscoll-Healy\n"
      "samples) or molecules (XYZ), recognised by content or --input-kind. Every option\n"
      "may also be given in an INI file (--config run.ini, `key = value` lines with the long names);\n"
      "command-line flags override the file. Options");
  desc.add_options()("help,h", "show this help")("config", po::value<std::string>(), "INI file with options")(
      "train-images", po::value<std::string>(), "training images (.npy NHWC/NCHW or IDX)")(
      "train-labels", po::value<std::string>(), "training labels: integer classes, or float targets (N,) / (N,D)")(
      "test-images", po::value<std::string>(), "test images")("test-labels", po::value<std::string>(), "test labels")(
      "arch", po::value<std::string>(), "architecture string (see eqntk --help)")(
      "times", po::value<std::string>()->default_value("inf"), "comma-separated training times t (inf = converged)")(
      "kernel", po::value<std::string>()->default_value("ntk"), "predictor: ntk, nngp or both")(
      "out", po::value<std::string>(), "output directory")("overwrite", po::bool_switch(),
                                                           "replace the outputs of an earlier run in --out")(
      "save-kernels", po::bool_switch(), "also write theta/nngp train and test matrices (MPI-IO)")(
      "variance", po::bool_switch(), "also write the predictive variance of every test point")(
      "eta", po::value<double>()->default_value(1.0), "learning rate")(
      "loss", po::value<std::string>()->default_value("sum"), "time convention: sum (paper) or mean (neural-tangents)")(
      "ridge", po::value<double>()->default_value(0.0), "diagonal regulariser eps, relative: eps*tr/N")(
      "ridge-absolute", po::bool_switch(), "make --ridge absolute")(
      "block-size", po::value<std::int64_t>()->default_value(32), "ScaLAPACK block size nb (also the tile size)")(
      "grid", po::value<std::string>()->default_value("auto"), "process grid PxQ (P*Q = ranks); auto: near square")(
      "threads", po::value<int>()->default_value(1), "OpenMP threads per rank (pairs of a tile)")(
      "precision", po::value<std::string>()->default_value("float64"),
      "float64, or mixed: float32 storage of the planar covariance blocks, float64 arithmetic")(
      "device", po::value<std::string>()->default_value("cpu"),
      "cpu, or gpu: each rank evaluates its tiles on one OpenCL device (float64, planar networks)")(
      "gpu-index", po::value<int>()->default_value(-1),
      "OpenCL device of each rank with --device gpu (default: node-local rank modulo the device count)")(
      "checkpoint", po::value<std::string>(), "directory for finished tiles (resume after interruption)")(
      "quiet", po::bool_switch(), "no progress lines")("progress-interval", po::value<double>()->default_value(3.0),
                                                       "seconds between progress lines")(
      "layout", po::value<std::string>()->default_value("nhwc"), ".npy image layout: nhwc or nchw")(
      "n-train", po::value<std::int64_t>()->default_value(-1), "use a seeded random subset of N training images")(
      "n-test", po::value<std::int64_t>()->default_value(-1), "use a seeded random subset of M test images")(
      "seed", po::value<std::uint64_t>()->default_value(0), "seed of subsets and test rotations")(
      "classes", po::value<std::int64_t>()->default_value(-1), "number of classes (default: 1 + largest label)")(
      "standardize", po::value<bool>()->default_value(true), "per-channel standardisation with training statistics")(
      "downsample", po::value<int>()->default_value(1), "F x F average pooling of the images")(
      "rotate-test", po::bool_switch(), "rotate each test image by a seeded random multiple of 90 degrees")(
      "augment", po::bool_switch(), "append the 4 rotations of every training image");
  add_so3_options(desc, true);
  return desc;
}

RunConfig read_config(const po::variables_map& vm) {
  RunConfig c;
  auto need = [&](const char* key) {
    if (vm.count(key) == 0u) throw InvalidArgument(std::string("--") + key + " is required");
    return vm[key].as<std::string>();
  };
  c.so3 = read_so3_options(vm, true);
  for (const auto& [key, value] : vm)
    if (!value.defaulted()) c.explicit_flags.push_back(key);
  // XYZ molecules may take their targets from the comment lines (--target-key) instead of label files.
  const bool label_files = c.so3.target_key.empty();
  c.train_images = need("train-images");
  if (label_files) c.train_labels = need("train-labels");
  c.test_images = need("test-images");
  if (label_files) c.test_labels = need("test-labels");
  if (!label_files && (vm.count("train-labels") != 0u || vm.count("test-labels") != 0u))
    throw InvalidArgument(
        "--target-key reads the targets from the XYZ comment lines: give it or label files, not both");
  c.arch_text = need("arch");
  c.out = need("out");
  if (vm.count("checkpoint") != 0u) c.checkpoint = vm["checkpoint"].as<std::string>();
  c.times = parse_times(vm["times"].as<std::string>());
  const std::string kernel = vm["kernel"].as<std::string>();
  if (kernel != "ntk" && kernel != "nngp" && kernel != "both")
    throw InvalidArgument("--kernel must be ntk, nngp or both, got '" + kernel + "'");
  c.want_ntk = kernel != "nngp";
  c.want_nngp = kernel != "ntk";
  c.save_kernels = vm["save-kernels"].as<bool>();
  c.variance = vm["variance"].as<bool>();
  c.quiet = vm["quiet"].as<bool>();
  c.overwrite = vm["overwrite"].as<bool>();
  c.nb = vm["block-size"].as<std::int64_t>();
  if (c.nb < 1) throw InvalidArgument("--block-size must be at least 1, got " + std::to_string(c.nb));
  c.threads = vm["threads"].as<int>();
  if (c.threads < 1) throw InvalidArgument("--threads must be at least 1, got " + std::to_string(c.threads));
  const std::string precision = vm["precision"].as<std::string>();
  if (precision != "float64" && precision != "mixed")
    throw InvalidArgument("--precision must be float64 or mixed, got '" + precision + "'");
  c.precision = precision == "mixed" ? kernel::Precision::mixed : kernel::Precision::float64;
  const std::string device = vm["device"].as<std::string>();
  if (device != "cpu" && device != "gpu") throw InvalidArgument("--device must be cpu or gpu, got '" + device + "'");
  c.gpu = device == "gpu";
  c.gpu_index = vm["gpu-index"].as<int>();
  if (c.gpu && c.precision == kernel::Precision::mixed)
    throw InvalidArgument("--precision mixed applies to --device cpu only; the GPU computes in float64");
  c.progress_interval = vm["progress-interval"].as<double>();
  if (!(c.progress_interval > 0)) throw InvalidArgument("--progress-interval must be positive");
  c.grid_text = vm["grid"].as<std::string>();
  const std::string layout = vm["layout"].as<std::string>();
  if (layout != "nhwc" && layout != "nchw")
    throw InvalidArgument("--layout must be nhwc or nchw, got '" + layout + "'");
  c.layout = layout == "nhwc" ? io::ImageLayout::nhwc : io::ImageLayout::nchw;
  c.prep.n_train = vm["n-train"].as<std::int64_t>();
  c.prep.n_test = vm["n-test"].as<std::int64_t>();
  if (c.prep.n_train == 0 || c.prep.n_train < -1) throw InvalidArgument("--n-train must be positive");
  if (c.prep.n_test == 0 || c.prep.n_test < -1) throw InvalidArgument("--n-test must be positive");
  c.prep.seed = vm["seed"].as<std::uint64_t>();
  c.prep.num_classes = vm["classes"].as<std::int64_t>();
  c.prep.standardize = vm["standardize"].as<bool>();
  c.prep.downsample = vm["downsample"].as<int>();
  if (c.prep.downsample < 1) throw InvalidArgument("--downsample must be at least 1");
  c.prep.rotate_test = vm["rotate-test"].as<bool>();
  c.prep.augment = vm["augment"].as<bool>();
  c.solve.eta = vm["eta"].as<double>();
  if (!(c.solve.eta > 0) || !std::isfinite(c.solve.eta)) throw InvalidArgument("--eta must be positive");
  c.solve.ridge = vm["ridge"].as<double>();
  if (!(c.solve.ridge >= 0) || !std::isfinite(c.solve.ridge)) throw InvalidArgument("--ridge must be non-negative");
  c.solve.ridge_absolute = vm["ridge-absolute"].as<bool>();
  const std::string loss = vm["loss"].as<std::string>();
  if (loss != "sum" && loss != "mean") throw InvalidArgument("--loss must be sum or mean, got '" + loss + "'");
  c.solve.loss = loss == "sum" ? solve::Loss::sum : solve::Loss::mean;
  c.solve.variance = c.variance;
  for (const auto& t : c.times) c.solve.times.push_back(t.value);
  return c;
}

std::vector<std::string> output_names(const RunConfig& c) {
  std::vector<std::string> names{"metrics.json", "test_info.npy"};
  for (const char* k : {"ntk", "nngp"}) {
    if ((std::string(k) == "ntk" && !c.want_ntk) || (std::string(k) == "nngp" && !c.want_nngp)) continue;
    for (const auto& t : c.times) {
      names.push_back(std::string("predictions_") + k + "_t" + t.token + ".npy");
      if (c.variance) names.push_back(std::string("variance_") + k + "_t" + t.token + ".npy");
    }
  }
  if (c.save_kernels)
    for (const char* n : {"theta_train.npy", "theta_test.npy", "nngp_train.npy", "nngp_test.npy"})
      names.emplace_back(n);
  return names;
}

void check_sizes(const RunConfig& c, std::int64_t n_train, std::int64_t n_test, int prows, int pcols) {
  parallel::JobSizes s;
  s.n_train = n_train;
  s.n_test = n_test;
  s.nb = c.nb;
  s.prows = prows;
  s.pcols = pcols;
  s.eigensolver =
      std::any_of(c.times.begin(), c.times.end(), [](const TimePoint& t) { return std::isfinite(t.value); });
  s.save_kernels = c.save_kernels;
  parallel::check_size_limits(s);
}

bool parse_run(const std::vector<std::string>& args, RunConfig& config) {
  po::variables_map vm;
  return parse_run(args, config, po::options_description(), vm);
}

bool parse_run(const std::vector<std::string>& args, RunConfig& config, const po::options_description& extra,
               po::variables_map& vm) {
  po::options_description desc = run_options();
  if (!extra.options().empty()) desc.add(extra);
  bool help = false;
  parallel::collectively([&] {
    parse_command_line(args, desc, vm);
    if (vm.count("config") != 0u) {
      const std::string path = vm["config"].as<std::string>();
      std::ifstream in(path);
      if (!in) throw IoError("cannot read config file '" + path + "'");
      try {
        po::store(po::parse_config_file(in, desc), vm);  // stored after the flags: flags win
      } catch (const po::error& e) {
        throw InvalidArgument("config file '" + path + "': " + e.what());
      }
    }
    po::notify(vm);
    help = vm.count("help") != 0u;
    if (!help) config = read_config(vm);
  });
  if (help) {
    std::ostringstream os;
    os << desc;
    print(os.str());
  }
  return !help;
}

}  // namespace eqntk::cli::detail
