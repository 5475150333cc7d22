// Copyright 2026 The Kiln Authors.
// A cache of freed host blocks by size: a train step allocates the same
// buffer sizes every time, and handing them back to the OS (large blocks are
// mmap'd by malloc) costs a page fault per 4 KiB page on every reuse.
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

}  // namespace kiln::backends::internal
