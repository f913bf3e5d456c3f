#include "so3_options.hpp"

#include <mpi.h>

#include <algorithm>
#include <complex>
#include <cstdio>
#include <sstream>

#include "eqntk/error.hpp"
#include "eqntk/io/checkpoint.hpp"
#include "eqntk/parallel/broadcast.hpp"
#include "eqntk/parallel/collective.hpp"
#include "eqntk/text.hpp"

namespace eqntk::cli::detail {
namespace {

namespace po = boost::program_options;
using io::InputKind;

// The flags that only mean something for SO(3) inputs (rejected with a planar architecture when given).
constexpr const char* kSo3Flags[] = {"so3-grid", "so3-tol", "band-limit", "molecule-sum", "slots", "channel-scale", "target-key"};

bool given(const So3Options& o, const std::string& flag) {
  return std::find(o.given.begin(), o.given.end(), flag) != o.given.end();
}

}  // namespace

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

void check_molecule_flags(const So3Options& o, InputKind kind, const std::string& source, int band_limit) {
  if (kind == InputKind::xyz) return;
  if (given(o, "band-limit"))
    throw InvalidArgument("--band-limit sets L of molecule signals (XYZ); the .npy file '" + source + "' has L=" +
                          std::to_string(band_limit));
  for (const char* flag : {"molecule-sum", "slots"})
    if (given(o, flag)) throw InvalidArgument(std::string("--") + flag + " applies to molecules (XYZ inputs) only");
}

so3::GridChoice choose_grid(const so3::Architecture& arch, const io::So3Items& items, const So3Options& o,
                            bool collective) {
  int rank = 0;
  if (collective) MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  so3::GridChoice grid;
  const auto decide = [&] {
    so3::GridChoiceOptions go{o.tol, o.grid_n, o.threads};
    go.two_grids = true;  // weakly correlated pairs on a coarse grid (so3/grid_choice.hpp)
    if (items.molecules) {
      std::vector<const std::vector<so3::Signal>*> all;
      for (const auto& set : items.atoms)
        for (const auto& m : set) all.push_back(&m);
      grid = so3::choose_molecule_grid(arch, items.band_limit, all, go);
    } else {
      std::vector<const so3::Signal*> all;
      for (const auto& set : items.signals)
        for (const so3::Signal& x : set) all.push_back(&x);
      grid = so3::choose_grid(arch, items.band_limit, items.channels, all, go);
    }
  };
  if (!collective) decide();
  else {
    parallel::on_root(decide);
    parallel::broadcast_grid_choice(grid);
  }
  if (rank == 0) {
    if (!o.quiet) {
      std::printf("[so3] %s\n", grid.summary().c_str());
      std::fflush(stdout);
    }
    if (grid.capped) {
      std::fprintf(stderr, "eqntk: warning: %s\n", grid.warning().c_str());
      std::fflush(stderr);
    }
  }
  return grid;
}

std::uint64_t so3_fingerprint(const so3::Architecture& arch, const so3::Network& net, const so3::GridChoice& grid,
                              const io::So3Items& items, const So3Options& o) {
  std::ostringstream id;
  id << "so3|" << arch.canonical() << "|kind=" << to_string(items.kind) << "|L=" << items.band_limit
     << "|C=" << items.channels << "|N=" << net.grid().n() << "|nbeta=" << net.grid().n_beta()
     << "|coarse=" << grid.coarse_n << "/" << grid.coarse_n_beta << "/" << text::format_real(grid.coarse_peak)
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

std::string so3_input_json(const so3::Network& net, const so3::GridChoice& grid, const io::So3Items& items,
                           const So3Options& o) {
  std::ostringstream js;
  js << "{\"kind\": \"" << to_string(items.kind) << "\", \"band_limit\": " << items.band_limit
     << ", \"channels\": " << items.channels << ", \"so3_grid\": " << net.grid().n()
     << ", \"so3_grid_beta\": " << net.grid().n_beta() << ", " << grid.json_members()
     << ", \"channel_scale\": \"" << (o.rms_scale ? "rms" : "none") << "\"";
  if (items.molecules)
    js << ", \"molecule_sum\": \"" << (o.sum == so3::MoleculeSum::same_slot ? "same-slot" : "all-pairs")
       << "\", \"slots\": " << o.slots << ", \"max_atoms\": " << items.max_atoms();
  if (!o.target_key.empty()) js << ", \"target_key\": \"" << o.target_key << "\"";
  js << "}";
  return js.str();
}

}  // namespace eqntk::cli::detail
