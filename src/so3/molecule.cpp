#include "eqntk/so3/molecule.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <fstream>
#include <numbers>
#include <sstream>

#include "eqntk/error.hpp"

namespace eqntk::so3 {
namespace {

constexpr double kPi = std::numbers::pi;
constexpr int kElementZ[5] = {1, 6, 7, 8, 9};
constexpr std::string_view kElementSymbol[5] = {"H", "C", "N", "O", "F"};
constexpr int kPowers[2] = {2, 6};

std::vector<std::string_view> tokens(std::string_view line) {
  std::vector<std::string_view> out;
  std::size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && std::isspace(static_cast<unsigned char>(line[i]))) ++i;
    const std::size_t start = i;
    while (i < line.size() && !std::isspace(static_cast<unsigned char>(line[i]))) ++i;
    if (i > start) out.push_back(line.substr(start, i - start));
  }
  return out;
}

bool blank(std::string_view line) {
  return std::all_of(line.begin(), line.end(), [](char c) { return std::isspace(static_cast<unsigned char>(c)); });
}

// Where species and positions sit in an atom line: from `Properties=` of an extended-XYZ comment line,
// else columns 0 and 1..3.
struct Columns {
  std::size_t species = 0;
  std::size_t pos = 1;
  std::size_t min_tokens = 4;
};

Columns columns_from_comment(std::string_view comment, const std::string& where) {
  Columns cols;
  const std::size_t at = comment.find("Properties=");
  if (at == std::string_view::npos) return cols;
  std::string_view spec = comment.substr(at + 11);
  spec = spec.substr(0, std::min(spec.find_first_of(" \t\r"), spec.size()));
  if (!spec.empty() && (spec.front() == '"' || spec.front() == '\'')) spec.remove_prefix(1);
  if (!spec.empty() && (spec.back() == '"' || spec.back() == '\'')) spec.remove_suffix(1);
  // name:type:count triples.
  std::vector<std::string_view> parts;
  for (std::size_t s = 0;;) {
    const std::size_t e = spec.find(':', s);
    parts.push_back(spec.substr(s, e == std::string_view::npos ? std::string_view::npos : e - s));
    if (e == std::string_view::npos) break;
    s = e + 1;
  }
  if (parts.size() % 3 != 0) throw IoError(where + ": malformed Properties= in the extended-XYZ comment line");
  bool have_species = false, have_pos = false;
  std::size_t column = 0;
  for (std::size_t k = 0; k < parts.size(); k += 3) {
    int count = 0;
    const auto [ptr, ec] = std::from_chars(parts[k + 2].data(), parts[k + 2].data() + parts[k + 2].size(), count);
    if (ec != std::errc() || ptr != parts[k + 2].data() + parts[k + 2].size() || count < 1)
      throw IoError(where + ": malformed column count '" + std::string(parts[k + 2]) + "' in Properties=");
    if (parts[k] == "species") {
      cols.species = column;
      have_species = true;
    } else if (parts[k] == "pos") {
      if (count != 3) throw IoError(where + ": Properties= has pos with " + std::to_string(count) + " columns, expected 3");
      cols.pos = column;
      have_pos = true;
    }
    column += static_cast<std::size_t>(count);
  }
  if (!have_species || !have_pos) throw IoError(where + ": Properties= in the extended-XYZ comment line lacks species or pos");
  cols.min_tokens = column;
  return cols;
}

int parse_element(std::string_view token, const std::string& where) {
  if (!token.empty() && std::all_of(token.begin(), token.end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)); })) {
    int z = 0;
    std::from_chars(token.data(), token.data() + token.size(), z);
    if (element_index(z) < 0)
      throw InvalidArgument(where + ": unsupported element with Z = " + std::to_string(z) + " (supported: H, C, N, O, F)");
    return z;
  }
  for (int e = 0; e < 5; ++e) {
    const std::string_view s = kElementSymbol[e];
    if (token.size() == s.size() && std::toupper(static_cast<unsigned char>(token[0])) == s[0]) return kElementZ[e];
  }
  throw InvalidArgument(where + ": unknown or unsupported element '" + std::string(token) +
                        "' (supported: H, C, N, O, F)");
}

