// Finite-width group CNNs (every point group G ⊂ D4 of MATH.md §10) and CNNs exactly as parameterized in
// MATH.md §2 and §10, with a forward pass and exact parameter gradients by hand-written backpropagation. They
// exist to check the analytic kernels (kernel::PairKernel) by Monte Carlo (MATH.md §8): the empirical NNGP
// f(x)f(x') and the empirical NTK Σ_θ ∂f(x)/∂θ ∂f(x')/∂θ of independent initializations average to K and Θ
// as the width grows.
//
// Parameterization (NTK parameterization, every weight and bias drawn N(0,1)):
//   lift    F(t,g) = σ_w/√(C q²)      Σ_c Σ_{y∈W} w_c(y) x_c(t + A_g y)                  + σ_b b
//   gconv   F(t,g) = σ_w/√(n·|G|·q²)  Σ_j Σ_{s∈G} Σ_{y∈W} w_j(y,s) h_j(t + A_g y, g s)   + σ_b b
//   conv    F(t)   = σ_w/√(n q²)      Σ_j Σ_{y∈W} w_j(y) h_j(t + y)                      + σ_b b
//   dense   F      = σ_w/√n           Σ_j w_j h_j                                       + σ_b b
//   avgpool F(T,g) = (1/s²) Σ_{t∈cell(T)} h(t,g)   (per channel and group label; no parameters)
//   res     h ↦ h + F(h), F the block's body      (no parameters of its own; F starts with fresh weights)
// with A_g = R^r M^m for g = (r, m), R(a,b) = (−b,a) and M(a,b) = (a,−b) acting on (row, col) offsets (for
// p4, g s is r + s mod 4), one bias per output channel shared over all positions and group labels, and zero /
// wrapped out-of-image pixels for same·valid / circular padding (a `valid` output pixel t sits at input pixel
// t + (p,p)). The avgpool cells are the s×s blocks of the s-strided grid (cell(T) = {sT + (a,b) : 0 ≤ a,b < s}),
// so the layer's NNGP is K'(T,T') = (1/s⁴) Σ_{t∈cell(T)} Σ_{t'∈cell(T')} K(t,t') as MATH.md §10 states; a res
// body keeps channels, group labels and size, so the sum adds entry by entry (nested and consecutive
// blocks alike). `gpool` and `gap` average each channel over all its positions (and group labels); `flatten`
// passes every (channel, group label, pixel) value on as one feature, so the following dense layer's fan-in n
// is their count. Every hidden lift/gconv/conv/dense layer has `width` output channels; the last dense layer
// has one output, so f(x) is a scalar (a trailing nonlinearity, if the architecture has one, is applied to it).
//
// Each group or plane layer is one matrix product: with the gathered input ("im2col")
//   col[(j, s, y)][(g, t)] = h_j(t + A_g y, g s)   (0 where the padding says so),
// F = σ_w/√fan-in · W · col + σ_b b 1ᵀ, W the weights as a (width × fan-in) matrix. Transforming the gather,
// not the filter, keeps W the parameter itself, so ∂f/∂W = σ_w/√fan-in · δ · colᵀ already sums the |G|
// transformed copies of each filter. Backpropagation through a res block sends δ of h + F(h) both into the
// body and, around it, to the block's input, where the two add.
//
// Glossary: n = width (channels of hidden layers), q = filter size, p = (q−1)/2, s = avgpool cell size,
// G = the lift's point group (C1 for a CNN), θ = all parameters, f = the network's scalar output,
// δ = ∂f/∂(a layer's output).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "eqntk/data/image.hpp"
#include "eqntk/kernel/network.hpp"

namespace eqntk::finite {

enum class ParameterKind { weight, bias };

/// One contiguous block of parameters(): the weights or the biases of one linear stage.
/// Weights are stored row-major as (outputs × fan-in); the fan-in index of a C4/plane layer is
/// ((j·S + s)·q + y_row + p)·q + y_col + p with S = |G| elements s for gconv (in group::elements order) and
/// S = 1 otherwise
/// (j the input channel, y = (y_row, y_col) ∈ {−p..p}²).
struct ParameterBlock {
  std::size_t stage = 0;  ///< index into kernel::Network::stages()
  ParameterKind kind = ParameterKind::weight;
  std::int64_t offset = 0;  ///< first entry in parameters()
  std::int64_t size = 0;
  std::int64_t outputs = 0;  ///< output channels / features of the layer
  std::int64_t fan_in = 0;   ///< weights per output (the n·4·q², C·q², … of the scaling); 1 for biases
};

/// A finite network of `width` channels with one fixed draw of its parameters (MATH.md §2, §10).
///
/// Not thread-safe: forward() and gradient() use workspace owned by the object. Use one per thread.
class FiniteNetwork {
 public:
  /// Draws every weight and bias N(0,1) from a generator seeded with `seed` (xoshiro256** with
  /// Box–Muller; the same (net, width, seed) gives bitwise the same parameters on every machine with the
  /// same libm). Throws InvalidArgument when width < 1.
  FiniteNetwork(kernel::Network net, std::int64_t width, std::uint64_t seed);
  ~FiniteNetwork();
  FiniteNetwork(FiniteNetwork&&) noexcept;
  FiniteNetwork& operator=(FiniteNetwork&&) noexcept;

