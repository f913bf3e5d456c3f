#include "eqntk/parallel/gram_builder.hpp"

#include <mpi.h>
#include <omp.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <memory>
#include <numeric>

#include "eqntk/parallel/collective.hpp"
#include "eqntk/build_info.hpp"
#include "eqntk/io/checkpoint.hpp"

namespace eqntk::parallel {
namespace {

using Clock = std::chrono::steady_clock;
using kernel::KernelProblem;
using kernel::KernelValue;

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

constexpr int kTrain = 0;
constexpr int kTest = 1;

// One nb×nb block of a matrix, owned by this rank, with the entries still to evaluate.
struct Tile {
  io::TileRect rect;
  std::vector<char> have;  // row-major rect.rows×rect.cols: 1 where the value is already known
  std::int64_t needed = 0;  // entries this tile must provide (train diagonal tiles: lower triangle only)
  bool done = false;
};

bool entry_needed(const Tile& t, std::int64_t a, std::int64_t b) {
  return t.rect.matrix == kTest || t.rect.r0 + a >= t.rect.c0 + b;
}

std::string format_duration(double s) {
  if (!std::isfinite(s) || s < 0) return "?";
  const auto total = static_cast<long long>(s + 0.5);
  char buf[32];
  if (total >= 3600) std::snprintf(buf, sizeof buf, "%lld:%02lld:%02lld", total / 3600, (total / 60) % 60, total % 60);
  else std::snprintf(buf, sizeof buf, "%lld:%02lld", total / 60, total % 60);
  return buf;
}

class Builder {
 public:
  Builder(const ProcessGrid& grid, KernelProblem& problem, std::int64_t nb, const BuildOptions& opt)
      : grid_(grid), problem_(problem), n_train_(problem.count(0)), n_test_(problem.count(1)), nb_(nb), opt_(opt),
        out_{DistMatrix(grid, n_train_, n_train_, nb), DistMatrix(grid, n_train_, n_train_, nb),
             DistMatrix(grid, n_test_, n_train_, nb), DistMatrix(grid, n_test_, n_train_, nb), {}, {}, {}} {}

