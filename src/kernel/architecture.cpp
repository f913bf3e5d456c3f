#include "eqntk/kernel/architecture.hpp"

#include <cctype>
#include <charconv>
#include <cmath>

#include "eqntk/error.hpp"
#include "eqntk/kernel/grammar.hpp"
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
    {"dense", LayerKind::dense}, {"avgpool", LayerKind::avgpool}, {"res", LayerKind::res}};

[[noreturn]] void fail(const std::string& token, const std::string& rule) {
  throw InvalidArgument("invalid architecture at '" + token + "': " + rule);
}

double parse_real(const std::string& token, std::string_view key, std::string_view value) {
  const auto v = text::parse_finite(value);
  if (!v) fail(token, std::string(key) + " must be a finite number, got '" + std::string(value) + "'");
  return *v;
}

std::vector<LayerSpec> parse_list(const std::vector<GrammarNode>& nodes);

LayerSpec parse_layer(const GrammarNode& node) {
  const std::string& token = node.token;
  LayerSpec spec;
  spec.token = token;
  bool known = false;
  for (const auto& nk : kKinds) {
    if (nk.name == node.name) {
      spec.kind = nk.kind;
      known = true;
    }
  }
  if (!known)
    fail(token, "unknown layer '" + node.name +
                    "' (expected lift, gconv, conv, relu, erf, id, gpool, gap, flatten, dense, avgpool or res(...))");
  if (node.has_body != (spec.kind == LayerKind::res))
    fail(token, node.has_body ? "only res takes a parenthesised list of layers"
                              : "res needs its layers in parentheses: res(<layers>)");
  if (spec.kind == LayerKind::res) {
    spec.body = parse_list(node.body);
    return spec;
  }
  const bool conv_like = is_spatial_linear(spec.kind);
  const bool weighted = conv_like || spec.kind == LayerKind::dense;
  for (const std::string& field : node.fields) {
    const auto eq = field.find('=');
    if (eq == std::string::npos) fail(token, "expected key=value, got '" + field + "'");
    const std::string_view key = std::string_view(field).substr(0, eq);
    const std::string_view value = std::string_view(field).substr(eq + 1);
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
    } else if (key == "group") {
      if (spec.kind != LayerKind::lift)
        fail(token, "group= is a key of lift only (gconv inherits the lift's group)");
      const auto g = group::from_name(value);
      if (!g) fail(token, "unknown group '" + std::string(value) + "' (expected C1, C2, C4, D1, D2, D4, p4 or p4m)");
      spec.group = *g;
    } else if (spec.kind == LayerKind::avgpool && key == "s") {
      int v = 0;
      const auto [ptr, ec] = std::from_chars(value.data(), value.data() + value.size(), v);
      if (ec != std::errc() || ptr != value.data() + value.size() || v < 2)
        fail(token, "s (pooling cell size) must be an integer of at least 2, got '" + std::string(value) + "'");
      spec.s = v;
    } else {
      const char* keys = spec.kind == LayerKind::lift    ? " (keys: k, pad, w, b, group)"
                         : conv_like                      ? " (keys: k, pad, w, b)"
                         : weighted                       ? " (keys: w, b)"
                         : spec.kind == LayerKind::avgpool ? " (keys: s)"
                                                           : "";
      fail(token, "layer '" + node.name + "' takes no key '" + std::string(key) + "'" + keys);
    }
  }
  return spec;
}

std::vector<LayerSpec> parse_list(const std::vector<GrammarNode>& nodes) {
  std::vector<LayerSpec> layers;
  for (const GrammarNode& node : nodes) layers.push_back(parse_layer(node));
  return layers;
}

// What the next layer sees, for the order rules of the header.
enum class State { input, group, plane, pooled };
struct OrderState {
  State state = State::input;
  // The dual activations need Gaussian pre-activations: true after a linear layer (readouts and average
  // pooling keep it; a residual sum is treated as one, as neural-tangents does), false on the raw input and
  // after a nonlinearity.
  bool gaussian = false;
  bool any_linear = false;
};

