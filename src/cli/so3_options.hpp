// SO(3) options of `eqntk kernel` and `eqntk run`: the flags, the routing decision (planar or SO(3)), the
// validation of the flags against what the files hold, the SO(3) grid choice of a job and the run's
// identity and metrics of SO(3) inputs. Private to src/cli; the files themselves are read by
// io/so3_dataset.hpp and broadcast by parallel/broadcast.hpp.
//
// --input-kind (default auto): coefficients, dh, xyz, image (io/so3_dataset.hpp). auto: a planar architecture
// is the planar path, the files are not inspected (exactly as before SO(3) existed); an SO(3) architecture
// recognises the kind from the content.
#pragma once

#include <boost/program_options.hpp>
#include <cstdint>
#include <string>
#include <vector>

#include "eqntk/io/so3_dataset.hpp"
#include "eqntk/so3/grid_choice.hpp"
#include "eqntk/so3/network.hpp"

namespace eqntk::cli::detail {

/// The SO(3) flags, validated.
struct So3Options {
  io::InputKind kind = io::InputKind::automatic;
  int grid_n = 0;                 ///< --so3-grid N; 0: chosen to --so3-tol (choose_grid)
  double tol = 1e-12;             ///< --so3-tol, relative
  int threads = 1;                ///< --threads of the command (for the grid choice)
  bool quiet = false;             ///< --quiet of the command (no grid line)
  int band_limit = 6;             ///< --band-limit L of molecule signals (XYZ only)
  so3::MoleculeSum sum = so3::MoleculeSum::same_slot;
  int slots = 0;                  ///< --slots S (same-slot only; 0: the slots both molecules have)
  bool rms_scale = false;         ///< --channel-scale rms
  std::string target_key;         ///< --target-key (XYZ comment lines), empty: label files
  std::vector<std::string> given;  ///< SO(3)-only flags given explicitly (for rejecting them on planar runs)

  /// How the files become items (band limit, molecule sum, slots, scale).
  [[nodiscard]] io::So3ItemOptions item_options() const { return {band_limit, sum, slots, rms_scale}; }
  /// What the files are read as (kind, target key, item options).
  [[nodiscard]] io::So3Input input() const { return {kind, target_key, item_options()}; }
};

/// Adds --input-kind, --so3-grid, --so3-tol, --band-limit, --molecule-sum, --slots, --channel-scale, --target-key to
/// `desc` (`with_targets`: also --target-key, for `eqntk run`).
void add_so3_options(boost::program_options::options_description& desc, bool with_targets);

/// Reads and validates the flags added by add_so3_options. Throws InvalidArgument for a bad value.
[[nodiscard]] So3Options read_so3_options(const boost::program_options::variables_map& vm, bool with_targets);

/// True when the job goes to the SO(3) library: the architecture names an SO(3) layer
/// (so3::Architecture::looks_like_so3) or --input-kind names an SO(3) kind. Throws InvalidArgument when the
/// two disagree (--input-kind image with an SO(3) architecture, an SO(3) kind with a planar one), or when
/// SO(3)-only flags are given explicitly with a planar architecture.
[[nodiscard]] bool routes_to_so3(const std::string& arch_text, const So3Options& options);

/// Throws InvalidArgument "--<flag> applies to images only ..." for the first of `image_flags` given
/// explicitly (`explicit_flags` lists the flags given on the command line or in the config file).
void reject_image_flags(const std::vector<std::string>& image_flags, const std::vector<std::string>& explicit_flags);

/// Throws InvalidArgument when molecule-only flags (--band-limit, --molecule-sum, --slots) were given
/// explicitly but the files hold spherical signals (`kind` is not xyz); `source` names the training file.
void check_molecule_flags(const So3Options& options, io::InputKind kind, const std::string& source, int band_limit);

/// The SO(3) grid of the job: options.grid_n if given (its error still estimated), else chosen to options.tol
/// on a sample of both sets (so3::choose_grid / choose_molecule_grid) with options.threads. Prints the choice
/// (unless options.quiet) and, when the cap stopped refinement, one warning line on stderr. `collective`:
/// rank 0 decides and broadcasts, so every rank gets the same grid (and the same InvalidArgument, e.g. for
/// --so3-grid below 2L-1); otherwise this process decides alone.
[[nodiscard]] so3::GridChoice choose_grid(const so3::Architecture& arch, const io::So3Items& items,
                                          const So3Options& options, bool collective = true);

/// Checkpoint identity of SO(3) items, architecture, grid and options (every coefficient, atom counts, L, C,
/// grid, sum, slots, scale).
[[nodiscard]] std::uint64_t so3_fingerprint(const so3::Architecture& arch, const so3::Network& net,
                                            const so3::GridChoice& grid, const io::So3Items& items,
                                            const So3Options& options);

/// JSON object text describing the SO(3) input for metrics.json.
[[nodiscard]] std::string so3_input_json(const so3::Network& net, const so3::GridChoice& grid,
                                         const io::So3Items& items, const So3Options& options);

}  // namespace eqntk::cli::detail
