#include "eqntk/io/atomic_file.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "eqntk/error.hpp"
#include "file_bytes.hpp"

namespace eqntk::io {
namespace {

[[noreturn]] void fail_errno(const std::filesystem::path& path, const std::string& what, int err) {
  throw IoError(detail::quoted(path) + ": " + what + ": " + std::strerror(err));
}

// Writing, syncing or renaming an output that could be created fails while the job runs (disk full,
// quota, file-size limit): a runtime failure, not a bad path.
[[noreturn]] void fail_write_errno(const std::filesystem::path& path, const std::string& what, int err) {
  throw WriteError(detail::quoted(path) + ": " + what + ": " + std::strerror(err));
}

// Makes a completed rename durable. Best effort: the data itself was fsynced before the rename, and
// some file systems do not support fsync on directories.
void sync_parent_directory(const std::filesystem::path& path) {
  const std::filesystem::path dir = path.has_parent_path() ? path.parent_path() : std::filesystem::path(".");
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  (void)::fsync(fd);
  (void)::close(fd);
}

int fsync_retrying(int fd) {
  int rc = 0;
  do {
    rc = ::fsync(fd);
  } while (rc != 0 && errno == EINTR);
  return rc;
}

}  // namespace

std::filesystem::path partial_path(const std::filesystem::path& path) {
  std::filesystem::path p = path;
  p += ".partial";
  return p;
}

void commit_partial(const std::filesystem::path& path) {
  const auto partial = partial_path(path);
  const int fd = ::open(partial.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail_write_errno(partial, "cannot open the partial output to commit it", errno);
  if (fsync_retrying(fd) != 0) {
    const int err = errno;
    (void)::close(fd);
    fail_write_errno(partial, "fsync failed", err);
  }
  (void)::close(fd);
  if (::rename(partial.c_str(), path.c_str()) != 0) {
    fail_write_errno(partial, "cannot rename to " + detail::quoted(path), errno);
  }
  sync_parent_directory(path);
}

void remove_partial(const std::filesystem::path& path) noexcept {
  std::error_code ec;
  std::filesystem::remove(partial_path(path), ec);
}

void ensure_writable_directory(const std::filesystem::path& dir) {
  if (dir.empty()) throw IoError("output directory path is empty");
  std::error_code ec;
  const auto st = std::filesystem::status(dir, ec);
  if (std::filesystem::exists(st)) {
    if (!std::filesystem::is_directory(st)) {
      throw IoError(detail::quoted(dir) + ": exists but is not a directory");
    }
  } else {
    ec.clear();
    std::filesystem::create_directories(dir, ec);
    if (ec) throw IoError(detail::quoted(dir) + ": cannot create directory: " + ec.message());
  }
  // access(W_OK) misjudges read-only mounts, ACLs and root squash; creating a file is the real test.
  std::string probe = (dir / ".eqntk-write-probe-XXXXXX").string();
  std::vector<char> name(probe.begin(), probe.end());
  name.push_back('\0');
  const int fd = ::mkstemp(name.data());
  if (fd < 0) fail_errno(dir, "directory is not writable", errno);
  (void)::close(fd);
  (void)::unlink(name.data());
}

AtomicFile::AtomicFile(std::filesystem::path target) : target_(std::move(target)) {
  const auto partial = partial_path(target_);
  fd_ = ::open(partial.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
  if (fd_ < 0) fail_errno(partial, "cannot create output file", errno);
}

AtomicFile::~AtomicFile() {
  abandon();
}

AtomicFile::AtomicFile(AtomicFile&& other) noexcept
    : target_(std::move(other.target_)), fd_(std::exchange(other.fd_, -1)), committed_(other.committed_) {}

AtomicFile& AtomicFile::operator=(AtomicFile&& other) noexcept {
  if (this != &other) {
    abandon();
    target_ = std::move(other.target_);
    fd_ = std::exchange(other.fd_, -1);
    committed_ = other.committed_;
  }
  return *this;
}

void AtomicFile::write(std::span<const std::byte> bytes) {
  if (fd_ < 0) {
    throw IoError(detail::quoted(partial()) + ": write after the file was " + (committed_ ? "committed" : "closed"));
  }
  const std::byte* p = bytes.data();
  std::size_t left = bytes.size();
  while (left > 0) {
    const ::ssize_t n = ::write(fd_, p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      fail_write_errno(partial(), "write failed", errno);
    }
    p += n;
    left -= static_cast<std::size_t>(n);
  }
}

void AtomicFile::write(std::string_view bytes) {
  write(std::as_bytes(std::span<const char>(bytes.data(), bytes.size())));
}

void AtomicFile::commit() {
  if (fd_ < 0) {
    throw IoError(detail::quoted(partial()) + ": commit after the file was " + (committed_ ? "committed" : "closed"));
  }
  const auto partial_file = partial();
  // On any failure the partial file goes away and the target stays as it was.
  const auto give_up = [&](const std::string& what, int err) {
    if (fd_ >= 0) (void)::close(fd_);
    fd_ = -1;
    (void)::unlink(partial_file.c_str());
    fail_write_errno(partial_file, what, err);
  };
  if (fsync_retrying(fd_) != 0) give_up("fsync failed", errno);
  const int fd = std::exchange(fd_, -1);
  // close() can report a deferred write error (NFS): such a file must not be published.
  if (::close(fd) != 0) give_up("close failed", errno);
  if (::rename(partial_file.c_str(), target_.c_str()) != 0)
    give_up("cannot rename to " + detail::quoted(target_), errno);
  committed_ = true;
  sync_parent_directory(target_);
}

void AtomicFile::abandon() noexcept {
  if (fd_ < 0) return;
  (void)::close(fd_);
  fd_ = -1;
  (void)::unlink(partial_path(target_).c_str());
}

}  // namespace eqntk::io
