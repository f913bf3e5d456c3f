// The command line of the tools in tools/: every tool declares its flags with Boost.Program_options (typed
// values, the default of each shown by --help, a value required after every flag that takes one) and hands
// them to parse_options, so that all tools answer alike:
//   --help / -h          "usage: <tool> [options]", the tool's notes and every flag with its default, on
//                        stdout; exit status 0
//   a bad command line   one line "<tool>: <message>" on stderr, nothing on stdout; exit status 2 (an unknown,
//                        abbreviated or repeated flag, a missing value, a malformed or out-of-range number, a
//                        value a notifier rejects, a stray positional argument)
// Example (tools/eqntk_mc.cpp; a.size = 5 beforehand is the default):
//   po::options_description flags = tools::tool_flags();
//   flags.add_options()("size", tools::defaulted(&a.size)->notifier(tools::at_least("--size", 1)), "image height");
//   tools::parse_options("eqntk_mc", flags, argc, argv);
#pragma once

#include <boost/program_options.hpp>

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <iostream>
#include <string>
#include <type_traits>

namespace eqntk::tools {

namespace po = boost::program_options;

/// Ends a tool on a bad command line: "<tool>: <message>" (one line) on stderr, exit status 2.
[[noreturn]] inline void usage_error(const char* tool, const std::string& message) {
  std::fprintf(stderr, "%s: %s\n", tool, message.c_str());
  std::exit(2);
}

/// The flag list of a tool, for --help lines of up to 120 columns.
inline po::options_description tool_flags() { return po::options_description("options", 120, 60); }

/// A flag's value bound to `*target`, whose current value is the default (`shown`: its text in --help, for a
/// number whose shortest form is not what po prints, e.g. "1e-8").
template <class T>
po::typed_value<T>* defaulted(T* target) {
  return po::value(target)->default_value(*target);
}
template <class T>
po::typed_value<T>* defaulted(T* target, const std::string& shown) {
  return po::value(target)->default_value(*target, shown);
}

/// A notifier for an integer flag, po::value(...)->notifier(at_least("--size", 1)): a value below `min` is a
/// usage error ("<flag> must be at least <min>, got <value>").
template <class T>
auto at_least(const char* flag, T min) {
  static_assert(std::is_integral_v<T>);
  return [flag, min](const auto& value) {
    if (value < min)
      throw po::error(std::string(flag) + " must be at least " + std::to_string(min) + ", got " +
                      std::to_string(value));
  };
}

/// True when `flag` was given on the command line (not just defaulted).
inline bool given(const po::variables_map& vm, const char* flag) {
  const auto it = vm.find(flag);
  return it != vm.end() && !it->second.defaulted();
}

/// Parses argv[1..argc) against `flags` (to which it adds --help/-h), stores every value into the variables
/// the flags are bound to (the defaults for the flags not given) and runs their notifiers. Flags must be
/// spelled in full (no abbreviations), each at most once; `--flag value` and `--flag=value` both work.
/// `positional` (may be null: none accepted) names the flags that bare arguments fill. On --help prints
/// "usage: <tool> [options]", `notes` (lines ending in '\n', may be empty) and the flags, and exits 0; on a
/// bad command line calls usage_error (exit 2). Anything a notifier throws counts as a bad command line.
/// Returns the variables map (given(vm, "flag"): whether the flag was on the command line).
inline po::variables_map parse_options(const char* tool, po::options_description& flags, int argc, char** argv,
                                       const char* notes = "",
                                       const po::positional_options_description* positional = nullptr) {
  flags.add_options()("help,h", "print this help and exit");
  const po::positional_options_description none;
  po::variables_map vm;
  try {
    po::store(po::command_line_parser(argc, argv)
                  .options(flags)
                  .positional(positional != nullptr ? *positional : none)
                  .style(po::command_line_style::default_style & ~po::command_line_style::allow_guessing)
                  .run(),
              vm);
    if (vm.count("help") != 0) {
      std::cout << "usage: " << tool << " [options]\n" << notes << flags << std::flush;
      std::exit(0);
    }
    po::notify(vm);
  } catch (const std::exception& e) {
    usage_error(tool, e.what());
  }
  return vm;
}

}  // namespace eqntk::tools
