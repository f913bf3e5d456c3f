// Training and test data for `eqntk run`: loading (.npy or IDX, recognised by content), validation and
// the preprocessing pipeline. Single-process: rank 0 runs it and broadcasts the result.
//
// Pipeline, in this order (each step deterministic given --seed):
//   1. subset: --n-train / --n-test pick a seeded random subset (without replacement, original order kept)
//   2. --downsample F: F×F average pooling (H and W must be multiples of F)
//   3. standardisation (default on): per channel, subtract the training mean, divide by the training
//      standard deviation (both sets use the training statistics; a constant channel is only centred)
//   4. --rotate-test: each test image rotated by a seeded random multiple of 90° (numpy.rot90)
//   5. --augment: the training set becomes its 4 rotations, image-major: x0, ρx0, ρ²x0, ρ³x0, x1, …
#pragma once

#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <vector>
#include "eqntk/data/image.hpp"


namespace eqntk::io {

enum class ImageLayout { nhwc, nchw };

/// Targets of a data set: class labels (classification) or real-valued targets (regression).
struct Targets {
  bool classification = true;
  std::vector<std::int64_t> classes;  ///< classification: one label per image
  std::vector<double> values;         ///< regression: count × dim, row-major
  std::int64_t dim = 1;               ///< regression target dimension
  [[nodiscard]] std::int64_t count() const;
};

struct LabeledSet {
  data::ImageSet images;
  Targets targets;
  std::vector<std::int64_t> source_index;  ///< row of the original file for every image
  std::vector<int> rotation;               ///< quarter turns applied to every image (rotate-test, augment)
};

/// Reads an image file: rank-4 arrays in `layout` (NHWC or NCHW), or rank-3 (N,H,W) arrays such as IDX
/// files (one channel). Integer pixels (uint8 IDX) are divided by 255; with integer_pixels = false only
/// float32/float64 arrays are accepted. Throws InvalidArgument/IoError
/// naming the file for a wrong rank, empty shape, NaN/Inf pixels.
[[nodiscard]] data::ImageSet load_images(const std::filesystem::path& path, ImageLayout layout,
                                           bool integer_pixels = true);

/// As load_images for only the given rows of the file (strictly increasing), read as a stream: memory
/// holds the selected rows (in the file's element type until each is converted), never the whole file.
[[nodiscard]] data::ImageSet load_image_rows(const std::filesystem::path& path, ImageLayout layout,
                                               std::span<const std::int64_t> rows, bool integer_pixels = true);

/// The number of images in an image file, from its header (with the shape checks of load_images).
[[nodiscard]] std::int64_t image_count(const std::filesystem::path& path, ImageLayout layout,
                                       bool integer_pixels = true);

/// Reads a label file: integer arrays of shape (N,) are classes (must be ≥ 0); float arrays of shape
/// (N,) or (N, D) are regression targets (must be finite). Throws naming the file.
[[nodiscard]] Targets load_targets(const std::filesystem::path& path);

struct Preprocessing {
  std::int64_t n_train = -1;  ///< -1: all
  std::int64_t n_test = -1;
  std::uint64_t seed = 0;
  int downsample = 1;
  bool standardize = true;
  bool rotate_test = false;
  bool augment = false;
  std::int64_t num_classes = -1;  ///< -1: 1 + largest label seen
};

struct Dataset {
  LabeledSet train, test;
  std::int64_t num_classes = 0;  ///< classification only
  /// K, the number of outputs: num_classes or the regression dimension.
  [[nodiscard]] std::int64_t outputs() const;
  /// Row-major N×K training targets: one-hot minus 1/K for classes (MATH §6), the values otherwise.
  [[nodiscard]] std::vector<double> train_target_matrix() const;
};

/// Checks consistency (counts, channels, sizes, label kinds, label range) and runs the pipeline.
/// Throws InvalidArgument with one line naming the problem.
[[nodiscard]] Dataset prepare(LabeledSet train, LabeledSet test, const Preprocessing& options);

struct DataFiles {
  std::string train_images, train_labels, test_images, test_labels;
};

/// prepare() of the files' contents, reading only the images the subsets select (labels whole): the
/// same Dataset, bit for bit, as prepare(labeled(load_images(..), load_targets(..)), ...), with memory
/// O(selected images). Not collective (rank 0). Throws as load_images, load_targets and prepare.
[[nodiscard]] Dataset load_dataset(const DataFiles& files, ImageLayout layout, const Preprocessing& options);

/// Wraps images and targets as a LabeledSet (identity source indices, no rotation).
[[nodiscard]] LabeledSet labeled(data::ImageSet images, Targets targets);

/// A seeded random subset of size k of {0..n-1}, in increasing order (Fisher–Yates on a private
/// 64-bit generator, so the choice is the same on every platform).
[[nodiscard]] std::vector<std::int64_t> seeded_subset(std::int64_t n, std::int64_t k, std::uint64_t seed);

/// A seeded random permutation of {0..n-1} by the generator of seeded_subset: its first k entries, sorted,
/// are seeded_subset(n, k, seed), so prefixes give nested subsets (the experiment drivers' learning curves).
[[nodiscard]] std::vector<std::int64_t> seeded_permutation(std::int64_t n, std::uint64_t seed);

/// F×F average pooling of every image.
[[nodiscard]] data::ImageSet downsample(const data::ImageSet& images, int factor);

}  // namespace eqntk::io
