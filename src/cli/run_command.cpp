// `eqntk run`: the main job. Parse → validate (everything, before heavy work) → load on rank 0 and
// broadcast → build the Gram matrices across ranks → solve for every time → write every output as
// `.partial`, renamed only when all succeeded.
#include <mpi.h>

#include <algorithm>
#include <atomic>
#include <boost/program_options.hpp>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>

#include <sched.h>
#include <unistd.h>

#include "common.hpp"
#include "so3_inputs.hpp"
#include "eqntk/build_info.hpp"
#include "eqntk/cli/commands.hpp"
#include "eqntk/parallel/collective.hpp"
#include "eqntk/parallel/dist_ops.hpp"
#include "eqntk/parallel/gram_builder.hpp"
#include "eqntk/parallel/npy_writer.hpp"
#include "eqntk/error.hpp"
#include "eqntk/io/atomic_file.hpp"
#include "eqntk/io/checkpoint.hpp"
#include "eqntk/io/dataset.hpp"
#include "eqntk/io/npy.hpp"
#include "eqntk/so3/problem.hpp"
#include "eqntk/solve/dynamics.hpp"

namespace eqntk::cli {
namespace {

namespace po = boost::program_options;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

std::atomic<int> g_stop{0};

extern "C" void openblas_set_num_threads(int) __attribute__((weak));
extern "C" void on_stop_signal(int signum) { g_stop.store(signum); }

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

struct TimePoint {
  std::string token;  // as given, for file names
  double value = 0;   // +inf for "inf"
};

struct RunConfig {
  std::string train_images, train_labels, test_images, test_labels, arch_text, out, checkpoint, grid_text;
  std::vector<TimePoint> times;
  bool want_ntk = true, want_nngp = false;
  bool save_kernels = false, variance = false, quiet = false, overwrite = false;
  std::int64_t nb = 32;
  int threads = 1;
  kernel::Precision precision = kernel::Precision::float64;
  double progress_interval = 3.0;
  io::ImageLayout layout = io::ImageLayout::nhwc;
  io::Preprocessing prep;
  solve::SolveOptions solve;
  detail::So3Options so3;                   // SO(3) inputs (so3_inputs.hpp)
  std::vector<std::string> explicit_flags;  // given on the command line or in the config file
};

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
      "checkpoint", po::value<std::string>(), "directory for finished tiles (resume after interruption)")(
      "quiet", po::bool_switch(), "no progress lines")(
      "progress-interval", po::value<double>()->default_value(3.0), "seconds between progress lines")(
      "layout", po::value<std::string>()->default_value("nhwc"), ".npy image layout: nhwc or nchw")(
      "n-train", po::value<std::int64_t>()->default_value(-1), "use a seeded random subset of N training images")(
      "n-test", po::value<std::int64_t>()->default_value(-1), "use a seeded random subset of M test images")(
      "seed", po::value<std::uint64_t>()->default_value(0), "seed of subsets and test rotations")(
      "classes", po::value<std::int64_t>()->default_value(-1), "number of classes (default: 1 + largest label)")(
      "standardize", po::value<bool>()->default_value(true), "per-channel standardisation with training statistics")(
      "downsample", po::value<int>()->default_value(1), "F x F average pooling of the images")(
      "rotate-test", po::bool_switch(), "rotate each test image by a seeded random multiple of 90 degrees")(
      "augment", po::bool_switch(), "append the 4 rotations of every training image");
  detail::add_so3_options(desc, true);
  return desc;
}

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

RunConfig read_config(const po::variables_map& vm) {
  RunConfig c;
  auto need = [&](const char* key) {
    if (vm.count(key) == 0u) throw InvalidArgument(std::string("--") + key + " is required");
    return vm[key].as<std::string>();
  };
  c.so3 = detail::read_so3_options(vm, true);
  for (const auto& [key, value] : vm)
    if (!value.defaulted()) c.explicit_flags.push_back(key);
  // XYZ molecules may take their targets from the comment lines (--target-key) instead of label files.
  const bool label_files = c.so3.target_key.empty();
  c.train_images = need("train-images");
  if (label_files) c.train_labels = need("train-labels");
  c.test_images = need("test-images");
  if (label_files) c.test_labels = need("test-labels");
  if (!label_files && (vm.count("train-labels") != 0u || vm.count("test-labels") != 0u))
    throw InvalidArgument("--target-key reads the targets from the XYZ comment lines: give it or label files, not both");
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
  c.progress_interval = vm["progress-interval"].as<double>();
  if (!(c.progress_interval > 0)) throw InvalidArgument("--progress-interval must be positive");
  c.grid_text = vm["grid"].as<std::string>();
  const std::string layout = vm["layout"].as<std::string>();
  if (layout != "nhwc" && layout != "nchw") throw InvalidArgument("--layout must be nhwc or nchw, got '" + layout + "'");
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

// The file names this run writes into --out (for the overwrite check and the final rename).
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
    for (const char* n : {"theta_train.npy", "theta_test.npy", "nngp_train.npy", "nngp_test.npy"}) names.emplace_back(n);
  return names;
}

