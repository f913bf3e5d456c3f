#include "eqntk/io/metrics.hpp"

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "eqntk/error.hpp"

namespace eqntk::io {
namespace {

using Json = nlohmann::ordered_json;

// JSON has no NaN/∞: NaN (a score that does not apply) becomes null, ±∞ a string.
Json number(double v) {
  if (std::isnan(v)) return nullptr;
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  return v;
}

Json numbers(const std::vector<double>& v) {
  Json a = Json::array();
  for (const double x : v) a.push_back(number(x));
  return a;
}

// One value on one line, `"key": value` and `, ` separated: the layout the scripts of tools/ and jobs/ grep
// (one result per line, each timings/build object on one line). Strings and numbers are the library's.
std::string inline_text(const Json& j) {
  std::string out;
  if (j.is_object()) {
    out += '{';
    bool first = true;
    for (const auto& [key, value] : j.items()) {
      if (!first) out += ", ";
      first = false;
      out += Json(key).dump() + ": " + inline_text(value);
    }
    return out + '}';
  }
  if (j.is_array()) {
    out += '[';
    for (std::size_t i = 0; i < j.size(); ++i) out += (i > 0 ? ", " : "") + inline_text(j[i]);
    return out + ']';
  }
  return j.dump(-1, ' ', false, Json::error_handler_t::replace);  // invalid UTF-8 is replaced, not refused
}

// Top-level members one per line; arrays of objects (results, solver) one element per line.
std::string document_text(const Json& j) {
  std::string out = "{\n";
  std::size_t n = 0;
  for (const auto& [key, value] : j.items()) {
    out += "  " + Json(key).dump() + ": ";
    if (value.is_array() && !value.empty() && value[0].is_object()) {
      out += "[\n";
      for (std::size_t i = 0; i < value.size(); ++i)
        out += "    " + inline_text(value[i]) + (i + 1 < value.size() ? ",\n" : "\n");
      out += "  ]";
    } else {
      out += inline_text(value);
    }
    out += ++n < j.size() ? ",\n" : "\n";
  }
  return out + "}\n";
}

}  // namespace

std::string metrics_json(const RunMetrics& m) {
  Json j;
  j["eqntk_version"] = m.eqntk_version;
  j["git_sha"] = m.git_sha;
  j["command"] = m.command;
  j["arch"] = m.arch;
  try {
    j[m.input_key] = Json::parse(m.input_json);
  } catch (const Json::parse_error& e) {
    throw InvalidArgument("metrics.json: the input description is not valid JSON: " + std::string(e.what()));
  }
  j["n_train"] = m.n_train;
  j["n_test"] = m.n_test;
  j["outputs"] = m.outputs;
  j["task"] = m.task;
  j["ranks"] = m.ranks;
  j["grid"] = Json::array({m.grid_rows, m.grid_cols});
  j["block_size"] = m.block_size;
  j["threads"] = m.threads;
  j["precision"] = m.precision;
  j["device"] = m.device;
  j["eta"] = number(m.eta);
  j["loss"] = m.loss;
  j["ridge"] = number(m.ridge);
  j["ridge_absolute"] = m.ridge_absolute;
  j["preprocessing"] = Json{{"seed", m.seed},
                            {"standardize", m.standardize},
                            {"downsample", m.downsample},
                            {"rotate_test", m.rotate_test},
                            {"augment", m.augment}};
  j["results"] = Json::array();
  for (const auto& r : m.results)
    j["results"].push_back(Json{{"kernel", r.kernel},
                                {"t", r.t},
                                {"accuracy", number(r.accuracy)},
                                {"correct", r.correct},
                                {"mse", number(r.mse)},
                                {"rmse", number(r.rmse)},
                                {"mae", number(r.mae)},
                                {"train_accuracy", number(r.train_accuracy)},
                                {"train_mse", number(r.train_mse)},
                                {"mean_variance", number(r.mean_variance)}});
  j["solver"] = Json::array();
  for (const auto& s : m.solver)
    j["solver"].push_back(Json{{"kernel", s.kernel},
                               {"ridge_added", number(s.ridge_added)},
                               {"lambda_min", number(s.lambda_min)},
                               {"lambda_max", number(s.lambda_max)},
                               {"clamped_negative", s.clamped_negative},
                               {"seconds_cholesky", number(s.seconds_cholesky)},
                               {"seconds_eigen", number(s.seconds_eigen)},
                               {"seconds_gemm", number(s.seconds_gemm)}});
  const MetricsBuild& b = m.build;
  j["build"] = Json{{"tiles", b.tiles},
                    {"tiles_restored", b.tiles_restored},
                    {"pairs", b.pairs},
                    {"pairs_restored", b.pairs_restored},
                    {"imbalance_max_over_mean", number(b.imbalance_max_over_mean)},
                    {"pairs_per_rank", b.pairs_per_rank},
                    {"compute_seconds_per_rank", numbers(b.compute_seconds_per_rank)},
                    {"peak_rss_mb_per_rank", numbers(b.peak_rss_mb_per_rank)}};
  j["timings_seconds"] = Json{{"load", number(m.seconds_load)},   {"self_chains", number(m.seconds_self_chains)},
                              {"build", number(m.seconds_build)}, {"solve", number(m.seconds_solve)},
                              {"write", number(m.seconds_write)}, {"total", number(m.seconds_total)}};
  return document_text(j);
}

void write_metrics(const std::filesystem::path& path, const RunMetrics& m) {
  const std::string text = metrics_json(m);
  std::ofstream f(path, std::ios::binary);
  f << text;
  f.close();
  if (!f) throw WriteError("cannot write '" + path.string() + "' (disk full or not writable?)");
}

}  // namespace eqntk::io
