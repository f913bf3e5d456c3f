// Molecules as sets of per-atom spherical signals (SO3_MATH.md Appendix B) and their kernels.
//
// For atom i, element channel e ∈ {H, C, N, O, F} (Z = 1, 6, 7, 8, 9; e = 0..4) and power p ∈ {2, 6}:
//   s_{i,e,p}(u) = Σ_{j≠i, Z_j = e} Z_i Z_j / r_ij^p · f(⟨r̂_ij, u⟩),  f(t) = exp(−(t−1)²/β),
//   β = −(cos(π/4) − 1)² / ln 0.05,  r̂_ij = (r_j − r_i)/|r_j − r_i|  (positions in the file's unit, Å),
// channel c = 2e + p_idx (C = 10). Coefficients are analytic (no sampling, exactly rotation-equivariant):
//   a^{(i)}_{c;lm} = f_l Σ_{j≠i, Z_j=e} Z_i Z_j r_ij^{−p} conj(Y_l^m(r̂_ij)),  f_l = 2π ∫_{−1}^{1} f(t) P_l(t) dt.
//
// Molecule kernels, with (K_pool, Θ_pool) the so3pool output of PairKernel::pooled and the head applied
// to the sum (a single dense head gives K = σ_o² Σ K_pool + b_o², Θ = K + σ_o² Σ Θ_pool):
//   same_slot  Σ_i pooled(x_i, x'_i): the authors' independent per-slot branches; depends on atom order.
//              slots = 0: the sum runs over the slots both molecules have (i < min(n, n')): a branch
//              without an atom outputs nothing. slots = S > 0: every molecule is zero-padded to S slots as
//              the authors do (S = 29 for QM9), i < S, and an empty slot is the zero signal, which adds
//              pooled(0, 0) per slot empty in both (0 without biases, a constant otherwise). Both are PSD;
//              without biases they agree.
//   all_pairs  Σ_i Σ_j pooled(x_i, x'_j): one branch shared by all atoms; invariant to atom order.
#pragma once

#include <array>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "eqntk/so3/pair_kernel.hpp"
#include "eqntk/so3/signal.hpp"

namespace eqntk::so3 {

struct Atom {
  int z = 0;                          // atomic number
  std::array<double, 3> position{};  // Å
};

struct Molecule {
  std::vector<Atom> atoms;
  std::string comment;  // the XYZ comment line
  std::string source;   // "file:line" of the frame, for messages
};

/// Reads every frame of an XYZ or extended-XYZ file: `<n>`, a comment line, then n lines `<symbol> x y z ...`
/// (extended XYZ: the columns named `species` and `pos` in `Properties=` of the comment line; symbols or
/// atomic numbers; QM9's `*^` exponents accepted). Blank lines between frames are skipped. Not collective.
/// Throws IoError for unreadable files and malformed frames, InvalidArgument for an empty file, an empty
/// molecule (n = 0), an element other than H, C, N, O, F, or two atoms at the same position — each naming
/// the file and line.
[[nodiscard]] std::vector<Molecule> read_xyz(const std::filesystem::path& path);
/// As read_xyz on text already in memory; `name` stands for the file in messages.
[[nodiscard]] std::vector<Molecule> parse_xyz(std::string_view text, const std::string& name);

/// The number in `key=value` of an extended-XYZ comment line (e.g. energy=-76.4 for regression targets), or
/// nullopt if the key is absent. Throws InvalidArgument (naming molecule.source) if the value is not a number.
[[nodiscard]] std::optional<double> comment_value(const Molecule& molecule, std::string_view key);

/// Number of channels of atom signals: 5 elements × 2 powers.
inline constexpr int kMoleculeChannels = 10;
/// e for Z = 1, 6, 7, 8, 9 (H, C, N, O, F), −1 for any other Z.
[[nodiscard]] int element_index(int z);
/// β = −(cos(π/4) − 1)² / ln 0.05 ≈ 0.0286362, the bump width.
[[nodiscard]] double bump_beta();
/// f_l, l < L, by 200-node Gauss–Legendre quadrature (f_0 ≈ 0.9423, f_1 ≈ 0.8523, ...).
[[nodiscard]] std::vector<double> bump_coefficients(int band_limit);

struct AtomSignalOptions {
  /// Optional global scale per channel (10 values, e.g. 1/RMS over a training set); empty = the authors' raw
  /// scale. Scalars per channel keep the signals rotation-equivariant.
  std::vector<double> channel_scale;
};

/// The per-atom signals of `molecule` at band limit L, in atom order. Throws InvalidArgument (naming
/// molecule.source) for an unsupported element, coincident atoms, or a channel_scale of the wrong size.
[[nodiscard]] std::vector<Signal> atom_signals(const Molecule& molecule, int band_limit,
                                               const AtomSignalOptions& options = {});

enum class MoleculeSum { same_slot, all_pairs };

/// Per-molecule data every pair needs; computed once per molecule by MoleculeKernel::self_chain.
struct MoleculeChain {
  std::vector<Signal> atoms;
  std::vector<SelfChain> chains;  // one per atom
  KernelValue pooled;             // the summed pooled self-kernel of the molecule
  std::vector<double> head_var;   // head variances (SelfChain::head_var) of the molecule
  KernelValue self;               // K(M, M), Θ(M, M)
};

/// Molecule kernels from atom-signal kernels (file comment). Thread safety as PairKernel: one per thread.
class MoleculeKernel {
 public:
  /// `slots` (same_slot only): pad every molecule to this many slots; 0 = no padding.
  /// Throws InvalidArgument if net.channels() != 10 or slots < 0.
  MoleculeKernel(Network net, MoleculeSum sum, int slots = 0);

  [[nodiscard]] const Network& network() const { return pair_.network(); }
  [[nodiscard]] MoleculeSum sum() const { return sum_; }

  /// Self chains of the atoms, the molecule's pooled self-kernel (all_pairs: n(n+1)/2 atom pairs) and K(M,M).
  /// Throws InvalidArgument for an empty molecule, more atoms than `slots`, or signals of the wrong shape.
  [[nodiscard]] MoleculeChain self_chain(std::vector<Signal> atoms);

  /// K(M, M2), Θ(M, M2) from two self chains.
  [[nodiscard]] KernelValue evaluate(const MoleculeChain& a, const MoleculeChain& b);

  /// The summed pooled kernel before the head.
  [[nodiscard]] KernelValue pooled(const MoleculeChain& a, const MoleculeChain& b);

 private:
  PairKernel pair_;
  MoleculeSum sum_;
  int slots_;
  Signal zero_;
  SelfChain zero_chain_;
};

}  // namespace eqntk::so3