// Checks the order rules documented in the header over `layers`, advancing `o`. `in_res` names the res
// token when checking a block's body.
void validate_chain(const std::vector<LayerSpec>& layers, OrderState& o, const std::string* in_res) {
  for (const auto& l : layers) {
    switch (l.kind) {
      case LayerKind::lift:
        if (in_res != nullptr) fail(l.token, "a res block keeps the state kind: lift cannot be inside res(...)");
        if (o.state != State::input)
          fail(l.token, o.state == State::pooled ? "spatial layer after pooling/flatten"
                                                 : "lift must be the first spatial layer (there is only one lifting layer)");
        o.state = State::group;
        break;
      case LayerKind::gconv:
        if (o.state == State::input || o.state == State::plane)
          fail(l.token, "gconv needs a preceding lift (group convolutions act on group feature maps)");
        if (o.state == State::pooled) fail(l.token, "spatial layer after pooling/flatten");
        break;
      case LayerKind::conv:
        if (o.state == State::group) fail(l.token, "conv after lift: use gconv on group feature maps");
        if (o.state == State::pooled) fail(l.token, "spatial layer after pooling/flatten");
        o.state = State::plane;
        break;
      case LayerKind::relu:
      case LayerKind::erf:
      case LayerKind::id:
        if (!o.any_linear)
          fail(l.token, "a nonlinearity needs a preceding lift/conv/gconv/dense layer (the input is not Gaussian)");
        if (!o.gaussian)
          fail(l.token, "two nonlinearities without a linear layer between them (the second input is not Gaussian)");
        o.gaussian = false;
        break;
      case LayerKind::gpool:
      case LayerKind::gap:
      case LayerKind::flatten:
        if (in_res != nullptr)
          fail(l.token, "a res block cannot contain a readout (gpool, gap, flatten): it keeps the state kind");
        if (o.state == State::pooled) fail(l.token, "pooling twice (only one gpool/gap/flatten readout)");
        if (l.kind == LayerKind::gpool && o.state != State::group)
          fail(l.token, "gpool pools group feature maps: it needs a preceding lift (use gap for a CNN)");
        if (l.kind == LayerKind::gap && o.state == State::group) fail(l.token, "gap on group feature maps: use gpool");
        if (l.kind == LayerKind::gap && o.state == State::input) fail(l.token, "gap needs a preceding conv layer");
        o.state = State::pooled;
        break;
      case LayerKind::dense:
        if (in_res != nullptr) fail(l.token, "a res block cannot contain dense (it acts on spatial feature maps)");
        if (o.state != State::pooled) fail(l.token, "dense before pooling: add gpool, gap or flatten first");
        break;
      case LayerKind::avgpool:
        if (in_res != nullptr)
          fail(l.token, "a res block must keep the spatial size: avgpool cannot be inside res(...)");
        if (o.state == State::pooled)
          fail(l.token, "avgpool after a readout (gpool/gap/flatten): it averages spatial feature maps");
        if (o.state == State::input) fail(l.token, "avgpool needs spatial feature maps: a preceding lift or conv");
        break;
      case LayerKind::res: {
        if (o.state == State::pooled) fail(l.token, "res after a readout (gpool/gap/flatten): it acts on feature maps");
        if (o.state == State::input) fail(l.token, "res needs spatial feature maps: a preceding lift or conv");
        if (l.body.empty()) fail(l.token, "empty res block");
        if (!is_spatial_linear(l.body.front().kind))
          fail(l.token, "a res body must start with a linear spatial layer (gconv or conv)");
        OrderState inner = o;
        validate_chain(l.body, inner, &l.token);
        if (inner.state != o.state) fail(l.token, "a res body must keep the state kind");
        o.gaussian = true;
        o.any_linear = true;
        break;
      }
      case LayerKind::res_end:
        fail(l.token, "internal layer kind");
    }
    if (is_spatial_linear(l.kind) || l.kind == LayerKind::dense) o.any_linear = o.gaussian = true;
  }
}

void validate_order(const std::vector<LayerSpec>& layers) {
  OrderState o;
  validate_chain(layers, o, nullptr);
  if (layers.empty()) fail("", "empty architecture");
  if (o.state != State::pooled)
    fail(layers.back().token, "the network has no readout: end with gpool, gap or flatten, then dense");
  std::size_t last = layers.size() - 1;
  if (is_nonlinearity(layers[last].kind) && last > 0) --last;
  if (layers[last].kind != LayerKind::dense)
    fail(layers.back().token, "the network must end with a dense readout (one scalar output)");
}

void append_canonical(const std::vector<LayerSpec>& layers, std::string& out) {
  bool first = true;
  for (const auto& l : layers) {
    if (!first) out += ',';
    first = false;
    out += to_string(l.kind);
    if (is_spatial_linear(l.kind))
      out += ":k=" + std::to_string(l.k) + ":pad=" + std::string(to_string(l.pad));
    if (is_spatial_linear(l.kind) || l.kind == LayerKind::dense)
      out += ":w=" + text::format_real(l.w) + ":b=" + text::format_real(l.b);
    if (l.kind == LayerKind::lift && l.group != group::PointGroup::C4) out += ":group=" + std::string(group::name(l.group));
    if (l.kind == LayerKind::avgpool) out += ":s=" + std::to_string(l.s);
    if (l.kind == LayerKind::res) {
      out += '(';
      append_canonical(l.body, out);
      out += ')';
    }
  }
}

}  // namespace

std::string_view to_string(LayerKind kind) {
  for (const auto& nk : kKinds)
    if (nk.kind == kind) return nk.name;
  return kind == LayerKind::res_end ? "res_end" : "?";
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
  arch.layers_ = parse_list(parse_grammar(text, "invalid architecture"));
  validate_order(arch.layers_);
  return arch;
}

bool Architecture::is_group_network() const {
  for (const auto& l : layers_)
    if (l.kind == LayerKind::lift) return true;
  return false;
}

group::PointGroup Architecture::group() const {
  for (const auto& l : layers_)
    if (l.kind == LayerKind::lift) return l.group;
  return group::PointGroup::C1;
}

std::string Architecture::canonical() const {
  std::string out;
  append_canonical(layers_, out);
  return out;
}

}  // namespace eqntk::kernel
