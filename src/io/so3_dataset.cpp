#include "eqntk/io/so3_dataset.hpp"

#include <algorithm>
#include <cmath>
#include <complex>
#include <fstream>
#include <numbers>
#include <utility>

#include "eqntk/data/image.hpp"
#include "eqntk/error.hpp"
#include "eqntk/io/array.hpp"
#include "eqntk/io/npy.hpp"
#include "eqntk/so3/gram.hpp"

namespace eqntk::io {
namespace {

std::string quoted(const std::string& s) {
  std::string q = "'";  // appended, not operator+: GCC 12 warns falsely (-Wrestrict) on "'" + string
  q += s;
  q += '\'';
  return q;
}

// What the first bytes of a file say (SO(3) inputs only; planar runs never come here).
InputKind detect(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw IoError(quoted(path.string()) + ": cannot open for reading");
  char magic[6] = {};
  in.read(magic, sizeof magic);
  const std::streamsize got = in.gcount();
  if (got == 6 && std::string(magic, 6) == "\x93NUMPY")
    return is_complex(read_npy_header(path).dtype) ? InputKind::coefficients : InputKind::dh;
  const auto byte = [&](int i) { return static_cast<unsigned char>(magic[i]); };
  if (got >= 2 && byte(0) == 0x1f && byte(1) == 0x8b)
    throw InvalidArgument(quoted(path.string()) + " is gzip-compressed (an image file): SO(3) architectures take "
                          "spherical-harmonic coefficients or Driscoll-Healy samples (.npy) or molecules (XYZ)");
  if (got >= 4 && byte(0) == 0 && byte(1) == 0 && byte(2) >= 0x08 && byte(3) >= 1)
    throw InvalidArgument(quoted(path.string()) + " is an IDX image file: SO(3) architectures take "
                          "spherical-harmonic coefficients or Driscoll-Healy samples (.npy) or molecules (XYZ)");
  return InputKind::xyz;
}

// 1/rms_c over the items of a set of C-channel signals (rms_c² = mean over items of ‖x_c‖²/(4π)); 1 for a
// channel that is zero throughout. The same definition as so3::channel_rms_scale.
std::vector<double> signal_rms_scale(const std::vector<so3::Signal>& items, int channels) {
  std::vector<double> sum(static_cast<std::size_t>(channels), 0.0);
  for (const so3::Signal& x : items)
    for (int c = 0; c < channels; ++c)
      for (int l = 0; l < x.band_limit(); ++l)
        for (int m = 0; m <= l; ++m)
          sum[static_cast<std::size_t>(c)] += (m == 0 ? 1.0 : 2.0) * std::norm(x.at(c, l, m)) / (4 * std::numbers::pi);
  std::vector<double> scale(static_cast<std::size_t>(channels), 1.0);
  for (std::size_t c = 0; c < scale.size(); ++c) {
    const double ms = items.empty() ? 0.0 : sum[c] / static_cast<double>(items.size());
    if (ms > 0.0) scale[c] = 1.0 / std::sqrt(ms);
  }
  return scale;
}

void apply_scale(so3::Signal& x, const std::vector<double>& scale) {
  for (int c = 0; c < x.channels(); ++c)
    for (int l = 0; l < x.band_limit(); ++l)
      for (int m = 0; m <= l; ++m) x.set(c, l, m, scale[static_cast<std::size_t>(c)] * x.at(c, l, m));
}

}  // namespace

std::string to_string(InputKind kind) {
  switch (kind) {
    case InputKind::automatic: return "auto";
    case InputKind::image: return "image";
    case InputKind::coefficients: return "coefficients";
    case InputKind::dh: return "dh";
    case InputKind::xyz: return "xyz";
  }
  return "?";
}

std::int64_t So3File::count() const {
  return kind == InputKind::xyz ? static_cast<std::int64_t>(molecules.size()) : static_cast<std::int64_t>(signals.items.size());
}

So3File read_so3_file(const std::filesystem::path& path, InputKind kind) {
  So3File f;
  f.source = path.string();
  f.kind = kind == InputKind::automatic ? detect(path) : kind;
  switch (f.kind) {
    case InputKind::coefficients: f.signals = so3::load_signal_set(path, so3::SignalFormat::coefficients); break;
    case InputKind::dh: f.signals = so3::load_signal_set(path, so3::SignalFormat::dh_samples); break;
    case InputKind::xyz: f.molecules = so3::read_xyz(path); break;
    default: throw InvalidArgument("internal: input kind " + to_string(f.kind) + " is not an SO(3) kind");
  }
  return f;
}

void check_same_kind(const So3File& a, const So3File& b) {
  if (a.kind != b.kind)
    throw InvalidArgument("training input '" + a.source + "' holds " + to_string(a.kind) + " but test input '" + b.source +
                          "' holds " + to_string(b.kind));
  if (a.kind != InputKind::xyz) so3::check_compatible(a.signals, b.signals);
}

So3File select_rows(const So3File& file, const std::vector<std::int64_t>& rows) {
  So3File out;
  out.kind = file.kind;
  out.source = file.source;
  out.signals.band_limit = file.signals.band_limit;
  out.signals.channels = file.signals.channels;
  out.signals.source = file.signals.source;
  for (const std::int64_t r : rows) {
    if (file.kind == InputKind::xyz) out.molecules.push_back(file.molecules[static_cast<std::size_t>(r)]);
    else out.signals.items.push_back(file.signals.items[static_cast<std::size_t>(r)]);
  }
  return out;
}

Targets comment_targets(const So3File& file, const std::string& key) {
  if (file.kind != InputKind::xyz)
    throw InvalidArgument("--target-key reads the comment lines of XYZ molecules, but '" + file.source + "' holds " +
                          to_string(file.kind) + ": give --train-labels and --test-labels");
  Targets t;
  t.classification = false;
  t.dim = 1;
  for (const so3::Molecule& m : file.molecules) {
    const auto v = so3::comment_value(m, key);
    if (!v) throw InvalidArgument(m.source + ": the comment line has no '" + key + "=<number>' (--target-key)");
    t.values.push_back(*v);
  }
  return t;
}

std::int64_t So3Items::count(int set) const {
  return molecules ? static_cast<std::int64_t>(atoms[set].size()) : static_cast<std::int64_t>(signals[set].size());
}

std::int64_t So3Items::max_atoms() const {
  std::size_t n = 0;
  for (const auto& set : atoms)
    for (const auto& m : set) n = std::max(n, m.size());
  return static_cast<std::int64_t>(n);
}

So3Items make_items(const So3File& train, const So3File* test, const So3ItemOptions& o) {
  So3Items items;
  items.kind = train.kind;
  items.molecules = train.kind == InputKind::xyz;
  const So3File* files[2] = {&train, test};
  if (items.molecules) {
    if (o.sum == so3::MoleculeSum::same_slot && o.slots > 0)
      for (const So3File* f : files)
        if (f != nullptr)
          for (const so3::Molecule& m : f->molecules)
            if (static_cast<int>(m.atoms.size()) > o.slots)
              throw InvalidArgument(m.source + ": a molecule with " + std::to_string(m.atoms.size()) +
                                    " atoms does not fit in --slots " + std::to_string(o.slots));
    items.band_limit = o.band_limit;
    items.channels = so3::kMoleculeChannels;
    so3::AtomSignalOptions options;
    for (int pass = 0; pass < (o.rms_scale ? 2 : 1); ++pass) {
      if (pass == 1) {
        // The scale comes from the raw training signals and is applied to both sets in atom_signals.
        options.channel_scale = so3::channel_rms_scale(items.atoms[0]);
        items.channel_scale = options.channel_scale;
      }
      for (int s = 0; s < 2; ++s) {
        items.atoms[s].clear();
        if (files[s] != nullptr)
          for (const so3::Molecule& m : files[s]->molecules) items.atoms[s].push_back(so3::atom_signals(m, o.band_limit, options));
      }
    }
    return items;
  }
  items.band_limit = train.signals.band_limit;
  items.channels = train.signals.channels;
  for (int s = 0; s < 2; ++s)
    if (files[s] != nullptr) items.signals[s] = files[s]->signals.items;
  if (o.rms_scale) {
    items.channel_scale = signal_rms_scale(items.signals[0], items.channels);
    for (auto& set : items.signals)
      for (so3::Signal& x : set) apply_scale(x, items.channel_scale);
  }
  return items;
}

So3Dataset load_so3_dataset(const DataFiles& files, const So3Input& input, const Preprocessing& prep) {
  const So3File train = read_so3_file(files.train_images, input.kind);
  const So3File test = read_so3_file(files.test_images, input.kind);
  check_same_kind(train, test);
  const bool molecules = train.kind == InputKind::xyz;
  const std::string what = molecules ? "molecules" : "signals";
  const bool from_comments = !input.target_key.empty();
  Targets targets[2] = {from_comments ? comment_targets(train, input.target_key) : load_targets(files.train_labels),
                        from_comments ? comment_targets(test, input.target_key) : load_targets(files.test_labels)};
  const So3File* set_files[2] = {&train, &test};
  const char* set_name[2] = {"training", "test"};
  const std::int64_t subset[2] = {prep.n_train, prep.n_test};
  for (int s = 0; s < 2; ++s) {
    if (targets[s].count() != set_files[s]->count())
      throw InvalidArgument(std::string(set_name[s]) + " labels: " + std::to_string(targets[s].count()) +
                            " labels for " + std::to_string(set_files[s]->count()) + " " + what + " in '" +
                            set_files[s]->source + "'");
    if (subset[s] > set_files[s]->count())
      throw InvalidArgument(std::string("--n-") + (s == 0 ? "train " : "test ") + std::to_string(subset[s]) +
                            " exceeds the " + std::to_string(set_files[s]->count()) + " " + set_name[s] + " " + what +
                            " available");
  }
  const auto stand_in = [](std::int64_t count) {
    return data::ImageSet{{1, 1, 1}, count, std::vector<double>(static_cast<std::size_t>(count), 0.0)};
  };
  Preprocessing stand_in_prep = prep;
  stand_in_prep.standardize = false;
  stand_in_prep.downsample = 1;
  stand_in_prep.rotate_test = false;
  stand_in_prep.augment = false;
  So3Dataset out;
  out.data = prepare(labeled(stand_in(train.count()), std::move(targets[0])),
                     labeled(stand_in(test.count()), std::move(targets[1])), stand_in_prep);
  const So3File test_rows = select_rows(test, out.data.test.source_index);
  out.items = make_items(select_rows(train, out.data.train.source_index), &test_rows, input.items);
  return out;
}

}  // namespace eqntk::io
