// Checkpoints of Gram-matrix tiles: append-only per-rank logs of finished rectangles.
//
// A checkpoint directory holds `manifest.txt` (a fingerprint of the images and architecture) and one
// log per rank and run, `tiles-<run>-r<rank>.log`, each a sequence of records
//   header: magic "EQTILE01", int32 matrix, int32 reserved, int64 r0, c0, rows, cols, uint64 checksum
//   payload: rows·cols NNGP values then rows·cols NTK values, float64, row-major.
// Records are appended and flushed as tiles finish, so a killed process loses only tiles in flight; a
// record cut short by a kill, or one whose checksum fails, is ignored. A rerun reads the logs of every
// earlier run, whatever its rank count, grid or block size, and copies any entry a record covers:
// rectangles need not match the new run's tiles. No MPI here: the Gram builder does the collectives.
#pragma once

#include <cstdint>
#include <cstdio>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace eqntk::io {

/// A rectangle [r0, r0+rows) × [c0, c0+cols) of matrix `matrix` (0: train, 1: test).
struct TileRect {
  int matrix = 0;
  std::int64_t r0 = 0, c0 = 0, rows = 0, cols = 0;
};

class Checkpoint {
 public:
  /// Rank 0 only, before any Checkpoint is opened: creates `dir` and its manifest, or checks that the
  /// existing manifest has the same fingerprint. Throws InvalidArgument naming the directory and what
  /// differs when the checkpoint was made for other data or architecture, IoError when unwritable.
  static void create_or_verify(const std::string& dir, std::uint64_t fingerprint, const std::string& description);

  /// Opens this rank's log for appending and indexes every record of every log in `dir`.
  Checkpoint(std::string dir, const std::string& run_id, int rank);
  ~Checkpoint();
  Checkpoint(const Checkpoint&) = delete;
  Checkpoint& operator=(const Checkpoint&) = delete;

  /// Copies every entry of `rect` that some record covers into k/t (row-major rect.rows×rect.cols) and
  /// sets mask[e] = 1 for it. Returns the number of entries newly filled. Records with a bad checksum
  /// are skipped.
  std::int64_t restore(const TileRect& rect, double* k, double* t, std::vector<char>& mask);

  /// Appends a finished rectangle and flushes it to the operating system.
  void append(const TileRect& rect, const double* k, const double* t);

  /// fsync of this rank's log (called on interruption and at the end).
  void sync();

  [[nodiscard]] std::int64_t records_indexed() const { return records_indexed_; }

 private:
  struct Record {
    TileRect rect;
    std::string file;
    std::int64_t offset = 0;  // of the payload
    std::uint64_t checksum = 0;
  };
  void index_file(const std::string& path);
  bool read_payload(const Record& r, std::vector<double>& payload);

  std::string dir_;
  std::string path_;
  std::FILE* log_ = nullptr;
  // matrix → r0 → records sorted by c0.
  std::map<int, std::map<std::int64_t, std::vector<Record>>> index_;
  std::int64_t max_rows_ = 0, max_cols_ = 0, records_indexed_ = 0;
};

/// FNV-1a 64-bit hash, chainable: hash = fnv1a(bytes, n, hash).
[[nodiscard]] std::uint64_t fnv1a(const void* bytes, std::size_t n, std::uint64_t hash = 1469598103934665603ULL);

/// The identity of a checkpoint's inputs: FNV-1a over a text (architecture and options) and then the
/// shape and values of every input array, in the order added. Two runs may share a checkpoint only when
/// their fingerprints agree.
///   Fingerprint f("lift:k=3,relu,gpool,dense");
///   f.add({{1, 28, 28, 60000}}, train_pixels);
///   f.add({{1, 28, 28, 10000}}, test_pixels);
class Fingerprint {
 public:
  explicit Fingerprint(std::string_view identity) : hash_(fnv1a(identity.data(), identity.size())) {}
  void add(std::span<const std::int64_t> shape, std::span<const double> values) {
    hash_ = fnv1a(shape.data(), shape.size_bytes(), hash_);
    hash_ = fnv1a(values.data(), values.size_bytes(), hash_);
  }
  [[nodiscard]] std::uint64_t value() const { return hash_; }

 private:
  std::uint64_t hash_;
};

}  // namespace eqntk::io
