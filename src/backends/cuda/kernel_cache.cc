// Copyright 2026 The Kiln Authors.
// The size-bounded disk cache of compiled kernels (see kernel_cache.h).
#include "src/backends/cuda/kernel_cache.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
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

// Whether `name`, in the cache folder (`in_emulator`: in its "emulator"
// subfolder), is a file Kiln keeps there: a cubin, an emulator module, or
// one being written (WriteCacheEntry's and the emulator's temporary files
// have ".tmp" after the entry's extension). Nothing else in the folder is
// counted or removed: it may be a folder the user shares with other files.
bool IsCacheFile(const std::string& name, bool in_emulator) {
  const std::string ext = in_emulator ? ".so" : ".cubin";
  return (name.size() > ext.size() && name.compare(name.size() - ext.size(), ext.size(), ext) == 0) ||
         name.find(ext + ".tmp") != std::string::npos;
}
bool IsTemporary(const std::string& name) { return name.find(".tmp") != std::string::npos; }

// KILN_CUDA_CACHE_MAX_SIZE's `value` in bytes (kDefaultMaxBytes where empty),
// or false where it is not a size.
bool ParseMaxBytes(const std::string& value, uint64_t* bytes) {
  if (value.empty()) {
    *bytes = kDefaultMaxBytes;
    return true;
  }
  size_t digits = 0;
  while (digits < value.size() && value[digits] >= '0' && value[digits] <= '9') ++digits;
  if (digits == 0 || digits > 15 || value.size() > digits + 1) return false;  // 15 digits fit in 50 bits
  int shift = 0;
  if (digits < value.size()) {
    const char suffix = value.back();
    if (suffix == 'K' || suffix == 'k') {
      shift = 10;
    } else if (suffix == 'M' || suffix == 'm') {
      shift = 20;
    } else if (suffix == 'G' || suffix == 'g') {
      shift = 30;
    } else if (suffix == 'T' || suffix == 't') {
      shift = 40;
    } else {
      return false;
    }
  }
  const uint64_t count = std::stoull(value.substr(0, digits));
  if (count > (~uint64_t{0} >> shift)) return false;
  *bytes = count << shift;
  return true;
}

std::string MaxSizeSetting() {
  const char* env = std::getenv("KILN_CUDA_CACHE_MAX_SIZE");
  return env != nullptr ? env : "";
}

// Says once per process, on stderr, that the limit is not enforced and why.
void WarnUnlimited(const std::string& why) {
  static std::once_flag once;
  std::call_once(once, [&] {
    std::fprintf(stderr, "kiln: warning: cuda: the kernel cache's size limit is not enforced: %s\n", why.c_str());
  });
}

