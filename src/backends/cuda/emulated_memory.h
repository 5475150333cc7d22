// Copyright 2026 The Kiln Authors.
// The emulator's device memory (emulator.h): host memory that shows bugs.
// Each buffer ends (rounded up to 16 bytes, the vector loads' alignment)
// where an inaccessible page begins, so a kernel or library call reading or
// writing past its end faults at once (on a GPU that is an illegal address,
// or a silent read of a neighbour); the few bytes of rounding hold a
// canary, checked when the buffer is freed. New buffers are filled with
// 0xff, so an output element nobody wrote shows (NaN, -1).
#pragma once

#include <cstddef>
#include <memory>

namespace kiln::backends::cuda {

/// One buffer of emulated device memory.
class HostMem {
 public:
  /// `n` bytes filled with 0xff (none, and a null ptr, for 0). Where the
  /// process runs out of mappings (vm.max_map_count), it comes from the
  /// heap, without the guard page (the canary still catches writes).
  explicit HostMem(size_t n);
  /// Checks the canary (aborting with a message if it was overwritten) and
  /// frees the buffer.
  ~HostMem();
  HostMem(const HostMem&) = delete;
  HostMem& operator=(const HostMem&) = delete;

  /// Aborts with a message if something wrote past the end.
  void CheckCanary() const;
  /// Fills the buffer with 0xff again, for reuse.
  void Refill();

  void* ptr = nullptr;
  size_t bytes = 0;

 private:
  bool MapWithGuard(size_t rounded);

  size_t slack_ = 0;  // the canary's bytes after `bytes`
  void* mapping_ = nullptr;
  size_t mapped_ = 0;
  void* heap_ = nullptr;  // the fallback allocation
};

/// A buffer of `bytes`: a freed one of that size where one is kept (blocks
/// of 1 MiB and more, refilled), else a new one.
std::unique_ptr<HostMem> NewHostMem(size_t bytes);

/// Frees `m` (checking its canary), or keeps it for NewHostMem to reuse:
/// a fresh large block costs a page fault per 4 KiB when it is filled.
/// Smaller blocks are unmapped, so a late access to one faults.
void ReleaseHostMem(std::unique_ptr<HostMem> m);

}  // namespace kiln::backends::cuda
