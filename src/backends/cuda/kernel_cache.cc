// Copyright 2026 The Kiln Authors.
// The size-bounded disk cache of compiled kernels (see kernel_cache.h).
#include "src/backends/cuda/kernel_cache.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <mutex>
#include <sstream>
#include <system_error>
#include <thread>
#include <tuple>
#include <vector>

#include "kiln/core/error.h"

namespace kiln::backends::cuda {

namespace {

namespace fs = std::filesystem;

// The ledger's file name in the cache folder: the bytes the folder holds,
// in decimal, as last counted.
constexpr char kLedger[] = "kiln-cache-size";
constexpr uint64_t kDefaultMaxBytes = uint64_t{2} << 30;
// A temporary file this young is a write in progress (compiling a module can
// take minutes on a loaded machine); an older one was left by a process
// that died.
constexpr auto kTemporaryGrace = std::chrono::hours(1);

std::mutex& StatsMutex() {
  static std::mutex mu;
  return mu;
}
KernelCacheStats& Stats() {
  static KernelCacheStats stats;
  return stats;
}

// WriteCacheEntry's temporary files (and the emulator's) have ".tmp" in
// their names.
bool IsTemporary(const fs::path& path) { return path.filename().string().find(".tmp") != std::string::npos; }

// The ledger, open and locked (flock: exclusive against other processes and
// against other descriptors of this process), for as long as it lives.
// Invalid where the folder cannot hold it.
class LockedLedger {
 public:
  explicit LockedLedger(const std::string& dir) {
    fd_ = ::open((fs::path(dir) / kLedger).c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd_ < 0) return;
    int r;
    while ((r = ::flock(fd_, LOCK_EX)) != 0 && errno == EINTR) {
    }
    if (r != 0) {
      ::close(fd_);
      fd_ = -1;
    }
  }
  ~LockedLedger() {
    if (fd_ >= 0) ::close(fd_);  // closing releases the lock
  }
  LockedLedger(const LockedLedger&) = delete;
  LockedLedger& operator=(const LockedLedger&) = delete;

  bool valid() const { return fd_ >= 0; }

  // The count it holds; false where it is empty or not a number (new, or
  // cut short by a crash).
  bool Read(uint64_t* bytes) const {
    char buf[32];
    const ssize_t n = ::pread(fd_, buf, sizeof buf - 1, 0);
    if (n <= 0 || buf[0] < '0' || buf[0] > '9') return false;  // strtoull would take "-5"
    buf[n] = '\0';
    char* end = nullptr;
    errno = 0;
    const unsigned long long v = std::strtoull(buf, &end, 10);
    if (errno != 0 || end == buf || *end != '\n') return false;
    *bytes = v;
    return true;
  }

  void Write(uint64_t bytes) const {
    const std::string text = std::to_string(bytes) + "\n";
    if (::ftruncate(fd_, 0) == 0) (void)!::pwrite(fd_, text.data(), text.size(), 0);
  }

