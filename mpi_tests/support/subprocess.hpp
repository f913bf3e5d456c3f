// Running the real `eqntk` binary (directly or under mpiexec) from tests: spawned in its own process
// group with stdout/stderr captured to files, signalled while it runs, killed with its whole group on a
// timeout so that no rank survives a test.
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace eqntk::testing {

struct ProcessResult {
  std::string command;
  int exit_code = -1;  // WEXITSTATUS, or 128 + signal number
  bool timed_out = false;
  double seconds = 0.0;
  std::string out, err;
};

class Process {
 public:
  /// Starts argv (argv[0] is a path) with stdin from /dev/null and stdout/stderr captured in
  /// `capture_dir`. The environment is inherited plus what Open MPI needs to run as root and
  /// oversubscribed, OMP_NUM_THREADS=1, and no grace period before mpiexec kills the ranks of a failed
  /// job (a failing run ends in a fraction of a second). Throws std::runtime_error if the spawn fails.
  Process(const std::vector<std::string>& argv, const std::filesystem::path& capture_dir);
  ~Process();
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  [[nodiscard]] pid_t pid() const { return pid_; }
  /// Sends `sig` to the process itself (mpiexec forwards SIGTERM/SIGUSR1 to its ranks).
  void signal(int sig) const;
  /// Process ids of the running descendants whose command line contains `name` (e.g. the ranks).
  [[nodiscard]] std::vector<pid_t> descendants_named(const std::string& name) const;
  /// Waits up to `timeout_s` seconds; on timeout kills the whole group. Always kills leftovers.
  ProcessResult wait(double timeout_s);

 private:
  pid_t pid_ = -1;
  bool waited_ = false;
  std::string command_;
  std::filesystem::path out_, err_;
  double start_ = 0.0;
};

/// Spawns and waits.
ProcessResult run_process(const std::vector<std::string>& argv, const std::filesystem::path& capture_dir,
                          double timeout_s);

/// The whole content of a file ("" if absent).
std::string read_text(const std::filesystem::path& p);

/// Writes `bytes` to `p` (a test fixture); throws std::runtime_error on failure.
void write_bytes(const std::filesystem::path& p, const std::string& bytes);

/// The lines of `text` that start with `prefix`.
std::vector<std::string> lines_starting(const std::string& text, const std::string& prefix);

/// Everything below `root`, as relative paths (directories end with '/').
std::set<std::string> tree(const std::filesystem::path& root);

/// `eqntk run --quiet` with the options `opts`, each value in `replace` swapped in (or appended when new),
/// options whose value is "" dropped, then `extra` appended verbatim.
std::vector<std::string> run_argv(std::vector<std::pair<std::string, std::string>> opts,
                                  const std::vector<std::pair<std::string, std::string>>& replace,
                                  const std::vector<std::string>& extra);

}  // namespace eqntk::testing
