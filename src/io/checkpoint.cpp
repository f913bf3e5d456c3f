#include "eqntk/io/checkpoint.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <map>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "eqntk/error.hpp"

namespace eqntk::io {
namespace {

constexpr char kMagic[8] = {'E', 'Q', 'T', 'I', 'L', 'E', '0', '2'};
constexpr const char* kFormat = "eqntk checkpoint v2";

struct RecordHeader {
  char magic[8];
  std::int32_t matrix;
  std::int32_t reserved;
  std::int64_t r0, c0, rows, cols;
  std::uint64_t checksum;
};
static_assert(sizeof(RecordHeader) == 56);
constexpr std::size_t kCoveredHeader = offsetof(RecordHeader, checksum);  // magic .. cols: 48 bytes

// The checksum of a record: its header up to the checksum (the tile's coordinates), then its payload.
RecordHeader make_header(const TileRect& rect) {
  RecordHeader h{};
  std::memcpy(h.magic, kMagic, 8);
  h.matrix = rect.matrix;
  h.r0 = rect.r0;
  h.c0 = rect.c0;
  h.rows = rect.rows;
  h.cols = rect.cols;
  return h;
}
std::uint64_t header_hash(const TileRect& rect) {
  const RecordHeader h = make_header(rect);
  return fnv1a(&h, kCoveredHeader);
}

std::string fingerprint_hex(std::uint64_t f) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(f));
  return buf;
}

}  // namespace

std::uint64_t fnv1a(const void* bytes, std::size_t n, std::uint64_t hash) {
  const auto* p = static_cast<const unsigned char*>(bytes);
  for (std::size_t i = 0; i < n; ++i) {
    hash ^= p[i];
    hash *= 1099511628211ULL;
  }
  return hash;
}

void Checkpoint::create_or_verify(const std::string& dir, const CheckpointIdentity& id) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec || !fs::is_directory(dir)) throw WriteError("cannot create checkpoint directory '" + dir + "': " + ec.message());
  const std::string manifest = dir + "/manifest.txt";
  const std::string fingerprint = fingerprint_hex(id.fingerprint);
  if (fs::exists(manifest)) {
    std::ifstream in(manifest);
    std::string format, line;
    std::map<std::string, std::string> found;
    std::getline(in, format);
    while (std::getline(in, line)) {
      const auto space = line.find(' ');
      if (space != std::string::npos) found[line.substr(0, space)] = line.substr(space + 1);
    }
    if (format.rfind("eqntk checkpoint ", 0) != 0) throw IoError("checkpoint manifest '" + manifest + "' is unreadable or corrupt");
    const std::string where = "checkpoint '" + dir + "' ";
    if (format != kFormat)
      throw InvalidArgument(where + "has format " + format.substr(17) + " and this eqntk reads v2: use a new --checkpoint directory");
    if (found["eqntk_version"] != id.eqntk_version)
      throw InvalidArgument(where + "was written by eqntk " + found["eqntk_version"] + " and this is eqntk " + id.eqntk_version +
                            ": use a new --checkpoint directory");
    if (found["isa"] != id.instruction_set)
      throw InvalidArgument(where + "was written by the " + found["isa"] + " kernels and this run uses " + id.instruction_set +
                            " (they differ in the last bits): rerun with EQNTK_ISA=" + found["isa"] +
                            " or use a new --checkpoint directory");
    if (found["precision"] != id.precision)
      throw InvalidArgument(where + "was written with --precision " + found["precision"] + " and this run uses " +
                            id.precision + ": use a new --checkpoint directory");
    if (found["fingerprint"] != fingerprint)
      throw InvalidArgument(where + "was made for other data or another architecture (" + found["describes"] +
                            "; this run: " + id.description + "): use a new --checkpoint directory");
    return;
  }
  const std::string partial = manifest + ".partial";
  {
    std::ofstream out(partial);
    out << kFormat << "\neqntk_version " << id.eqntk_version << "\nisa " << id.instruction_set << "\nprecision "
        << id.precision << "\nfingerprint " << fingerprint << "\ndescribes " << id.description << "\n";
    if (!out) throw WriteError("cannot write checkpoint manifest '" + partial + "'");
  }
  fs::rename(partial, manifest, ec);
  if (ec) throw WriteError("cannot write checkpoint manifest '" + manifest + "': " + ec.message());
}

Checkpoint::Checkpoint(std::string dir, const std::string& run_id, int rank, std::function<bool(const TileRect&)> wanted)
    : dir_(std::move(dir)) {
  namespace fs = std::filesystem;
  path_ = dir_ + "/tiles-" + run_id + "-r" + std::to_string(rank) + ".log";
  std::error_code ec;
  std::vector<std::string> logs;
  for (const auto& entry : fs::directory_iterator(dir_, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind("tiles-", 0) == 0 && name.size() > 4 && name.substr(name.size() - 4) == ".log")
      logs.push_back(entry.path().string());
  }
  if (ec) throw IoError("cannot list checkpoint directory '" + dir_ + "': " + ec.message());
  std::sort(logs.begin(), logs.end());
  for (const auto& log : logs) index_file(log, wanted);
  log_ = std::fopen(path_.c_str(), "ab");
  if (log_ == nullptr) throw WriteError("cannot open checkpoint log '" + path_ + "' for writing: " + std::strerror(errno));
}

Checkpoint::~Checkpoint() {
  if (log_ != nullptr) std::fclose(log_);
}

