// `eqntk run`, the main job: parse → validate (everything, before heavy work) → load on rank 0 and
// broadcast → check the sizes → build the Gram matrices across ranks → solve, score and write
// (run_finish.cpp). The pieces live in the modules that own them: parallel/ (distribution, build),
// io/ (data, checkpoints, outputs, metrics), solve/ (dynamics, scoring).
#include <mpi.h>
#include <sched.h>

#include <csignal>

#include "common.hpp"
#include "eqntk/cli/commands.hpp"
#include "eqntk/error.hpp"
#include "eqntk/gpu/problem.hpp"
#include "eqntk/io/checkpoint.hpp"
#include "eqntk/io/outputs.hpp"
#include "eqntk/parallel/broadcast.hpp"
#include "eqntk/parallel/collective.hpp"
#include "run.hpp"

extern "C" void openblas_set_num_threads(int) __attribute__((weak));

namespace eqntk::cli {
namespace detail {

std::atomic<int> g_stop{0};

namespace {

extern "C" void on_stop_signal(int signum) {
  g_stop.store(signum);
}

// Checkpoint identity of a planar job: architecture, precision and every pixel of both sets.
std::uint64_t fingerprint(const kernel::Architecture& arch, const io::Dataset& d, kernel::Precision precision) {
  io::Fingerprint f(arch.canonical() + (precision == kernel::Precision::mixed ? " precision=mixed" : ""));
  for (const auto* s : {&d.train.images, &d.test.images}) {
    const std::int64_t meta[4] = {s->shape.channels, s->shape.height, s->shape.width, s->count};
    f.add(meta, s->pixels);
  }
  return f.value();
}

// MPI launchers bind each rank to one core by default; more OpenMP threads than CPUs in the affinity
// mask then share that core and gain nothing. Warn once (rank 0) if any rank is so constrained.
void warn_about_affinity(const RunConfig& c) {
  cpu_set_t mask;
  CPU_ZERO(&mask);
  int cpus = sched_getaffinity(0, sizeof mask, &mask) == 0 ? CPU_COUNT(&mask) : c.threads;
  MPI_Allreduce(MPI_IN_PLACE, &cpus, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
  if (cpus < c.threads && !c.quiet)
    print("[warning] --threads " + std::to_string(c.threads) + " but a rank may only run on " + std::to_string(cpus) +
          " CPU(s): the launcher bound it; use mpirun --map-by slot:PE=<threads> (or --bind-to none), "
          "or srun --cpus-per-task=<threads>");
}

// Planar images through the fast engine.
int run_images(const RunConfig& c, const std::vector<std::string>& args, Clock::time_point t_start) {
  const auto log = [&](const std::string& line) {
    if (!c.quiet) print(line);
  };
  const kernel::Architecture arch = kernel::Architecture::parse(c.arch_text);
  const auto [prows, pcols] = parallel::ProcessGrid::parse_shape(c.grid_text, world_size());
  parallel::on_root([&] { io::check_output_dir(c.out, output_names(c), c.overwrite); });  // created when written

  // Data: rank 0 reads only the selected images (streamed), checks and preprocesses them and fingerprints
  // the set; every rank then receives the targets and only the images its tiles touch.
  const auto t0 = Clock::now();
  io::Dataset data;
  std::uint64_t data_fingerprint = 0;
  parallel::on_root([&] {
    data = io::load_dataset({c.train_images, c.train_labels, c.test_images, c.test_labels}, c.layout, c.prep);
    data_fingerprint = fingerprint(arch, data, c.precision);
  });
  MPI_Bcast(&data_fingerprint, 1, MPI_UINT64_T, 0, MPI_COMM_WORLD);
  parallel::distribute_dataset(data, prows, pcols, c.nb);
  const double seconds_load = seconds_since(t0);
  const std::int64_t n = data.train.images.count, m = data.test.images.count;
  check_sizes(c, n, m, prows, pcols);                        // before any heavy work, same verdict everywhere
  const kernel::Network net(arch, data.train.images.shape);  // same verdict on every rank
  const data::InputShape in = net.input_shape();
  log("[data] " + std::to_string(n) + " training and " + std::to_string(m) + " test images of " +
      std::to_string(in.channels) + "x" + std::to_string(in.height) + "x" + std::to_string(in.width) + ", " +
      std::to_string(data.outputs()) + " outputs; arch " + arch.canonical());

  parallel::ProcessGrid grid(prows, pcols);
  log_grid(c, grid);
  const parallel::BuildOptions bo = build_options(
      c, data_fingerprint,
      "arch " + arch.canonical() + ", " + std::to_string(n) + " train and " + std::to_string(m) + " test images");
  std::unique_ptr<gpu::Device> device;  // outlives the problem
  std::unique_ptr<kernel::KernelProblem> problem;
  parallel::collectively([&] {  // a rank whose device fails stops every rank
    if (!c.gpu) {
      problem = std::make_unique<kernel::ImageProblem>(net, data.train.images, data.test.images, c.precision);
      return;
    }
    gpu::DeviceOptions options;
    options.index = c.gpu_index;
    MPI_Comm node = MPI_COMM_NULL;
    MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node);
    MPI_Comm_rank(node, &options.local_rank);
    MPI_Comm_free(&node);
    device = std::make_unique<gpu::Device>(options);
    problem = std::make_unique<gpu::ImageProblem>(net, data.train.images, data.test.images, *device,
                                                  [](const std::string& line) { std::printf("%s\n", line.c_str()); });
  });
  if (device) log("[gpu] rank 0 on OpenCL device '" + device->info().name + "'");
  const parallel::GramMatrices g = parallel::build_gram(grid, *problem, c.nb, bo);
  std::string shape = "[";  // built by appending: GCC 12 reports a false -Wrestrict on "[" + std::to_string(...)
  shape.append(std::to_string(in.channels)).append(", ").append(std::to_string(in.height)).append(", ");
  shape.append(std::to_string(in.width)).append("]");
  return finish_run(c, args, t_start,
                    Job{data, g, arch.canonical(), "input_shape", shape, seconds_load, c.prep.standardize,
                        device ? device->info().name + " (" + device->info().platform + ")" : "cpu"});
}

}  // namespace

void log_grid(const RunConfig& c, const parallel::ProcessGrid& grid) {
  if (c.quiet) return;
  print("[grid] " + std::to_string(grid.size()) + " ranks as " + std::to_string(grid.prows()) + "x" +
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
    if (!quiet) print(line);
  };
  return bo;
}

}  // namespace detail

int run_command(const std::vector<std::string>& args) {
  return detail::guarded([&]() -> int {
    const auto t_start = detail::Clock::now();
    detail::RunConfig config;
    if (!detail::parse_run(args, config)) return kExitOk;  // --help
    detail::warn_about_affinity(config);
    // BLAS threads follow --threads (the solve phase); ranks × threads should not exceed the cores.
    if (openblas_set_num_threads != nullptr) openblas_set_num_threads(config.threads);
    std::signal(SIGTERM, detail::on_stop_signal);
    std::signal(SIGUSR1, detail::on_stop_signal);
    if (detail::routes_to_so3(config.arch_text, config.so3)) return detail::run_so3(config, args, t_start);
    return detail::run_images(config, args, t_start);
  });
}

}  // namespace eqntk::cli
