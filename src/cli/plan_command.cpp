// `eqntk plan`: what a `eqntk run` would cost, before `sbatch`. The same arguments as `eqntk run` (parsed
// by run's parser, --config included) plus --ranks; no kernel build. It reads the selected images (as the
// run would), then prints the sizes of the job (pairs, tiles, entry-layers), per-rank memory (Gram
// matrices, solve, images), the ScaLAPACK eigensolver workspace, the checkpoint size, and an estimate of
// wall time and core-hours from a calibration of a few kernel pairs (on as many cores at once as the job
// would use on one node) and one BLAS product on this node.
//
// Model (one rank per `threads` cores, threads scaling linearly):
//   tiles wall  = max over ranks of pairs(rank) · t_pair / threads      (t_pair: seconds per pair on one core)
//   chains wall = max over ranks of images(rank) · t_chain / threads    (self chains of the held images)
//   solve wall  = flops / (ranks · threads · blas_rate)                  (Cholesky N³/3, eigensolver ≈ 9N³)
//   core-hours  = wall · ranks · threads / 3600                          (what the allocation is billed)
// Work counts come from the layout arithmetic of parallel/block_cyclic.hpp, exactly as the build assigns it.
#include <mpi.h>

#include <algorithm>
#include <boost/program_options.hpp>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <limits>
#include <sstream>
#include <thread>

#include <omp.h>

#include "common.hpp"
#include "eqntk/cli/commands.hpp"
#include "eqntk/error.hpp"
#include "eqntk/io/dataset.hpp"
#include "eqntk/kernel/architecture.hpp"
#include "eqntk/kernel/network.hpp"
#include "eqntk/kernel/pair_kernel.hpp"
#include "eqntk/parallel/block_cyclic.hpp"
#include "eqntk/parallel/collective.hpp"
#include "eqntk/parallel/linalg.hpp"
#include "eqntk/parallel/process_grid.hpp"
#include "run.hpp"

extern "C" void openblas_set_num_threads(int) __attribute__((weak));
extern "C" void dgemm_(const char* ta, const char* tb, const int* m, const int* n, const int* k, const double* alpha,
                       const double* a, const int* lda, const double* b, const int* ldb, const double* beta, double* c,
                       const int* ldc);

