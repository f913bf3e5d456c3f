// Distributed construction of the Gram matrices K, Θ of the training set (N×N, lower triangle) and of
// the test set against the training set (M×N), in ScaLAPACK block-cyclic layout.
//
// Work units are the nb×nb blocks ("tiles") of the two matrices: a rank evaluates exactly the tiles it
// owns — for the symmetric training matrix only block rows ≥ block columns, and in diagonal tiles only
// entries i ≥ j (mirrored inside the tile) — with the pairs of a tile spread over OpenMP threads. Entry
// (i, j) is always evaluated in the same order of arguments (train: K(x_i, x_j) with i ≥ j; test:
// K(x*_m, x_n)), so every entry is bitwise identical for any rank count, grid, block size and thread
// count. Self chains (per-image variance maps) are computed once per rank, only for images that the
// rank's unfinished tiles touch.
//
// Long runs: every `progress_interval` seconds the ranks combine their counts with a non-blocking
// allreduce and rank 0 prints tiles done, pairs/s, elapsed time and ETA. With a checkpoint, finished
// tiles are appended to the rank's log as they complete and restored on a rerun. When `stop` becomes
// non-zero on any rank (SIGTERM/SIGUSR1), every rank abandons its tile in flight, flushes its log and
// build_gram throws Interrupted on every rank.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "eqntk/data/image.hpp"
#include "eqntk/parallel/process_grid.hpp"
#include "eqntk/error.hpp"
#include "eqntk/kernel/network.hpp"
#include "eqntk/kernel/problem.hpp"

namespace eqntk::parallel {

struct BuildOptions {
  int threads = 1;
  double progress_interval = 3.0;  ///< seconds between progress lines (and collective stop checks)
  bool quiet = false;              ///< no progress lines
  std::string checkpoint_dir;      ///< empty: no checkpoint
  std::uint64_t fingerprint = 0;   ///< of images + architecture (checkpoint identity)
  std::string description;         ///< human-readable identity for checkpoint messages
  bool test_self = false;          ///< also K(x*, x*) for every test point (for variances)
  const std::atomic<int>* stop = nullptr;  ///< set asynchronously by a signal handler
  std::function<void(const std::string&)> log;  ///< rank 0 output (progress lines)
};

/// Per-rank and global statistics of a build (replicated on every rank after build_gram returns).
struct BuildStats {
  std::int64_t tiles_total = 0, tiles_restored = 0;
  std::int64_t pairs_total = 0, pairs_restored = 0;
  std::vector<std::int64_t> pairs_per_rank;   ///< pairs evaluated by each rank
  std::vector<double> compute_seconds_per_rank;  ///< seconds in tile evaluation per rank
  std::vector<double> peak_rss_mb_per_rank;      ///< peak resident memory of each rank so far (MB)
  double seconds_self = 0.0, seconds_build = 0.0;  ///< wall time (max over ranks)
  /// max / mean of pairs_per_rank (1 = perfect balance).
  [[nodiscard]] double imbalance() const;
};

struct GramMatrices {
  DistMatrix train_nngp, train_ntk;  ///< N×N, lower triangle valid (diagonal tiles symmetric)
  DistMatrix test_nngp, test_ntk;    ///< M×N
  std::vector<double> test_self_nngp, test_self_ntk;  ///< K(x*,x*), Θ(x*,x*) if options.test_self
  BuildStats stats;
};

/// The job was stopped by a signal after flushing its checkpoint (thrown on every rank together).
class Interrupted : public Error {
 public:
  using Error::Error;
};

/// Builds the four matrices of any kernel family (images, spherical signals, molecules). Collective over
/// `grid`; every rank passes a problem over the same items. nb ≥ 1. Throws InvalidArgument (bad
/// checkpoint) or IoError on every rank together, Interrupted when stopped.
[[nodiscard]] GramMatrices build_gram(const ProcessGrid& grid, kernel::KernelProblem& problem, std::int64_t nb,
                                      const BuildOptions& options);

/// Images through the planar engine: build_gram of an ImageProblem.
[[nodiscard]] GramMatrices build_gram(const ProcessGrid& grid, const kernel::Network& net, const data::ImageSet& train,
                                      const data::ImageSet& test, std::int64_t nb, const BuildOptions& options);

}  // namespace eqntk::parallel