// The ledger, open and locked (flock: exclusive against other processes and
// against other descriptors of this process), for as long as it lives.
// Invalid, with a warning, where it cannot be opened or locked within a
// minute (a filesystem without flock, a stopped process holding it); after
// a minute's wait, for the rest of the process, so that it is waited for
// once, not once per kernel.
class LockedLedger {
 public:
  explicit LockedLedger(const std::string& dir) {
    static std::atomic<bool> gave_up{false};
    if (gave_up) return;
    const std::string path = (fs::path(dir) / kLedger).string();
    fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd_ < 0) {
      WarnUnlimited("cannot open " + path + ": " + std::strerror(errno));
      return;
    }
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::minutes(1);
    auto pause = std::chrono::microseconds(100);
    while (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
      const int error = errno;
      const bool late = std::chrono::steady_clock::now() > deadline;
      if ((error != EWOULDBLOCK && error != EINTR) || late) {
        if (late) gave_up = true;
        WarnUnlimited("cannot lock " + path + ": " + std::strerror(error));
        ::close(fd_);
        fd_ = -1;
        return;
      }
      std::this_thread::sleep_for(pause);
      pause = std::min(pause * 2, std::chrono::microseconds(20000));
    }
  }
  ~LockedLedger() {
    if (fd_ >= 0) ::close(fd_);  // closing releases the lock
  }
  LockedLedger(const LockedLedger&) = delete;
  LockedLedger& operator=(const LockedLedger&) = delete;

  bool valid() const { return fd_ >= 0; }

  // The count it holds; false where it is empty, not a number, or beyond
  // any folder's size (new, cut short by a crash, or damaged).
  bool Read(uint64_t* bytes) const {
    char buf[32];
    const ssize_t n = ::pread(fd_, buf, sizeof buf - 1, 0);
    if (n <= 0 || buf[0] < '0' || buf[0] > '9') return false;  // strtoull would take "-5"
    buf[n] = '\0';
    char* end = nullptr;
    errno = 0;
    const unsigned long long v = std::strtoull(buf, &end, 10);
    if (errno != 0 || end == buf || *end != '\n' || v > (uint64_t{1} << 60)) return false;
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
  (void)KernelCacheMaxBytes();  // a bad limit fails before any work, cache hits included
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
  const std::string value = MaxSizeSetting();
  uint64_t bytes = 0;
  if (!ParseMaxBytes(value, &bytes)) {
    Throw("cuda: KILN_CUDA_CACHE_MAX_SIZE must be a size in bytes with an optional K, M, G or T suffix (\"2G\"), "
          "or 0 for no limit; got \"" + value + "\"");
  }
  return bytes;
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
  uint64_t limit = 0;
  // KernelCacheDir() has refused a bad setting before the entry was made.
  if (!ParseMaxBytes(MaxSizeSetting(), &limit) || limit == 0 || dir.empty()) return;
  const LockedLedger ledger(dir);
  if (!ledger.valid()) return;
  // After a trim that could not reach its target (files it may not remove),
  // this process measures again only once another fifth of the limit has
  // been added, not at every entry.
  static std::mutex stuck_mu;
  static uint64_t added_since_stuck = 0;
  static bool stuck = false;
  uint64_t total = 0;
  const bool known = ledger.Read(&total);
  const uint64_t target = limit / 5 * 4;
  bool measure = !known || total + bytes > limit;
  if (measure && known) {
    std::lock_guard lock(stuck_mu);
    if (stuck && (added_since_stuck += bytes) < limit / 5) measure = false;
  }
  if (measure) {
    // Measured, not counted: what the folder holds, this entry included.
    const CacheTrim trim = TrimCache(dir, limit, target, entry);
    total = trim.bytes - trim.removed_bytes;
    std::lock_guard lock(stuck_mu);
    stuck = trim.bytes > limit && total > target;  // a trim ran and fell short
    added_since_stuck = 0;
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
  const fs::path kept = keep.lexically_normal();
  for (const bool in_emulator : {false, true}) {
    std::error_code ec;
    for (fs::directory_iterator it(in_emulator ? fs::path(dir) / kEmulatorSubfolder : fs::path(dir), ec), end;
         !ec && it != end; it.increment(ec)) {
      std::error_code entry_ec;
      const std::string name = it->path().filename().string();
      if (!IsCacheFile(name, in_emulator) || !it->is_regular_file(entry_ec)) continue;
      const uint64_t size = it->file_size(entry_ec);
      if (entry_ec) continue;  // removed meanwhile
      const fs::file_time_type used = it->last_write_time(entry_ec);
      if (entry_ec) continue;
      ++trim.files;
      trim.bytes += size;
      const bool in_progress = IsTemporary(name) && now - used < kTemporaryGrace;
      if (!in_progress && it->path().lexically_normal() != kept) entries.push_back({used, size, it->path()});
    }
  }
  if (trim.bytes <= limit) return trim;
  std::sort(entries.begin(), entries.end(),
            [](const Entry& a, const Entry& b) { return std::tie(a.used, a.path) < std::tie(b.used, b.path); });
  for (const Entry& e : entries) {
    if (trim.bytes - trim.removed_bytes <= target) break;
    std::error_code ec;
    fs::remove(e.path, ec);
    // Another process may have removed it first: then it is gone all the
    // same. One that cannot be removed (permissions) still takes its room.
    if (ec && ec != std::errc::no_such_file_or_directory) continue;
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
