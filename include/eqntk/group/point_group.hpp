// The point groups of the square lattice (MATH.md §1, §10): pure index math, no state.
//
// Every symmetry of the square is g = (r, m): r ∈ {0..3} quarter turns, m ∈ {0, 1} a mirror. On pixel
// offsets (row, col) it acts as A_g y = R^r M^m y with R(a, b) = (−b, a) and M(a, b) = (a, −b); the product
// is (r1, m1)(r2, m2) = ((r1 + (−1)^{m1} r2) mod 4, m1 xor m2), so that A_{g1 g2} = A_{g1} A_{g2}. On images
// ρ((r, m))x = numpy.rot90(mirror^m x, r, axes=(H, W)), mirror = reversing the column axis; in centred
// coordinates (ρ(g)x)(t) = x(A_g⁻¹ t).
//
// Worked example: g = (1, 1) maps the offset (a, b) = (2, 1) to R M (2, 1) = R (2, −1) = (1, 2); its inverse
// is (1, 1) itself (every mirror element is an involution); (1, 0)(0, 1) = (1, 1) but (0, 1)(1, 0) = (3, 1).
//
// The supported subgroups G ⊆ D4 and the order of their elements (the index of an element is its block
// index in the fast engine and its label index in the reference engine):
//   C1 {(0,0)} · C2 {(0,0),(2,0)} · C4 = p4 {(0,0),(1,0),(2,0),(3,0)} · D1 {(0,0),(0,1)} ·
//   D2 {(0,0),(2,0),(0,1),(2,1)} · D4 = p4m {(0,0),(1,0),(2,0),(3,0),(0,1),(1,1),(2,1),(3,1)}.
// The identity is always element 0, and C4's element r is the rotation by r quarter turns (so the p4
// block B_Δ of MATH.md §5.1 is block index Δ).
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

namespace eqntk::group {

/// g = (r, m): R^r M^m.
struct Element {
  int r = 0;  // quarter turns, 0..3
  int m = 0;  // mirror, 0 or 1
  friend constexpr bool operator==(const Element&, const Element&) = default;
};

/// A pixel offset or centred position (row, col).
struct Offset {
  std::int64_t a = 0;
  std::int64_t b = 0;
  friend constexpr bool operator==(const Offset&, const Offset&) = default;
};

enum class PointGroup { C1, C2, C4, D1, D2, D4 };

/// Every supported group, in the order above.
inline constexpr std::array<PointGroup, 6> kAllGroups{PointGroup::C1, PointGroup::C2, PointGroup::C4,
                                                      PointGroup::D1, PointGroup::D2, PointGroup::D4};

/// The canonical name: "C1", "C2", "C4", "D1", "D2", "D4".
[[nodiscard]] std::string_view name(PointGroup g);
/// The group named `text`: the canonical names and the aliases p4 (= C4), p4m (= D4); nothing otherwise.
[[nodiscard]] std::optional<PointGroup> from_name(std::string_view text);

/// The elements of `g` in the documented order (element 0 is the identity).
[[nodiscard]] std::span<const Element> elements(PointGroup g);
/// |G|.
[[nodiscard]] int order(PointGroup g);
/// Index of `e` in elements(g), or −1 when e ∉ g.
[[nodiscard]] int index_of(PointGroup g, Element e);
/// True when every element of `sub` is in `super`.
[[nodiscard]] bool is_subgroup(PointGroup sub, PointGroup super);

/// The product g1 g2 (MATH.md §10).
[[nodiscard]] constexpr Element compose(Element g1, Element g2) {
  const int r2 = g1.m == 1 ? -g2.r : g2.r;
  return {(((g1.r + r2) % 4) + 4) % 4, g1.m ^ g2.m};
}
/// The rotation by r quarter turns, (r mod 4, 0), for any integer r.
[[nodiscard]] constexpr Element rotation(int r) { return {((r % 4) + 4) % 4, 0}; }

/// g⁻¹: (r, 0)⁻¹ = (−r, 0); mirror elements are involutions.
[[nodiscard]] constexpr Element inverse(Element g) { return g.m == 1 ? g : Element{(4 - g.r) % 4, 0}; }

/// A_g y = R^r M^m y, R(a, b) = (−b, a), M(a, b) = (a, −b).
[[nodiscard]] constexpr Offset act(Element g, Offset y) {
  std::int64_t a = y.a, b = g.m == 1 ? -y.b : y.b;
  for (int k = 0; k < g.r; ++k) {
    const std::int64_t na = -b;
    b = a;
    a = na;
  }
  return {a, b};
}

/// A_g applied to pixel (i, j) of an h×w image about its centre ((h−1)/2, (w−1)/2): the pixel that (i, j)
/// is moved to. (ρ(g)x)[i][j] = x[act_on_pixel(inverse(g), h, w, i, j)]. Precondition: h == w when r is odd.
[[nodiscard]] constexpr Offset act_on_pixel(Element g, std::int64_t h, std::int64_t w, std::int64_t i,
                                            std::int64_t j) {
  // Doubled centred coordinates 2i − (h−1) stay integral for even sizes.
  const Offset c = act(g, {2 * i - (h - 1), 2 * j - (w - 1)});
  return {(c.a + h - 1) / 2, (c.b + w - 1) / 2};
}

/// ρ(g) on one h×w channel-major plane stack: out[c][i][j] = in[c][source], source = act_on_pixel(g⁻¹, i, j).
/// Precondition: h == w when g moves rows into columns (odd r); a mirror alone (r even) allows h ≠ w, as does
/// the identity. Throws InvalidArgument otherwise.
void transform_planes(Element g, const double* in, std::int64_t channels, std::int64_t h, std::int64_t w,
                      double* out);

}  // namespace eqntk::group
