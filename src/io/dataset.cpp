#include "eqntk/io/dataset.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <string>

#include "eqntk/error.hpp"
#include "eqntk/group/image_action.hpp"
#include "eqntk/io/array.hpp"

namespace eqntk::io {
namespace {

// SplitMix64: a tiny, portable generator (the same stream on every platform and compiler).
struct SplitMix64 {
  std::uint64_t state;
  std::uint64_t next() {
    std::uint64_t z = (state += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
  }
  // Uniform in [0, n) by rejection: exact, and the same on every platform.
  std::uint64_t below(std::uint64_t n) {
    const std::uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    std::uint64_t r = next();
    while (r >= limit) r = next();
    return r % n;
  }
};

std::string shape_text(const Shape& s) {
  std::string t = "(";
  for (std::size_t i = 0; i < s.size(); ++i) t += (i ? ", " : "") + std::to_string(s[i]);
  return t + (s.size() == 1 ? ",)" : ")");
}

data::ImageSet select(const data::ImageSet& in, const std::vector<std::int64_t>& rows) {
  data::ImageSet out{in.shape, static_cast<std::int64_t>(rows.size()), {}};
  const std::int64_t sz = in.image_size();
  out.pixels.resize(static_cast<std::size_t>(out.count * sz));
  for (std::size_t r = 0; r < rows.size(); ++r)
    std::copy_n(in.pixels.begin() + rows[r] * sz, sz, out.pixels.begin() + static_cast<std::int64_t>(r) * sz);
  return out;
}

Targets select(const Targets& in, const std::vector<std::int64_t>& rows) {
  Targets out = in;
  out.classes.clear();
  out.values.clear();
  for (const std::int64_t r : rows) {
    if (in.classification) out.classes.push_back(in.classes[static_cast<std::size_t>(r)]);
    else
      out.values.insert(out.values.end(), in.values.begin() + r * in.dim, in.values.begin() + (r + 1) * in.dim);
  }
  return out;
}

// The rows --n-train / --n-test select from `count` images: all of them (n < 0 or n == count) or a
// seeded subset.
std::vector<std::int64_t> subset_rows(std::int64_t count, std::int64_t n, std::uint64_t seed, const char* what) {
  if (n == 0) throw InvalidArgument(std::string("--n-") + what + " must be positive");
  if (n > count)
    throw InvalidArgument(std::string("--n-") + what + " " + std::to_string(n) + " exceeds the " +
                          std::to_string(count) + " " + what + " images available");
  if (n < 0 || n == count) {
    std::vector<std::int64_t> all(static_cast<std::size_t>(count));
    std::iota(all.begin(), all.end(), 0);
    return all;
  }
  return seeded_subset(count, n, seed);
}

void subset(LabeledSet& set, std::int64_t n, std::uint64_t seed, const char* what) {
  if (n < 0 || n == set.images.count) return;
  const auto rows = subset_rows(set.images.count, n, seed, what);
  set.images = select(set.images, rows);
  set.targets = select(set.targets, rows);
  std::vector<std::int64_t> src;
  for (const auto r : rows) src.push_back(set.source_index[static_cast<std::size_t>(r)]);
  set.source_index = src;
  set.rotation.assign(rows.size(), 0);
}

void rotate_image(const data::ImageSet& in, std::int64_t i, int r, double* out) {
  const data::Image rotated = group::rot90(in.view(i), r);
  std::copy(rotated.pixels.begin(), rotated.pixels.end(), out);
}

}  // namespace

std::int64_t Targets::count() const {
  return classification ? static_cast<std::int64_t>(classes.size()) : static_cast<std::int64_t>(values.size()) / dim;
}

std::int64_t Dataset::outputs() const { return train.targets.classification ? num_classes : train.targets.dim; }

std::vector<double> Dataset::train_target_matrix() const {
  const std::int64_t k = outputs();
  const std::int64_t n = train.targets.count();
  if (!train.targets.classification) return train.targets.values;
  std::vector<double> y(static_cast<std::size_t>(n * k), -1.0 / static_cast<double>(k));
  for (std::int64_t i = 0; i < n; ++i) y[static_cast<std::size_t>(i * k + train.targets.classes[static_cast<std::size_t>(i)])] += 1.0;
  return y;
}

namespace {

// An image file's shape read as images (count and C×H×W), with the checks of load_images.
data::ImageSet image_header(const Shape& shape, DType dtype, const std::string& name, ImageLayout layout,
                              bool integer_pixels) {
  if ((!integer_pixels && is_integer(dtype)) || is_complex(dtype))
    throw InvalidArgument(name + " has dtype " + std::string(npy_descr(dtype)) + ": expected float32 or float64");
  data::ImageSet set;
  if (shape.size() == 3) {
    set.shape = {1, shape[1], shape[2]};
  } else if (shape.size() == 4) {
    set.shape = layout == ImageLayout::nhwc ? data::InputShape{shape[3], shape[1], shape[2]}
                                            : data::InputShape{shape[1], shape[2], shape[3]};
  } else {
    throw InvalidArgument(name + " has shape " + shape_text(shape) +
                          ": expected 4 dimensions (N,H,W,C for --layout nhwc, N,C,H,W for nchw) or 3 (N,H,W)");
  }
  set.count = shape[0];
  if (set.count < 1 || set.shape.channels < 1 || set.shape.height < 1 || set.shape.width < 1)
    throw InvalidArgument(name + " has an empty shape " + shape_text(shape));
  return set;
}

// Pixels of one image from the file's element order (NHWC or NCHW/NHW) to NCHW doubles; integers / 255.
void to_image_pixels(const data::ImageSet& set, const Shape& file_shape, ImageLayout layout, bool integer,
                     std::vector<double>& v, std::int64_t first_image, const std::string& name, double* out) {
  if (integer)
    for (double& x : v) x /= 255.0;
  for (std::size_t e = 0; e < v.size(); ++e)
    if (!std::isfinite(v[e]))
      throw InvalidArgument(name + " contains " + (std::isnan(v[e]) ? "NaN" : "Inf") + " (image " +
                            std::to_string(first_image + static_cast<std::int64_t>(e) / set.image_size()) + ")");
  const std::int64_t c = set.shape.channels, h = set.shape.height, w = set.shape.width;
  const std::int64_t count = static_cast<std::int64_t>(v.size()) / set.image_size();
  if (file_shape.size() == 4 && layout == ImageLayout::nhwc && c > 1) {
    for (std::int64_t n = 0; n < count; ++n)
      for (std::int64_t i = 0; i < h; ++i)
        for (std::int64_t j = 0; j < w; ++j)
          for (std::int64_t ch = 0; ch < c; ++ch)
            out[((n * c + ch) * h + i) * w + j] = v[static_cast<std::size_t>(((n * h + i) * w + j) * c + ch)];
  } else {
    std::copy(v.begin(), v.end(), out);  // NCHW, or a single channel where both layouts coincide
  }
}

}  // namespace

data::ImageSet load_images(const std::filesystem::path& path, ImageLayout layout, bool integer_pixels) {
  const Array a = load_array(path);
  const std::string name = "image file '" + path.string() + "'";
  data::ImageSet set = image_header(a.shape, a.dtype, name, layout, integer_pixels);
  std::vector<double> v = a.to_real();
  set.pixels.resize(v.size());
  to_image_pixels(set, a.shape, layout, a.is_integer(), v, 0, name, set.pixels.data());
  return set;
}

data::ImageSet load_image_rows(const std::filesystem::path& path, ImageLayout layout,
                                 std::span<const std::int64_t> rows, bool integer_pixels) {
  const std::string name = "image file '" + path.string() + "'";
  const ArrayInfo info = peek_array(path);
  data::ImageSet set = image_header(info.shape, info.dtype, name, layout, integer_pixels);
  const ArrayRows raw = load_array_rows(path, rows);  // compact (file dtype) until decoded below
  set.count = static_cast<std::int64_t>(rows.size());
  set.pixels.resize(static_cast<std::size_t>(set.count * set.image_size()));
  std::vector<double> v(static_cast<std::size_t>(set.image_size()));
  for (std::size_t r = 0; r < rows.size(); ++r) {
    raw.decode_row(r, v.data());
    to_image_pixels(set, info.shape, layout, is_integer(info.dtype), v, rows[r], name,
                    set.pixels.data() + static_cast<std::int64_t>(r) * set.image_size());
  }
  return set;
}

std::int64_t image_count(const std::filesystem::path& path, ImageLayout layout, bool integer_pixels) {
  const ArrayInfo info = peek_array(path);
  return image_header(info.shape, info.dtype, "image file '" + path.string() + "'", layout, integer_pixels).count;
}

Targets load_targets(const std::filesystem::path& path) {
  const Array a = load_array(path);
  const std::string name = "label file '" + path.string() + "'";
  Targets t;
  if (a.is_complex()) throw InvalidArgument(name + " has complex dtype " + std::string(npy_descr(a.dtype)) + ": expected integer labels or real targets");
  if (a.is_integer()) {
    if (a.shape.size() != 1) throw InvalidArgument(name + " has shape " + shape_text(a.shape) + ": integer class labels must be 1-D");
    t.classification = true;
    t.classes = a.integer;
    for (std::size_t i = 0; i < t.classes.size(); ++i)
      if (t.classes[i] < 0) throw InvalidArgument(name + ": label " + std::to_string(t.classes[i]) + " of image " + std::to_string(i) + " is negative");
  } else {
    if (a.shape.size() != 1 && a.shape.size() != 2)
      throw InvalidArgument(name + " has shape " + shape_text(a.shape) + ": regression targets must be (N,) or (N, D)");
    t.classification = false;
    t.dim = a.shape.size() == 2 ? a.shape[1] : 1;
    if (t.dim < 1) throw InvalidArgument(name + " has no target columns");
    t.values = a.real;
    for (std::size_t i = 0; i < t.values.size(); ++i)
      if (!std::isfinite(t.values[i]))
        throw InvalidArgument(name + " contains NaN/Inf (row " + std::to_string(static_cast<std::int64_t>(i) / t.dim) + ")");
  }
  return t;
}

LabeledSet labeled(data::ImageSet images, Targets targets) {
  LabeledSet s{std::move(images), std::move(targets), {}, {}};
  s.source_index.resize(static_cast<std::size_t>(s.images.count));
  std::iota(s.source_index.begin(), s.source_index.end(), 0);
  s.rotation.assign(static_cast<std::size_t>(s.images.count), 0);
  return s;
}

std::vector<std::int64_t> seeded_subset(std::int64_t n, std::int64_t k, std::uint64_t seed) {
  std::vector<std::int64_t> idx(static_cast<std::size_t>(n));
  std::iota(idx.begin(), idx.end(), 0);
  SplitMix64 rng{seed};
  for (std::int64_t i = 0; i < k; ++i) {
    const auto j = i + static_cast<std::int64_t>(rng.below(static_cast<std::uint64_t>(n - i)));
    std::swap(idx[static_cast<std::size_t>(i)], idx[static_cast<std::size_t>(j)]);
  }
  idx.resize(static_cast<std::size_t>(k));
  std::sort(idx.begin(), idx.end());
  return idx;
}

std::vector<std::int64_t> seeded_permutation(std::int64_t n, std::uint64_t seed) {
  // The same forward Fisher–Yates steps as seeded_subset, run to the end: its first k entries, sorted, are
  // seeded_subset(n, k, seed) for every k.
  std::vector<std::int64_t> idx(static_cast<std::size_t>(n));
  std::iota(idx.begin(), idx.end(), 0);
  SplitMix64 rng{seed};
  for (std::int64_t i = 0; i < n; ++i) {
    const auto j = i + static_cast<std::int64_t>(rng.below(static_cast<std::uint64_t>(n - i)));
    std::swap(idx[static_cast<std::size_t>(i)], idx[static_cast<std::size_t>(j)]);
  }
  return idx;
}

data::ImageSet downsample(const data::ImageSet& in, int f) {
  const std::int64_t c = in.shape.channels, h = in.shape.height, w = in.shape.width;
  if (f < 1) throw InvalidArgument("--downsample must be at least 1");
  if (h % f != 0 || w % f != 0)
    throw InvalidArgument("--downsample " + std::to_string(f) + " does not divide the image size " + std::to_string(h) + "x" + std::to_string(w));
  data::ImageSet out{{c, h / f, w / f}, in.count, {}};
  out.pixels.assign(static_cast<std::size_t>(in.count * c * (h / f) * (w / f)), 0.0);
  const double inv = 1.0 / static_cast<double>(f * f);
  for (std::int64_t n = 0; n < in.count; ++n)
    for (std::int64_t ch = 0; ch < c; ++ch)
      for (std::int64_t i = 0; i < h / f; ++i)
        for (std::int64_t j = 0; j < w / f; ++j) {
          double s = 0.0;
          for (int a = 0; a < f; ++a)
            for (int b = 0; b < f; ++b) s += in.pixels[static_cast<std::size_t>(((n * c + ch) * h + i * f + a) * w + j * f + b)];
          out.pixels[static_cast<std::size_t>(((n * c + ch) * (h / f) + i) * (w / f) + j)] = s * inv;
        }
  return out;
}

namespace {

// The checks of prepare() that need only shapes, counts and targets (images may be header-only);
// returns the number of classes (classification) or 0.
std::int64_t check_sets(const LabeledSet& train, const LabeledSet& test, const Preprocessing& opt) {
  auto check_counts = [](const LabeledSet& s, const char* what) {
    if (s.targets.count() != s.images.count)
      throw InvalidArgument(std::string(what) + " labels: " + std::to_string(s.targets.count()) + " labels for " +
                            std::to_string(s.images.count) + " images");
  };
  check_counts(train, "training");
  check_counts(test, "test");
  if (!(train.images.shape == test.images.shape))
    throw InvalidArgument("training images are " + std::to_string(train.images.shape.channels) + "x" +
                          std::to_string(train.images.shape.height) + "x" + std::to_string(train.images.shape.width) +
                          " (CxHxW) but test images are " + std::to_string(test.images.shape.channels) + "x" +
                          std::to_string(test.images.shape.height) + "x" + std::to_string(test.images.shape.width));
  if (train.targets.classification != test.targets.classification)
    throw InvalidArgument("training labels are " + std::string(train.targets.classification ? "integer classes" : "real targets") +
                          " but test labels are " + (test.targets.classification ? "integer classes" : "real targets"));
  if (!train.targets.classification && train.targets.dim != test.targets.dim)
    throw InvalidArgument("training targets have " + std::to_string(train.targets.dim) + " columns, test targets " +
                          std::to_string(test.targets.dim));
  std::int64_t num_classes = 0;
  if (train.targets.classification) {
    std::int64_t max_label = 0;
    for (const auto l : train.targets.classes) max_label = std::max(max_label, l);
    for (const auto l : test.targets.classes) max_label = std::max(max_label, l);
    num_classes = opt.num_classes > 0 ? opt.num_classes : max_label + 1;
    if (max_label >= num_classes)
      throw InvalidArgument("label " + std::to_string(max_label) + " is out of range for --classes " + std::to_string(num_classes));
    if (num_classes < 2) throw InvalidArgument("classification needs at least 2 classes (all labels are 0)");
  }
  return num_classes;
}

constexpr std::uint64_t kTestSubsetSeed = 0x5DEECE66DULL;

// Steps 2-5 of the pipeline on the selected images.
Dataset finish(LabeledSet train, LabeledSet test, const Preprocessing& opt, std::int64_t num_classes) {
  Dataset d;
  d.num_classes = num_classes;
  if (opt.downsample != 1) {
    train.images = downsample(train.images, opt.downsample);
    test.images = downsample(test.images, opt.downsample);
  }
  if (opt.standardize) {
    const std::int64_t c = train.images.shape.channels;
    const std::int64_t hw = train.images.shape.height * train.images.shape.width;
    for (std::int64_t ch = 0; ch < c; ++ch) {
      double sum = 0.0, sq = 0.0;
      for (std::int64_t n = 0; n < train.images.count; ++n)
        for (std::int64_t p = 0; p < hw; ++p) sum += train.images.pixels[static_cast<std::size_t>((n * c + ch) * hw + p)];
      const double count = static_cast<double>(train.images.count * hw);
      const double mean = sum / count;
      for (std::int64_t n = 0; n < train.images.count; ++n)
        for (std::int64_t p = 0; p < hw; ++p) {
          const double dlt = train.images.pixels[static_cast<std::size_t>((n * c + ch) * hw + p)] - mean;
          sq += dlt * dlt;
        }
      const double sd = std::sqrt(sq / count);
      const double scale = sd > 0 ? 1.0 / sd : 1.0;
      for (auto* set : {&train.images, &test.images})
        for (std::int64_t n = 0; n < set->count; ++n)
          for (std::int64_t p = 0; p < hw; ++p) {
            double& x = set->pixels[static_cast<std::size_t>((n * c + ch) * hw + p)];
            x = (x - mean) * scale;
          }
    }
  }
  if ((opt.rotate_test || opt.augment) && train.images.shape.height != train.images.shape.width)
    throw InvalidArgument("--rotate-test and --augment need square images");
  if (opt.rotate_test) {
    SplitMix64 rng{opt.seed ^ 0xA5A5A5A5DEADBEEFULL};
    const std::int64_t sz = test.images.image_size();
    for (std::int64_t n = 0; n < test.images.count; ++n) {
      const int r = static_cast<int>(rng.below(4));
      test.rotation[static_cast<std::size_t>(n)] = r;
      if (r != 0) rotate_image(test.images, n, r, test.images.pixels.data() + n * sz);
    }
  }
  if (opt.augment) {
    LabeledSet aug;
    aug.images = {train.images.shape, 4 * train.images.count, {}};
    const std::int64_t sz = train.images.image_size();
    aug.images.pixels.resize(static_cast<std::size_t>(aug.images.count * sz));
    aug.targets = train.targets;
    aug.targets.classes.clear();
    aug.targets.values.clear();
    for (std::int64_t n = 0; n < train.images.count; ++n)
      for (int r = 0; r < 4; ++r) {
        rotate_image(train.images, n, r, aug.images.pixels.data() + (4 * n + r) * sz);
        if (train.targets.classification) aug.targets.classes.push_back(train.targets.classes[static_cast<std::size_t>(n)]);
        else
          aug.targets.values.insert(aug.targets.values.end(), train.targets.values.begin() + n * train.targets.dim,
                                    train.targets.values.begin() + (n + 1) * train.targets.dim);
        aug.source_index.push_back(train.source_index[static_cast<std::size_t>(n)]);
        aug.rotation.push_back(r);
      }
    train = std::move(aug);
  }
  d.train = std::move(train);
  d.test = std::move(test);
  return d;
}

}  // namespace

Dataset prepare(LabeledSet train, LabeledSet test, const Preprocessing& opt) {
  const std::int64_t num_classes = check_sets(train, test, opt);
  subset(train, opt.n_train, opt.seed, "train");
  subset(test, opt.n_test, opt.seed ^ kTestSubsetSeed, "test");
  return finish(std::move(train), std::move(test), opt, num_classes);
}

Dataset load_dataset(const DataFiles& files, ImageLayout layout, const Preprocessing& opt) {
  // Headers and labels first (small), every check of prepare(), then only the selected image rows.
  const auto header_only = [&](const std::string& images, const std::string& labels) {
    LabeledSet s;
    const ArrayInfo info = peek_array(images);
    s.images = image_header(info.shape, info.dtype, "image file '" + images + "'", layout, true);
    s.targets = load_targets(labels);
    return s;
  };
  LabeledSet train = header_only(files.train_images, files.train_labels);
  LabeledSet test = header_only(files.test_images, files.test_labels);
  const std::int64_t num_classes = check_sets(train, test, opt);
  const auto load = [&](LabeledSet& s, const std::string& images, std::int64_t n, std::uint64_t seed, const char* what) {
    const std::vector<std::int64_t> rows = subset_rows(s.images.count, n, seed, what);
    s.images = load_image_rows(images, layout, rows);
    s.targets = select(s.targets, rows);
    s.source_index = rows;
    s.rotation.assign(rows.size(), 0);
  };
  load(train, files.train_images, opt.n_train, opt.seed, "train");
  load(test, files.test_images, opt.n_test, opt.seed ^ kTestSubsetSeed, "test");
  return finish(std::move(train), std::move(test), opt, num_classes);
}

}  // namespace eqntk::io