double parse_coordinate(std::string_view token, const std::string& where) {
  std::string t(token);
  // QM9's .xyz files write exponents Mathematica-style: 1.5*^-6.
  if (const std::size_t star = t.find("*^"); star != std::string::npos) t.replace(star, 2, 1, 'e');
  double v = 0.0;
  const auto [ptr, ec] = std::from_chars(t.data(), t.data() + t.size(), v);
  if (ec != std::errc() || ptr != t.data() + t.size() || !std::isfinite(v))
    throw IoError(where + ": expected a finite coordinate, got '" + std::string(token) + "'");
  return v;
}

// Real Y_l^m(r̂) for 0 ≤ m ≤ l < L is not needed: conj(Y_l^m(θ,φ)) = √((2l+1)/4π) d^l_{m0}(θ) e^{−imφ}.
void add_conj_harmonics(Signal& x, int channel, double weight, const std::array<double, 3>& d,
                        const std::vector<double>& f, std::vector<double>& run) {
  const int L = x.band_limit();
  const double r = std::sqrt(d[0] * d[0] + d[1] * d[1] + d[2] * d[2]);
  const double theta = std::acos(std::clamp(d[2] / r, -1.0, 1.0));
  const double phi = std::atan2(d[1], d[0]);
  for (int m = 0; m < L; ++m) {
    wigner_d_run(m, 0, L, theta, run.data());
    const std::complex<double> e = std::polar(1.0, -m * phi);
    for (int l = m; l < L; ++l) {
      const double y = std::sqrt((2 * l + 1) / (4 * kPi)) * run[static_cast<std::size_t>(l - m)];
      x.set(channel, l, m, x.at(channel, l, m) + weight * f[static_cast<std::size_t>(l)] * y * e);
    }
  }
}

}  // namespace

int element_index(int z) {
  for (int e = 0; e < 5; ++e)
    if (kElementZ[e] == z) return e;
  return -1;
}

double bump_beta() {
  const double a = std::cos(kPi / 4) - 1.0;
  return -(a * a) / std::log(0.05);
}

std::vector<double> bump_coefficients(int band_limit) {
  std::vector<double> t, w;
  gauss_legendre(200, t, w);
  const double beta = bump_beta();
  std::vector<double> f(static_cast<std::size_t>(std::max(band_limit, 0)), 0.0);
  for (std::size_t k = 0; k < t.size(); ++k) {
    const double fk = std::exp(-(t[k] - 1) * (t[k] - 1) / beta);
    double prev = 0.0, p = 1.0;  // P_{l−1}(t_k), P_l(t_k)
    for (int l = 0; l < band_limit; ++l) {
      f[static_cast<std::size_t>(l)] += 2 * kPi * w[k] * fk * p;
      const double next = ((2 * l + 1) * t[k] * p - l * prev) / (l + 1);
      prev = p;
      p = next;
    }
  }
  return f;
}

std::vector<Molecule> parse_xyz(std::string_view text, const std::string& name) {
  std::vector<std::string_view> lines;
  for (std::size_t s = 0; s <= text.size();) {
    const std::size_t e = text.find('\n', s);
    std::string_view line = text.substr(s, e == std::string_view::npos ? std::string_view::npos : e - s);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    lines.push_back(line);
    if (e == std::string_view::npos) break;
    s = e + 1;
  }
  if (!lines.empty() && lines.back().empty()) lines.pop_back();  // the final newline ends a line, it opens none
  const auto where = [&](std::size_t i) { return "'" + name + "' line " + std::to_string(i + 1); };
  std::vector<Molecule> out;
  std::size_t i = 0;
  while (true) {
    while (i < lines.size() && blank(lines[i])) ++i;
    if (i == lines.size()) break;
    const auto head = tokens(lines[i]);
    std::int64_t n = -1;
    if (head.size() == 1) {
      const auto [ptr, ec] = std::from_chars(head[0].data(), head[0].data() + head[0].size(), n);
      if (ec != std::errc() || ptr != head[0].data() + head[0].size()) n = -1;
    }
    if (n < 0) throw IoError(where(i) + ": expected the atom count of an XYZ frame, got '" + std::string(lines[i]) + "'");
    if (n == 0) throw InvalidArgument(where(i) + ": empty molecule (atom count 0)");
    if (i + 1 + static_cast<std::size_t>(n) >= lines.size())
      throw IoError(where(i) + ": the frame announces " + std::to_string(n) +
                    " atoms, but the file ends before the comment line and all atom lines");
    Molecule mol;
    mol.source = where(i);
    mol.comment = std::string(lines[i + 1]);
    const Columns cols = columns_from_comment(lines[i + 1], where(i + 1));
    for (std::int64_t a = 0; a < n; ++a) {
      const std::size_t li = i + 2 + static_cast<std::size_t>(a);
      const auto tok = tokens(lines[li]);
      if (tok.size() < cols.min_tokens)
        throw IoError(where(li) + ": expected an atom line '<element> <x> <y> <z>', got '" + std::string(lines[li]) + "'");
      Atom atom;
      atom.z = parse_element(tok[cols.species], where(li));
      for (std::size_t d = 0; d < 3; ++d) atom.position[d] = parse_coordinate(tok[cols.pos + d], where(li));
      mol.atoms.push_back(atom);
    }
    out.push_back(std::move(mol));
    i += 2 + static_cast<std::size_t>(n);
  }
  if (out.empty()) throw InvalidArgument("'" + name + "': no molecules (empty XYZ file)");
  return out;
}

