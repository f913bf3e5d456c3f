// The one architecture grammar shared by the planar (kernel/architecture.hpp) and SO(3)
// (so3/architecture.hpp) parsers: a small recursive-descent parser that turns text into a token tree.
//
//   list  := item (',' item)*
//   item  := name (':' field)*            e.g.  lift:k=3:group=p4m
//          | name '(' list ')'            e.g.  res(gconv:k=3,relu,gconv:k=3)
//   field := key '=' value                (split by the family's parser; the grammar keeps it raw)
//
// The grammar knows nothing about layer names or keys: each family interprets the nodes and reports its
// own rules. White space around items is ignored; inside an item it is kept (a family may trim it).
// Worked example: "lift:k=3, res(gconv,relu) ,gpool" gives three nodes,
//   {token "lift:k=3", name "lift", fields {"k=3"}}, {token "res(gconv,relu)", name "res", body {gconv, relu}},
//   {token "gpool", name "gpool"}.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace eqntk::kernel {

/// One item of an architecture string.
struct GrammarNode {
  std::string token;                // the item's text, trimmed (what messages quote)
  std::size_t position = 0;         // offset of the token in the whole text
  std::string name;                 // text before the first ':' or '(' (not trimmed: "lift " stays)
  std::vector<std::string> fields;  // the ':'-separated pieces after the name, raw
  bool has_body = false;            // name(...) form
  std::vector<GrammarNode> body;    // the items inside the parentheses
};

/// Parses `text` into items. Errors throw InvalidArgument "<prefix> at '<token>': <rule>" for an empty item
/// ("empty layer (two commas in a row, or a trailing comma?)"), unbalanced parentheses and text after a
/// closing parenthesis; the caller checks for an empty string first.
[[nodiscard]] std::vector<GrammarNode> parse_grammar(std::string_view text, std::string_view prefix);

}  // namespace eqntk::kernel
