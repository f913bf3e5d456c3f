#include "eqntk/so3/architecture.hpp"

#include <cctype>
#include <charconv>
#include <cmath>

#include "eqntk/error.hpp"
#include "eqntk/kernel/grammar.hpp"
#include "eqntk/text.hpp"

namespace eqntk::so3 {
namespace {

struct NamedKind {
  std::string_view name;
  LayerKind kind;
};
constexpr NamedKind kKinds[] = {{"s2lift", LayerKind::s2lift}, {"so3conv", LayerKind::so3conv},
                                {"so3pool", LayerKind::so3pool}, {"relu", LayerKind::relu},
                                {"erf", LayerKind::erf},         {"id", LayerKind::id},
                                {"dense", LayerKind::dense}};
constexpr std::string_view kPlanar[] = {"lift", "gconv", "conv", "gpool", "gap", "flatten", "avgpool", "res"};

[[noreturn]] void fail(const std::string& token, const std::string& rule) {
  throw InvalidArgument("invalid SO(3) architecture at '" + token + "': " + rule);
}

double parse_real(const std::string& token, std::string_view key, std::string_view value) {
  const auto v = text::parse_finite(value);
  if (!v) fail(token, std::string(key) + " must be a finite number, got '" + std::string(value) + "'");
  return *v;
}

// The grid allows N ≤ 4096 and needs N ≥ 2L−1 (network.hpp).
constexpr int kMaxBandLimit = 2048;

int parse_band_limit(const std::string& token, std::string_view value) {
  int v = 0;
  const auto [ptr, ec] = std::from_chars(value.data(), value.data() + value.size(), v);
  if (ec != std::errc() || ptr != value.data() + value.size() || v < 1)
    fail(token, "L (band limit: keep degrees l < L) must be a positive integer, got '" + std::string(value) + "'");
  if (v > kMaxBandLimit)
    fail(token, "L = " + std::to_string(v) + " is too large (at most " + std::to_string(kMaxBandLimit) + ")");
  return v;
}

LayerSpec parse_layer(const kernel::GrammarNode& node) {
  const std::string& token = node.token;
  const std::string_view name = text::trim(node.name);
  LayerSpec spec;
  spec.token = token;
  bool known = false;
  for (const auto& nk : kKinds) {
    if (nk.name == name) {
      spec.kind = nk.kind;
      known = true;
    }
  }
  if (!known || node.has_body) {
    for (const auto planar : kPlanar)
      if (planar == name)
        fail(token, "planar layer '" + std::string(name) +
                        "' cannot be mixed with SO(3) layers (use s2lift, so3conv, so3pool on spherical inputs)");
    fail(token, "unknown layer '" + std::string(name) +
                    "' (expected s2lift, so3conv, so3pool, relu, erf, id or dense)");
  }
  const bool weighted = is_linear(spec.kind);
  const bool band_limited = spec.kind == LayerKind::s2lift || spec.kind == LayerKind::so3conv;
  const char* keys = band_limited ? " (keys: w, b, L)" : " (keys: w, b)";
  for (const std::string& raw_field : node.fields) {
    const std::string_view field = raw_field;
    const auto eq = field.find('=');
    if (eq == std::string_view::npos) fail(token, "expected key=value, got '" + raw_field + "'");
    const std::string_view key = text::trim(field.substr(0, eq));
    const std::string_view value = text::trim(field.substr(eq + 1));
    if (weighted && key == "w") {
      spec.w = parse_real(token, key, value);
      if (spec.w <= 0.0) fail(token, "w (sigma_w) must be positive");
    } else if (weighted && key == "b") {
      spec.b = parse_real(token, key, value);
      if (spec.b < 0.0) fail(token, "b (sigma_b) must be non-negative");
    } else if (band_limited && key == "L") {
      spec.band_limit = parse_band_limit(token, value);
    } else if ((key == "k" || key == "pad") && band_limited) {
      fail(token, "SO(3) layers have global filter support only; key '" + std::string(key) +
                      "' is not supported" + keys);
    } else {
      fail(token, "layer '" + std::string(name) + "' takes no key '" + std::string(key) + "'" +
                      (weighted ? keys : ""));
    }
  }
  return spec;
}

// Order rules of the header; returns the index of so3pool.
std::size_t validate_order(const std::vector<LayerSpec>& layers) {
  enum class State { input, so3, pooled };
  State state = State::input;
  bool gaussian = false;  // the next nonlinearity sees a Gaussian pre-activation (a linear layer came last)
  std::size_t pool = 0;
  for (std::size_t i = 0; i < layers.size(); ++i) {
    const LayerSpec& l = layers[i];
    switch (l.kind) {
      case LayerKind::s2lift:
        if (state != State::input)
          fail(l.token, state == State::pooled ? "s2lift after so3pool" : "s2lift twice (it lifts the input only)");
        state = State::so3;
        break;
      case LayerKind::so3conv:
        if (state == State::input) fail(l.token, "so3conv needs a preceding s2lift (it acts on SO(3) feature maps)");
        if (state == State::pooled) fail(l.token, "so3conv after so3pool");
        break;
      case LayerKind::so3pool:
        if (state == State::input) fail(l.token, "so3pool needs a preceding s2lift");
        if (state == State::pooled) fail(l.token, "pooling twice (only one so3pool)");
        state = State::pooled;
        pool = i;
        break;
      case LayerKind::dense:
        if (state != State::pooled) fail(l.token, "dense before pooling: add so3pool first");
        break;
      case LayerKind::relu:
      case LayerKind::erf:
      case LayerKind::id:
        if (state == State::input)
          fail(l.token, "a nonlinearity needs a preceding s2lift/so3conv/dense layer (the input is not Gaussian)");
        if (!gaussian)
          fail(l.token, "two nonlinearities without a linear layer between them (the second input is not Gaussian)");
        break;
    }
    if (is_linear(l.kind)) gaussian = true;
    if (is_nonlinearity(l.kind)) gaussian = false;
  }
  if (layers.empty()) fail("", "empty architecture");
  if (state != State::pooled)
    fail(layers.back().token, "the network has no readout: end with so3pool, then dense");
  std::size_t last = layers.size() - 1;
  if (is_nonlinearity(layers[last].kind)) --last;
  if (layers[last].kind != LayerKind::dense)
    fail(layers.back().token, "the network must end with a dense readout (one scalar output)");
  return pool;
}

}  // namespace

std::string_view to_string(LayerKind kind) {
  for (const auto& nk : kKinds)
    if (nk.kind == kind) return nk.name;
  return "?";
}

bool is_linear(LayerKind kind) {
  return kind == LayerKind::s2lift || kind == LayerKind::so3conv || kind == LayerKind::dense;
}

bool is_nonlinearity(LayerKind kind) {
  return kind == LayerKind::relu || kind == LayerKind::erf || kind == LayerKind::id;
}

kernel::LayerKind activation(LayerKind kind) {
  switch (kind) {
    case LayerKind::relu: return kernel::LayerKind::relu;
    case LayerKind::erf: return kernel::LayerKind::erf;
    case LayerKind::id: return kernel::LayerKind::id;
    default: throw InvalidArgument("so3::activation: '" + std::string(to_string(kind)) + "' is not a nonlinearity");
  }
}

Architecture Architecture::parse(std::string_view text) {
  if (text::trim(text).empty()) fail("", "empty architecture string");
  Architecture arch;
  for (const kernel::GrammarNode& node : kernel::parse_grammar(text, "invalid SO(3) architecture"))
    arch.layers_.push_back(parse_layer(node));
  arch.pool_ = validate_order(arch.layers_);
  return arch;
}

bool Architecture::looks_like_so3(std::string_view text) {
  for (const auto part : text::split(text, ',')) {
    const std::string_view name = text::trim(text::split(text::trim(part), ':')[0]);
    if (name == "s2lift" || name == "so3conv" || name == "so3pool") return true;
  }
  return false;
}

bool Architecture::has_relu_before_pool() const {
  for (std::size_t i = 0; i < pool_; ++i)
    if (layers_[i].kind == LayerKind::relu) return true;
  return false;
}

bool Architecture::has_band_limits() const {
  for (const auto& l : layers_)
    if (l.band_limit > 0) return true;
  return false;
}

std::string Architecture::canonical() const {
  std::string out;
  for (const auto& l : layers_) {
    if (!out.empty()) out += ',';
    out += to_string(l.kind);
    if (is_linear(l.kind)) out += ":w=" + text::format_real(l.w) + ":b=" + text::format_real(l.b);
    if (l.band_limit > 0) out += ":L=" + std::to_string(l.band_limit);
  }
  return out;
}

}  // namespace eqntk::so3
