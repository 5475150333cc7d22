// Copyright 2026 The Kiln Authors.
// A cache of freed host blocks by size: a train step allocates the same
// buffer sizes every time, and handing them back to the OS costs a page fault
// per 4 KiB page on every reuse. Large blocks (64 KiB and up) are mapped
// directly; the cache holds at most twice the peak of large blocks in use
// (at least 64 MiB, at most 1 GiB) and evicts the least recently
// released blocks first, unmapping them, so sizes no longer asked for (a
// graph compiled for many shapes) return their memory to the OS.
#pragma once

#include <cstddef>

namespace kiln::backends::internal {

/// A 64-byte aligned block of at least `bytes` (reused if one of the same
/// rounded size was released); nullptr if out of memory. `*capacity` gets
/// the block's rounded size, to pass back to Release.
void* AcquireBlock(size_t bytes, size_t* capacity);

/// Returns a block to the cache (or frees it if the cache is full).
void ReleaseBlock(void* block, size_t capacity);

/// Bytes currently held by the cache (for tests and diagnostics).
size_t CachedBytes();

/// The most the cache may hold now (for tests and diagnostics).
size_t CacheLimitBytes();

}  // namespace kiln::backends::internal
