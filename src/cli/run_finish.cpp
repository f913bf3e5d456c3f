// `eqntk run`, after the build: solve for every time, score, write every output as `.partial`, renamed
// together when all succeeded (metrics.json last: its presence marks a complete run).
#include <mpi.h>

#include <algorithm>
#include <cstdio>
#include <numeric>

#include "common.hpp"
#include "eqntk/build_info.hpp"
#include "eqntk/cli/commands.hpp"
#include "eqntk/error.hpp"
#include "eqntk/io/atomic_file.hpp"
#include "eqntk/io/metrics.hpp"
#include "eqntk/io/npy.hpp"
#include "eqntk/io/outputs.hpp"
#include "eqntk/parallel/collective.hpp"
#include "eqntk/parallel/dist_ops.hpp"
#include "eqntk/parallel/npy_writer.hpp"
#include "eqntk/solve/scoring.hpp"
#include "run.hpp"

namespace eqntk::cli::detail {
namespace {

std::string result_line(const std::string& kernel, const std::string& t, const solve::Score& s, std::int64_t m,
                        bool classification) {
  char line[256];
  if (classification)
    std::snprintf(line, sizeof line,
                  "[result] %s t=%s: test accuracy %.4f (%lld/%lld), test mse %.6g, rmse %.6g, mae %.6g",
                  kernel.c_str(), t.c_str(), s.accuracy, static_cast<long long>(s.correct), static_cast<long long>(m),
                  s.mse, s.rmse, s.mae);
  else
    std::snprintf(line, sizeof line, "[result] %s t=%s: test mse %.6g, rmse %.6g, mae %.6g", kernel.c_str(), t.c_str(),
                  s.mse, s.rmse, s.mae);
  return line;
}

io::MetricsSolver solver_metrics(const std::string& kernel, const solve::SolveReport& r) {
  return {kernel,          r.ridge_added, r.lambda_min, r.lambda_max, r.clamped_negative, r.seconds_cholesky,
          r.seconds_eigen, r.seconds_gemm};
}

io::RunMetrics run_metrics(const RunConfig& c, const std::vector<std::string>& args, const Job& job) {
  const io::Dataset& data = job.data;
  const auto& st = job.g.stats;
  io::RunMetrics mt;
  mt.eqntk_version = build::kVersion;
  mt.git_sha = build::kGitSha;
  for (const auto& a : args) mt.command += a + ' ';
  mt.arch = job.arch_canonical;
  mt.input_key = job.input_key;
  mt.input_json = job.input_json;
  mt.n_train = data.train.targets.count();
  mt.n_test = data.test.targets.count();
  mt.outputs = data.outputs();
  mt.task = data.train.targets.classification ? "classification" : "regression";
  mt.ranks = world_size();
  const auto grid = parallel::ProcessGrid::parse_shape(c.grid_text, mt.ranks);
  mt.grid_rows = grid.first;
  mt.grid_cols = grid.second;
  mt.block_size = c.nb;
  mt.threads = c.threads;
  mt.precision = c.precision == kernel::Precision::mixed ? "mixed" : "float64";
  mt.device = job.device;
  mt.eta = c.solve.eta;
  mt.loss = c.solve.loss == solve::Loss::sum ? "sum" : "mean";
  mt.ridge = c.solve.ridge;
  mt.ridge_absolute = c.solve.ridge_absolute;
  mt.seed = c.prep.seed;
  mt.standardize = job.standardized;
  mt.downsample = c.prep.downsample;
  mt.rotate_test = c.prep.rotate_test;
  mt.augment = c.prep.augment;
  mt.build = {st.tiles_total,    st.tiles_restored,           st.pairs_total,         st.pairs_restored, st.imbalance(),
              st.pairs_per_rank, st.compute_seconds_per_rank, st.peak_rss_mb_per_rank};
  mt.seconds_load = job.seconds_load;
  mt.seconds_self_chains = st.seconds_self;
  mt.seconds_build = st.seconds_build;
  return mt;
}

}  // namespace

int finish_run(const RunConfig& c, const std::vector<std::string>& args, Clock::time_point t_start, const Job& job) {
  const auto log = [&](const std::string& line) {
    if (!c.quiet) print(line);
  };
  const io::Dataset& data = job.data;
  const parallel::GramMatrices& g = job.g;
  const std::int64_t m = data.test.targets.count(), k = data.outputs();
  const auto& st = g.stats;
  {
    const auto [min_it, max_it] = std::minmax_element(st.pairs_per_rank.begin(), st.pairs_per_rank.end());
    log("[build] " + std::to_string(st.pairs_total) + " pairs (" + std::to_string(st.pairs_restored) +
        " from checkpoint) in " + std::to_string(st.seconds_build) + " s; pairs per rank " + std::to_string(*min_it) +
        ".." + std::to_string(*max_it) + ", imbalance max/mean " + std::to_string(st.imbalance()));
  }
  io::RunMetrics metrics = run_metrics(c, args, job);

  // Solve and score.
  std::vector<std::pair<std::string, solve::SolveReport>> reports;
  auto t0 = Clock::now();
  for (const bool ntk : {true, false}) {
    if ((ntk && !c.want_ntk) || (!ntk && !c.want_nngp)) continue;
    const std::string name = ntk ? "ntk" : "nngp";
    solve::SolveReport rep =
        solve::predict(ntk ? g.train_ntk : g.train_nngp, ntk ? g.test_ntk : g.test_nngp, data.train_target_matrix(), k,
                       c.solve, &g.train_nngp, &g.test_nngp, c.variance ? &g.test_self_nngp : nullptr);
    if (rep.clamped_negative)
      log("[solve] warning: " + name + " matrix has eigenvalues down to " + std::to_string(rep.lambda_min) + " (max " +
          std::to_string(rep.lambda_max) + "); negative ones were set to 0 -- consider --ridge");
    for (std::size_t i = 0; i < rep.predictions.size(); ++i) {
      const auto& p = rep.predictions[i];
      const solve::Score s = solve::score(p.mean, k, data.test.targets);
      io::MetricsResult r{name,  c.times[i].token, s.accuracy,   s.mse,        s.rmse,
                          s.mae, std::nan(""),     std::nan(""), std::nan(""), s.correct};
      if (!p.train_outputs.empty()) {
        const solve::Score fit = solve::score(p.train_outputs, k, data.train.targets);
        r.train_accuracy = fit.accuracy;
        r.train_mse = fit.mse;
      }
      if (!p.variance.empty())
        r.mean_variance =
            std::accumulate(p.variance.begin(), p.variance.end(), 0.0) / static_cast<double>(p.variance.size());
      print(result_line(name, r.t, s, m, data.train.targets.classification));
      metrics.results.push_back(r);
    }
    metrics.solver.push_back(solver_metrics(name, rep));
    reports.emplace_back(name, std::move(rep));
  }
  metrics.seconds_solve = seconds_since(t0);

  // Outputs: everything to .partial first; renamed together at the end.
  t0 = Clock::now();
  io::OutputSet out{c.out};
  try {
    parallel::on_root([&] { io::ensure_writable_directory(c.out); });
    if (c.save_kernels) {
      parallel::write_npy_collective(out.add("theta_train.npy"), parallel::symmetrize_lower(g.train_ntk));
      parallel::write_npy_collective(out.add("theta_test.npy"), g.test_ntk);
      parallel::write_npy_collective(out.add("nngp_train.npy"), parallel::symmetrize_lower(g.train_nngp));
      parallel::write_npy_collective(out.add("nngp_test.npy"), g.test_nngp);
    }
    parallel::on_root([&] {
      const std::int64_t pred_shape[2] = {m, k};
      const std::int64_t var_shape[1] = {m};
      for (const auto& [name, rep] : reports)
        for (std::size_t i = 0; i < rep.predictions.size(); ++i) {
          const std::string suffix = name + "_t" + c.times[i].token + ".npy";
          io::write_npy(out.add("predictions_" + suffix), pred_shape, rep.predictions[i].mean);
          if (c.variance) io::write_npy(out.add("variance_" + suffix), var_shape, rep.predictions[i].variance);
        }
      std::vector<std::int64_t> info;
      for (std::size_t i = 0; i < static_cast<std::size_t>(m); ++i)
        info.insert(info.end(), {data.test.source_index[i], data.test.rotation[i],
                                 data.test.targets.classification ? data.test.targets.classes[i] : -1});
      const std::int64_t info_shape[2] = {m, 3};
      io::write_npy(out.add("test_info.npy"), info_shape, std::span<const std::int64_t>(info));
      metrics.seconds_write = seconds_since(t0);
      metrics.seconds_total = seconds_since(t_start);
      io::write_metrics(out.add("metrics.json"), metrics);  // added last: renamed last
      out.commit_all();
    });
  } catch (const IoError& e) {
    if (world_rank() == 0) out.remove_all();
    // --out was checked before any work: whatever fails now (disk full, a file-size limit, a vanished
    // directory) is a runtime failure, exit 1. Every rank holds the same agreed error.
    if (dynamic_cast<const WriteError*>(&e) != nullptr) throw;
    throw WriteError(e.what());
  } catch (...) {
    if (world_rank() == 0) out.remove_all();
    throw;
  }
  log("[done] outputs in " + c.out + " (" + std::to_string(seconds_since(t_start)) + " s)");
  return kExitOk;
}

}  // namespace eqntk::cli::detail