// Checks that --out can receive this run's outputs without creating anything: a failed run must leave
// no trace. An existing directory must be writable and free of this run's file names (unless
// --overwrite); a missing one must have a writable existing ancestor. Created when outputs are written.
void check_output_dir(const RunConfig& c) {
  const fs::path out = fs::absolute(c.out);
  std::error_code ec;
  if (fs::exists(out, ec)) {
    if (!fs::is_directory(out, ec)) throw IoError("--out '" + c.out + "' exists and is not a directory");
    if (::access(out.c_str(), W_OK | X_OK) != 0) throw IoError("--out '" + c.out + "' is not writable");
    if (c.overwrite) return;
    for (const auto& name : output_names(c))
      if (fs::exists(out / name))
        throw InvalidArgument("output '" + (out / name).string() +
                              "' exists from an earlier run: use another --out or pass --overwrite");
    return;
  }
  fs::path ancestor = out.parent_path();
  while (!ancestor.empty() && !fs::exists(ancestor, ec)) ancestor = ancestor.parent_path();
  if (ancestor.empty() || !fs::is_directory(ancestor, ec) || ::access(ancestor.c_str(), W_OK | X_OK) != 0)
    throw IoError("--out '" + c.out + "' cannot be created: '" + ancestor.string() + "' is not a writable directory");
}

// Broadcast helpers: rank 0 holds the data, the others receive it.
template <typename T>
void bcast_vector(std::vector<T>& v, MPI_Datatype type) {
  std::int64_t n = static_cast<std::int64_t>(v.size());
  MPI_Bcast(&n, 1, MPI_INT64_T, 0, MPI_COMM_WORLD);
  v.resize(static_cast<std::size_t>(n));
  constexpr std::int64_t kChunk = 1 << 26;
  for (std::int64_t off = 0; off < n; off += kChunk)
    MPI_Bcast(v.data() + off, static_cast<int>(std::min(kChunk, n - off)), type, 0, MPI_COMM_WORLD);
}

void bcast_set(io::LabeledSet& s) {
  std::int64_t meta[6] = {s.images.shape.channels, s.images.shape.height, s.images.shape.width, s.images.count,
                          s.targets.classification ? 1 : 0, s.targets.dim};
  MPI_Bcast(meta, 6, MPI_INT64_T, 0, MPI_COMM_WORLD);
  s.images.shape = {meta[0], meta[1], meta[2]};
  s.images.count = meta[3];
  s.targets.classification = meta[4] != 0;
  s.targets.dim = meta[5];
  bcast_vector(s.images.pixels, MPI_DOUBLE);
  bcast_vector(s.targets.classes, MPI_INT64_T);
  bcast_vector(s.targets.values, MPI_DOUBLE);
  bcast_vector(s.source_index, MPI_INT64_T);
  bcast_vector(s.rotation, MPI_INT);
}

std::uint64_t fingerprint(const kernel::Architecture& arch, const io::Dataset& d, kernel::Precision precision) {
  const std::string a = arch.canonical() + (precision == kernel::Precision::mixed ? " precision=mixed" : "");
  std::uint64_t h = io::fnv1a(a.data(), a.size());
  for (const auto* s : {&d.train.images, &d.test.images}) {
    const std::int64_t meta[4] = {s->shape.channels, s->shape.height, s->shape.width, s->count};
    h = io::fnv1a(meta, sizeof meta, h);
    h = io::fnv1a(s->pixels.data(), s->pixels.size() * sizeof(double), h);
  }
  return h;
}

