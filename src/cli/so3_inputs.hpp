// SO(3) inputs of `eqntk kernel` and `eqntk run`: the routing decision (planar or SO(3)), the SO(3) flags,
// reading spherical signals and molecules on rank 0, and broadcasting the items. Private to src/cli.
//
// Input kinds (--input-kind, default auto):
//   coefficients  complex128 .npy (N, C, L, 2L−1) of spherical-harmonic coefficients (so3/signal.hpp (a))
//   dh            real .npy (N, C, 2L, 2L−1) of samples on the Driscoll–Healy grid (so3/signal.hpp (b))
//   xyz           XYZ / extended-XYZ molecules (H, C, N, O, F), turned into per-atom signals at --band-limit
//                 with analytic coefficients (so3/molecule.hpp, SO3_MATH.md Appendix B)
//   image         the planar path (io/dataset.hpp)
// auto: a planar architecture is the planar path, the files are not inspected (exactly as before SO(3)
// existed). An SO(3) architecture recognises the kind from the content: .npy magic → complex dtype:
// coefficients, otherwise dh; IDX or gzip magic → images (rejected); anything else → XYZ text.
#pragma once

#include <boost/program_options.hpp>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "eqntk/io/dataset.hpp"
#include "eqntk/so3/grid_choice.hpp"
#include "eqntk/so3/molecule.hpp"
#include "eqntk/so3/network.hpp"
#include "eqntk/so3/signal.hpp"

namespace eqntk::cli::detail {

enum class InputKind { automatic, image, coefficients, dh, xyz };

[[nodiscard]] std::string to_string(InputKind kind);

/// The SO(3) flags, validated.
struct So3Options {
  InputKind kind = InputKind::automatic;
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

/// One SO(3) input file as read on rank 0: spherical signals or molecules.
struct So3File {
  InputKind kind = InputKind::automatic;
  std::string source;
  so3::SignalSet signals;                ///< coefficients / dh
  std::vector<so3::Molecule> molecules;  ///< xyz
  [[nodiscard]] std::int64_t count() const;
};

/// Reads `path` as `kind` (automatic: recognised from the content, see the file comment). Not collective.
/// Throws IoError / InvalidArgument naming the file (images, wrong rank or shape, non-Hermitian
/// coefficients, unknown elements, empty molecules, ...).
[[nodiscard]] So3File read_so3_file(const std::filesystem::path& path, InputKind kind);

/// Throws InvalidArgument naming both files if they hold different kinds, band limits or channel counts.
void check_same_kind(const So3File& a, const So3File& b);

/// The rows `rows` of a file, in that order.
[[nodiscard]] So3File select_rows(const So3File& file, const std::vector<std::int64_t>& rows);

/// Targets of molecules from `key=value` in each frame's comment line. Throws InvalidArgument naming the
/// frame if the key is absent or not a number.
[[nodiscard]] io::Targets comment_targets(const So3File& file, const std::string& key);

/// The items of set 0 (train) and set 1 (test) as the kernels take them.
struct So3Items {
  bool molecules = false;
  InputKind kind = InputKind::automatic;
  int band_limit = 0, channels = 0;
  std::vector<so3::Signal> signals[2];
  std::vector<std::vector<so3::Signal>> atoms[2];
  std::vector<double> channel_scale;  ///< applied per channel (empty: none)
  so3::GridChoice grid;               ///< set by choose_grid
  [[nodiscard]] std::int64_t count(int set) const;
  [[nodiscard]] std::int64_t max_atoms() const;
};

/// Signals of both sets, per-atom signals for molecules (at options.band_limit). With options.rms_scale the
/// per-channel scale 1/rms over the training set (so3::channel_rms_scale for molecules) is applied to both.
/// `test` may be null (then set 1 is empty). Not collective; throws InvalidArgument.
[[nodiscard]] So3Items make_items(const So3File& train, const So3File* test, const So3Options& options);

/// Broadcasts rank 0's items to every rank. Collective.
void broadcast_items(So3Items& items);

/// The SO(3) grid N of the job, recorded in items.grid: options.grid_n if given (its error still estimated),
/// else chosen to options.tol on a sample of both sets (so3::choose_grid / choose_molecule_grid) with
/// options.threads. Prints the choice (unless options.quiet) and, when the cap stopped refinement, one warning
/// line on stderr. `collective`: rank 0 decides and broadcasts, so every rank gets the same N (and the same
/// InvalidArgument, e.g. for --so3-grid below 2L-1); otherwise this process decides alone.
int grid_size(const so3::Architecture& arch, So3Items& items, const So3Options& options, bool collective = true);

/// Checkpoint identity of SO(3) items, architecture and options (every coefficient, atom counts, L, C,
/// grid, sum, slots, scale).
[[nodiscard]] std::uint64_t so3_fingerprint(const so3::Architecture& arch, const so3::Network& net,
                                            const So3Items& items, const So3Options& options);

/// JSON object text describing the SO(3) input for metrics.json.
[[nodiscard]] std::string so3_input_json(const so3::Network& net, const So3Items& items, const So3Options& options);

}  // namespace eqntk::cli::detail
