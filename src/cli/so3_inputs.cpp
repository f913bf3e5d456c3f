#include "so3_inputs.hpp"

#include <mpi.h>

#include <algorithm>
#include <cstdio>
#include <cmath>
#include <complex>
#include <fstream>
#include <numbers>
#include <sstream>

#include "eqntk/error.hpp"
#include "eqntk/io/array.hpp"
#include "eqntk/io/checkpoint.hpp"
#include "eqntk/io/npy.hpp"
#include "eqntk/parallel/collective.hpp"
#include "eqntk/so3/gram.hpp"
#include "eqntk/text.hpp"

namespace eqntk::cli::detail {
namespace {

namespace po = boost::program_options;

// The flags that only mean something for SO(3) inputs (rejected with a planar architecture when given).
constexpr const char* kSo3Flags[] = {"so3-grid", "so3-tol", "band-limit", "molecule-sum", "slots", "channel-scale", "target-key"};

bool given(const So3Options& o, const std::string& flag) {
  return std::find(o.given.begin(), o.given.end(), flag) != o.given.end();
}

std::string quoted(const std::string& s) {
  std::string q = "'";  // appended, not operator+: GCC 12 warns falsely (-Wrestrict) on "'" + string
  q += s;
  q += '\'';
  return q;
}

// What the first bytes of a file say (SO(3) routing only; planar runs never come here).
InputKind detect(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw IoError(quoted(path.string()) + ": cannot open for reading");
  char magic[6] = {};
  in.read(magic, sizeof magic);
  const std::streamsize got = in.gcount();
  if (got == 6 && std::string(magic, 6) == "\x93NUMPY")
    return io::is_complex(io::read_npy_header(path).dtype) ? InputKind::coefficients : InputKind::dh;
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

template <typename T>
void bcast(std::vector<T>& v, MPI_Datatype type, int per_element = 1) {
  std::int64_t n = static_cast<std::int64_t>(v.size());
  MPI_Bcast(&n, 1, MPI_INT64_T, 0, MPI_COMM_WORLD);
  v.resize(static_cast<std::size_t>(n));
  constexpr std::int64_t kChunk = 1 << 24;
  for (std::int64_t off = 0; off < n; off += kChunk)
    MPI_Bcast(v.data() + off, static_cast<int>(std::min(kChunk, n - off) * per_element), type, 0, MPI_COMM_WORLD);
}

void append(std::vector<std::complex<double>>& out, const so3::Signal& x) {
  out.insert(out.end(), x.coefficients().begin(), x.coefficients().end());
}

so3::Signal take(const std::complex<double>*& p, int band_limit, int channels) {
  so3::Signal x(band_limit, channels);
  for (int c = 0; c < channels; ++c)
    for (int l = 0; l < band_limit; ++l)
      for (int m = 0; m <= l; ++m) x.set(c, l, m, *p++);
  return x;
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

void add_so3_options(po::options_description& desc, bool with_targets) {
  desc.add_options()("input-kind", po::value<std::string>()->default_value("auto"),
                     "input files: auto (from the content), image, coefficients (complex .npy (N,C,L,2L-1)), "
                     "dh (real .npy (N,C,2L,2L-1) Driscoll-Healy samples) or xyz (molecules)")(
      "so3-grid", po::value<int>()->default_value(0),
      "SO(3) grid size N (alpha, gamma samples; N/2 beta nodes); 0: chosen per run to --so3-tol")(
      "so3-tol", po::value<double>()->default_value(1e-12),
      "relative error the automatic SO(3) grid aims at (estimated on a sample of the items; capped grid)")(
      "band-limit", po::value<int>()->default_value(6), "band limit L of the per-atom signals of XYZ molecules")(
      "molecule-sum", po::value<std::string>()->default_value("same-slot"),
      "molecule kernel: same-slot (atom i with atom i, the authors' branches) or all-pairs (order-invariant)")(
      "slots", po::value<int>()->default_value(0),
      "same-slot: pad every molecule to S slots (29 for QM9; PSD with biases); 0: the slots both molecules have")(
      "channel-scale", po::value<std::string>()->default_value("none"),
      "SO(3) inputs: none (raw scale) or rms (divide each channel by its training-set RMS)");
  if (with_targets)
    desc.add_options()("target-key", po::value<std::string>(),
                       "XYZ inputs: read each molecule's target from key=value in its comment line "
                       "(instead of --train-labels/--test-labels)");
}

So3Options read_so3_options(const po::variables_map& vm, bool with_targets) {
  So3Options o;
  for (const char* flag : kSo3Flags)
    if (vm.count(flag) != 0u && !vm[flag].defaulted()) o.given.emplace_back(flag);
  const std::string kind = vm["input-kind"].as<std::string>();
  if (kind == "auto") o.kind = InputKind::automatic;
  else if (kind == "image") o.kind = InputKind::image;
  else if (kind == "coefficients") o.kind = InputKind::coefficients;
  else if (kind == "dh") o.kind = InputKind::dh;
  else if (kind == "xyz") o.kind = InputKind::xyz;
  else throw InvalidArgument("--input-kind must be auto, image, coefficients, dh or xyz, got '" + kind + "'");
  o.grid_n = vm["so3-grid"].as<int>();
  if (o.grid_n < 0) throw InvalidArgument("--so3-grid must be positive (or 0 for the default), got " + std::to_string(o.grid_n));
  o.tol = vm["so3-tol"].as<double>();
  if (!(o.tol >= 1e-15 && o.tol < 1.0))
    throw InvalidArgument("--so3-tol must be in [1e-15, 1) (a relative error), got " + std::to_string(o.tol));
  if (vm.count("threads") != 0u) o.threads = std::max(1, vm["threads"].as<int>());
  if (vm.count("quiet") != 0u) o.quiet = vm["quiet"].as<bool>();
  o.band_limit = vm["band-limit"].as<int>();
  if (o.band_limit < 1 || o.band_limit > 64)
    throw InvalidArgument("--band-limit must be in [1, 64], got " + std::to_string(o.band_limit));
  const std::string sum = vm["molecule-sum"].as<std::string>();
  if (sum != "same-slot" && sum != "all-pairs")
    throw InvalidArgument("--molecule-sum must be same-slot or all-pairs, got '" + sum + "'");
  o.sum = sum == "same-slot" ? so3::MoleculeSum::same_slot : so3::MoleculeSum::all_pairs;
  o.slots = vm["slots"].as<int>();
  if (o.slots < 0) throw InvalidArgument("--slots must be >= 0, got " + std::to_string(o.slots));
  if (o.slots > 0 && o.sum == so3::MoleculeSum::all_pairs)
    throw InvalidArgument("--slots pads the same-slot sum; it does not apply to --molecule-sum all-pairs");
  const std::string scale = vm["channel-scale"].as<std::string>();
  if (scale != "none" && scale != "rms") throw InvalidArgument("--channel-scale must be none or rms, got '" + scale + "'");
  o.rms_scale = scale == "rms";
  if (with_targets && vm.count("target-key") != 0u) {
    o.target_key = vm["target-key"].as<std::string>();
    if (o.target_key.empty() || o.target_key.find_first_of(" \t=\"\\") != std::string::npos)
      throw InvalidArgument("--target-key must be a key name without spaces, quotes or '=', got '" + o.target_key + "'");
  }
  return o;
}

bool routes_to_so3(const std::string& arch_text, const So3Options& o) {
  const bool so3_arch = so3::Architecture::looks_like_so3(arch_text);
  if (o.kind == InputKind::image && so3_arch)
    throw InvalidArgument("--input-kind image needs a planar architecture, but '" + arch_text +
                          "' is an SO(3) architecture (spherical signals or molecules)");
  if (o.kind != InputKind::image && o.kind != InputKind::automatic && !so3_arch)
    throw InvalidArgument("--input-kind " + to_string(o.kind) +
                          " needs an SO(3) architecture (e.g. s2lift,erf,so3pool,dense), got '" + arch_text + "'");
  if (!so3_arch && !o.given.empty())
    throw InvalidArgument("--" + o.given.front() + " applies to SO(3) architectures only (s2lift ... so3pool), got '" +
                          arch_text + "'");
  return so3_arch;
}

void reject_image_flags(const std::vector<std::string>& image_flags, const std::vector<std::string>& explicit_flags) {
  for (const auto& f : image_flags)
    if (std::find(explicit_flags.begin(), explicit_flags.end(), f) != explicit_flags.end())
      throw InvalidArgument("--" + f + " applies to images only, not to SO(3) inputs (spherical signals, molecules)");
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

io::Targets comment_targets(const So3File& file, const std::string& key) {
  if (file.kind != InputKind::xyz)
    throw InvalidArgument("--target-key reads the comment lines of XYZ molecules, but '" + file.source + "' holds " +
                          to_string(file.kind) + ": give --train-labels and --test-labels");
  io::Targets t;
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

So3Items make_items(const So3File& train, const So3File* test, const So3Options& o) {
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
  if (given(o, "band-limit"))
    throw InvalidArgument("--band-limit sets L of molecule signals (XYZ); the .npy file '" + train.source + "' has L=" +
                          std::to_string(train.signals.band_limit));
  for (const char* flag : {"molecule-sum", "slots"})
    if (given(o, flag)) throw InvalidArgument(std::string("--") + flag + " applies to molecules (XYZ inputs) only");
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

void broadcast_items(So3Items& items) {
  std::int64_t meta[4] = {items.molecules ? 1 : 0, static_cast<std::int64_t>(items.kind), items.band_limit, items.channels};
  MPI_Bcast(meta, 4, MPI_INT64_T, 0, MPI_COMM_WORLD);
  items.molecules = meta[0] != 0;
  items.kind = static_cast<InputKind>(meta[1]);
  items.band_limit = static_cast<int>(meta[2]);
  items.channels = static_cast<int>(meta[3]);
  bcast(items.channel_scale, MPI_DOUBLE);
  for (int s = 0; s < 2; ++s) {
    // Atom counts per molecule (molecules) or the item count (signals), then every coefficient.
    std::vector<std::int64_t> sizes;
    std::vector<std::complex<double>> coeffs;
    if (items.molecules)
      for (const auto& m : items.atoms[s]) {
        sizes.push_back(static_cast<std::int64_t>(m.size()));
        for (const so3::Signal& x : m) append(coeffs, x);
      }
    else {
      sizes.push_back(static_cast<std::int64_t>(items.signals[s].size()));
      for (const so3::Signal& x : items.signals[s]) append(coeffs, x);
    }
    bcast(sizes, MPI_INT64_T);
    bcast(coeffs, MPI_DOUBLE, 2);  // std::complex<double> is two doubles
    const std::complex<double>* p = coeffs.data();
    if (items.molecules) {
      items.atoms[s].assign(sizes.size(), {});
      for (std::size_t i = 0; i < sizes.size(); ++i)
        for (std::int64_t a = 0; a < sizes[i]; ++a) items.atoms[s][i].push_back(take(p, items.band_limit, items.channels));
    } else {
      items.signals[s].clear();
      for (std::int64_t i = 0; i < sizes.at(0); ++i) items.signals[s].push_back(take(p, items.band_limit, items.channels));
    }
  }
}

int grid_size(const so3::Architecture& arch, So3Items& items, const So3Options& o, bool collective) {
  int rank = 0;
  if (collective) MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  const auto decide = [&] {
    so3::GridChoiceOptions go{o.tol, o.grid_n, o.threads};
    go.two_grids = true;  // weakly correlated pairs on a coarse grid (so3/grid_choice.hpp)
    if (items.molecules) {
      std::vector<const std::vector<so3::Signal>*> all;
      for (const auto& set : items.atoms)
        for (const auto& m : set) all.push_back(&m);
      items.grid = so3::choose_molecule_grid(arch, items.band_limit, all, go);
    } else {
      std::vector<const so3::Signal*> all;
      for (const auto& set : items.signals)
        for (const so3::Signal& x : set) all.push_back(&x);
      items.grid = so3::choose_grid(arch, items.band_limit, items.channels, all, go);
    }
  };
  if (!collective) decide();
  else {
    parallel::on_root(decide);
    so3::GridChoice& g = items.grid;
    std::int64_t ints[8] = {g.n, g.forced ? 1 : 0, g.capped ? 1 : 0, g.n_max, g.sample_items,
                            static_cast<std::int64_t>(g.ladder.size()), g.coarse_n, g.coarse_n_beta};
    double reals[4] = {g.estimate, g.tolerance, g.coarse_peak, g.coarse_estimate};
    MPI_Bcast(ints, 8, MPI_INT64_T, 0, MPI_COMM_WORLD);
    MPI_Bcast(reals, 4, MPI_DOUBLE, 0, MPI_COMM_WORLD);
    g.ladder.resize(static_cast<std::size_t>(ints[5]));
    MPI_Bcast(g.ladder.data(), static_cast<int>(g.ladder.size()), MPI_INT, 0, MPI_COMM_WORLD);
    g.n = static_cast<int>(ints[0]);
    g.forced = ints[1] != 0;
    g.capped = ints[2] != 0;
    g.n_max = static_cast<int>(ints[3]);
    g.sample_items = static_cast<int>(ints[4]);
    g.coarse_n = static_cast<int>(ints[6]);
    g.coarse_n_beta = static_cast<int>(ints[7]);
    g.estimate = reals[0];
    g.tolerance = reals[1];
    g.coarse_peak = reals[2];
    g.coarse_estimate = reals[3];
  }
  if (rank == 0) {
    if (!o.quiet) {
      std::printf("[so3] %s\n", items.grid.summary().c_str());
      std::fflush(stdout);
    }
    if (items.grid.capped) {
      std::fprintf(stderr, "eqntk: warning: %s\n", items.grid.warning().c_str());
      std::fflush(stderr);
    }
  }
  return items.grid.n;
}

std::uint64_t so3_fingerprint(const so3::Architecture& arch, const so3::Network& net, const So3Items& items,
                              const So3Options& o) {
  std::ostringstream id;
  id << "so3|" << arch.canonical() << "|kind=" << to_string(items.kind) << "|L=" << items.band_limit
     << "|C=" << items.channels << "|N=" << net.grid().n() << "|nbeta=" << net.grid().n_beta()
     << "|coarse=" << items.grid.coarse_n << "/" << items.grid.coarse_n_beta << "/" << text::format_real(items.grid.coarse_peak)
     << "|sum=" << (items.molecules ? (o.sum == so3::MoleculeSum::same_slot ? "same-slot" : "all-pairs") : "-")
     << "|slots=" << (items.molecules ? o.slots : 0) << "|scale=" << (o.rms_scale ? "rms" : "none");
  const std::string text = id.str();
  std::uint64_t h = io::fnv1a(text.data(), text.size());
  const auto add_signal = [&](const so3::Signal& x) {
    h = io::fnv1a(x.coefficients().data(), x.coefficients().size() * sizeof(std::complex<double>), h);
  };
  for (int s = 0; s < 2; ++s) {
    const std::int64_t n = items.count(s);
    h = io::fnv1a(&n, sizeof n, h);
    if (items.molecules)
      for (const auto& m : items.atoms[s]) {
        const std::int64_t atoms = static_cast<std::int64_t>(m.size());
        h = io::fnv1a(&atoms, sizeof atoms, h);
        for (const so3::Signal& x : m) add_signal(x);
      }
    else
      for (const so3::Signal& x : items.signals[s]) add_signal(x);
  }
  return h;
}

std::string so3_input_json(const so3::Network& net, const So3Items& items, const So3Options& o) {
  std::ostringstream js;
  js << "{\"kind\": \"" << to_string(items.kind) << "\", \"band_limit\": " << items.band_limit
     << ", \"channels\": " << items.channels << ", \"so3_grid\": " << net.grid().n()
     << ", \"so3_grid_beta\": " << net.grid().n_beta() << ", " << items.grid.json_members()
     << ", \"channel_scale\": \"" << (o.rms_scale ? "rms" : "none") << "\"";
  if (items.molecules)
    js << ", \"molecule_sum\": \"" << (o.sum == so3::MoleculeSum::same_slot ? "same-slot" : "all-pairs")
       << "\", \"slots\": " << o.slots << ", \"max_atoms\": " << items.max_atoms();
  if (!o.target_key.empty()) js << ", \"target_key\": \"" << o.target_key << "\"";
  js << "}";
  return js.str();
}

}  // namespace eqntk::cli::detail
