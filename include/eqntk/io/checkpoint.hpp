// Checkpoints of Gram-matrix tiles: append-only per-rank logs of finished rectangles (format v2).
//
// A checkpoint directory holds `manifest.txt` and one log per rank and run, `tiles-<run>-r<rank>.log`.
// The manifest is the checkpoint's identity, one `key value` line each:
//   eqntk checkpoint v2
//   eqntk_version 0.1.0        the program that wrote it
//   isa avx512                 the instruction set of the kernels (AVX-512 and AVX2 differ in the last bits)
//   precision float64          float64 or mixed
//   fingerprint 0123abcd...    of the architecture, options and every input value
//   describes ...              human-readable, for messages
// A run refuses a checkpoint whose identity differs, with one line naming what differs (for the instruction
// set: rerun with EQNTK_ISA set to the recorded one). Each log is a sequence of records
//   header: magic "EQTILE02", int32 matrix, int32 reserved, int64 r0, c0, rows, cols, uint64 checksum
//   payload: rows·cols NNGP values then rows·cols NTK values, float64, row-major,
// where the checksum is FNV-1a over the first 48 header bytes (magic to cols: the tile's coordinates) and
// then the payload. Records are appended and flushed as tiles finish, so a killed process loses only tiles
// in flight; a record cut short by a kill, or one whose checksum fails, is ignored. A rerun reads the logs
// of every earlier run, whatever its rank count, grid or block size, keeps in its index only the records
// that touch entries this rank needs, and copies any entry a record covers: rectangles need not match the
// new run's tiles. No MPI here: the Gram builder does the collectives.
#pragma once

#include <cstdint>
#include <cstdio>
#include <functional>
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

/// What a checkpoint was made for; two runs share a checkpoint only when every field but the description agrees.
struct CheckpointIdentity {
  std::uint64_t fingerprint = 0;  ///< architecture, options, input values (Fingerprint)
  std::string description;        ///< human-readable, for messages
  std::string eqntk_version;
  std::string instruction_set;    ///< "avx512", "avx2" or "baseline"
  std::string precision;          ///< "float64" or "mixed"
};

class Checkpoint {
 public:
  /// Rank 0 only, before any Checkpoint is opened: creates `dir` and its manifest, or checks that the
  /// existing manifest has the same identity. Throws InvalidArgument naming the directory and what differs
  /// (format version, eqntk version, instruction set, precision, or data and architecture), IoError when the
  /// manifest is unreadable, WriteError when it cannot be written.
  static void create_or_verify(const std::string& dir, const CheckpointIdentity& identity);

  /// Opens this rank's log for appending and indexes the records of every log in `dir` for which
  /// `wanted(rect)` holds (all records when `wanted` is empty). Throws IoError (unlistable directory) or
  /// WriteError (log not writable).
  Checkpoint(std::string dir, const std::string& run_id, int rank, std::function<bool(const TileRect&)> wanted = {});
  ~Checkpoint();
  Checkpoint(const Checkpoint&) = delete;
  Checkpoint& operator=(const Checkpoint&) = delete;

  /// Copies every entry of `rect` that some record covers into k/t (row-major rect.rows×rect.cols) and
  /// sets mask[e] = 1 for it. Returns the number of entries newly filled. Records with a bad checksum
  /// are skipped.
  std::int64_t restore(const TileRect& rect, double* k, double* t, std::vector<char>& mask);

  /// Appends a finished rectangle and flushes it to the operating system. Throws WriteError (disk full).
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
  void index_file(const std::string& path, const std::function<bool(const TileRect&)>& wanted);
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