std::string json_escape(const std::string& s) {
  std::string o;
  for (const char ch : s) {
    if (ch == '"' || ch == '\\') o += '\\';
    if (static_cast<unsigned char>(ch) < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", ch);
      o += buf;
    } else {
      o += ch;
    }
  }
  return o;
}

std::string num(double v) {
  if (std::isnan(v)) return "null";
  if (std::isinf(v)) return v > 0 ? "\"inf\"" : "\"-inf\"";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

struct Score {
  std::string kernel, time_token;
  double time = 0;
  double accuracy = std::nan(""), mse = 0, mae = 0, rmse = 0;
  std::int64_t correct = 0;
  double train_accuracy = std::nan(""), train_mse = std::nan("");
  double mean_variance = std::nan("");
};

std::int64_t argmax_row(const std::vector<double>& m, std::int64_t row, std::int64_t k) {
  const auto* p = m.data() + row * k;
  return static_cast<std::int64_t>(std::max_element(p, p + k) - p);
}

// Scores one prediction against the targets of a set (accuracy for classes, MSE/MAE always).
void score(const io::Dataset& d, const io::LabeledSet& set, const std::vector<double>& pred, double& accuracy,
           std::int64_t& correct, double& mse, double* mae) {
  const std::int64_t k = d.outputs();
  const std::int64_t n = set.targets.count();
  double se = 0, ae = 0;
  correct = 0;
  for (std::int64_t i = 0; i < n; ++i) {
    for (std::int64_t c = 0; c < k; ++c) {
      const double target = set.targets.classification
                                ? (set.targets.classes[static_cast<std::size_t>(i)] == c ? 1.0 : 0.0) - 1.0 / static_cast<double>(k)
                                : set.targets.values[static_cast<std::size_t>(i * k + c)];
      const double e = pred[static_cast<std::size_t>(i * k + c)] - target;
      se += e * e;
      ae += std::abs(e);
    }
    if (set.targets.classification && argmax_row(pred, i, k) == set.targets.classes[static_cast<std::size_t>(i)]) ++correct;
  }
  mse = n > 0 ? se / static_cast<double>(n * k) : 0;
  if (mae != nullptr) *mae = n > 0 ? ae / static_cast<double>(n * k) : 0;
  accuracy = set.targets.classification && n > 0 ? static_cast<double>(correct) / static_cast<double>(n) : std::nan("");
}

// A pending output file: written as <name>.partial, renamed at the very end.
struct Outputs {
  fs::path dir;
  std::vector<fs::path> partials;
  fs::path add(const std::string& name) {
    const fs::path p = io::partial_path(dir / name);
    partials.push_back(p);
    return p;
  }
  void write_npy(const std::string& name, std::span<const std::int64_t> shape, std::span<const double> data) {
    io::write_npy(add(name), shape, data);
  }
  void commit_all() {
    for (const auto& p : partials) {
      fs::path target = p;
      target.replace_extension();  // drop ".partial"
      io::commit_partial(target);
    }
  }
  void remove_all() noexcept {
    for (const auto& p : partials) {
      std::error_code ec;
      fs::remove(p, ec);
    }
  }
};

// What the solve and output phase needs from either kind of job (planar images or SO(3) items).
struct Job {
  const io::Dataset& data;     // targets (and, for images, the images themselves)
  const parallel::GramMatrices& g;
  std::string arch_canonical;
  std::string input_json;      // one metrics.json member: "input_shape": [C, H, W] or "input": {...}
  double seconds_load = 0;
  bool standardized = false;   // whether --standardize was applied (images only)
};

int solve_and_write(const RunConfig& c, const std::vector<std::string>& args, Clock::time_point t_start, const Job& job);

void log_grid(const RunConfig& c, const parallel::ProcessGrid& grid) {
  if (c.quiet) return;
  detail::print("[grid] " + std::to_string(grid.size()) + " ranks as " + std::to_string(grid.prows()) + "x" +
                std::to_string(grid.pcols()) + ", block size " + std::to_string(c.nb) + ", " + std::to_string(c.threads) +
                " threads per rank");
}

parallel::BuildOptions build_options(const RunConfig& c, std::uint64_t fingerprint, std::string description) {
  parallel::BuildOptions bo;
  bo.threads = c.threads;
  bo.progress_interval = c.progress_interval;
  bo.quiet = c.quiet;
  bo.checkpoint_dir = c.checkpoint;
  bo.fingerprint = fingerprint;
  bo.description = std::move(description);
  bo.test_self = c.variance;
  bo.stop = &g_stop;
  bo.log = [quiet = c.quiet](const std::string& line) {
    if (!quiet) detail::print(line);
  };
  return bo;
}

// SO(3) data on rank 0: the two files (kind from --input-kind or the content), their targets (label files or
// --target-key), the seeded subsets of io::prepare (run on stand-in 1x1 images, so that subsets, label
// checks and class counts are exactly those of the planar path) and the items the kernels take.
void load_so3(const RunConfig& c, io::Dataset& data, detail::So3Items& items) {
  const detail::So3File train = detail::read_so3_file(c.train_images, c.so3.kind);
  const detail::So3File test = detail::read_so3_file(c.test_images, c.so3.kind);
  detail::check_same_kind(train, test);
  const bool molecules = train.kind == detail::InputKind::xyz;
  const std::string what = molecules ? "molecules" : "signals";
  const bool from_comments = !c.so3.target_key.empty();
  io::Targets targets[2] = {from_comments ? detail::comment_targets(train, c.so3.target_key) : io::load_targets(c.train_labels),
                            from_comments ? detail::comment_targets(test, c.so3.target_key) : io::load_targets(c.test_labels)};
  const detail::So3File* files[2] = {&train, &test};
  const char* set_name[2] = {"training", "test"};
  const std::int64_t subset[2] = {c.prep.n_train, c.prep.n_test};
  for (int s = 0; s < 2; ++s) {
    if (targets[s].count() != files[s]->count())
      throw InvalidArgument(std::string(set_name[s]) + " labels: " + std::to_string(targets[s].count()) + " labels for " +
                            std::to_string(files[s]->count()) + " " + what + " in '" + files[s]->source + "'");
    if (subset[s] > files[s]->count())
      throw InvalidArgument(std::string("--n-") + (s == 0 ? "train " : "test ") + std::to_string(subset[s]) +
                            " exceeds the " + std::to_string(files[s]->count()) + " " + set_name[s] + " " + what +
                            " available");
  }
  const auto stand_in = [](std::int64_t count) {
    return kernel::ImageSet{{1, 1, 1}, count, std::vector<double>(static_cast<std::size_t>(count), 0.0)};
  };
  io::Preprocessing prep = c.prep;
  prep.standardize = false;
  prep.downsample = 1;
  prep.rotate_test = false;
  prep.augment = false;
  data = io::prepare(io::labeled(stand_in(train.count()), std::move(targets[0])),
                     io::labeled(stand_in(test.count()), std::move(targets[1])), prep);
  const detail::So3File test_rows = detail::select_rows(test, data.test.source_index);
  items = detail::make_items(detail::select_rows(train, data.train.source_index), &test_rows, c.so3);
}

// `eqntk run` with an SO(3) architecture: as the planar run, on spherical signals or molecules.
int run_so3(const RunConfig& c, const std::vector<std::string>& args, Clock::time_point t_start) {
  const auto log = [&](const std::string& line) {
    if (!c.quiet) detail::print(line);
  };
  detail::reject_image_flags({"downsample", "rotate-test", "augment", "layout", "precision"}, c.explicit_flags);
  const so3::Architecture arch = so3::Architecture::parse(c.arch_text);
  const auto [prows, pcols] = parallel::ProcessGrid::parse_shape(c.grid_text, detail::world_size());
  parallel::on_root([&] { check_output_dir(c); });

  const auto t0 = Clock::now();
  io::Dataset data;
  detail::So3Items items;
  parallel::on_root([&] { load_so3(c, data, items); });
  bcast_set(data.train);
  bcast_set(data.test);
  MPI_Bcast(&data.num_classes, 1, MPI_INT64_T, 0, MPI_COMM_WORLD);
  detail::broadcast_items(items);
  const double seconds_load = seconds_since(t0);
  // The same verdict on every rank (e.g. --so3-grid below 2L-1).
  const so3::Network net(arch, items.band_limit, items.channels, so3::GridOptions{detail::grid_size(arch, items, c.so3), 0});
  std::unique_ptr<kernel::KernelProblem> problem;
  if (items.molecules)
    problem = std::make_unique<so3::MoleculeProblem>(net, c.so3.sum, c.so3.slots, items.atoms[0], items.atoms[1]);
  else
    problem = std::make_unique<so3::So3SignalProblem>(net, items.signals[0], items.signals[1]);
  const std::int64_t n = items.count(0), m = items.count(1);
  const std::string what = items.molecules ? "molecules" : "signals";
  log("[data] " + std::to_string(n) + " training and " + std::to_string(m) + " test " + what + " (" +
      detail::to_string(items.kind) + ", L=" + std::to_string(items.band_limit) + ", C=" + std::to_string(items.channels) +
      (items.molecules ? ", up to " + std::to_string(items.max_atoms()) + " atoms" : std::string()) + "), " +
      std::to_string(data.outputs()) + " outputs; arch " + arch.canonical() + "; SO(3) grid N=" +
      std::to_string(net.grid().n()) + ", " + std::to_string(net.grid().n_beta()) + " beta nodes");
  if (std::find(c.explicit_flags.begin(), c.explicit_flags.end(), "standardize") != c.explicit_flags.end())
    log("[data] --standardize does not apply to SO(3) inputs (ignored)");

  parallel::ProcessGrid grid(prows, pcols);
  log_grid(c, grid);
  const parallel::BuildOptions bo =
      build_options(c, detail::so3_fingerprint(arch, net, items, c.so3),
                    "arch " + arch.canonical() + ", " + std::to_string(n) + " train and " + std::to_string(m) + " test " +
                        what + " (" + detail::to_string(items.kind) + ")");
  const parallel::GramMatrices g = parallel::build_gram(grid, *problem, c.nb, bo);
  const Job job{data, g, arch.canonical(), "\"input\": " + detail::so3_input_json(net, items, c.so3), seconds_load, false};
  return solve_and_write(c, args, t_start, job);
}

int run(const RunConfig& c, const std::vector<std::string>& args) {
  const auto t_start = Clock::now();
  const int nranks = detail::world_size();
  const auto log = [&](const std::string& line) {
    if (!c.quiet) detail::print(line);
  };

  // Validate the cheap things first, identically on every rank.
  const bool so3_job = detail::routes_to_so3(c.arch_text, c.so3);
  if (so3_job) return run_so3(c, args, t_start);
  kernel::Architecture arch = kernel::Architecture::parse(c.arch_text);
  const auto [prows, pcols] = parallel::ProcessGrid::parse_shape(c.grid_text, nranks);
  parallel::on_root([&] { check_output_dir(c); });  // checks only: --out is created when outputs are written

  // Data: rank 0 loads, checks and preprocesses; everyone receives the result.
  auto t0 = Clock::now();
  io::Dataset data;
  parallel::on_root([&] {
    io::LabeledSet train = io::labeled(io::load_images(c.train_images, c.layout), io::load_targets(c.train_labels));
    io::LabeledSet test = io::labeled(io::load_images(c.test_images, c.layout), io::load_targets(c.test_labels));
    data = io::prepare(std::move(train), std::move(test), c.prep);
  });
  bcast_set(data.train);
  bcast_set(data.test);
  MPI_Bcast(&data.num_classes, 1, MPI_INT64_T, 0, MPI_COMM_WORLD);
  const double seconds_load = seconds_since(t0);
  const kernel::Network net(arch, data.train.images.shape);  // same verdict on every rank
  const std::int64_t n = data.train.images.count, m = data.test.images.count;
  log("[data] " + std::to_string(n) + " training and " + std::to_string(m) + " test images of " +
      std::to_string(net.input_shape().channels) + "x" + std::to_string(net.input_shape().height) + "x" +
      std::to_string(net.input_shape().width) + ", " + std::to_string(data.outputs()) + " outputs; arch " + arch.canonical());

  parallel::ProcessGrid grid(prows, pcols);
  log_grid(c, grid);

  // Build.
  const parallel::BuildOptions bo = build_options(
      c, fingerprint(arch, data, c.precision),
      "arch " + arch.canonical() + ", " + std::to_string(n) + " train and " + std::to_string(m) + " test images");
  kernel::ImageProblem problem(net, data.train.images, data.test.images, c.precision);
  const parallel::GramMatrices g = parallel::build_gram(grid, problem, c.nb, bo);
  Job job{data, g, arch.canonical(),
          "\"input_shape\": [" + std::to_string(net.input_shape().channels) + ", " +
              std::to_string(net.input_shape().height) + ", " + std::to_string(net.input_shape().width) + "]",
          seconds_load, c.prep.standardize};
  return solve_and_write(c, args, t_start, job);
}

int solve_and_write(const RunConfig& c, const std::vector<std::string>& args, Clock::time_point t_start, const Job& job) {
  const int rank = detail::world_rank();
  const int nranks = detail::world_size();
  const auto log = [&](const std::string& line) {
    if (!c.quiet) detail::print(line);
  };
  const io::Dataset& data = job.data;
  const parallel::GramMatrices& g = job.g;
  const std::int64_t n = data.train.images.count, m = data.test.images.count, k = data.outputs();
  const double seconds_load = job.seconds_load;
  const auto [prows, pcols] = parallel::ProcessGrid::parse_shape(c.grid_text, nranks);
  auto t0 = Clock::now();
  const auto& st = g.stats;
  {
    const auto [min_it, max_it] = std::minmax_element(st.pairs_per_rank.begin(), st.pairs_per_rank.end());
    log("[build] " + std::to_string(st.pairs_total) + " pairs (" + std::to_string(st.pairs_restored) +
        " from checkpoint) in " + std::to_string(st.seconds_build) + " s; pairs per rank " + std::to_string(*min_it) + ".." +
        std::to_string(*max_it) + ", imbalance max/mean " + std::to_string(st.imbalance()));
  }

  // Solve.
  std::vector<Score> scores;
  std::vector<std::pair<std::string, solve::SolveReport>> reports;
  double seconds_solve = 0;
  for (const bool ntk : {true, false}) {
    if ((ntk && !c.want_ntk) || (!ntk && !c.want_nngp)) continue;
    const std::string name = ntk ? "ntk" : "nngp";
    t0 = Clock::now();
    const parallel::DistMatrix& train = ntk ? g.train_ntk : g.train_nngp;
    const parallel::DistMatrix& test = ntk ? g.test_ntk : g.test_nngp;
    solve::SolveReport rep = solve::predict(train, test, data.train_target_matrix(), k, c.solve, &g.train_nngp, &g.test_nngp,
                                            c.variance ? &g.test_self_nngp : nullptr);
    seconds_solve += seconds_since(t0);
    if (rep.clamped_negative)
      log("[solve] warning: " + name + " matrix has eigenvalues down to " + num(rep.lambda_min) + " (max " +
          num(rep.lambda_max) + "); negative ones were set to 0 -- consider --ridge");
    for (std::size_t i = 0; i < rep.predictions.size(); ++i) {
      const auto& p = rep.predictions[i];
      Score s{name, c.times[i].token, p.time};
      score(data, data.test, p.mean, s.accuracy, s.correct, s.mse, &s.mae);
      s.rmse = std::sqrt(s.mse);
      if (!p.train_outputs.empty()) {
        std::int64_t train_correct = 0;
        score(data, data.train, p.train_outputs, s.train_accuracy, train_correct, s.train_mse, nullptr);
      }
      if (!p.variance.empty()) {
        double sum = 0;
        for (const double v : p.variance) sum += v;
        s.mean_variance = sum / static_cast<double>(p.variance.size());
      }
      char line[256];
      if (data.train.targets.classification)
        std::snprintf(line, sizeof line, "[result] %s t=%s: test accuracy %.4f (%lld/%lld), test mse %.6g, rmse %.6g, mae %.6g",
                      name.c_str(), s.time_token.c_str(), s.accuracy, static_cast<long long>(s.correct),
                      static_cast<long long>(m), s.mse, s.rmse, s.mae);
      else
        std::snprintf(line, sizeof line, "[result] %s t=%s: test mse %.6g, rmse %.6g, mae %.6g", name.c_str(),
                      s.time_token.c_str(), s.mse, s.rmse, s.mae);
      detail::print(line);
      scores.push_back(s);
    }
    reports.emplace_back(name, std::move(rep));
  }

  // Outputs: everything to .partial first; renamed together at the end.
  t0 = Clock::now();
  Outputs out{fs::path(c.out), {}};
  parallel::on_root([&] { io::ensure_writable_directory(c.out); });
  try {
    if (c.save_kernels) {
      const parallel::DistMatrix theta_full = parallel::symmetrize_lower(g.train_ntk);
      parallel::write_npy_collective(out.add("theta_train.npy"), theta_full);
      parallel::write_npy_collective(out.add("theta_test.npy"), g.test_ntk);
      const parallel::DistMatrix nngp_full = parallel::symmetrize_lower(g.train_nngp);
      parallel::write_npy_collective(out.add("nngp_train.npy"), nngp_full);
      parallel::write_npy_collective(out.add("nngp_test.npy"), g.test_nngp);
    }
    double seconds_write = 0;
    parallel::on_root([&] {
      const std::int64_t pred_shape[2] = {m, k};
      const std::int64_t var_shape[1] = {m};
      for (const auto& [name, rep] : reports)
        for (std::size_t i = 0; i < rep.predictions.size(); ++i) {
          out.write_npy("predictions_" + name + "_t" + c.times[i].token + ".npy", pred_shape, rep.predictions[i].mean);
          if (c.variance)
            out.write_npy("variance_" + name + "_t" + c.times[i].token + ".npy", var_shape, rep.predictions[i].variance);
        }
      std::vector<std::int64_t> info;
      for (std::int64_t i = 0; i < m; ++i) {
        info.push_back(data.test.source_index[static_cast<std::size_t>(i)]);
        info.push_back(data.test.rotation[static_cast<std::size_t>(i)]);
        info.push_back(data.test.targets.classification ? data.test.targets.classes[static_cast<std::size_t>(i)] : -1);
      }
      const std::int64_t info_shape[2] = {m, 3};
      io::write_npy(out.add("test_info.npy"), info_shape, std::span<const std::int64_t>(info));
      seconds_write = seconds_since(t0);

      std::ostringstream js;
      js << "{\n  \"eqntk_version\": \"" << build::kVersion << "\",\n  \"git_sha\": \"" << build::kGitSha << "\",\n";
      js << "  \"command\": \"";
      for (const auto& a : args) js << json_escape(a) << ' ';
      js << "\",\n  \"arch\": \"" << json_escape(job.arch_canonical) << "\",\n";
      js << "  " << job.input_json << ",\n";
      js << "  \"n_train\": " << n << ",\n  \"n_test\": " << m << ",\n  \"outputs\": " << k << ",\n";
      js << "  \"task\": \"" << (data.train.targets.classification ? "classification" : "regression") << "\",\n";
      js << "  \"ranks\": " << nranks << ",\n  \"grid\": [" << prows << ", " << pcols << "],\n  \"block_size\": " << c.nb
         << ",\n  \"threads\": " << c.threads << ",\n  \"precision\": \""
         << (c.precision == kernel::Precision::mixed ? "mixed" : "float64") << "\",\n";
      js << "  \"eta\": " << num(c.solve.eta) << ",\n  \"loss\": \"" << (c.solve.loss == solve::Loss::sum ? "sum" : "mean")
         << "\",\n  \"ridge\": " << num(c.solve.ridge) << ",\n  \"ridge_absolute\": " << (c.solve.ridge_absolute ? "true" : "false")
         << ",\n";
      js << "  \"preprocessing\": {\"seed\": " << c.prep.seed << ", \"standardize\": " << (job.standardized ? "true" : "false")
         << ", \"downsample\": " << c.prep.downsample << ", \"rotate_test\": " << (c.prep.rotate_test ? "true" : "false")
         << ", \"augment\": " << (c.prep.augment ? "true" : "false") << "},\n";
      js << "  \"results\": [\n";
      for (std::size_t i = 0; i < scores.size(); ++i) {
        const auto& s = scores[i];
        js << "    {\"kernel\": \"" << s.kernel << "\", \"t\": \"" << s.time_token << "\", \"accuracy\": " << num(s.accuracy)
           << ", \"correct\": " << s.correct << ", \"mse\": " << num(s.mse) << ", \"rmse\": " << num(s.rmse)
           << ", \"mae\": " << num(s.mae)
           << ", \"train_accuracy\": " << num(s.train_accuracy) << ", \"train_mse\": " << num(s.train_mse)
           << ", \"mean_variance\": " << num(s.mean_variance) << "}" << (i + 1 < scores.size() ? "," : "") << "\n";
      }
      js << "  ],\n  \"solver\": [\n";
      for (std::size_t i = 0; i < reports.size(); ++i) {
        const auto& r = reports[i].second;
        js << "    {\"kernel\": \"" << reports[i].first << "\", \"ridge_added\": " << num(r.ridge_added)
           << ", \"lambda_min\": " << num(r.lambda_min) << ", \"lambda_max\": " << num(r.lambda_max)
           << ", \"clamped_negative\": " << (r.clamped_negative ? "true" : "false") << ", \"seconds_cholesky\": "
           << num(r.seconds_cholesky) << ", \"seconds_eigen\": " << num(r.seconds_eigen) << ", \"seconds_gemm\": "
           << num(r.seconds_gemm) << "}" << (i + 1 < reports.size() ? "," : "") << "\n";
      }
      js << "  ],\n  \"build\": {\"tiles\": " << st.tiles_total << ", \"tiles_restored\": " << st.tiles_restored
         << ", \"pairs\": " << st.pairs_total << ", \"pairs_restored\": " << st.pairs_restored
         << ", \"imbalance_max_over_mean\": " << num(st.imbalance()) << ", \"pairs_per_rank\": [";
      for (std::size_t r = 0; r < st.pairs_per_rank.size(); ++r) js << (r ? ", " : "") << st.pairs_per_rank[r];
      js << "], \"compute_seconds_per_rank\": [";
      for (std::size_t r = 0; r < st.compute_seconds_per_rank.size(); ++r) js << (r ? ", " : "") << num(st.compute_seconds_per_rank[r]);
      js << "], \"peak_rss_mb_per_rank\": [";
      for (std::size_t r = 0; r < st.peak_rss_mb_per_rank.size(); ++r) js << (r ? ", " : "") << num(st.peak_rss_mb_per_rank[r]);
      js << "]},\n  \"timings_seconds\": {\"load\": " << num(seconds_load) << ", \"self_chains\": " << num(st.seconds_self)
         << ", \"build\": " << num(st.seconds_build) << ", \"solve\": " << num(seconds_solve) << ", \"write\": "
         << num(seconds_write) << ", \"total\": " << num(seconds_since(t_start)) << "}\n}\n";
      // metrics.json is renamed last: its presence marks a complete run.
      const fs::path metrics = out.add("metrics.json");
      std::ofstream f(metrics, std::ios::binary);
      f << js.str();
      f.close();
      if (!f) throw IoError("cannot write '" + metrics.string() + "'");
    });
    parallel::on_root([&] { out.commit_all(); });
  } catch (...) {
    if (rank == 0) out.remove_all();
    throw;
  }
  log("[done] outputs in " + c.out + " (" + std::to_string(seconds_since(t_start)) + " s)");
  return kExitOk;
}

}  // namespace