namespace eqntk::cli {
namespace detail {
namespace {

namespace po = boost::program_options;

constexpr double kMiB = 1024.0 * 1024.0;

std::string fixed(double v, int digits) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}
std::string mib(double bytes) { return fixed(bytes / kMiB, 1) + " MiB"; }
std::string secs(double s) {
  if (s >= 3600) return fixed(s / 3600, 2) + " h";
  if (s >= 120) return fixed(s / 60, 1) + " min";
  return fixed(s, 2) + " s";
}

struct Calibration {
  std::int64_t pairs = 0, chains = 0;
  int workers = 1;
  double seconds_per_pair = 0, seconds_per_chain = 0, blas_flops_per_second = 0;
};

// Times the engine on this node: self chains of a few images, then pairs among them on `workers` threads
// at once (the cores the planned job would keep busy on one node, so that shared caches, memory
// bandwidth and other load count), each thread with its own engine, at least `min_pairs` pairs and about
// a second of evaluation; and one 384³ DGEMM for the solve rate.
Calibration calibrate(const kernel::Network& net, const io::Dataset& d, kernel::Precision precision, int min_pairs,
                      int workers) {
  using Clock = std::chrono::steady_clock;
  Calibration cal;
  const std::int64_t n = d.train.images.count;
  const std::int64_t k = std::min<std::int64_t>(n, 12);
  const auto image = [&](std::int64_t a) { return d.train.images.view(a * (n / k)); };
  std::vector<kernel::SelfChain> chains;
  {
    kernel::PairKernel engine(net, precision);
    const auto t0 = Clock::now();
    for (std::int64_t a = 0; a < k; ++a) chains.push_back(engine.self_chain(image(a)));
    cal.chains = k;
    cal.seconds_per_chain = std::chrono::duration<double>(Clock::now() - t0).count() / static_cast<double>(k);
  }
  std::int64_t pairs = 0;
  double busy = 0;  // thread-seconds of evaluation
#pragma omp parallel num_threads(workers) reduction(+ : pairs, busy)
  {
    kernel::PairKernel engine(net, precision);
    const int t = omp_get_thread_num();
    std::int64_t p = t;  // threads start on different pairs
    const auto t0 = Clock::now();
    double elapsed = 0;
    while (pairs * workers < min_pairs || (elapsed < 1.0 && pairs < 10'000)) {
      const std::int64_t a = p % k, b = (p / k) % k;
      (void)engine.evaluate(image(a), chains[static_cast<std::size_t>(a)], image(b), chains[static_cast<std::size_t>(b)]);
      ++pairs;
      p += workers;
      elapsed = std::chrono::duration<double>(Clock::now() - t0).count();
    }
    busy += elapsed;
  }
  cal.pairs = pairs;
  cal.seconds_per_pair = busy / static_cast<double>(pairs);
  cal.workers = workers;

  if (openblas_set_num_threads != nullptr) openblas_set_num_threads(1);
  const int dim = 384;
  std::vector<double> a(static_cast<std::size_t>(dim) * dim, 0.5), b(a.size(), 0.25), c(a.size(), 0.0);
  const double one = 1.0, zero = 0.0;
  dgemm_("N", "N", &dim, &dim, &dim, &one, a.data(), &dim, b.data(), &dim, &zero, c.data(), &dim);  // warm-up
  const auto t0 = Clock::now();
  dgemm_("N", "N", &dim, &dim, &dim, &one, a.data(), &dim, b.data(), &dim, &zero, c.data(), &dim);
  const double s = std::max(1e-6, std::chrono::duration<double>(Clock::now() - t0).count());
  cal.blas_flops_per_second = 2.0 * dim * dim * dim / s;
  return cal;
}

int plan_images(const RunConfig& c, int ranks, int calibration_pairs) {
  const auto t_load = Clock::now();
  const kernel::Architecture arch = kernel::Architecture::parse(c.arch_text);
  const auto [prows, pcols] = parallel::ProcessGrid::parse_shape(c.grid_text, ranks);
  const io::Dataset data =
      io::load_dataset({c.train_images, c.train_labels, c.test_images, c.test_labels}, c.layout, c.prep);
  const double seconds_load = seconds_since(t_load);
  const kernel::Network net(arch, data.train.images.shape);
  const std::int64_t n = data.train.images.count, m = data.test.images.count, k = data.outputs(), nb = c.nb;
  const data::InputShape in = net.input_shape();

  // Work per rank, as the build assigns it.
  const parallel::TileCounts total = parallel::total_tiles(n, m, nb);
  std::int64_t max_pairs = 0, max_images = 0, sum_images = 0;
  double seconds_tiles = 0, seconds_chains = 0;
  const int node_cores = std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  const Calibration cal =
      calibrate(net, data, c.precision, calibration_pairs, std::min(ranks * c.threads, node_cores));
  for (int r = 0; r < prows; ++r)
    for (int q = 0; q < pcols; ++q) {
      const parallel::TileCounts t = parallel::owned_tiles(n, m, nb, prows, pcols, r, q);
      const parallel::HeldImages h = parallel::held_images(n, m, nb, prows, pcols, r, q);
      const auto images = static_cast<std::int64_t>(h.train.size() + h.test.size());
      max_pairs = std::max(max_pairs, t.pairs);
      max_images = std::max(max_images, images);
      sum_images += images;
      seconds_tiles = std::max(seconds_tiles, static_cast<double>(t.pairs) * cal.seconds_per_pair / c.threads);
      seconds_chains = std::max(seconds_chains, static_cast<double>(images) * cal.seconds_per_chain / c.threads);
    }

  // Memory per rank (the largest share, process (0, 0)'s), in bytes.
  const auto local = [&](std::int64_t rows, std::int64_t cols) {
    return 8.0 * static_cast<double>(parallel::max_local_part(rows, cols, nb, prows, pcols));
  };
  const bool finite_times = std::any_of(c.solve.times.begin(), c.solve.times.end(), [](double t) { return std::isfinite(t); });
  const double gram = 2 * local(n, n) + 2 * local(m, n);
  // Solve, on top of the Gram matrices: t = inf copies and factors the training matrix (2 N×N) and
  // holds N×K targets and M×K predictions; finite t adds the eigenvectors and a work copy (3 N×N in all)
  // and three M×N products. --variance adds the symmetrised NNGP (N×N).
  double solve = finite_times ? 3 * local(n, n) + 3 * local(m, n) : 2 * local(n, n) + local(m, n);
  solve += local(n, k) + local(m, k) + (c.variance ? local(n, n) : 0.0);
  const double workspace = finite_times ? 8.0 * static_cast<double>(parallel::eigen_workspace_bound(n, nb, prows, pcols)) : 0.0;
  const double image_bytes = 8.0 * static_cast<double>(in.channels * in.height * in.width);
  const double images = static_cast<double>(max_images) * image_bytes;
  const double images_root = static_cast<double>(n + m) * image_bytes;  // rank 0 while loading and sending

  // Checkpoint: one record per tile, the tile's whole rectangle (diagonal tiles too) of NNGP and NTK.
  double checkpoint = static_cast<double>(total.tiles) * 56.0;
  const parallel::BlockCyclic1D rows_d{n, nb, 1};
  for (std::int64_t b = 0; b < rows_d.blocks(); ++b)
    checkpoint += 16.0 * static_cast<double>(rows_d.block_width(b)) * static_cast<double>(std::min(n, (b + 1) * nb));
  checkpoint += 16.0 * static_cast<double>(m) * static_cast<double>(n);

  // Solve flops: Cholesky N³/3 and triangular solves; the eigensolver (finite t) about 9N³ more.
  const double nd = static_cast<double>(n), md = static_cast<double>(m), kd = static_cast<double>(k);
  double flops = nd * nd * nd / 3 + 2 * nd * nd * kd + 2 * md * nd * kd;
  if (finite_times) flops += 9 * nd * nd * nd + 2 * md * nd * nd;
  const int kernels = (c.want_ntk ? 1 : 0) + (c.want_nngp ? 1 : 0);
  const double cores = static_cast<double>(ranks) * c.threads;
  const double seconds_solve = kernels * flops / (cores * cal.blas_flops_per_second);
  const double wall = seconds_load + seconds_chains + seconds_tiles + seconds_solve;

  std::ostringstream os;
  os << "[plan] " << n << " training and " << m << " test images of " << in.channels << "x" << in.height << "x"
     << in.width << ", " << k << " outputs; arch " << arch.canonical() << "\n";
  os << "[plan] grid " << prows << "x" << pcols << " (" << ranks << " ranks x " << c.threads << " threads), block size "
     << nb << "\n";
  os << "[plan] pairs " << total.pairs << " (train " << n * (n + 1) / 2 << ", test " << m * n << "), tiles "
     << total.tiles << ", entry-layers " << total.pairs * static_cast<std::int64_t>(net.stages().size()) << " ("
     << net.stages().size() << " layers)\n";
  os << "[plan] per rank: at most " << max_pairs << " pairs (mean " << total.pairs / ranks << "), at most " << max_images
     << " images (mean " << sum_images / ranks << ")\n";
  os << "[plan] memory per rank: Gram matrices " << mib(gram) << ", solve +" << mib(solve) << ", images " << mib(images)
     << " (rank 0 while loading: " << mib(images_root) << "), ScaLAPACK eigensolver workspace " << mib(workspace)
     << (finite_times ? "" : " (t = inf only: Cholesky needs none)") << "; total about "
     << mib(gram + solve + images + workspace) << " + the process itself\n";
  os << "[plan] checkpoint " << mib(checkpoint) << " (" << total.tiles << " records)\n";
  // The limits the run would stop at (before any kernel is computed), reported here as warnings.
  try {
    check_sizes(c, n, m, prows, pcols);  // the run's own check (run_config.cpp)
    os << "[plan] ScaLAPACK int limits: every local matrix and workspace fits\n";
  } catch (const InvalidArgument& e) {
    os << "[plan] warning: " << e.what() << "\n";
  }
  os << "[plan] calibration on this node: " << cal.pairs << " pairs on " << cal.workers << " cores at once, "
     << fixed(cal.seconds_per_pair * 1e3, 3) << " ms per pair per core; " << cal.chains << " self chains, " << fixed(cal.seconds_per_chain * 1e3, 3)
     << " ms each; BLAS " << fixed(cal.blas_flops_per_second / 1e9, 2) << " GFLOP/s per core\n";
  os << "[plan] estimate: load " << secs(seconds_load) << ", self chains " << secs(seconds_chains) << ", tiles "
     << fixed(seconds_tiles, 2) << " s, solve " << secs(seconds_solve) << "; wall " << secs(wall) << ", "
     << fixed(wall * cores / 3600.0, 4) << " core-hours (" << ranks << " ranks x " << c.threads << " threads)\n";
  print(os.str());
  return kExitOk;
}

}  // namespace
}  // namespace detail

int plan_command(const std::vector<std::string>& args) {
  return detail::guarded([&]() -> int {
    namespace po = boost::program_options;
    po::options_description extra("eqntk plan (besides the options of eqntk run; --out is not written)");
    extra.add_options()("ranks", po::value<int>()->default_value(0),
                        "MPI ranks of the planned run (default: the ranks of this process)")(
        "calibration-pairs", po::value<int>()->default_value(12), "kernel pairs timed on this node (at least)");
    detail::RunConfig config;
    po::variables_map vm;
    if (!detail::parse_run(args, config, extra, vm)) return kExitOk;  // --help
    int ranks = vm["ranks"].as<int>();
    if (ranks == 0) ranks = detail::world_size();
    const int calibration_pairs = vm["calibration-pairs"].as<int>();
    parallel::collectively([&] {
      if (ranks < 1) throw InvalidArgument("--ranks must be at least 1, got " + std::to_string(ranks));
      if (calibration_pairs < 1) throw InvalidArgument("--calibration-pairs must be at least 1");
      if (detail::routes_to_so3(config.arch_text, config.so3))
        throw InvalidArgument("eqntk plan covers planar architectures (images); SO(3) networks are not planned yet");
    });
    int code = kExitOk;
    parallel::on_root([&] { code = detail::plan_images(config, ranks, calibration_pairs); });
    return code;
  });
}

}  // namespace eqntk::cli
