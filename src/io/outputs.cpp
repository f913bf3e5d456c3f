#include "eqntk/io/outputs.hpp"

#include <unistd.h>

#include "eqntk/error.hpp"
#include "eqntk/io/atomic_file.hpp"

namespace eqntk::io {

namespace fs = std::filesystem;

void check_output_dir(const fs::path& out_given, const std::vector<std::string>& names, bool overwrite) {
  const fs::path out = fs::absolute(out_given);
  const std::string shown = out_given.string();
  std::error_code ec;
  if (fs::exists(out, ec)) {
    if (!fs::is_directory(out, ec)) throw IoError("--out '" + shown + "' exists and is not a directory");
    if (::access(out.c_str(), W_OK | X_OK) != 0) throw IoError("--out '" + shown + "' is not writable");
    if (overwrite) return;
    for (const auto& name : names)
      if (fs::exists(out / name))
        throw InvalidArgument("output '" + (out / name).string() +
                              "' exists from an earlier run: use another --out or pass --overwrite");
    return;
  }
  fs::path ancestor = out.parent_path();
  while (!ancestor.empty() && !fs::exists(ancestor, ec)) ancestor = ancestor.parent_path();
  if (ancestor.empty() || !fs::is_directory(ancestor, ec) || ::access(ancestor.c_str(), W_OK | X_OK) != 0)
    throw IoError("--out '" + shown + "' cannot be created: '" + ancestor.string() + "' is not a writable directory");
}

fs::path OutputSet::add(const std::string& name) {
  partials_.push_back(partial_path(dir_ / name));
  return partials_.back();
}

void OutputSet::commit_all() {
  for (const auto& p : partials_) {
    fs::path target = p;
    target.replace_extension();  // drop ".partial"
    try {
      commit_partial(target);
    } catch (const IoError& e) {
      throw WriteError(e.what());
    }
  }
}

void OutputSet::remove_all() noexcept {
  for (const auto& p : partials_) {
    std::error_code ec;
    fs::remove(p, ec);
  }
}

}  // namespace eqntk::io
