// `eqntk run` with an SO(3) architecture: as the planar run, on spherical signals or molecules.
#include <algorithm>
#include <memory>

#include "common.hpp"
#include "eqntk/error.hpp"
#include "eqntk/io/outputs.hpp"
#include "eqntk/parallel/broadcast.hpp"
#include "eqntk/parallel/collective.hpp"
#include "eqntk/so3/problem.hpp"
#include "run.hpp"

namespace eqntk::cli::detail {
namespace {

// SO(3) data on rank 0: the two files (kind from --input-kind or the content), their targets (label files or
// --target-key), the seeded subsets of io::prepare (run on stand-in 1x1 images, so that subsets, label
// checks and class counts are exactly those of the planar path) and the items the kernels take.
void load_so3(const RunConfig& c, io::Dataset& data, So3Items& items) {
  const So3File train = read_so3_file(c.train_images, c.so3.kind);
  const So3File test = read_so3_file(c.test_images, c.so3.kind);
  check_same_kind(train, test);
  const bool molecules = train.kind == InputKind::xyz;
  const std::string what = molecules ? "molecules" : "signals";
  const bool from_comments = !c.so3.target_key.empty();
  io::Targets targets[2] = {from_comments ? comment_targets(train, c.so3.target_key) : io::load_targets(c.train_labels),
                            from_comments ? comment_targets(test, c.so3.target_key) : io::load_targets(c.test_labels)};
  const So3File* files[2] = {&train, &test};
  const char* set_name[2] = {"training", "test"};
  const std::int64_t subset[2] = {c.prep.n_train, c.prep.n_test};
  for (int s = 0; s < 2; ++s) {
    if (targets[s].count() != files[s]->count())
      throw InvalidArgument(std::string(set_name[s]) + " labels: " + std::to_string(targets[s].count()) +
                            " labels for " + std::to_string(files[s]->count()) + " " + what + " in '" +
                            files[s]->source + "'");
    if (subset[s] > files[s]->count())
      throw InvalidArgument(std::string("--n-") + (s == 0 ? "train " : "test ") + std::to_string(subset[s]) +
                            " exceeds the " + std::to_string(files[s]->count()) + " " + set_name[s] + " " + what +
                            " available");
  }
  const auto stand_in = [](std::int64_t count) {
    return data::ImageSet{{1, 1, 1}, count, std::vector<double>(static_cast<std::size_t>(count), 0.0)};
  };
  io::Preprocessing prep = c.prep;
  prep.standardize = false;
  prep.downsample = 1;
  prep.rotate_test = false;
  prep.augment = false;
  data = io::prepare(io::labeled(stand_in(train.count()), std::move(targets[0])),
                     io::labeled(stand_in(test.count()), std::move(targets[1])), prep);
  const So3File test_rows = select_rows(test, data.test.source_index);
  items = make_items(select_rows(train, data.train.source_index), &test_rows, c.so3);
}

}  // namespace

int run_so3(const RunConfig& c, const std::vector<std::string>& args, Clock::time_point t_start) {
  const auto log = [&](const std::string& line) {
    if (!c.quiet) print(line);
  };
  reject_image_flags({"downsample", "rotate-test", "augment", "layout", "precision", "device", "gpu-index"},
                     c.explicit_flags);
  const so3::Architecture arch = so3::Architecture::parse(c.arch_text);
  const auto [prows, pcols] = parallel::ProcessGrid::parse_shape(c.grid_text, world_size());
  parallel::on_root([&] { io::check_output_dir(c.out, output_names(c), c.overwrite); });

  const auto t0 = Clock::now();
  io::Dataset data;
  So3Items items;
  parallel::on_root([&] { load_so3(c, data, items); });
  parallel::broadcast_dataset(data);
  broadcast_items(items);
  const double seconds_load = seconds_since(t0);
  check_sizes(c, items.count(0), items.count(1), prows, pcols);  // before any heavy work, same verdict everywhere
  // The same verdict on every rank (e.g. --so3-grid below 2L-1).
  const int so3_n = grid_size(arch, items, c.so3);
  const so3::Network net(arch, items.band_limit, items.channels, so3::GridOptions{so3_n, 0}, items.grid.coarse());
  std::unique_ptr<kernel::KernelProblem> problem;
  if (items.molecules)
    problem = std::make_unique<so3::MoleculeProblem>(net, c.so3.sum, c.so3.slots, items.atoms[0], items.atoms[1]);
  else
    problem = std::make_unique<so3::So3SignalProblem>(net, items.signals[0], items.signals[1]);
  const std::int64_t n = items.count(0), m = items.count(1);
  const std::string what = items.molecules ? "molecules" : "signals";
  log("[data] " + std::to_string(n) + " training and " + std::to_string(m) + " test " + what + " (" +
      to_string(items.kind) + ", L=" + std::to_string(items.band_limit) + ", C=" + std::to_string(items.channels) +
      (items.molecules ? ", up to " + std::to_string(items.max_atoms()) + " atoms" : std::string()) + "), " +
      std::to_string(data.outputs()) + " outputs; arch " + arch.canonical() +
      "; SO(3) grid N=" + std::to_string(net.grid().n()) + ", " + std::to_string(net.grid().n_beta()) + " beta nodes");
  if (std::find(c.explicit_flags.begin(), c.explicit_flags.end(), "standardize") != c.explicit_flags.end())
    log("[data] --standardize does not apply to SO(3) inputs (ignored)");

  parallel::ProcessGrid grid(prows, pcols);
  log_grid(c, grid);
  const parallel::BuildOptions bo =
      build_options(c, so3_fingerprint(arch, net, items, c.so3),
                    "arch " + arch.canonical() + ", " + std::to_string(n) + " train and " + std::to_string(m) +
                        " test " + what + " (" + to_string(items.kind) + ")");
  const parallel::GramMatrices g = parallel::build_gram(grid, *problem, c.nb, bo);
  const Job job{data, g, arch.canonical(), "input", so3_input_json(net, items, c.so3), seconds_load, false};
  return finish_run(c, args, t_start, job);
}

}  // namespace eqntk::cli::detail
