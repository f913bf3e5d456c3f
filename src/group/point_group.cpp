#include "eqntk/group/point_group.hpp"

#include <algorithm>
#include <string>

#include "eqntk/error.hpp"

namespace eqntk::group {
namespace {

constexpr Element kC1[] = {{0, 0}};
constexpr Element kC2[] = {{0, 0}, {2, 0}};
constexpr Element kC4[] = {{0, 0}, {1, 0}, {2, 0}, {3, 0}};
constexpr Element kD1[] = {{0, 0}, {0, 1}};
constexpr Element kD2[] = {{0, 0}, {2, 0}, {0, 1}, {2, 1}};
constexpr Element kD4[] = {{0, 0}, {1, 0}, {2, 0}, {3, 0}, {0, 1}, {1, 1}, {2, 1}, {3, 1}};

}  // namespace

std::string_view name(PointGroup g) {
  switch (g) {
    case PointGroup::C1: return "C1";
    case PointGroup::C2: return "C2";
    case PointGroup::C4: return "C4";
    case PointGroup::D1: return "D1";
    case PointGroup::D2: return "D2";
    case PointGroup::D4: return "D4";
  }
  return "?";
}

std::optional<PointGroup> from_name(std::string_view text) {
  if (text == "p4") return PointGroup::C4;
  if (text == "p4m") return PointGroup::D4;
  for (const PointGroup g : kAllGroups)
    if (name(g) == text) return g;
  return std::nullopt;
}

std::span<const Element> elements(PointGroup g) {
  switch (g) {
    case PointGroup::C1: return kC1;
    case PointGroup::C2: return kC2;
    case PointGroup::C4: return kC4;
    case PointGroup::D1: return kD1;
    case PointGroup::D2: return kD2;
    case PointGroup::D4: return kD4;
  }
  return kC1;
}

int order(PointGroup g) { return static_cast<int>(elements(g).size()); }

int index_of(PointGroup g, Element e) {
  const auto el = elements(g);
  const auto it = std::find(el.begin(), el.end(), e);
  return it == el.end() ? -1 : static_cast<int>(it - el.begin());
}

bool is_subgroup(PointGroup sub, PointGroup super) {
  const auto el = elements(sub);
  return std::all_of(el.begin(), el.end(), [&](Element e) { return index_of(super, e) >= 0; });
}

void transform_planes(Element g, const double* in, std::int64_t channels, std::int64_t h, std::int64_t w,
                      double* out) {
  if (g.r % 2 == 1 && h != w)
    throw InvalidArgument("a quarter turn of an image needs a square image, got " + std::to_string(h) + "x" +
                          std::to_string(w));
  const Element source = inverse(g);
  for (std::int64_t i = 0; i < h; ++i)
    for (std::int64_t j = 0; j < w; ++j) {
      const Offset s = act_on_pixel(source, h, w, i, j);
      for (std::int64_t c = 0; c < channels; ++c) out[(c * h + i) * w + j] = in[(c * h + s.a) * w + s.b];
    }
}

}  // namespace eqntk::group
