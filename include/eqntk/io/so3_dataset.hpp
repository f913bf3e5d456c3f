// SO(3) data sets: spherical signals and molecules read from files, checked, subset as the planar data
// sets are (io/dataset.hpp), and turned into the items the SO(3) kernels take. Not collective: rank 0 reads,
// parallel/broadcast.hpp distributes. Built into the eqntk_so3 library (it needs so3/).
//
// Input kinds:
//   coefficients  complex128 .npy (N, C, L, 2L−1) of spherical-harmonic coefficients (so3/signal.hpp (a))
//   dh            real .npy (N, C, 2L, 2L−1) of samples on the Driscoll–Healy grid (so3/signal.hpp (b))
//   xyz           XYZ / extended-XYZ molecules (H, C, N, O, F), turned into per-atom signals at a band limit
//                 with analytic coefficients (so3/molecule.hpp, SO3_MATH.md Appendix B)
//   image         the planar path (io/dataset.hpp)
// automatic: recognised from the content: .npy magic → complex dtype: coefficients, otherwise dh; IDX or
// gzip magic → images (rejected: SO(3) architectures take no images); anything else → XYZ text.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "eqntk/io/dataset.hpp"
#include "eqntk/so3/molecule.hpp"
#include "eqntk/so3/signal.hpp"

namespace eqntk::io {

enum class InputKind { automatic, image, coefficients, dh, xyz };

/// "auto", "image", "coefficients", "dh", "xyz".
[[nodiscard]] std::string to_string(InputKind kind);

/// One SO(3) input file as read: spherical signals or molecules.
struct So3File {
  InputKind kind = InputKind::automatic;
  std::string source;
  so3::SignalSet signals;                ///< coefficients / dh
  std::vector<so3::Molecule> molecules;  ///< xyz
  [[nodiscard]] std::int64_t count() const;
};

/// Reads `path` as `kind` (automatic: recognised from the content, see the file comment).
/// Throws IoError / InvalidArgument naming the file (images, wrong rank or shape, non-Hermitian
/// coefficients, unknown elements, empty molecules, ...).
[[nodiscard]] So3File read_so3_file(const std::filesystem::path& path, InputKind kind);

/// Throws InvalidArgument naming both files if they hold different kinds, band limits or channel counts.
void check_same_kind(const So3File& a, const So3File& b);

/// The rows `rows` of a file, in that order.
[[nodiscard]] So3File select_rows(const So3File& file, const std::vector<std::int64_t>& rows);

/// Targets of molecules from `key=value` in each frame's comment line. Throws InvalidArgument naming the
/// frame if the key is absent or not a number.
[[nodiscard]] Targets comment_targets(const So3File& file, const std::string& key);

/// How files become items.
struct So3ItemOptions {
  int band_limit = 6;  ///< L of molecule signals (XYZ only; signal files carry their own)
  so3::MoleculeSum sum = so3::MoleculeSum::same_slot;
  int slots = 0;           ///< same-slot padding S (0: none); every molecule must fit
  bool rms_scale = false;  ///< divide each channel by its training-set RMS
};

/// The items of set 0 (train) and set 1 (test) as the kernels take them.
struct So3Items {
  bool molecules = false;
  InputKind kind = InputKind::automatic;
  int band_limit = 0, channels = 0;
  std::vector<so3::Signal> signals[2];
  std::vector<std::vector<so3::Signal>> atoms[2];
  std::vector<double> channel_scale;  ///< applied per channel (empty: none)
  [[nodiscard]] std::int64_t count(int set) const;
  [[nodiscard]] std::int64_t max_atoms() const;
};

/// Signals of both sets, per-atom signals for molecules (at options.band_limit). With options.rms_scale the
/// per-channel scale 1/rms over the training set (so3::channel_rms_scale for molecules) is applied to both.
/// `test` may be null (then set 1 is empty). Throws InvalidArgument (a molecule larger than options.slots).
[[nodiscard]] So3Items make_items(const So3File& train, const So3File* test, const So3ItemOptions& options);

/// What an SO(3) data set is read as.
struct So3Input {
  InputKind kind = InputKind::automatic;  ///< automatic: from the content
  std::string target_key;                 ///< XYZ: targets from key=value in the comment lines; empty: label files
  So3ItemOptions items;
};

struct So3Dataset {
  /// Targets, seeded subsets (source indices) and class count exactly as the planar path's io::prepare
  /// (run on stand-in 1×1 images, which are all the images it holds).
  Dataset data;
  So3Items items;  ///< the selected rows of both files
};

/// The SO(3) analogue of load_dataset: both files (kind from input.kind or the content), their targets
/// (files.train_labels / test_labels, or input.target_key), counts checked, the subsets of `prep` (n_train,
/// n_test, seed, num_classes; standardize, downsample, rotate_test and augment do not apply and are ignored),
/// and the items of the selected rows. Throws IoError / InvalidArgument with one line naming the problem.
[[nodiscard]] So3Dataset load_so3_dataset(const DataFiles& files, const So3Input& input, const Preprocessing& prep);

}  // namespace eqntk::io
