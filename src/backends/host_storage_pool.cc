// Copyright 2026 The Kiln Authors.
#include "src/backends/host_storage_pool.h"

#include <sys/mman.h>

#include <algorithm>
#include <cstdlib>
#include <list>
#include <mutex>
#include <unordered_map>
#include <vector>

namespace kiln::backends::internal {

namespace {

constexpr size_t kAlign = 64;
constexpr size_t kPage = 4096;
// Small blocks are cheap to get from malloc; the cache is for large ones.
constexpr size_t kMinCached = 64 * 1024;
// The cache may always hold this much, whatever is in use...
constexpr size_t kFloorBytes = size_t{64} << 20;
// ...and never more than this.
constexpr size_t kCeilingBytes = size_t{1} << 30;

// Large blocks are mapped and unmapped directly rather than through malloc:
// an evicted block goes back to the OS at once. Through malloc, glibc's
// dynamic mmap threshold moves freed large blocks onto the heap, which then
// grows with every new size and is never returned (issue 10: +520 MB after
// 2,500 shapes).
void* MapBlock(size_t bytes) {
  void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  return p == MAP_FAILED ? nullptr : p;
}

void UnmapBlock(void* block, size_t bytes) { munmap(block, bytes); }

struct Pool {
  std::mutex mu;
  // Cached blocks, most recently released first; evictions take the back.
  struct Entry {
    void* block;
    size_t capacity;
  };
  std::list<Entry> lru;
  std::unordered_map<size_t, std::vector<std::list<Entry>::iterator>> by_capacity;
  size_t cached_bytes = 0;
  size_t in_use_bytes = 0;  // large blocks handed out and not released
  size_t peak_in_use_bytes = 0;

  // What the cache may hold: twice the largest working set seen, at least
  // the floor, at most the ceiling. Sizes nobody asks for again age out
  // through the LRU order. Twice, because a step maps more than its peak in
  // use: a block released early (a forward activation) cannot serve a later
  // request of another size (a gradient), so both stay mapped. Capped at the
  // peak itself, the cache evicted the forward pass's blocks at the end of
  // every train step, and the next step faulted them in again (3,000 page
  // faults per step of the char-GPT example, about 12% of its time).
  size_t Limit() const { return std::clamp(2 * peak_in_use_bytes, kFloorBytes, kCeilingBytes); }

  void EvictOldest() {
    Entry e = lru.back();
    auto& same = by_capacity[e.capacity];
    auto last = std::prev(lru.end());
    same.erase(std::find(same.begin(), same.end(), last));
    if (same.empty()) by_capacity.erase(e.capacity);
    lru.pop_back();
    cached_bytes -= e.capacity;
    UnmapBlock(e.block, e.capacity);
  }
};

Pool& GetPool() {
  static Pool* pool = new Pool();  // never destroyed: buffers may be freed during exit
  return *pool;
}

size_t RoundUp(size_t bytes) {
  size_t r = (bytes == 0 ? 1 : bytes + kAlign - 1) / kAlign * kAlign;
  // Large blocks round to pages (they are mapped), so near sizes share a bucket.
  if (r >= kMinCached) r = (r + kPage - 1) / kPage * kPage;
  return r;
}

}  // namespace

void* AcquireBlock(size_t bytes, size_t* capacity) {
  const size_t rounded = RoundUp(bytes);
  *capacity = rounded;
  if (rounded < kMinCached) return std::aligned_alloc(kAlign, rounded);
  Pool& pool = GetPool();
  {
    std::lock_guard lock(pool.mu);
    pool.in_use_bytes += rounded;
    pool.peak_in_use_bytes = std::max(pool.peak_in_use_bytes, pool.in_use_bytes);
    auto it = pool.by_capacity.find(rounded);
    if (it != pool.by_capacity.end()) {
      auto entry = it->second.back();
      void* block = entry->block;
      it->second.pop_back();
      if (it->second.empty()) pool.by_capacity.erase(it);
      pool.lru.erase(entry);
      pool.cached_bytes -= rounded;
      return block;
    }
  }
  void* block = MapBlock(rounded);
  if (block == nullptr) {
    std::lock_guard lock(pool.mu);
    pool.in_use_bytes -= rounded;
  }
  return block;
}

void ReleaseBlock(void* block, size_t capacity) {
  if (block == nullptr) return;
  if (capacity < kMinCached) {
    std::free(block);
    return;
  }
  Pool& pool = GetPool();
  std::lock_guard lock(pool.mu);
  pool.in_use_bytes -= capacity;
  const size_t limit = pool.Limit();
  if (capacity > limit) {
    UnmapBlock(block, capacity);
    return;
  }
  pool.lru.push_front({block, capacity});
  pool.by_capacity[capacity].push_back(pool.lru.begin());
  pool.cached_bytes += capacity;
  while (pool.cached_bytes > limit) pool.EvictOldest();
}

size_t CachedBytes() {
  Pool& pool = GetPool();
  std::lock_guard lock(pool.mu);
  return pool.cached_bytes;
}

size_t CacheLimitBytes() {
  Pool& pool = GetPool();
  std::lock_guard lock(pool.mu);
  return pool.Limit();
}

}  // namespace kiln::backends::internal
