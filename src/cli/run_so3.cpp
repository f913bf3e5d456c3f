// `eqntk run` with an SO(3) architecture: as the planar run, on spherical signals or molecules.
#include <algorithm>
#include <memory>

#include "common.hpp"
#include "eqntk/error.hpp"
#include "eqntk/io/outputs.hpp"
#include "eqntk/io/so3_dataset.hpp"
#include "eqntk/parallel/broadcast.hpp"
#include "eqntk/parallel/collective.hpp"
#include "eqntk/so3/problem.hpp"
#include "run.hpp"

namespace eqntk::cli::detail {

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
  io::So3Dataset so3_data;
  parallel::on_root([&] {
    so3_data =
        io::load_so3_dataset({c.train_images, c.train_labels, c.test_images, c.test_labels}, c.so3.input(), c.prep);
    check_molecule_flags(c.so3, so3_data.items.kind, c.train_images, so3_data.items.band_limit);
  });
  io::Dataset& data = so3_data.data;
  io::So3Items& items = so3_data.items;
  parallel::broadcast_dataset(data);
  parallel::broadcast_so3_items(items);
  const double seconds_load = seconds_since(t0);
  check_sizes(c, items.count(0), items.count(1), prows, pcols);  // before any heavy work, same verdict everywhere
  // The same verdict on every rank (e.g. --so3-grid below 2L-1).
  const so3::GridChoice so3_grid = choose_grid(arch, items, c.so3);
  const so3::Network net(arch, items.band_limit, items.channels, so3::GridOptions{so3_grid.n, 0}, so3_grid.coarse());
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
      build_options(c, so3_fingerprint(arch, net, so3_grid, items, c.so3),
                    "arch " + arch.canonical() + ", " + std::to_string(n) + " train and " + std::to_string(m) +
                        " test " + what + " (" + to_string(items.kind) + ")");
  const parallel::GramMatrices g = parallel::build_gram(grid, *problem, c.nb, bo);
  const Job job{data, g, arch.canonical(), "input", so3_input_json(net, so3_grid, items, c.so3), seconds_load, false};
  return finish_run(c, args, t_start, job);
}

}  // namespace eqntk::cli::detail
