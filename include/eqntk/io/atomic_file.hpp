// Atomic output files and output-directory checks.
//
// An output `<path>` is first written as `<path>.partial`, flushed to disk (fsync), and renamed to
// `<path>` only on success, so a reader never sees a half-written result and a failed run leaves no
// file that looks complete. A pre-existing `<path>` is replaced only by a successful commit.
//
//   {
//     eqntk::io::AtomicFile out(dir / "kernel.npy");   // creates kernel.npy.partial
//     out.write(header);
//     out.write(data_bytes);
//     out.commit();                                    // fsync, rename to kernel.npy
//   }                                                  // without commit(): .partial removed
//
// For files written by several MPI ranks (MPI-IO on partial_path(p)), rank 0 calls
// commit_partial(p) after every rank has succeeded, or remove_partial(p) otherwise.
#pragma once

#include <cstddef>
#include <filesystem>
#include <span>
#include <string_view>

namespace eqntk::io {

/// `<path>.partial`: where the contents of `path` are written before being committed.
[[nodiscard]] std::filesystem::path partial_path(const std::filesystem::path& path);

/// Fsyncs `<path>.partial`, renames it to `path` (replacing any existing file) and fsyncs the
/// directory. Throws WriteError naming the file if the partial file is missing or any step fails
/// (the partial file is then left in place for the caller to inspect or remove). Not collective.
void commit_partial(const std::filesystem::path& path);

/// Removes `<path>.partial` if it exists; never throws. Not collective.
void remove_partial(const std::filesystem::path& path) noexcept;

/// Makes sure `dir` is a writable directory, creating it (and missing parents) if needed, by
/// creating and removing a probe file in it. Throws IoError naming the directory if it cannot be
/// created, is not a directory, or is not writable. Not collective (rank 0 checks, then broadcasts).
void ensure_writable_directory(const std::filesystem::path& dir);

/// A file written through `<target>.partial` and renamed to `<target>` by commit(); see the file
/// comment. Destroying it without a successful commit() closes and removes the partial file.
/// Not thread-safe; movable, not copyable.
class AtomicFile {
 public:
  /// Creates (truncating) `<target>.partial`. Throws IoError naming it if it cannot be created,
  /// e.g. because the directory does not exist or is not writable.
  explicit AtomicFile(std::filesystem::path target);
  ~AtomicFile();
  AtomicFile(AtomicFile&& other) noexcept;
  AtomicFile& operator=(AtomicFile&& other) noexcept;
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  /// Appends `bytes`. Throws WriteError naming the file on a write error (e.g. disk full, file-size
  /// limit) or if the file was already committed or abandoned.
  void write(std::span<const std::byte> bytes);
  void write(std::string_view bytes);

  /// Fsyncs, closes and renames the partial file to the target. Throws WriteError naming the file if
  /// a step fails; the partial file is then removed and the target left as it was.
  void commit();

  /// Closes and removes the partial file without touching the target; never throws. Idempotent.
  void abandon() noexcept;

  [[nodiscard]] const std::filesystem::path& target() const { return target_; }
  [[nodiscard]] std::filesystem::path partial() const { return partial_path(target_); }
  [[nodiscard]] bool committed() const { return committed_; }

 private:
  std::filesystem::path target_;
  int fd_ = -1;  // open partial file, or -1 once committed/abandoned/moved from
  bool committed_ = false;
};

}  // namespace eqntk::io
