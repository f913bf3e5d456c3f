// The pieces of `eqntk run`, private to src/cli:
//   run_config.cpp   the options and their validation into a RunConfig (parse, validate)
//   run_command.cpp  the subcommand: parse → validate → load → build → finish, planar images
//   run_so3.cpp      the same for SO(3) architectures (spherical signals, molecules)
//   run_finish.cpp   solve for every time, score, write the outputs and metrics.json
#pragma once

#include <atomic>
#include <boost/program_options.hpp>
#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "eqntk/io/dataset.hpp"
#include "eqntk/kernel/network.hpp"
#include "eqntk/parallel/gram_builder.hpp"
#include "eqntk/solve/dynamics.hpp"
#include "so3_options.hpp"

namespace eqntk::cli::detail {

using Clock = std::chrono::steady_clock;

[[nodiscard]] inline double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

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
  bool gpu = false;    // --device gpu: pairs on an OpenCL device (src/gpu)
  int gpu_index = -1;  // --gpu-index; < 0: node-local rank mod device count
  double progress_interval = 3.0;
  io::ImageLayout layout = io::ImageLayout::nhwc;
  io::Preprocessing prep;
  solve::SolveOptions solve;
  So3Options so3;                           // SO(3) inputs (so3_options.hpp)
  std::vector<std::string> explicit_flags;  // given on the command line or in the config file
};

/// The options of `eqntk run` (with their help text).
[[nodiscard]] boost::program_options::options_description run_options();

/// Validates the parsed options into a RunConfig. Throws InvalidArgument naming the option.
[[nodiscard]] RunConfig read_config(const boost::program_options::variables_map& vm);

/// Parses and validates `args` (and the --config file). Collective: every rank reaches the same verdict.
/// Returns false (after printing the help) for --help.
[[nodiscard]] bool parse_run(const std::vector<std::string>& args, RunConfig& config);

/// As parse_run with `extra` options beside run's (eqntk plan), whose values land in `vm`.
[[nodiscard]] bool parse_run(const std::vector<std::string>& args, RunConfig& config,
                             const boost::program_options::options_description& extra,
                             boost::program_options::variables_map& vm);

/// The file names this run writes into --out (for the overwrite check and the final rename).
[[nodiscard]] std::vector<std::string> output_names(const RunConfig& c);

/// Collective size checks before any heavy work: every limit that would fail later (the ScaLAPACK and MPI
/// int ranges of the local blocks, the eigensolver workspace, the MPI-IO counts of --save-kernels).
/// Every rank computes the same verdict from the same numbers; throws InvalidArgument naming the limit.
void check_sizes(const RunConfig& c, std::int64_t n_train, std::int64_t n_test, int prows, int pcols);

/// What the solve and output phase needs from either kind of job (planar images or SO(3) items).
struct Job {
  const io::Dataset& data;  // targets (and, for images, the images themselves)
  const parallel::GramMatrices& g;
  std::string arch_canonical;
  std::string input_key, input_json;  // one metrics.json member: "input_shape": [C, H, W] or "input": {...}
  double seconds_load = 0;
  bool standardized = false;  // whether --standardize was applied (images only)
  std::string device = "cpu";  // metrics.json "device": "cpu" or "<OpenCL device> (<platform>)"
};

/// Solves for every time, prints and scores the predictions, writes every output (.partial first, renamed
/// together, metrics.json last). Collective.
int finish_run(const RunConfig& c, const std::vector<std::string>& args, Clock::time_point t_start, const Job& job);

/// Options of the distributed build common to both kinds of job.
[[nodiscard]] parallel::BuildOptions build_options(const RunConfig& c, std::uint64_t fingerprint,
                                                   std::string description);

/// Prints the grid line (unless --quiet).
void log_grid(const RunConfig& c, const parallel::ProcessGrid& grid);

/// `eqntk run` with an SO(3) architecture (run_so3.cpp).
int run_so3(const RunConfig& c, const std::vector<std::string>& args, Clock::time_point t_start);

/// Set by SIGTERM/SIGUSR1: the build stops, flushes its checkpoint and ends with exit 3.
extern std::atomic<int> g_stop;

}  // namespace eqntk::cli::detail