void Checkpoint::index_file(const std::string& path, const std::function<bool(const TileRect&)>& wanted) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) return;
  // Offsets as off_t (64-bit): a log of a large run passes 2 GB.
  ::fseeko(f, 0, SEEK_END);
  const std::int64_t size = ::ftello(f);
  std::int64_t pos = 0;
  while (pos + static_cast<std::int64_t>(sizeof(RecordHeader)) <= size) {
    RecordHeader h{};
    ::fseeko(f, static_cast<off_t>(pos), SEEK_SET);
    if (std::fread(&h, sizeof h, 1, f) != 1) break;
    if (std::memcmp(h.magic, kMagic, 8) != 0 || h.rows < 0 || h.cols < 0 || h.matrix < 0 || h.matrix > 1) break;
    const std::int64_t payload = 2 * h.rows * h.cols * static_cast<std::int64_t>(sizeof(double));
    const std::int64_t start = pos + static_cast<std::int64_t>(sizeof h);
    if (start + payload > size) break;  // cut short by a kill: ignore it and anything after it
    pos = start + payload;
    Record r{TileRect{h.matrix, h.r0, h.c0, h.rows, h.cols}, path, start, h.checksum};
    if (wanted && !wanted(r.rect)) continue;  // another rank's entries: not indexed here
    auto& row = index_[h.matrix][h.r0];
    row.insert(std::upper_bound(row.begin(), row.end(), r,
                                [](const Record& a, const Record& b) { return a.rect.c0 < b.rect.c0; }),
               r);
    max_rows_ = std::max(max_rows_, h.rows);
    max_cols_ = std::max(max_cols_, h.cols);
    ++records_indexed_;
  }
  std::fclose(f);
}

bool Checkpoint::read_payload(const Record& r, std::vector<double>& payload) {
  payload.resize(static_cast<std::size_t>(2 * r.rect.rows * r.rect.cols));
  const int fd = ::open(r.file.c_str(), O_RDONLY);
  if (fd < 0) return false;
  const std::size_t bytes = payload.size() * sizeof(double);
  std::size_t done = 0;
  while (done < bytes) {
    const ssize_t got = ::pread(fd, reinterpret_cast<char*>(payload.data()) + done, bytes - done,
                                static_cast<off_t>(r.offset + static_cast<std::int64_t>(done)));
    if (got <= 0) break;
    done += static_cast<std::size_t>(got);
  }
  ::close(fd);
  return done == bytes && fnv1a(payload.data(), bytes, header_hash(r.rect)) == r.checksum;
}

std::int64_t Checkpoint::restore(const TileRect& q, double* k, double* t, std::vector<char>& mask) {
  const auto matrix_it = index_.find(q.matrix);
  if (matrix_it == index_.end()) return 0;
  std::int64_t filled = 0;
  std::vector<double> payload;
  const auto& rows = matrix_it->second;
  // Candidate records start within max_rows_ above the query and before its end, and likewise in columns.
  for (auto it = rows.lower_bound(q.r0 - max_rows_ + 1); it != rows.end() && it->first < q.r0 + q.rows; ++it) {
    const auto& row = it->second;
    auto c = std::lower_bound(row.begin(), row.end(), q.c0 - max_cols_ + 1,
                              [](const Record& r, std::int64_t c0) { return r.rect.c0 < c0; });
    for (; c != row.end() && c->rect.c0 < q.c0 + q.cols; ++c) {
      const TileRect& r = c->rect;
      const std::int64_t i0 = std::max(q.r0, r.r0), i1 = std::min(q.r0 + q.rows, r.r0 + r.rows);
      const std::int64_t j0 = std::max(q.c0, r.c0), j1 = std::min(q.c0 + q.cols, r.c0 + r.cols);
      if (i0 >= i1 || j0 >= j1) continue;
      bool needed = false;
      for (std::int64_t i = i0; i < i1 && !needed; ++i)
        for (std::int64_t j = j0; j < j1 && !needed; ++j) needed = mask[static_cast<std::size_t>((i - q.r0) * q.cols + (j - q.c0))] == 0;
      if (!needed || !read_payload(*c, payload)) continue;
      const std::int64_t area = r.rows * r.cols;
      for (std::int64_t i = i0; i < i1; ++i)
        for (std::int64_t j = j0; j < j1; ++j) {
          const std::size_t e = static_cast<std::size_t>((i - q.r0) * q.cols + (j - q.c0));
          if (mask[e] != 0) continue;
          const std::int64_t src = (i - r.r0) * r.cols + (j - r.c0);
          k[e] = payload[static_cast<std::size_t>(src)];
          t[e] = payload[static_cast<std::size_t>(area + src)];
          mask[e] = 1;
          ++filled;
        }
    }
  }
  return filled;
}

void Checkpoint::append(const TileRect& rect, const double* k, const double* t) {
  const std::size_t area = static_cast<std::size_t>(rect.rows * rect.cols);
  RecordHeader h = make_header(rect);
  std::uint64_t sum = fnv1a(&h, kCoveredHeader);
  sum = fnv1a(k, area * sizeof(double), sum);
  h.checksum = fnv1a(t, area * sizeof(double), sum);
  const bool ok = std::fwrite(&h, sizeof h, 1, log_) == 1 && std::fwrite(k, sizeof(double), area, log_) == area &&
                  std::fwrite(t, sizeof(double), area, log_) == area && std::fflush(log_) == 0;
  if (!ok) throw WriteError("cannot append to checkpoint log '" + path_ + "': " + std::strerror(errno));
}

void Checkpoint::sync() {
  if (log_ != nullptr) {
    std::fflush(log_);
    ::fsync(::fileno(log_));
  }
}

}  // namespace eqntk::io
