#include "subprocess.hpp"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

extern char** environ;

namespace eqntk::testing {
namespace {

double now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

std::vector<pid_t> children_of(pid_t pid) {
  std::vector<pid_t> kids;
  std::ifstream in("/proc/" + std::to_string(pid) + "/task/" + std::to_string(pid) + "/children");
  pid_t k = 0;
  while (in >> k) kids.push_back(k);
  return kids;
}

}  // namespace

std::string read_text(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void write_bytes(const std::filesystem::path& p, const std::string& bytes) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!out) throw std::runtime_error("cannot write fixture " + p.string());
}

std::vector<std::string> lines_starting(const std::string& text, const std::string& prefix) {
  std::vector<std::string> found;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);)
    if (line.rfind(prefix, 0) == 0) found.push_back(line);
  return found;
}

std::set<std::string> tree(const std::filesystem::path& root) {
  std::set<std::string> names;
  for (const auto& e : std::filesystem::recursive_directory_iterator(root)) {
    std::string rel = std::filesystem::relative(e.path(), root).string();
    if (e.is_directory()) rel += '/';
    names.insert(rel);
  }
  return names;
}

Process::Process(const std::vector<std::string>& argv, const std::filesystem::path& capture_dir)
    : out_(capture_dir / "stdout.txt"), err_(capture_dir / "stderr.txt") {
  for (const auto& a : argv) command_ += a + " ";
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 1, out_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_addopen(&fa, 2, err_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP);
  posix_spawnattr_setpgroup(&attr, 0);
  const std::vector<std::string> forced{"OMPI_ALLOW_RUN_AS_ROOT=1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1",
                                        "OMPI_MCA_rmaps_base_oversubscribe=1", "OMPI_MCA_odls_base_sigkill_timeout=0",
                                        "OMP_NUM_THREADS=1"};
  std::vector<std::string> env = forced;
  for (char** e = environ; *e != nullptr; ++e) {
    const std::string kv = *e;
    const std::string key = kv.substr(0, kv.find('=') + 1);
    bool overridden = false;
    for (const auto& f : forced) overridden = overridden || f.rfind(key, 0) == 0;
    if (!overridden) env.push_back(kv);
  }
  std::vector<char*> envp, args;
  for (auto& kv : env) envp.push_back(kv.data());
  envp.push_back(nullptr);
  std::vector<std::string> argv_store = argv;
  for (auto& a : argv_store) args.push_back(a.data());
  args.push_back(nullptr);
  start_ = now();
  const int rc = posix_spawn(&pid_, args[0], &fa, &attr, args.data(), envp.data());
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) throw std::runtime_error("posix_spawn " + argv[0] + " failed: " + std::to_string(rc));
}

Process::~Process() {
  if (!waited_ && pid_ > 0) {
    ::kill(-pid_, SIGKILL);
    int status = 0;
    ::waitpid(pid_, &status, 0);
  }
}

void Process::signal(int sig) const { ::kill(pid_, sig); }

std::vector<pid_t> Process::descendants_named(const std::string& name) const {
  std::vector<pid_t> found, frontier{pid_};
  while (!frontier.empty()) {
    const pid_t p = frontier.back();
    frontier.pop_back();
    for (const pid_t k : children_of(p)) {
      frontier.push_back(k);
      std::string cmd = read_text("/proc/" + std::to_string(k) + "/cmdline");
      for (char& c : cmd)
        if (c == '\0') c = ' ';
      if (cmd.find(name) != std::string::npos) found.push_back(k);
    }
  }
  return found;
}

ProcessResult Process::wait(double timeout_s) {
  ProcessResult r;
  r.command = command_;
  int status = 0;
  for (;;) {
    const pid_t w = ::waitpid(pid_, &status, WNOHANG);
    if (w == pid_) break;
    if (w < 0) throw std::runtime_error("waitpid failed");
    if (now() - start_ > timeout_s) {
      r.timed_out = true;
      ::kill(-pid_, SIGKILL);
      ::waitpid(pid_, &status, 0);
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  waited_ = true;
  r.seconds = now() - start_;
  ::kill(-pid_, SIGKILL);  // ranks left behind by a dying mpiexec must not outlive the test
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  r.out = read_text(out_);
  r.err = read_text(err_);
  return r;
}

ProcessResult run_process(const std::vector<std::string>& argv, const std::filesystem::path& capture_dir,
                          double timeout_s) {
  Process p(argv, capture_dir);
  return p.wait(timeout_s);
}

std::vector<std::string> run_argv(std::vector<std::pair<std::string, std::string>> opts,
                                  const std::vector<std::pair<std::string, std::string>>& replace,
                                  const std::vector<std::string>& extra) {
  for (const auto& [k, v] : replace) {
    bool found = false;
    for (auto& o : opts)
      if (o.first == k) {
        o.second = v;
        found = true;
      }
    if (!found) opts.emplace_back(k, v);
  }
  std::vector<std::string> a{"run", "--quiet"};
  for (const auto& [k, v] : opts)
    if (!v.empty()) {
      a.push_back(k);
      a.push_back(v);
    }
  a.insert(a.end(), extra.begin(), extra.end());
  return a;
}

}  // namespace eqntk::testing
