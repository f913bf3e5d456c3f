// metrics.json of `eqntk run`: what was run (version, command, architecture, input, grid, solver options),
// the scores of every predictor and time, the solver's report, the build's statistics and the timings.
// Written through a JSON library (always valid JSON, strings escaped). Numbers that are NaN are written as
// null, ±∞ as the strings "inf"/"-inf". Plain data only: no kernel or solver types.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace eqntk::io {

struct MetricsResult {
  std::string kernel, t;  ///< "ntk"/"nngp", the time as given ("inf", "0.5")
  double accuracy = 0, mse = 0, rmse = 0, mae = 0, train_accuracy = 0, train_mse = 0, mean_variance = 0;
  std::int64_t correct = 0;
};

struct MetricsSolver {
  std::string kernel;
  double ridge_added = 0, lambda_min = 0, lambda_max = 0;
  bool clamped_negative = false;
  double seconds_cholesky = 0, seconds_eigen = 0, seconds_gemm = 0;
};

struct MetricsBuild {
  std::int64_t tiles = 0, tiles_restored = 0, pairs = 0, pairs_restored = 0;
  double imbalance_max_over_mean = 0;
  std::vector<std::int64_t> pairs_per_rank;
  std::vector<double> compute_seconds_per_rank, peak_rss_mb_per_rank;
};

struct RunMetrics {
  std::string eqntk_version, git_sha, command, arch;
  /// One member describing the input: key "input_shape" with value "[C, H, W]", or "input" with a JSON object
  /// text (parsed; must be valid JSON, else write_metrics throws InvalidArgument).
  std::string input_key, input_json;
  std::int64_t n_train = 0, n_test = 0, outputs = 0;
  std::string task;  ///< "classification" or "regression"
  int ranks = 1, grid_rows = 1, grid_cols = 1;
  std::int64_t block_size = 0;
  int threads = 1;
  std::string precision, loss;
  /// Where the kernels were computed: "cpu", or rank 0's OpenCL device as "<name> (<platform>)".
  std::string device = "cpu";
  double eta = 0, ridge = 0;
  bool ridge_absolute = false;
  std::uint64_t seed = 0;
  bool standardize = false, rotate_test = false, augment = false;
  int downsample = 1;
  std::vector<MetricsResult> results;
  std::vector<MetricsSolver> solver;
  MetricsBuild build;
  double seconds_load = 0, seconds_self_chains = 0, seconds_build = 0, seconds_solve = 0, seconds_write = 0,
         seconds_total = 0;
};

/// The JSON text of `m`: members in the order above, one per line; each result and solver entry on one line,
/// `"key": value` pairs separated by ", " (the layout tools/run_example.sh and the job scripts grep).
[[nodiscard]] std::string metrics_json(const RunMetrics& m);

/// Writes metrics_json(m) to `path` (a plain write; the caller passes a `.partial` path and commits it).
/// Throws WriteError naming the file when it cannot be written.
void write_metrics(const std::filesystem::path& path, const RunMetrics& m);

}  // namespace eqntk::io
