// "Fail before computing" for the tools: every input a tool will need (datasets, converted caches) is
// checked when it starts, before the first kernel; a missing one ends it at once with one line on stderr
// naming the file and the command that makes it, exit status 2 (bad input).
#pragma once

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

namespace eqntk::tools {

/// Returns if `file` is a readable regular file; otherwise prints
///   <tool>: missing input <file>: <how>     (how: "make it with <command>", or what to give instead)
/// (or "...: cannot read <file>" when it exists but cannot be read) and exits with status 2.
inline void require_file(const char* tool, const std::filesystem::path& file, const std::string& how) {
  std::error_code ec;
  const bool exists = std::filesystem::is_regular_file(file, ec);
  if (exists && std::ifstream(file, std::ios::binary).good()) return;
  if (exists) std::fprintf(stderr, "%s: cannot read input %s\n", tool, file.string().c_str());
  else std::fprintf(stderr, "%s: missing input %s: %s\n", tool, file.string().c_str(), how.c_str());
  std::exit(2);
}

}  // namespace eqntk::tools