 private:
  int fd_ = -1;
};

}  // namespace

std::string KernelCacheDir() {
  if (const char* dir = std::getenv("KILN_CUDA_CACHE_DIR"); dir != nullptr) {
    const std::string d = dir;
    return d == "off" ? "" : d;
  }
  if (const char* xdg = std::getenv("XDG_CACHE_HOME"); xdg != nullptr && *xdg != '\0') {
    return std::string(xdg) + "/kiln/cuda";
  }
  if (const char* home = std::getenv("HOME"); home != nullptr && *home != '\0') {
    return std::string(home) + "/.cache/kiln/cuda";
  }
  return "";
}

uint64_t KernelCacheMaxBytes() {
  const char* env = std::getenv("KILN_CUDA_CACHE_MAX_SIZE");
  const std::string value = env != nullptr ? env : "";
  if (value.empty()) return kDefaultMaxBytes;
  const auto bad = [&] {
    Throw("cuda: KILN_CUDA_CACHE_MAX_SIZE must be a size in bytes with an optional K, M, G or T suffix (\"2G\"), "
          "or 0 for no limit; got \"" + value + "\"");
  };
  size_t digits = 0;
  while (digits < value.size() && value[digits] >= '0' && value[digits] <= '9') ++digits;
  if (digits == 0 || digits > 15 || value.size() > digits + 1) bad();  // 15 digits: no overflow below
  int shift = 0;
  if (digits < value.size()) {
    switch (value.back()) {
      case 'K': case 'k': shift = 10; break;
      case 'M': case 'm': shift = 20; break;
      case 'G': case 'g': shift = 30; break;
      case 'T': case 't': shift = 40; break;
      default: bad();
    }
  }
  const uint64_t count = std::stoull(value.substr(0, digits));
  if (count > (~uint64_t{0} >> shift)) bad();
  return count << shift;
}

std::string ReadCacheEntry(const fs::path& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return {};
  std::ostringstream s;
  s << f.rdbuf();
  TouchCacheEntry(path);
  return s.str();
}

void TouchCacheEntry(const fs::path& path) {
  ::utimensat(AT_FDCWD, path.c_str(), nullptr, 0);  // a read-only cache stays as it is
}

void WriteCacheEntry(const std::string& dir, const fs::path& path, const std::string& data) {
  std::error_code ec;
  fs::create_directories(path.parent_path(), ec);
  // Named by process and thread: two threads may compile the same kernel.
  const fs::path tmp = path.string() + ".tmp" + std::to_string(::getpid()) + "." +
                       std::to_string(std::hash<std::thread::id>{}(std::this_thread::get_id()));
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    if (!f) return;
    f.write(data.data(), static_cast<std::streamsize>(data.size()));
    if (!f) {
      f.close();
      fs::remove(tmp, ec);
      return;
    }
  }
  fs::rename(tmp, path, ec);
  if (ec) {
    fs::remove(tmp, ec);
    return;
  }
  AddedToCache(dir, path, data.size());
}

void AddedToCache(const std::string& dir, const fs::path& entry, uint64_t bytes) {
  const uint64_t limit = KernelCacheMaxBytes();
  if (limit == 0 || dir.empty()) return;
  const LockedLedger ledger(dir);
  if (!ledger.valid()) return;
  uint64_t total = 0;
  const bool known = ledger.Read(&total);
  if (!known || total + bytes > limit) {
    // Measured, not counted: what the folder holds, this entry included.
    const CacheTrim trim = TrimCache(dir, limit, limit / 5 * 4, entry);
    total = trim.bytes - trim.removed_bytes;
  } else {
    total += bytes;
  }
  ledger.Write(total);
}

CacheTrim TrimCache(const std::string& dir, uint64_t limit, uint64_t target, const fs::path& keep) {
  struct Entry {
    fs::file_time_type used;
    uint64_t size;
    fs::path path;
  };
  std::vector<Entry> entries;
  CacheTrim trim;
  const auto now = fs::file_time_type::clock::now();
  std::error_code ec;
  for (fs::recursive_directory_iterator it(dir, fs::directory_options::skip_permission_denied, ec), end;
       !ec && it != end; it.increment(ec)) {
    std::error_code entry_ec;
    if (!it->is_regular_file(entry_ec) || (it.depth() == 0 && it->path().filename() == kLedger)) continue;
    const uint64_t size = it->file_size(entry_ec);
    if (entry_ec) continue;  // removed meanwhile
    const fs::file_time_type used = it->last_write_time(entry_ec);
    if (entry_ec) continue;
    ++trim.files;
    trim.bytes += size;
    const bool in_progress = IsTemporary(it->path()) && now - used < kTemporaryGrace;
    const bool kept = it->path().filename() == keep.filename() &&
                      it->path().lexically_normal() == keep.lexically_normal();
    if (!in_progress && !kept) entries.push_back({used, size, it->path()});
  }
  if (trim.bytes <= limit) return trim;
  std::sort(entries.begin(), entries.end(),
            [](const Entry& a, const Entry& b) { return std::tie(a.used, a.path) < std::tie(b.used, b.path); });
  for (const Entry& e : entries) {
    if (trim.bytes - trim.removed_bytes <= target) break;
    std::error_code remove_ec;
    // Another process may have removed it first: then it is gone all the same.
    fs::remove(e.path, remove_ec);
    ++trim.removed_files;
    trim.removed_bytes += e.size;
  }
  std::lock_guard lock(StatsMutex());
  ++Stats().trims;
  Stats().removed_files += static_cast<int64_t>(trim.removed_files);
  Stats().removed_bytes += static_cast<int64_t>(trim.removed_bytes);
  return trim;
}

KernelCacheStats GetKernelCacheStats() {
  std::lock_guard lock(StatsMutex());
  return Stats();
}

}  // namespace kiln::backends::cuda
