// Copyright 2026 The Kiln Authors.
#include "src/backends/host_storage_pool.h"

#include <cstdlib>
#include <mutex>
#include <unordered_map>
#include <vector>

namespace kiln::backends::internal {

namespace {

constexpr size_t kAlign = 64;
// Small blocks are cheap to get from malloc; the cache is for large ones.
constexpr size_t kMinCached = 64 * 1024;
// Upper bound on cached bytes: the working set of a step is reused, and
// memory stays flat over steps because a block is only cached after use.
constexpr size_t kMaxCachedBytes = size_t{1} << 30;

struct Pool {
  std::mutex mu;
  std::unordered_map<size_t, std::vector<void*>> free_blocks;  // capacity -> blocks
  size_t cached_bytes = 0;
};

Pool& GetPool() {
  static Pool* pool = new Pool();  // never destroyed: buffers may be freed during exit
  return *pool;
}

size_t RoundUp(size_t bytes) {
  size_t r = (bytes == 0 ? 1 : bytes + kAlign - 1) / kAlign * kAlign;
  // Large blocks round to pages so near sizes share a bucket.
  if (r >= kMinCached) r = (r + 4095) / 4096 * 4096;
  return r;
}

}  // namespace

void* AcquireBlock(size_t bytes, size_t* capacity) {
  const size_t rounded = RoundUp(bytes);
  *capacity = rounded;
  if (rounded >= kMinCached) {
    Pool& pool = GetPool();
    std::lock_guard lock(pool.mu);
    auto it = pool.free_blocks.find(rounded);
    if (it != pool.free_blocks.end() && !it->second.empty()) {
      void* block = it->second.back();
      it->second.pop_back();
      pool.cached_bytes -= rounded;
      return block;
    }
  }
  return std::aligned_alloc(kAlign, rounded);
}

void ReleaseBlock(void* block, size_t capacity) {
  if (block == nullptr) return;
  if (capacity >= kMinCached) {
    Pool& pool = GetPool();
    std::lock_guard lock(pool.mu);
    if (pool.cached_bytes + capacity <= kMaxCachedBytes) {
      pool.free_blocks[capacity].push_back(block);
      pool.cached_bytes += capacity;
      return;
    }
  }
  std::free(block);
}

size_t CachedBytes() {
  Pool& pool = GetPool();
  std::lock_guard lock(pool.mu);
  return pool.cached_bytes;
}

}  // namespace kiln::backends::internal
