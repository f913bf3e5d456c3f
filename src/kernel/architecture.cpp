#include "eqntk/kernel/architecture.hpp"

#include <cctype>
#include <charconv>
#include <cmath>

#include "eqntk/error.hpp"
#include "eqntk/text.hpp"

namespace eqntk::kernel {
namespace {

struct NamedKind {
  std::string_view name;
  LayerKind kind;
};
constexpr NamedKind kKinds[] = {
    {"lift", LayerKind::lift}, {"gconv", LayerKind::gconv},     {"conv", LayerKind::conv},
    {"relu", LayerKind::relu}, {"erf", LayerKind::erf},         {"id", LayerKind::id},
    {"gpool", LayerKind::gpool}, {"gap", LayerKind::gap},       {"flatten", LayerKind::flatten},
    {"dense", LayerKind::dense}};

[[noreturn]] void fail(const std::string& token, const std::string& rule) {
  throw InvalidArgument("invalid architecture at '" + token + "': " + rule);
}

double parse_real(const std::string& token, std::string_view key, std::string_view value) {
  const auto v = text::parse_finite(value);
  if (!v) fail(token, std::string(key) + " must be a finite number, got '" + std::string(value) + "'");
  return *v;
}

LayerSpec parse_layer(std::string_view raw) {
  const std::string token(text::trim(raw));
  if (token.empty()) fail(token, "empty layer (two commas in a row, or a trailing comma?)");
  const auto fields = text::split(token, ':');
  LayerSpec spec;
  spec.token = token;
  bool known = false;
  for (const auto& nk : kKinds) {
    if (nk.name == fields[0]) {
      spec.kind = nk.kind;
      known = true;
    }
  }
  if (!known)
    fail(token, "unknown layer '" + std::string(fields[0]) +
                    "' (expected lift, gconv, conv, relu, erf, id, gpool, gap, flatten or dense)");
  const bool conv_like = is_spatial_linear(spec.kind);
  const bool weighted = conv_like || spec.kind == LayerKind::dense;
  for (std::size_t f = 1; f < fields.size(); ++f) {
    const auto eq = fields[f].find('=');
    if (eq == std::string_view::npos) fail(token, "expected key=value, got '" + std::string(fields[f]) + "'");
    const std::string_view key = fields[f].substr(0, eq);
    const std::string_view value = fields[f].substr(eq + 1);
    if (conv_like && key == "k") {
      int k = 0;
      const auto [ptr, ec] = std::from_chars(value.data(), value.data() + value.size(), k);
      if (ec != std::errc() || ptr != value.data() + value.size() || k < 1)
        fail(token, "k must be a positive integer, got '" + std::string(value) + "'");
      if (k % 2 == 0) fail(token, "k must be odd (filters are centred on the output pixel), got " + std::to_string(k));
      spec.k = k;
    } else if (conv_like && key == "pad") {
      if (value == "same") spec.pad = Padding::same;
      else if (value == "valid") spec.pad = Padding::valid;
      else if (value == "circular") spec.pad = Padding::circular;
      else fail(token, "pad must be same, valid or circular, got '" + std::string(value) + "'");
    } else if (weighted && key == "w") {
      spec.w = parse_real(token, key, value);
      if (spec.w <= 0.0) fail(token, "w (sigma_w) must be positive");
    } else if (weighted && key == "b") {
      spec.b = parse_real(token, key, value);
      if (spec.b < 0.0) fail(token, "b (sigma_b) must be non-negative");
    } else {
      fail(token, "layer '" + std::string(fields[0]) + "' takes no key '" + std::string(key) + "'" +
                      (weighted ? (conv_like ? " (keys: k, pad, w, b)" : " (keys: w, b)") : ""));
    }
  }
  return spec;
}

// Checks the order rules documented in the header. State machine over what the next layer sees.
void validate_order(const std::vector<LayerSpec>& layers) {
  enum class Stage { input, c4, plane, pooled };
  Stage stage = Stage::input;
  // The dual activations need Gaussian pre-activations: true after a linear layer (readouts keep it),
  // false on the raw input and after a nonlinearity.
  bool gaussian = false;
  bool any_linear = false;
  for (const auto& l : layers) {
    switch (l.kind) {
      case LayerKind::lift:
        if (stage != Stage::input)
          fail(l.token, stage == Stage::pooled ? "spatial layer after pooling/flatten"
                                               : "lift must be the first spatial layer (there is only one lifting layer)");
        stage = Stage::c4;
        break;
      case LayerKind::gconv:
        if (stage == Stage::input || stage == Stage::plane)
          fail(l.token, "gconv needs a preceding lift (group convolutions act on p4 feature maps)");
        if (stage == Stage::pooled) fail(l.token, "spatial layer after pooling/flatten");
        break;
      case LayerKind::conv:
        if (stage == Stage::c4) fail(l.token, "conv after lift: use gconv on p4 feature maps");
        if (stage == Stage::pooled) fail(l.token, "spatial layer after pooling/flatten");
        stage = Stage::plane;
        break;
      case LayerKind::relu:
      case LayerKind::erf:
      case LayerKind::id:
        if (!any_linear)
          fail(l.token, "a nonlinearity needs a preceding lift/conv/gconv/dense layer (the input is not Gaussian)");
        if (!gaussian)
          fail(l.token, "two nonlinearities without a linear layer between them (the second input is not Gaussian)");
        gaussian = false;
        break;
      case LayerKind::gpool:
        if (stage == Stage::pooled) fail(l.token, "pooling twice (only one gpool/gap/flatten readout)");
        if (stage != Stage::c4) fail(l.token, "gpool pools p4 feature maps: it needs a preceding lift (use gap for a CNN)");
        stage = Stage::pooled;
        break;
      case LayerKind::gap:
        if (stage == Stage::pooled) fail(l.token, "pooling twice (only one gpool/gap/flatten readout)");
        if (stage == Stage::c4) fail(l.token, "gap on p4 feature maps: use gpool");
        if (stage == Stage::input) fail(l.token, "gap needs a preceding conv layer");
        stage = Stage::pooled;
        break;
      case LayerKind::flatten:
        if (stage == Stage::pooled) fail(l.token, "pooling twice (only one gpool/gap/flatten readout)");
        stage = Stage::pooled;
        break;
      case LayerKind::dense:
        if (stage != Stage::pooled) fail(l.token, "dense before pooling: add gpool, gap or flatten first");
        break;
    }
    if (is_spatial_linear(l.kind) || l.kind == LayerKind::dense) any_linear = gaussian = true;
  }
  if (layers.empty()) fail("", "empty architecture");
  if (stage != Stage::pooled)
    fail(layers.back().token, "the network has no readout: end with gpool, gap or flatten, then dense");
  std::size_t last = layers.size() - 1;
  if (is_nonlinearity(layers[last].kind) && last > 0) --last;
  if (layers[last].kind != LayerKind::dense)
    fail(layers.back().token, "the network must end with a dense readout (one scalar output)");
}

}  // namespace

std::string_view to_string(LayerKind kind) {
  for (const auto& nk : kKinds)
    if (nk.kind == kind) return nk.name;
  return "?";
}

std::string_view to_string(Padding pad) {
  switch (pad) {
    case Padding::same: return "same";
    case Padding::valid: return "valid";
    case Padding::circular: return "circular";
  }
  return "?";
}

bool is_spatial_linear(LayerKind kind) {
  return kind == LayerKind::lift || kind == LayerKind::gconv || kind == LayerKind::conv;
}
bool is_nonlinearity(LayerKind kind) {
  return kind == LayerKind::relu || kind == LayerKind::erf || kind == LayerKind::id;
}
bool is_readout(LayerKind kind) {
  return kind == LayerKind::gpool || kind == LayerKind::gap || kind == LayerKind::flatten;
}

Architecture Architecture::parse(std::string_view text) {
  Architecture arch;
  if (text::trim(text).empty()) fail("", "empty architecture string");
  for (const auto part : text::split(text, ',')) arch.layers_.push_back(parse_layer(part));
  validate_order(arch.layers_);
  return arch;
}

bool Architecture::is_group_network() const {
  for (const auto& l : layers_)
    if (l.kind == LayerKind::lift) return true;
  return false;
}

std::string Architecture::canonical() const {
  std::string out;
  for (const auto& l : layers_) {
    if (!out.empty()) out += ',';
    out += to_string(l.kind);
    if (is_spatial_linear(l.kind))
      out += ":k=" + std::to_string(l.k) + ":pad=" + std::string(to_string(l.pad));
    if (is_spatial_linear(l.kind) || l.kind == LayerKind::dense)
      out += ":w=" + text::format_real(l.w) + ":b=" + text::format_real(l.b);
  }
  return out;
}

}  // namespace eqntk::kernel
