// Copyright 2026 The Kiln Authors.
// The disk cache of compiled kernels: NVRTC's cubins, and the emulator's host
// modules in its "emulator" subfolder. Processes share it: entries are
// written atomically (a temporary file renamed into place), and a size
// ledger in the folder, updated under an exclusive file lock, counts what
// every process adds. When the ledger passes the size limit, the writer that
// passed it removes the least recently used entries (by modification time,
// which a read sets to now) until 80% of the limit is left, as ccache does:
// without a limit, every new shape's kernels would stay on disk for good.
// Only Kiln's own files count; others in the folder are left alone.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

namespace kiln::backends::cuda {

/// The cache folder's subfolder of emulator modules (emulated_modules.cc),
/// which trimming measures with the cubins.
inline constexpr char kEmulatorSubfolder[] = "emulator";

/// The disk cache folder: $KILN_CUDA_CACHE_DIR if set ("" or "off" disables
/// it), else $XDG_CACHE_HOME/kiln/cuda, else ~/.cache/kiln/cuda. Throws
/// KernelCacheMaxBytes()'s error for a bad limit, so that it shows before
/// any compile, whether or not the cache is on.
std::string KernelCacheDir();

/// The most bytes the cache folder may hold, from $KILN_CUDA_CACHE_MAX_SIZE:
/// a byte count with an optional K, M, G or T suffix (powers of 1024), such
/// as "500M"; 0 ("0") for no limit; 2 GiB where unset or empty. Throws
/// kiln::Error naming the variable for another value.
uint64_t KernelCacheMaxBytes();

/// The cache entry at `path`, or "" where it is absent or unreadable. A read
/// entry is marked used now, so trimming keeps it longest.
std::string ReadCacheEntry(const std::filesystem::path& path);

/// Marks the entry at `path` used now: for entries read by other means
/// (the emulator's modules, which dlopen reads). Failures are ignored.
void TouchCacheEntry(const std::filesystem::path& path);

/// Writes `data` as the entry at `path` inside cache folder `dir`
/// atomically, so that a concurrent reader never sees part of it, then
/// counts it (AddedToCache). Never throws: a failure only loses the entry.
void WriteCacheEntry(const std::string& dir, const std::filesystem::path& path, const std::string& data);

/// Counts the `bytes` of `entry`, just put in cache folder `dir` (or in its
/// emulator subfolder), in the folder's size ledger; where that takes the
/// ledger past KernelCacheMaxBytes(), trims the folder to 80% of the limit,
/// `entry` kept whatever the limit (its writer is about to use it). A
/// missing or unreadable ledger is rebuilt by measuring the folder. Nothing
/// is counted where there is no limit; where the ledger cannot be opened or
/// locked (within a minute, after which the process stops trying), a
/// warning on stderr (once per process) says the limit is not enforced.
/// After a trim that fell short (files it may not remove), the process
/// measures again only once another fifth of the limit is added. Never
/// throws.
void AddedToCache(const std::string& dir, const std::filesystem::path& entry, uint64_t bytes);

/// What TrimCache found and removed.
struct CacheTrim {
  uint64_t files = 0, bytes = 0;                  // in the folder before
  uint64_t removed_files = 0, removed_bytes = 0;  // of those, removed
};

/// Measures the files Kiln keeps in cache folder `dir` (its cubins, the
/// emulator subfolder's modules, and their temporary files; nothing else is
/// counted or removed, as the folder may be shared); where they hold more than
/// `limit` bytes, removes them, least recently modified first, until at most
/// `target` bytes are left. Temporary files younger than an hour are other
/// processes' writes in progress: counted, never removed; so is `keep`.
/// Files that cannot be removed stay counted.
CacheTrim TrimCache(const std::string& dir, uint64_t limit, uint64_t target,
                    const std::filesystem::path& keep = {});

/// Counters of the trims this process made.
struct KernelCacheStats {
  int64_t trims = 0, removed_files = 0, removed_bytes = 0;
};

/// The trims this process made so far, and what they removed.
KernelCacheStats GetKernelCacheStats();

}  // namespace kiln::backends::cuda