int run_command(const std::vector<std::string>& args) {
  const po::options_description desc = run_options();
  return detail::guarded([&]() -> int {
    po::variables_map vm;
    RunConfig config;
    bool help = false;
    parallel::collectively([&] {
      detail::parse_command_line(args, desc, vm);
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
      detail::print(os.str());
      return kExitOk;
    }
    // MPI launchers bind each rank to one core by default; more OpenMP threads than CPUs in the affinity
    // mask then share that core and gain nothing. Warn once (rank 0) if any rank is so constrained.
    {
      cpu_set_t mask;
      CPU_ZERO(&mask);
      int cpus = sched_getaffinity(0, sizeof mask, &mask) == 0 ? CPU_COUNT(&mask) : config.threads;
      MPI_Allreduce(MPI_IN_PLACE, &cpus, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
      if (cpus < config.threads && !config.quiet)
        detail::print("[warning] --threads " + std::to_string(config.threads) + " but a rank may only run on " +
                      std::to_string(cpus) +
                      " CPU(s): the launcher bound it; use mpirun --map-by slot:PE=<threads> (or --bind-to none), "
                      "or srun --cpus-per-task=<threads>");
    }
    // BLAS threads follow --threads (the solve phase); ranks × threads should not exceed the cores.
    if (openblas_set_num_threads != nullptr) openblas_set_num_threads(config.threads);
    std::signal(SIGTERM, on_stop_signal);
    std::signal(SIGUSR1, on_stop_signal);
    return run(config, args);
  });
}

}  // namespace eqntk::cli
