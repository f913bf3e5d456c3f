// The output directory of a run: checked before any work, written as `.partial` files, committed together.
//
//   check_output_dir("out", {"metrics.json", "predictions.npy"}, false);  // before heavy work, rank 0
//   OutputSet out("out");
//   write_npy(out.add("predictions.npy"), shape, values);                  // out/predictions.npy.partial
//   out.commit_all();                                                      // renamed, metrics.json last
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace eqntk::io {

/// Checks that `out` can receive files `names` without creating anything (a failed run leaves no trace):
/// an existing directory must be writable and hold none of `names` (unless `overwrite`); a missing one must
/// have a writable existing ancestor. Throws IoError (unusable location) or InvalidArgument (an earlier
/// run's output would be replaced without --overwrite). Not collective.
void check_output_dir(const std::filesystem::path& out, const std::vector<std::string>& names, bool overwrite);

/// Pending outputs of one directory: each written to `<name>.partial`, renamed by commit_all() in the order
/// added (add the file that marks a complete run last). Not collective: rank 0 commits after every rank
/// succeeded.
class OutputSet {
 public:
  explicit OutputSet(std::filesystem::path dir) : dir_(std::move(dir)) {}
  /// The partial path of `name` in the directory, remembered for commit_all/remove_all.
  [[nodiscard]] std::filesystem::path add(const std::string& name);
  /// Renames every partial file to its name. Throws WriteError naming the file that failed.
  void commit_all();
  /// Removes every partial file; never throws.
  void remove_all() noexcept;

 private:
  std::filesystem::path dir_;
  std::vector<std::filesystem::path> partials_;
};

}  // namespace eqntk::io