  GramMatrices run() {
    list_tiles();
    open_checkpoint();
    restore_tiles();
    const auto t_self = Clock::now();
    compute_self_chains();
    double self_s = seconds_since(t_self);
    const auto t_build = Clock::now();
    compute_tiles();
    double build_s = seconds_since(t_build);
    MPI_Allreduce(MPI_IN_PLACE, &self_s, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
    MPI_Allreduce(MPI_IN_PLACE, &build_s, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
    out_.stats.seconds_self = self_s;
    out_.stats.seconds_build = build_s;
    gather_stats();
    return std::move(out_);
  }

 private:
  DistMatrix& nngp(int matrix) { return matrix == kTrain ? out_.train_nngp : out_.test_nngp; }
  DistMatrix& ntk(int matrix) { return matrix == kTrain ? out_.train_ntk : out_.test_ntk; }

  void list_tiles() {
    const BlockCyclic1D train_rows{n_train_, nb_, grid_.prows()};
    const BlockCyclic1D test_rows{n_test_, nb_, grid_.prows()};
    const BlockCyclic1D cols{n_train_, nb_, grid_.pcols()};
    auto add = [&](int matrix, const BlockCyclic1D& rows, bool lower_only) {
      for (std::int64_t bi = grid_.myrow(); bi < rows.blocks(); bi += grid_.prows())
        for (std::int64_t bj = grid_.mycol(); bj < cols.blocks(); bj += grid_.pcols()) {
          if (lower_only && bj > bi) continue;
          Tile t;
          t.rect = {matrix, bi * nb_, bj * nb_, std::min(nb_, rows.n - bi * nb_), std::min(nb_, cols.n - bj * nb_)};
          t.have.assign(static_cast<std::size_t>(t.rect.rows * t.rect.cols), 0);
          for (std::int64_t a = 0; a < t.rect.rows; ++a)
            for (std::int64_t b = 0; b < t.rect.cols; ++b) t.needed += entry_needed(t, a, b) ? 1 : 0;
          tiles_.push_back(std::move(t));
        }
    };
    add(kTrain, train_rows, true);
    add(kTest, test_rows, false);
    std::int64_t counts[2] = {static_cast<std::int64_t>(tiles_.size()), 0};
    for (const auto& t : tiles_) counts[1] += t.needed;
    MPI_Allreduce(MPI_IN_PLACE, counts, 2, MPI_INT64_T, MPI_SUM, MPI_COMM_WORLD);
    out_.stats.tiles_total = counts[0];
    out_.stats.pairs_total = counts[1];
  }

  void open_checkpoint() {
    if (opt_.checkpoint_dir.empty()) return;
    const io::CheckpointIdentity id{opt_.fingerprint, opt_.description, build::kVersion, kernel::instruction_set(),
                                    problem_.precision()};
    on_root([&] { io::Checkpoint::create_or_verify(opt_.checkpoint_dir, id); });
    // A run id unique to this run, chosen by rank 0, names the logs this run appends to.
    char run_id[64] = {};
    if (grid_.rank() == 0)
      std::snprintf(run_id, sizeof run_id, "%lld-%ld", static_cast<long long>(std::time(nullptr)),
                    static_cast<long>(::getpid()));
    MPI_Bcast(run_id, sizeof run_id, MPI_CHAR, 0, MPI_COMM_WORLD);
    // Only records that touch a block this rank owns are indexed (not every rank's records on every rank).
    const auto wanted = [this](const io::TileRect& r) {
      const DistMatrix& m = nngp(r.matrix);
      return owns_any(m.row_dist(), grid_.myrow(), r.r0, r.rows) && owns_any(m.col_dist(), grid_.mycol(), r.c0, r.cols);
    };
    collectively([&] { checkpoint_ = std::make_unique<io::Checkpoint>(opt_.checkpoint_dir, run_id, grid_.rank(), wanted); });
  }

  // Whether process `proc` owns any index of [first, first + count) of a block-cyclic dimension.
  static bool owns_any(const BlockCyclic1D& d, int proc, std::int64_t first, std::int64_t count) {
    if (count <= 0 || first >= d.n) return false;
    const std::int64_t b0 = std::max<std::int64_t>(first, 0) / d.nb, b1 = (std::min(first + count, d.n) - 1) / d.nb;
    if (b1 - b0 + 1 >= d.nprocs) return true;  // spans a whole cycle of blocks
    for (std::int64_t b = b0; b <= b1; ++b)
      if (b % d.nprocs == proc) return true;
    return false;
  }

  // Copies tile values (row-major buffers) into the local parts of the two matrices.
  void store(const Tile& t, const std::vector<double>& k, const std::vector<double>& th) {
    DistMatrix& mk = nngp(t.rect.matrix);
    DistMatrix& mt = ntk(t.rect.matrix);
    const std::int64_t li0 = mk.row_dist().local_index(t.rect.r0);
    const std::int64_t lj0 = mk.col_dist().local_index(t.rect.c0);
    for (std::int64_t b = 0; b < t.rect.cols; ++b)
      for (std::int64_t a = 0; a < t.rect.rows; ++a) {
        const std::size_t e = static_cast<std::size_t>(a * t.rect.cols + b);
        mk.local(li0 + a, lj0 + b) = k[e];
        mt.local(li0 + a, lj0 + b) = th[e];
      }
  }
  void load(const Tile& t, std::vector<double>& k, std::vector<double>& th) {
    const DistMatrix& mk = nngp(t.rect.matrix);
    const DistMatrix& mt = ntk(t.rect.matrix);
    const std::int64_t li0 = mk.row_dist().local_index(t.rect.r0);
    const std::int64_t lj0 = mk.col_dist().local_index(t.rect.c0);
    k.assign(static_cast<std::size_t>(t.rect.rows * t.rect.cols), 0.0);
    th.assign(k.size(), 0.0);
    for (std::int64_t b = 0; b < t.rect.cols; ++b)
      for (std::int64_t a = 0; a < t.rect.rows; ++a) {
        const std::size_t e = static_cast<std::size_t>(a * t.rect.cols + b);
        k[e] = mk.local(li0 + a, lj0 + b);
        th[e] = mt.local(li0 + a, lj0 + b);
      }
  }

  // Train diagonal tiles hold the symmetric block: the upper part mirrors the lower one.
  static void mirror(const Tile& t, std::vector<double>& k, std::vector<double>& th) {
    if (t.rect.matrix != kTrain || t.rect.r0 != t.rect.c0) return;
    for (std::int64_t a = 0; a < t.rect.rows; ++a)
      for (std::int64_t b = a + 1; b < t.rect.cols; ++b) {
        k[static_cast<std::size_t>(a * t.rect.cols + b)] = k[static_cast<std::size_t>(b * t.rect.cols + a)];
        th[static_cast<std::size_t>(a * t.rect.cols + b)] = th[static_cast<std::size_t>(b * t.rect.cols + a)];
      }
  }

  std::int64_t known_needed(const Tile& t) const {
    std::int64_t n = 0;
    for (std::int64_t a = 0; a < t.rect.rows; ++a)
      for (std::int64_t b = 0; b < t.rect.cols; ++b)
        n += (entry_needed(t, a, b) && t.have[static_cast<std::size_t>(a * t.rect.cols + b)] != 0) ? 1 : 0;
    return n;
  }

  void restore_tiles() {
    std::int64_t counts[2] = {0, 0};  // tiles, pairs
    if (checkpoint_) {
      collectively([&] {
        std::vector<double> k, th;
        for (auto& t : tiles_) {
          k.assign(static_cast<std::size_t>(t.rect.rows * t.rect.cols), 0.0);
          th.assign(k.size(), 0.0);
          if (checkpoint_->restore(t.rect, k.data(), th.data(), t.have) == 0) continue;
          const std::int64_t known = known_needed(t);
          counts[1] += known;
          if (known == t.needed) {
            t.done = true;
            ++counts[0];
            mirror(t, k, th);
          }
          store(t, k, th);
        }
      });
    }
    MPI_Allreduce(MPI_IN_PLACE, counts, 2, MPI_INT64_T, MPI_SUM, MPI_COMM_WORLD);
    out_.stats.tiles_restored = counts[0];
    out_.stats.pairs_restored = counts[1];
  }

  void compute_self_chains() {
    std::vector<char> need_train(static_cast<std::size_t>(n_train_), 0), need_test(static_cast<std::size_t>(n_test_), 0);
    for (const auto& t : tiles_) {
      if (t.done) continue;
      auto& rows = t.rect.matrix == kTrain ? need_train : need_test;
      for (std::int64_t a = 0; a < t.rect.rows; ++a) rows[static_cast<std::size_t>(t.rect.r0 + a)] = 1;
      for (std::int64_t b = 0; b < t.rect.cols; ++b) need_train[static_cast<std::size_t>(t.rect.c0 + b)] = 1;
    }
    // K(x*, x*) for variances: the ranks of process column 0 cover every test row once.
    const BlockCyclic1D test_rows{n_test_, nb_, grid_.prows()};
    const auto self_row = [&](std::int64_t m) { return grid_.mycol() == 0 && test_rows.owner(m) == grid_.myrow(); };
    if (opt_.test_self)
      for (std::int64_t m = 0; m < n_test_; ++m)
        if (self_row(m)) need_test[static_cast<std::size_t>(m)] = 1;
    std::vector<std::pair<int, std::int64_t>> work;
    for (std::int64_t i = 0; i < n_train_; ++i)
      if (need_train[static_cast<std::size_t>(i)]) work.emplace_back(kTrain, i);
    for (std::int64_t i = 0; i < n_test_; ++i)
      if (need_test[static_cast<std::size_t>(i)]) work.emplace_back(kTest, i);
    make_workers();
    std::exception_ptr error;
#pragma omp parallel for schedule(dynamic, 1) num_threads(opt_.threads)
    for (std::size_t w = 0; w < work.size(); ++w) {
      try {
        problem_.prepare(*workers_[static_cast<std::size_t>(omp_get_thread_num())], work[w].first, work[w].second);
      } catch (...) {
#pragma omp critical
        error = std::current_exception();
      }
    }
    agree_on_errors(error);
    if (opt_.test_self) {
      out_.test_self_nngp.assign(static_cast<std::size_t>(n_test_), 0.0);
      out_.test_self_ntk.assign(static_cast<std::size_t>(n_test_), 0.0);
      for (std::int64_t m = 0; m < n_test_; ++m)
        if (self_row(m)) {
          const KernelValue v = problem_.self(kTest, m);
          out_.test_self_nngp[static_cast<std::size_t>(m)] = v.nngp;
          out_.test_self_ntk[static_cast<std::size_t>(m)] = v.ntk;
        }
      if (n_test_ > 0) {
        const int n = static_cast<int>(n_test_);
        MPI_Allreduce(MPI_IN_PLACE, out_.test_self_nngp.data(), n, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
        MPI_Allreduce(MPI_IN_PLACE, out_.test_self_ntk.data(), n, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
      }
    }
  }

  void make_workers() {
    if (!workers_.empty()) return;
    for (int i = 0; i < opt_.threads; ++i) workers_.push_back(problem_.make_worker());
  }

  bool stop_requested() const { return opt_.stop != nullptr && opt_.stop->load(std::memory_order_relaxed) != 0; }

  // Evaluates the missing entries of one tile. Returns false when a stop request abandoned it.
  bool evaluate_tile(Tile& t) {
    std::vector<double> k, th;
    load(t, k, th);
    std::vector<std::int64_t> todo;
    for (std::int64_t a = 0; a < t.rect.rows; ++a)
      for (std::int64_t b = 0; b < t.rect.cols; ++b) {
        const std::int64_t e = a * t.rect.cols + b;
        if (entry_needed(t, a, b) && t.have[static_cast<std::size_t>(e)] == 0) todo.push_back(e);
      }
    std::atomic<bool> abandoned{false};
    std::exception_ptr error;
    if (problem_.batched()) {  // an accelerator takes the whole tile (kernel/problem.hpp)
      std::vector<std::pair<std::int64_t, std::int64_t>> ij;
      for (const std::int64_t e : todo) ij.emplace_back(t.rect.r0 + e / t.rect.cols, t.rect.c0 + e % t.rect.cols);
      std::vector<KernelValue> v(ij.size());
      problem_.evaluate_batch(*workers_[0], t.rect.matrix, ij, v.data());
      for (std::size_t p = 0; p < todo.size(); ++p) {
        k[static_cast<std::size_t>(todo[p])] = v[p].nngp;
        th[static_cast<std::size_t>(todo[p])] = v[p].ntk;
      }
    } else {
#pragma omp parallel for schedule(dynamic, 1) num_threads(opt_.threads)
      for (std::size_t p = 0; p < todo.size(); ++p) {
        if (abandoned.load(std::memory_order_relaxed) || stop_requested()) {
          abandoned = true;
          continue;
        }
        try {
          const std::int64_t e = todo[p];
          const std::int64_t i = t.rect.r0 + e / t.rect.cols;
          const std::int64_t j = t.rect.c0 + e % t.rect.cols;
          const KernelValue v =
              problem_.evaluate(*workers_[static_cast<std::size_t>(omp_get_thread_num())], t.rect.matrix, i, j);
          k[static_cast<std::size_t>(e)] = v.nngp;
          th[static_cast<std::size_t>(e)] = v.ntk;
        } catch (...) {
#pragma omp critical
          error = std::current_exception();
          abandoned = true;
        }
      }
    }
    if (error) std::rethrow_exception(error);
    if (abandoned) return false;
    mirror(t, k, th);
    store(t, k, th);
    if (checkpoint_) checkpoint_->append(t.rect, k.data(), th.data());
    pairs_computed_ += static_cast<std::int64_t>(todo.size());
    t.done = true;
    return true;
  }

  void compute_tiles() {
    make_workers();
    std::vector<Tile*> pending;
    for (auto& t : tiles_)
      if (!t.done) pending.push_back(&t);
    std::int64_t tiles_done = static_cast<std::int64_t>(tiles_.size() - pending.size());
    const auto start = Clock::now();
    auto last_post = start;
    MPI_Request request = MPI_REQUEST_NULL;
    // Round data: tiles done, pairs computed, tiles remaining, stop requests, errors.
    double send[5] = {0, 0, 0, 0, 0}, recv[5] = {0, 0, 0, 0, 0};
    std::size_t next = 0;
    std::exception_ptr error;
    bool stopping = false;
    const auto t_compute = Clock::now();
    while (true) {
      const bool local_stop = stop_requested() || error != nullptr;
      if (!local_stop && next < pending.size()) {
        try {
          if (evaluate_tile(*pending[next])) {
            ++next;
            ++tiles_done;
          }
        } catch (...) {
          error = std::current_exception();
        }
      }
      const bool halted = stop_requested() || error != nullptr;
      const std::int64_t remaining = halted ? 0 : static_cast<std::int64_t>(pending.size() - next);
      if (request != MPI_REQUEST_NULL) {
        int completed = 0;
        if (remaining == 0) {
          MPI_Wait(&request, MPI_STATUS_IGNORE);
          completed = 1;
        } else {
          MPI_Test(&request, &completed, MPI_STATUS_IGNORE);
        }
        if (completed) {
          report_progress(recv, start);
          if (recv[4] > 0 || recv[3] > 0) {
            stopping = recv[4] == 0;
            break;
          }
          if (recv[2] == 0) break;
        }
      }
      if (request == MPI_REQUEST_NULL && (remaining == 0 || seconds_since(last_post) >= opt_.progress_interval)) {
        send[0] = static_cast<double>(tiles_done);
        send[1] = static_cast<double>(pairs_computed_);
        send[2] = static_cast<double>(remaining);
        send[3] = stop_requested() ? 1.0 : 0.0;
        send[4] = error != nullptr ? 1.0 : 0.0;
        MPI_Iallreduce(send, recv, 5, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD, &request);
        last_post = Clock::now();
      }
    }
    compute_seconds_ = seconds_since(t_compute);
    if (checkpoint_) checkpoint_->sync();
    agree_on_errors(error);
    if (stopping) {
      std::int64_t counts[2] = {tiles_done, pairs_computed_};
      MPI_Allreduce(MPI_IN_PLACE, counts, 2, MPI_INT64_T, MPI_SUM, MPI_COMM_WORLD);
      throw Interrupted("stopped by a signal with " + std::to_string(counts[0]) + " of " +
                        std::to_string(out_.stats.tiles_total) + " tiles finished" +
                        (checkpoint_ ? "; they are saved in the checkpoint '" + opt_.checkpoint_dir +
                                           "': rerun the same command to resume"
                                     : " (no --checkpoint: nothing was saved)"));
    }
  }

  void report_progress(const double* recv, Clock::time_point start) {
    if (opt_.quiet || grid_.rank() != 0 || !opt_.log) return;
    const double elapsed = seconds_since(start);
    const double computed = recv[1];
    const double rate = elapsed > 0 ? computed / elapsed : 0.0;
    const double left = static_cast<double>(out_.stats.pairs_total - out_.stats.pairs_restored) - computed;
    char line[256];
    std::snprintf(line, sizeof line, "[build] tiles %lld/%lld (%.1f%%)  pairs %.0f/%lld  %.1f pairs/s  elapsed %s  ETA %s",
                  static_cast<long long>(recv[0]), static_cast<long long>(out_.stats.tiles_total),
                  out_.stats.tiles_total > 0 ? 100.0 * recv[0] / static_cast<double>(out_.stats.tiles_total) : 100.0,
                  computed + static_cast<double>(out_.stats.pairs_restored), static_cast<long long>(out_.stats.pairs_total),
                  rate, format_duration(elapsed).c_str(), rate > 0 ? format_duration(left / rate).c_str() : "?");
    opt_.log(line);
  }

  void gather_stats() {
    const int p = grid_.size();
    out_.stats.pairs_per_rank.assign(static_cast<std::size_t>(p), 0);
    out_.stats.compute_seconds_per_rank.assign(static_cast<std::size_t>(p), 0.0);
    MPI_Allgather(&pairs_computed_, 1, MPI_INT64_T, out_.stats.pairs_per_rank.data(), 1, MPI_INT64_T, MPI_COMM_WORLD);
    MPI_Allgather(&compute_seconds_, 1, MPI_DOUBLE, out_.stats.compute_seconds_per_rank.data(), 1, MPI_DOUBLE,
                  MPI_COMM_WORLD);
    rusage usage{};
    getrusage(RUSAGE_SELF, &usage);
    double rss_mb = static_cast<double>(usage.ru_maxrss) / 1024.0;  // ru_maxrss is in KB on Linux
    out_.stats.peak_rss_mb_per_rank.assign(static_cast<std::size_t>(p), 0.0);
    MPI_Allgather(&rss_mb, 1, MPI_DOUBLE, out_.stats.peak_rss_mb_per_rank.data(), 1, MPI_DOUBLE, MPI_COMM_WORLD);
  }

  const ProcessGrid& grid_;
  KernelProblem& problem_;
  std::int64_t n_train_, n_test_;
  std::int64_t nb_;
  const BuildOptions& opt_;
  GramMatrices out_;
  std::vector<Tile> tiles_;
  std::unique_ptr<io::Checkpoint> checkpoint_;
  std::vector<std::unique_ptr<KernelProblem::Worker>> workers_;
  std::int64_t pairs_computed_ = 0;
  double compute_seconds_ = 0.0;
};

}  // namespace

double BuildStats::imbalance() const {
  if (pairs_per_rank.empty()) return 1.0;
  const double total = static_cast<double>(std::accumulate(pairs_per_rank.begin(), pairs_per_rank.end(), std::int64_t{0}));
  const double max = static_cast<double>(*std::max_element(pairs_per_rank.begin(), pairs_per_rank.end()));
  return total > 0 ? max / (total / static_cast<double>(pairs_per_rank.size())) : 1.0;
}

GramMatrices build_gram(const ProcessGrid& grid, KernelProblem& problem, std::int64_t nb, const BuildOptions& options) {
  if (nb < 1) throw InvalidArgument("--block-size must be at least 1, got " + std::to_string(nb));
  if (options.threads < 1) throw InvalidArgument("--threads must be at least 1");
  Builder builder(grid, problem, nb, options);
  return builder.run();
}

GramMatrices build_gram(const ProcessGrid& grid, const kernel::Network& net, const data::ImageSet& train,
                        const data::ImageSet& test, std::int64_t nb, const BuildOptions& options) {
  kernel::ImageProblem problem(net, train, test);
  return build_gram(grid, problem, nb, options);
}

}  // namespace eqntk::parallel
