// Copyright 2026 The Kiln Authors.
// The disk cache of compiled kernels (src/backends/cuda/kernel_cache.h): its
// size limit's setting, trimming least recently used entries first, entries
// in progress, the newest one and other files kept, and a size ledger that several
// writers at once keep right. Host code only: no NVRTC, no GPU.
#include <gtest/gtest.h>
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "src/backends/cuda/kernel_cache.h"
#include "tests/testing/testing.h"

namespace kiln::backends::cuda {
namespace {

namespace fs = std::filesystem;

// A fresh folder for one test, removed after it.
class TempFolder {
 public:
  explicit TempFolder(const std::string& name)
      : path_(fs::temp_directory_path() / ("kiln_kernel_cache_" + name + "_" + std::to_string(::getpid()))) {
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~TempFolder() { fs::remove_all(path_); }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

// Writes `bytes` bytes at `path`, last modified `age` ago.
void Put(const fs::path& path, size_t bytes, std::chrono::seconds age) {
  fs::create_directories(path.parent_path());
  std::ofstream(path, std::ios::binary) << std::string(bytes, 'x');
  fs::last_write_time(path, fs::file_time_type::clock::now() - age);
}

// The files under `dir`, by name relative to it, the ledger left out.
std::set<std::string> Files(const fs::path& dir) {
  std::set<std::string> names;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    if (e.is_regular_file() && e.path().filename() != "kiln-cache-size") {
      names.insert(fs::relative(e.path(), dir).string());
    }
  }
  return names;
}

// "<prefix><i>.cubin" (appended piece by piece: GCC 12 warns, wrongly, of
// overlapping copies in the chained operator+).
std::string Cubin(const std::string& prefix, int i) {
  std::string name = prefix;
  name += std::to_string(i);
  name += ".cubin";
  return name;
}

uint64_t Bytes(const fs::path& dir) {
  uint64_t total = 0;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    if (e.is_regular_file() && e.path().filename() != "kiln-cache-size") total += e.file_size();
  }
  return total;
}

std::string Ledger(const fs::path& dir) {
  std::ifstream f(dir / "kiln-cache-size");
  std::string line;
  std::getline(f, line);
  return line;
}

TEST(KernelCacheTest, MaxSizeReadsBytesWithASuffix) {
  {
    testing::ScopedEnv env("KILN_CUDA_CACHE_MAX_SIZE", nullptr);
    EXPECT_EQ(KernelCacheMaxBytes(), uint64_t{2} << 30);
  }
  const std::vector<std::pair<const char*, uint64_t>> good = {
      {"", uint64_t{2} << 30}, {"0", 0},          {"1234", 1234},     {"4K", 4096},
      {"4k", 4096},            {"3M", 3 << 20},   {"2G", uint64_t{2} << 30}, {"1T", uint64_t{1} << 40},
      {"0G", 0},               {"999999999999999", 999999999999999}};
  for (const auto& [text, bytes] : good) {
    testing::ScopedEnv env("KILN_CUDA_CACHE_MAX_SIZE", text);
    EXPECT_EQ(KernelCacheMaxBytes(), bytes) << text;
  }
  for (const char* text : {"abc", "-1", "10X", "1.5G", "K", "5GB", " 5G", "5G ", "9999999999999999",
                           "99999999999999T"}) {
    testing::ScopedEnv env("KILN_CUDA_CACHE_MAX_SIZE", text);
    KILN_EXPECT_ERROR(KernelCacheDir(), "KILN_CUDA_CACHE_MAX_SIZE must be");  // before any compile
    KILN_EXPECT_ERROR(KernelCacheMaxBytes(),
                      std::string("cuda: KILN_CUDA_CACHE_MAX_SIZE must be a size in bytes with an optional K, M, G or "
                                  "T suffix (\"2G\"), or 0 for no limit; got \"") + text + "\"");
  }
}

TEST(KernelCacheTest, TrimRemovesTheLeastRecentlyUsedFirst) {
  TempFolder dir("lru");
  using std::chrono::seconds;
  for (int i = 0; i < 10; ++i) Put(dir.path() / Cubin("k", i), 1000, seconds(1000 - i));
  Put(dir.path() / "emulator" / "m.so", 1000, seconds(500));  // subfolders count too
  // Reading k0, the oldest, makes it the most recently used.
  EXPECT_EQ(ReadCacheEntry(dir.path() / "k0.cubin"), std::string(1000, 'x'));
  EXPECT_EQ(ReadCacheEntry(dir.path() / "absent.cubin"), "");

  // At or under the limit: measured, nothing removed.
  CacheTrim trim = TrimCache(dir.path(), 11000, 0);
  EXPECT_EQ(trim.files, 11u);
  EXPECT_EQ(trim.bytes, 11000u);
  EXPECT_EQ(trim.removed_files, 0u);
  EXPECT_EQ(Files(dir.path()).size(), 11u);

  const KernelCacheStats before = GetKernelCacheStats();
  trim = TrimCache(dir.path(), 10999, 4500);
  EXPECT_EQ(trim.removed_files, 7u);
  EXPECT_EQ(trim.removed_bytes, 7000u);
  EXPECT_EQ(Files(dir.path()), (std::set<std::string>{"k0.cubin", "k8.cubin", "k9.cubin", "emulator/m.so"}));
  EXPECT_EQ(GetKernelCacheStats().trims, before.trims + 1);
  EXPECT_EQ(GetKernelCacheStats().removed_files, before.removed_files + 7);
  EXPECT_EQ(GetKernelCacheStats().removed_bytes, before.removed_bytes + 7000);
}

TEST(KernelCacheTest, WritesInProgressAndTheNewEntryAreKept) {
  TempFolder dir("in_progress");
  using std::chrono::hours;
  using std::chrono::minutes;
  Put(dir.path() / "a.cubin.tmp123.4", 1000, minutes(50));    // another process is writing it
  Put(dir.path() / "emulator" / "b.so.tmp9.cc", 1000, hours(3));  // left by a process that died
  Put(dir.path() / "c.cubin", 1000, minutes(40));
  Put(dir.path() / "d.cubin", 1000, minutes(45));
  CacheTrim trim = TrimCache(dir.path(), 1000, 0, dir.path() / "c.cubin");
  EXPECT_EQ(trim.files, 4u);
  EXPECT_EQ(trim.removed_files, 2u);
  EXPECT_EQ(Files(dir.path()), (std::set<std::string>{"a.cubin.tmp123.4", "c.cubin"}));
  // The kept entry is recognised however its path is spelled.
  trim = TrimCache(dir.path(), 0, 0, dir.path() / "emulator" / ".." / "." / "c.cubin");
  EXPECT_EQ(trim.removed_files, 0u);
}

// A cache folder shared with other files (KILN_CUDA_CACHE_DIR=/tmp, say):
// only Kiln's files are counted and removed.
TEST(KernelCacheTest, OtherFilesInTheFolderAreLeftAlone) {
  TempFolder dir("shared");
  using std::chrono::hours;
  Put(dir.path() / "notes.txt", 5000, hours(100));
  Put(dir.path() / "a.so", 5000, hours(100));                   // a module, but not in "emulator"
  Put(dir.path() / "emulator" / "b.cubin", 5000, hours(100));   // a cubin, but in "emulator"
  Put(dir.path() / "other" / "c.cubin", 5000, hours(100));      // another folder
  Put(dir.path() / "emulator" / "deeper" / "d.so", 5000, hours(100));
  Put(dir.path() / "old.cubin", 1000, hours(2));
  Put(dir.path() / "emulator" / "old.so", 1000, hours(2));
  Put(dir.path() / "new.cubin", 1000, hours(1));
  const CacheTrim trim = TrimCache(dir.path(), 1500, 1000);
  EXPECT_EQ(trim.files, 3u);
  EXPECT_EQ(trim.bytes, 3000u);
  EXPECT_EQ(trim.removed_files, 2u);
  EXPECT_EQ(Files(dir.path()), (std::set<std::string>{"notes.txt", "a.so", "emulator/b.cubin", "other/c.cubin",
                                                      "emulator/deeper/d.so", "new.cubin"}));
}

TEST(KernelCacheTest, WritersKeepTheFolderUnderTheLimit) {
  TempFolder dir("writers");
  testing::ScopedEnv limit("KILN_CUDA_CACHE_MAX_SIZE", "20K");
  // A folder that was there before its ledger: the first write measures it.
  Put(dir.path() / "old.cubin", 15000, std::chrono::seconds(100));
  WriteCacheEntry(dir.path(), dir.path() / "first.cubin", std::string(1000, 'y'));
  EXPECT_EQ(Ledger(dir.path()), "16000");
  EXPECT_EQ(ReadCacheEntry(dir.path() / "first.cubin"), std::string(1000, 'y'));

  // Eight threads (each with its own descriptor of the ledger, locked as
  // another process's would be) write 150 entries each: 240 KB in all.
  const KernelCacheStats before = GetKernelCacheStats();
  std::vector<std::thread> writers;
  for (int t = 0; t < 8; ++t) {
    writers.emplace_back([&, t] {
      for (int i = 0; i < 150; ++i) {
        const fs::path entry = dir.path() / Cubin(std::string(1, static_cast<char>('a' + t)), i);
        WriteCacheEntry(dir.path(), entry, std::string(200, 'z'));
      }
    });
  }
  for (std::thread& w : writers) w.join();
  const uint64_t bytes = Bytes(dir.path());
  EXPECT_LE(bytes, 20u * 1024);
  EXPECT_GT(GetKernelCacheStats().trims, before.trims);
  EXPECT_FALSE(fs::exists(dir.path() / "old.cubin"));  // the least recently used went first
  // Each writer counts its entry after renaming it into place, so one that a
  // concurrent trim had already measured is counted twice: the ledger may be
  // ahead of the folder by up to one entry per writer, never behind.
  const uint64_t ledger = std::stoull(Ledger(dir.path()));
  EXPECT_GE(ledger, bytes);
  EXPECT_LE(ledger, bytes + 8 * 200);
  for (const std::string& name : Files(dir.path())) EXPECT_EQ(name.find(".tmp"), std::string::npos) << name;
}

// While another process holds the ledger's lock, a writer waits for it.
TEST(KernelCacheTest, WritersWaitForTheLedgersLock) {
  TempFolder dir("lock");
  testing::ScopedEnv limit("KILN_CUDA_CACHE_MAX_SIZE", "1M");
  std::ofstream(dir.path() / "kiln-cache-size") << "0\n";
  const int fd = ::open((dir.path() / "kiln-cache-size").c_str(), O_RDWR);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::flock(fd, LOCK_EX), 0);
  std::thread writer([&] { WriteCacheEntry(dir.path(), dir.path() / "a.cubin", "12345"); });
  // Once the entry is there, the writer goes for the lock: given time, it
  // would have counted the entry were it not waiting.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (!fs::exists(dir.path() / "a.cubin") && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  EXPECT_TRUE(fs::exists(dir.path() / "a.cubin"));
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_EQ(Ledger(dir.path()), "0");
  ::close(fd);  // releases the lock
  writer.join();
  EXPECT_EQ(Ledger(dir.path()), "5");
}

TEST(KernelCacheTest, NoLimitMeansNoLedger) {
  TempFolder dir("no_limit");
  testing::ScopedEnv limit("KILN_CUDA_CACHE_MAX_SIZE", "0");
  for (int i = 0; i < 5; ++i) WriteCacheEntry(dir.path(), dir.path() / Cubin("", i), "abc");
  EXPECT_EQ(Files(dir.path()).size(), 5u);
  EXPECT_FALSE(fs::exists(dir.path() / "kiln-cache-size"));
}

TEST(KernelCacheTest, ADamagedLedgerIsMeasuredAgain) {
  TempFolder dir("damaged");
  testing::ScopedEnv limit("KILN_CUDA_CACHE_MAX_SIZE", "1M");
  Put(dir.path() / "a.cubin", 3000, std::chrono::seconds(10));
  for (const char* text : {"", "12", "garbage\n", "-5\n", "18446744073709551615\n", "99999999999999999999\n"}) {
    std::ofstream(dir.path() / "kiln-cache-size", std::ios::trunc) << text;
    WriteCacheEntry(dir.path(), dir.path() / "b.cubin", std::string(500, 'b'));
    EXPECT_EQ(Ledger(dir.path()), "3500") << text;
  }
  // A good ledger is counted on, not measured again.
  std::ofstream(dir.path() / "kiln-cache-size", std::ios::trunc) << "100\n";
  WriteCacheEntry(dir.path(), dir.path() / "c.cubin", std::string(20, 'c'));
  EXPECT_EQ(Ledger(dir.path()), "120");
}

TEST(KernelCacheTest, AnUnwritableFolderOnlyLosesTheEntry) {
  TempFolder dir("unwritable");
  const fs::path file = dir.path() / "not_a_folder";
  Put(file, 10, std::chrono::seconds(0));
  WriteCacheEntry(file.string(), file / "x.cubin", "abc");  // cannot create a folder inside a file
  EXPECT_EQ(Files(dir.path()), (std::set<std::string>{"not_a_folder"}));
  EXPECT_EQ(ReadCacheEntry(file / "x.cubin"), "");
}

}  // namespace
}  // namespace kiln::backends::cuda