std::vector<Molecule> read_xyz(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw IoError("'" + path.string() + "': cannot open for reading");
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) throw IoError("'" + path.string() + "': read error");
  return parse_xyz(ss.str(), path.string());
}

std::vector<Signal> atom_signals(const Molecule& molecule, int band_limit, const AtomSignalOptions& options) {
  if (!options.channel_scale.empty() && options.channel_scale.size() != static_cast<std::size_t>(kMoleculeChannels))
    throw InvalidArgument("atom signals: channel_scale needs " + std::to_string(kMoleculeChannels) + " values, got " +
                          std::to_string(options.channel_scale.size()));
  const std::size_t n = molecule.atoms.size();
  if (n == 0) throw InvalidArgument(molecule.source + ": empty molecule");
  for (const Atom& a : molecule.atoms)
    if (element_index(a.z) < 0)
      throw InvalidArgument(molecule.source + ": unsupported element Z = " + std::to_string(a.z) + " (supported: H, C, N, O, F)");
  const std::vector<double> f = bump_coefficients(band_limit);
  std::vector<double> run(static_cast<std::size_t>(band_limit));
  std::vector<Signal> out;
  out.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    Signal x(band_limit, kMoleculeChannels);
    const Atom& ai = molecule.atoms[i];
    for (std::size_t j = 0; j < n; ++j) {
      if (j == i) continue;
      const Atom& aj = molecule.atoms[j];
      const std::array<double, 3> d = {aj.position[0] - ai.position[0], aj.position[1] - ai.position[1],
                                       aj.position[2] - ai.position[2]};
      const double r = std::sqrt(d[0] * d[0] + d[1] * d[1] + d[2] * d[2]);
      if (!(r > 0.0))
        throw InvalidArgument(molecule.source + ": atoms " + std::to_string(i) + " and " + std::to_string(j) +
                              " are at the same position");
      const int e = element_index(aj.z);
      for (int p = 0; p < 2; ++p) {
        const int c = 2 * e + p;
        double w = static_cast<double>(ai.z) * aj.z / std::pow(r, kPowers[p]);
        if (!options.channel_scale.empty()) w *= options.channel_scale[static_cast<std::size_t>(c)];
        add_conj_harmonics(x, c, w, d, f, run);
      }
    }
    out.push_back(std::move(x));
  }
  return out;
}

std::optional<double> comment_value(const Molecule& molecule, std::string_view key) {
  for (const std::string_view tok : tokens(molecule.comment)) {
    if (tok.size() <= key.size() || tok.substr(0, key.size()) != key || tok[key.size()] != '=') continue;
    std::string_view value = tok.substr(key.size() + 1);
    if (value.size() >= 2 && (value.front() == '"' || value.front() == '\'') && value.back() == value.front())
      value = value.substr(1, value.size() - 2);
    double v = 0.0;
    const auto [ptr, ec] = std::from_chars(value.data(), value.data() + value.size(), v);
    if (ec != std::errc() || ptr != value.data() + value.size() || !std::isfinite(v))
      throw InvalidArgument(molecule.source + ": '" + std::string(key) + "' in the comment line is not a number: '" +
                            std::string(value) + "'");
    return v;
  }
  return std::nullopt;
}