  /// Redraws every parameter exactly as the constructor would with `seed` (same values as
  /// FiniteNetwork(net, width, seed)), reusing all buffers: one object serves many initializations.
  void reseed(std::uint64_t seed);

  [[nodiscard]] const kernel::Network& network() const { return net_; }
  [[nodiscard]] std::int64_t width() const { return width_; }
  [[nodiscard]] std::int64_t parameter_count() const { return static_cast<std::int64_t>(theta_.size()); }
  /// Blocks in stage order, weights before biases; together they tile parameters().
  [[nodiscard]] const std::vector<ParameterBlock>& blocks() const { return blocks_; }
  /// All parameters θ (the N(0,1) draws, before the σ_w/√fan-in and σ_b factors). Mutable for
  /// finite-difference tests.
  [[nodiscard]] std::span<double> parameters() { return theta_; }
  [[nodiscard]] std::span<const double> parameters() const { return theta_; }

  /// f(x). Throws InvalidArgument when x's shape is not the network's input shape.
  double forward(const data::ImageView& x);

  /// f(x), and ∂f(x)/∂θ written to `grad` (parameter_count() entries, laid out as parameters()).
  /// Throws InvalidArgument on a wrong image shape or gradient size.
  double gradient(const data::ImageView& x, std::span<double> grad);

  /// The output of stage s from the last forward()/gradient() call, row-major (channels × columns):
  /// group maps as [channel][g][i][j] (g in group::elements order), plane maps as [channel][i][j],
  /// pooled/dense states as one column. A res marker's output is its input; a res_end's is h + F(h).
  /// Empty before the first call.
  [[nodiscard]] std::span<const double> stage_output(std::size_t s) const;

  /// The features h entering the last dense layer, from the last forward()/gradient() call.
  [[nodiscard]] std::span<const double> readout_features() const;

  /// E[f(x) f(x') | every parameter but the last dense layer's], from the two feature vectors h, h' of
  /// readout_features(): c = σ_w²⟨h,h'⟩/n + σ_b² (n = len h), passed through the trailing nonlinearity's
  /// dual (MATH.md §4) when the network ends with one. It has the same mean as f(x)f(x') over
  /// initializations but, unlike it, a spread that falls like n^(−1/2) (f(x)f(x') keeps the O(1)
  /// variance of a product of two Gaussians at any width). It equals the last layer's share of the
  /// empirical NTK when no nonlinearity follows it.
  [[nodiscard]] double conditional_nngp(std::span<const double> h1, std::span<const double> h2) const;

 private:
  struct Layer;
  void run_forward(const data::ImageView& x);

  kernel::Network net_;
  std::int64_t width_ = 0;
  std::vector<double> theta_;
  std::vector<ParameterBlock> blocks_;
  std::vector<Layer> layers_;
  std::vector<std::vector<double>> act_;  // act_[s] = input of stage s; act_.back() = f
  std::vector<std::vector<double>> col_;  // gathered inputs of C4/plane layers
  std::vector<double> delta_, delta_in_, dcol_;
  std::vector<std::vector<double>> skip_;  // skip_[s] (s a res marker) = δ of its res_end's output
  std::size_t last_dense_ = 0;
  bool evaluated_ = false;
};

/// Empirical kernels of one network on a set of images: row-major count×count matrices of
/// f(x_a) f(x_b) (nngp), Σ_θ ∂f(x_a)/∂θ ∂f(x_b)/∂θ (ntk) and conditional_nngp(h_a, h_b) (nngp_cond).
/// Holds all `count` gradients at once (count · parameter_count() doubles).
struct EmpiricalKernels {
  std::int64_t count = 0;
  std::vector<double> nngp, ntk, nngp_cond;
};

/// Computes EmpiricalKernels of `net` on `images` (one forward and backward pass per image).
/// Throws InvalidArgument on a shape mismatch.
[[nodiscard]] EmpiricalKernels empirical_kernels(FiniteNetwork& net, const data::ImageSet& images);

/// As above, keeping the gradients in `gradients` (resized to count·parameter_count()), so that repeated
/// calls, one per initialization, do not allocate them afresh.
[[nodiscard]] EmpiricalKernels empirical_kernels(FiniteNetwork& net, const data::ImageSet& images,
                                                 std::vector<double>& gradients);

}  // namespace eqntk::finite
