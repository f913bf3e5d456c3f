// The point-group module (group/point_group.hpp, MATH.md §1, §10), exhaustively on one rank. Expected
// values come from independent definitions: matrices of R and M, numpy's rot90 and fliplr index rules
// written out literally, and numpy's documented output on a 3×3 example.
#include <gtest/gtest.h>

#include <array>
#include <vector>

#include "eqntk/data/image.hpp"
#include "eqntk/error.hpp"
#include "eqntk/group/image_action.hpp"
#include "eqntk/group/point_group.hpp"

namespace {

using eqntk::group::Element;
using eqntk::group::Offset;
using eqntk::group::PointGroup;
namespace grp = eqntk::group;

// 2×2 integer matrices acting on (row, col): R = [[0,−1],[1,0]] (R(a,b) = (−b,a)), M = [[1,0],[0,−1]].
using Mat = std::array<int, 4>;
Mat mul(const Mat& x, const Mat& y) {
  return {x[0] * y[0] + x[1] * y[2], x[0] * y[1] + x[1] * y[3], x[2] * y[0] + x[3] * y[2], x[2] * y[1] + x[3] * y[3]};
}
Mat matrix(Element g) {
  const Mat rot{0, -1, 1, 0}, mirror{1, 0, 0, -1};
  Mat m{1, 0, 0, 1};
  for (int k = 0; k < g.r; ++k) m = mul(m, rot);
  if (g.m == 1) m = mul(m, mirror);
  return m;
}

std::vector<Element> all_d4() {
  std::vector<Element> v;
  for (int m = 0; m < 2; ++m)
    for (int r = 0; r < 4; ++r) v.push_back({r, m});
  return v;
}

// numpy.rot90(x, 1): out[i][j] = x[j][n−1−i]; numpy.fliplr: out[i][j] = x[i][n−1−j] (literal rules).
std::vector<double> np_rot90_once(const std::vector<double>& x, std::int64_t n) {
  std::vector<double> out(x.size());
  for (std::int64_t i = 0; i < n; ++i)
    for (std::int64_t j = 0; j < n; ++j) out[i * n + j] = x[j * n + (n - 1 - i)];
  return out;
}
std::vector<double> np_fliplr(const std::vector<double>& x, std::int64_t h, std::int64_t w) {
  std::vector<double> out(x.size());
  for (std::int64_t i = 0; i < h; ++i)
    for (std::int64_t j = 0; j < w; ++j) out[i * w + j] = x[i * w + (w - 1 - j)];
  return out;
}
// ρ((r, m))x = rot90(mirror^m x, r), from the literal numpy rules.
std::vector<double> np_rho(Element g, std::vector<double> x, std::int64_t n) {
  if (g.m == 1) x = np_fliplr(x, n, n);
  for (int k = 0; k < g.r; ++k) x = np_rot90_once(x, n);
  return x;
}
std::vector<double> transformed(Element g, const std::vector<double>& x, std::int64_t n) {
  std::vector<double> out(x.size());
  grp::transform_planes(g, x.data(), 1, n, n, out.data());
  return out;
}
std::vector<double> ramp(std::int64_t n) {
  std::vector<double> x(static_cast<std::size_t>(n * n));
  for (std::size_t k = 0; k < x.size(); ++k) x[k] = static_cast<double>(k * k % 17) + 0.25 * static_cast<double>(k);
  return x;
}

TEST(PointGroup, ProductMatchesMatrixProduct) {
  for (const Element a : all_d4())
    for (const Element b : all_d4()) EXPECT_EQ(matrix(grp::compose(a, b)), mul(matrix(a), matrix(b)));
}

TEST(PointGroup, ActionOnOffsetsIsTheMatrix) {
  for (const Element g : all_d4()) {
    const Mat m = matrix(g);
    for (int a = -3; a <= 3; ++a)
      for (int b = -3; b <= 3; ++b)
        EXPECT_EQ(grp::act(g, {a, b}), (Offset{m[0] * a + m[1] * b, m[2] * a + m[3] * b}));
  }
  // R(a, b) = (−b, a) and M(a, b) = (a, −b) literally (MATH.md §1, §10).
  EXPECT_EQ(grp::act({1, 0}, {2, 5}), (Offset{-5, 2}));
  EXPECT_EQ(grp::act({0, 1}, {2, 5}), (Offset{2, -5}));
  EXPECT_EQ(grp::act({1, 1}, {2, 1}), (Offset{1, 2}));
}

TEST(PointGroup, GroupAxiomsHoldInD4) {
  const auto d4 = all_d4();
  for (const Element a : d4) {
    EXPECT_EQ(grp::compose(a, {0, 0}), a);
    EXPECT_EQ(grp::compose({0, 0}, a), a);
    EXPECT_EQ(grp::compose(a, grp::inverse(a)), (Element{0, 0}));
    EXPECT_EQ(grp::compose(grp::inverse(a), a), (Element{0, 0}));
    for (const Element b : d4)
      for (const Element c : d4) EXPECT_EQ(grp::compose(grp::compose(a, b), c), grp::compose(a, grp::compose(b, c)));
  }
  // D4 is not abelian: a quarter turn and the mirror do not commute.
  EXPECT_NE(grp::compose({1, 0}, {0, 1}), grp::compose({0, 1}, {1, 0}));
}

TEST(PointGroup, EverySupportedGroupIsClosedWithIdentityFirst) {
  const std::array<int, 6> orders{1, 2, 4, 2, 4, 8};
  for (std::size_t k = 0; k < grp::kAllGroups.size(); ++k) {
    const PointGroup g = grp::kAllGroups[k];
    const auto el = grp::elements(g);
    EXPECT_EQ(grp::order(g), orders[k]) << grp::name(g);
    EXPECT_EQ(el[0], (Element{0, 0}));
    for (std::size_t i = 0; i < el.size(); ++i) {
      EXPECT_EQ(grp::index_of(g, el[i]), static_cast<int>(i));
      EXPECT_GE(grp::index_of(g, grp::inverse(el[i])), 0) << grp::name(g);
      for (const Element b : el) EXPECT_GE(grp::index_of(g, grp::compose(el[i], b)), 0) << grp::name(g);
    }
    EXPECT_TRUE(grp::is_subgroup(g, PointGroup::D4));
  }
  EXPECT_FALSE(grp::is_subgroup(PointGroup::D1, PointGroup::C4));
  EXPECT_TRUE(grp::is_subgroup(PointGroup::C2, PointGroup::D2));
  // C4's element r is the rotation by r quarter turns (the p4 block index Δ).
  for (int r = 0; r < 4; ++r) EXPECT_EQ(grp::elements(PointGroup::C4)[static_cast<std::size_t>(r)], (Element{r, 0}));
}

TEST(PointGroup, NamesAndAliasesRoundTrip) {
  for (const PointGroup g : grp::kAllGroups) EXPECT_EQ(grp::from_name(grp::name(g)), g);
  EXPECT_EQ(grp::from_name("p4"), PointGroup::C4);
  EXPECT_EQ(grp::from_name("p4m"), PointGroup::D4);
  EXPECT_FALSE(grp::from_name("C3").has_value());
  EXPECT_FALSE(grp::from_name("d4").has_value());
}

TEST(PointGroup, Rot90AgreesWithNumpysDocumentedOutput) {
  // numpy.rot90([[0,1,2],[3,4,5],[6,7,8]]) == [[2,5,8],[1,4,7],[0,3,6]] (counter-clockwise).
  const std::vector<double> x{0, 1, 2, 3, 4, 5, 6, 7, 8};
  EXPECT_EQ(transformed({1, 0}, x, 3), (std::vector<double>{2, 5, 8, 1, 4, 7, 0, 3, 6}));
  // numpy.fliplr: [[2,1,0],[5,4,3],[8,7,6]].
  EXPECT_EQ(transformed({0, 1}, x, 3), (std::vector<double>{2, 1, 0, 5, 4, 3, 8, 7, 6}));
  const eqntk::data::Image im{{1, 3, 3}, x};
  EXPECT_EQ(grp::rot90(im.view(), 1).pixels, (std::vector<double>{2, 5, 8, 1, 4, 7, 0, 3, 6}));
  EXPECT_EQ(grp::rot90(im.view(), -1).pixels, grp::rot90(im.view(), 3).pixels);
}

TEST(PointGroup, ImageActionMatchesLiteralNumpyRules) {
  for (const std::int64_t n : {1, 2, 3, 4, 5})
    for (const Element g : all_d4()) EXPECT_EQ(transformed(g, ramp(n), n), np_rho(g, ramp(n), n)) << n;
}

TEST(PointGroup, ImageActionIsAHomomorphism) {
  for (const std::int64_t n : {4, 5}) {
    const auto x = ramp(n);
    for (const Element a : all_d4())
      for (const Element b : all_d4())
        EXPECT_EQ(transformed(grp::compose(a, b), x, n), transformed(a, transformed(b, x, n), n));
  }
}

TEST(PointGroup, OffsetActionMatchesImageAction) {
  // (ρ(g)x)(t) = x(A_g⁻¹ t) about the centre: a one-pixel image moves its pixel by A_g, and a pixel pair
  // at offset y moves to offset A_g y.
  for (const std::int64_t n : {3, 4, 5})
    for (const Element g : all_d4())
      for (std::int64_t i = 0; i < n; ++i)
        for (std::int64_t j = 0; j < n; ++j) {
          std::vector<double> x(static_cast<std::size_t>(n * n), 0.0);
          x[i * n + j] = 1.0;
          const auto y = transformed(g, x, n);
          const Offset to = grp::act_on_pixel(g, n, n, i, j);
          EXPECT_EQ(y[to.a * n + to.b], 1.0);
          const Offset centred = grp::act(g, {2 * i - (n - 1), 2 * j - (n - 1)});
          EXPECT_EQ(2 * to.a - (n - 1), centred.a);
          EXPECT_EQ(2 * to.b - (n - 1), centred.b);
        }
}

TEST(PointGroup, MirrorAndHalfTurnAllowNonSquareImages) {
  const std::vector<double> x{0, 1, 2, 3, 4, 5};  // 2×3
  std::vector<double> out(6);
  grp::transform_planes({0, 1}, x.data(), 1, 2, 3, out.data());
  EXPECT_EQ(out, (std::vector<double>{2, 1, 0, 5, 4, 3}));
  grp::transform_planes({2, 0}, x.data(), 1, 2, 3, out.data());
  EXPECT_EQ(out, (std::vector<double>{5, 4, 3, 2, 1, 0}));
  EXPECT_THROW(grp::transform_planes({1, 0}, x.data(), 1, 2, 3, out.data()), eqntk::InvalidArgument);
}

}  // namespace
