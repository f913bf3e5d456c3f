#include "eqntk/kernel/grammar.hpp"

#include "eqntk/error.hpp"
#include "eqntk/text.hpp"

namespace eqntk::kernel {
namespace {

class Parser {
 public:
  Parser(std::string_view text, std::string_view prefix) : text_(text), prefix_(prefix) {}

  // list := item (',' item)*, up to the end of the text (depth 0) or a ')' (depth > 0).
  std::vector<GrammarNode> list(std::size_t& pos, int depth) {
    std::vector<GrammarNode> items;
    while (true) {
      items.push_back(item(pos, depth));
      if (pos >= text_.size()) {
        if (depth > 0) fail(std::string(text::trim(text_)), pos, "unbalanced parentheses: '(' without ')'");
        return items;
      }
      if (text_[pos] == ')') {
        if (depth == 0) fail(items.back().token, pos, "unbalanced parentheses: ')' without '('");
        return items;
      }
      ++pos;  // ','
    }
  }

 private:
  [[noreturn]] void fail(const std::string& token, std::size_t pos, const std::string& rule) const {
    throw InvalidArgument(std::string(prefix_) + " at '" + token + "': " + rule + " (character " +
                          std::to_string(pos + 1) + ")");
  }

  // One item: everything up to the next ',' or ')' at this depth, with a nested list after '('.
  GrammarNode item(std::size_t& pos, int depth) {
    const std::size_t start = pos;
    while (pos < text_.size() && text_[pos] != ',' && text_[pos] != ')' && text_[pos] != '(') ++pos;
    GrammarNode node;
    if (pos < text_.size() && text_[pos] == '(') {
      node.has_body = true;
      node.name = std::string(text::trim(text_.substr(start, pos - start)));
      ++pos;
      node.body = list(pos, depth + 1);
      ++pos;  // ')'
      const std::size_t tail = pos;
      while (pos < text_.size() && text_[pos] != ',' && text_[pos] != ')' && text_[pos] != '(') ++pos;
      set_token(node, start, pos);
      if (!text::trim(text_.substr(tail, pos - tail)).empty() || (pos < text_.size() && text_[pos] == '('))
        fail(node.token, tail, "nothing may follow the closing parenthesis of '" + node.name + "(...)'");
      return node;
    }
    set_token(node, start, pos);
    if (node.token.empty()) {
      // The planar and SO(3) parsers have always reported an empty item with an empty token.
      throw InvalidArgument(std::string(prefix_) + " at '': empty layer (two commas in a row, or a trailing comma?)");
    }
    const auto pieces = text::split(node.token, ':');
    node.name = std::string(pieces[0]);
    for (std::size_t f = 1; f < pieces.size(); ++f) node.fields.emplace_back(pieces[f]);
    return node;
  }

  void set_token(GrammarNode& node, std::size_t start, std::size_t end) const {
    const std::string_view raw = text_.substr(start, end - start);
    const std::string_view trimmed = text::trim(raw);
    node.token = std::string(trimmed);
    node.position = start + static_cast<std::size_t>(trimmed.empty() ? 0 : trimmed.data() - raw.data());
  }

  std::string_view text_;
  std::string_view prefix_;
};

}  // namespace

std::vector<GrammarNode> parse_grammar(std::string_view text, std::string_view prefix) {
  Parser parser(text, prefix);
  std::size_t pos = 0;
  return parser.list(pos, 0);
}

}  // namespace eqntk::kernel
