// Separable window sums over the 4-D index space of one rotation block (MATH.md §5.1, §5.3).
//
// A block B(t, t') with t = (i, j), t' = (i', j') is stored row-major as B[i][j][i'][j'] (j' fastest).
// The window sum of a conv-type layer for the block of group element h (MATH.md §10),
//   S_h(t, t') = Σ_{y ∈ {-p..p}²} A(t + y, t' + A_h y),   A_h = R^r M^m (group/point_group.hpp),
// separates into a pass over a (moving i by a and t' by the a-part of A_h y) and a pass over b (moving
// j by b and t' by the b-part). Each pass is a 1-D window sum along a line of the 4-D index space.
// Worked example, h = (1, 0): A_h(a, b) = (−b, a), so S(t,t') = Σ_a Σ_b A(i+a, j+b, i'−b, j'+a):
//   pass A moves (dim 0, dim 3, sign +1), pass B moves (dim 1, dim 2, sign −1).
// h = (0, 1) (the mirror): A_h(a, b) = (a, −b): pass A (dim 0, dim 2, +1), pass B (dim 1, dim 3, −1).
#pragma once

#include <array>
#include <cstdint>

#include "eqntk/group/point_group.hpp"
#include "eqntk/kernel/architecture.hpp"

namespace eqntk::kernel {

/// Sizes of a 4-D block: n[0] = i, n[1] = j, n[2] = i', n[3] = j'.
struct Dims4 {
  std::array<std::int64_t, 4> n{};
  [[nodiscard]] std::int64_t size() const { return n[0] * n[1] * n[2] * n[3]; }
};

/// One 1-D pass: the line moves dim `du` (0 or 1) by +a and dim `dv` (2 or 3) by sign·a, a ∈ {-p..p}.
struct BoxLine {
  int du = 0;
  int dv = 2;
  int sign = 1;
};

/// The two passes (A over a, B over b) for the block of group element h.
[[nodiscard]] std::array<BoxLine, 2> box_lines(group::Element h);

/// Output sizes of a pass: `valid` shrinks dims du and dv by 2p, other paddings keep them.
[[nodiscard]] Dims4 box_output_dims(const Dims4& in, const BoxLine& line, int p, Padding pad);

/// out[o] = scale · Σ_a in[o moved along `line` by a] + bias (+ add[o] when add != nullptr).
/// Padding: `same` drops out-of-range terms (zero padding), `circular` wraps each moved dim, `valid`
/// offsets the moved dims by p so that every term is in range. `out` must not alias `in`; `add` may
/// alias `out`. Cost O(q) per output entry, vectorised along j'.
void box_pass(const double* in, const Dims4& din, double* out, const BoxLine& line, int p, Padding pad,
              double scale = 1.0, double bias = 0.0, const double* add = nullptr);

/// 2-D window sum of an h×w map (the diagonal t = t' of the 4-D sum, where Δ plays no role because
/// the window is C4-symmetric): out(t) = scale · Σ_{y} in(t + y) + bias (+ add[t]). Returns the output
/// height/width through oh, ow.
void box_2d(const double* in, std::int64_t h, std::int64_t w, double* out, int p, Padding pad, double scale,
            double bias, const double* add, std::int64_t& oh, std::int64_t& ow);

}  // namespace eqntk::kernel