MoleculeKernel::MoleculeKernel(Network net, MoleculeSum sum, int slots)
    : pair_(std::move(net)), sum_(sum), slots_(slots) {
  if (pair_.network().channels() != kMoleculeChannels)
    throw InvalidArgument("molecule kernel: the network must have " + std::to_string(kMoleculeChannels) +
                          " input channels (5 elements x 2 powers), got " + std::to_string(pair_.network().channels()));
  if (slots < 0) throw InvalidArgument("molecule kernel: slots must be >= 0, got " + std::to_string(slots));
  zero_ = Signal(pair_.network().band_limit(), kMoleculeChannels);
  zero_chain_ = pair_.self_chain(zero_);
}

MoleculeChain MoleculeKernel::self_chain(std::vector<Signal> atoms) {
  if (atoms.empty()) throw InvalidArgument("molecule kernel: empty molecule");
  if (sum_ == MoleculeSum::same_slot && slots_ > 0 && static_cast<int>(atoms.size()) > slots_)
    throw InvalidArgument("molecule kernel: a molecule with " + std::to_string(atoms.size()) + " atoms does not fit in " +
                          std::to_string(slots_) + " slots");
  MoleculeChain mc;
  mc.atoms = std::move(atoms);
  for (const Signal& x : mc.atoms) mc.chains.push_back(pair_.self_chain(x));
  if (sum_ == MoleculeSum::same_slot) {
    for (const SelfChain& sc : mc.chains) {
      mc.pooled.nngp += sc.pooled.nngp;
      mc.pooled.ntk += sc.pooled.ntk;
    }
    const int empty = slots_ > 0 ? slots_ - static_cast<int>(mc.atoms.size()) : 0;
    mc.pooled.nngp += empty * zero_chain_.pooled.nngp;
    mc.pooled.ntk += empty * zero_chain_.pooled.ntk;
  } else {
    const std::size_t n = mc.atoms.size();
    for (std::size_t i = 0; i < n; ++i) {
      mc.pooled.nngp += mc.chains[i].pooled.nngp;
      mc.pooled.ntk += mc.chains[i].pooled.ntk;
      for (std::size_t j = i + 1; j < n; ++j) {
        const KernelValue v = pair_.pooled(mc.atoms[i], mc.chains[i], mc.atoms[j], mc.chains[j]);
        mc.pooled.nngp += 2 * v.nngp;
        mc.pooled.ntk += 2 * v.ntk;
      }
    }
  }
  mc.self = self_head(pair_.network(), mc.pooled, mc.head_var);
  return mc;
}

KernelValue MoleculeKernel::pooled(const MoleculeChain& a, const MoleculeChain& b) {
  KernelValue sum;
  const auto add = [&](const Signal& x, const SelfChain& sx, const Signal& y, const SelfChain& sy) {
    const KernelValue v = pair_.pooled(x, sx, y, sy);
    sum.nngp += v.nngp;
    sum.ntk += v.ntk;
  };
  const std::size_t na = a.atoms.size(), nb = b.atoms.size();
  if (sum_ == MoleculeSum::same_slot) {
    // Without padding a slot that one molecule lacks has no branch output (feature 0): only common slots
    // count. With padding every slot holds a signal (0 when empty) and all `slots_` branches count. Either
    // way K is a sum of per-slot kernels over a fixed slot set, hence positive semi-definite.
    const std::size_t n = slots_ > 0 ? std::max(na, nb) : std::min(na, nb);
    for (std::size_t i = 0; i < n; ++i) {
      const bool ha = i < na, hb = i < nb;
      add(ha ? a.atoms[i] : zero_, ha ? a.chains[i] : zero_chain_, hb ? b.atoms[i] : zero_,
          hb ? b.chains[i] : zero_chain_);
    }
    const int empty = slots_ > 0 ? slots_ - static_cast<int>(n) : 0;
    sum.nngp += empty * zero_chain_.pooled.nngp;
    sum.ntk += empty * zero_chain_.pooled.ntk;
  } else {
    for (std::size_t i = 0; i < na; ++i)
      for (std::size_t j = 0; j < nb; ++j) add(a.atoms[i], a.chains[i], b.atoms[j], b.chains[j]);
  }
  return sum;
}

KernelValue MoleculeKernel::evaluate(const MoleculeChain& a, const MoleculeChain& b) {
  return apply_head(pair_.network(), pooled(a, b), a.head_var, b.head_var);
}

}  // namespace eqntk::so3
