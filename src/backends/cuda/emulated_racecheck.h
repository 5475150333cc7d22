// Copyright 2026 The Kiln Authors.
// The emulator's race check (emulated_modules.h): every load and store of
// an emulated kernel to its block's __shared__ variables or to the device
// memory its parameters point into, compared with the other threads'
// accesses to the same address, as CUDA's compute-sanitizer racecheck does
// for shared memory.
//
// On a GPU the threads of a block run at once between barriers, and the
// blocks of a grid in no set order, so two threads' accesses to one
// address, one of them a write, neither an atomic, give a result that
// depends on timing, unless __syncthreads orders them (same block,
// different intervals between barriers). The emulator runs one thread at a
// time, so such a kernel computes some answer here, and the shuffled order
// shows a wrong one only by chance; the check reports it whatever the
// order. Two plain writes of the same value are not reported (the flag
// idiom `if (bad) flag = 1`), nor a compare-and-swap loop's first plain
// read racing other threads' atomics (marked kAtomicRead: the loop checks
// it).
//
// The modules are compiled with the host compiler's ThreadSanitizer
// instrumentation, whose calls (__tsan_read4, ...) the shim routes here,
// not to TSan's runtime. Accesses are compared by their start address, so
// two of different sizes that overlap at different starts are not, nor an
// access of 4 bytes or more aligned to 4 with a smaller or unaligned one at
// the same start (they are kept apart: the first kind in dense pages, the
// second in a table); struct copies Clang turns into memcpy calls are not
// seen. A launch checks up to 8 MiB of memory through the pages (80 MiB of
// cells) and half a million addresses through the table (up to 56 MiB);
// new addresses beyond go unchecked.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace kiln::backends::cuda {

/// How a kernel touched memory. The values are the shim's (kRaceShim).
enum class AccessKind : uint8_t {
  kRead = 0,
  kWrite = 1,
  kAtomic = 2,      // an atomic read-modify-write (atomicAdd, atomicCAS)
  kAtomicRead = 3,  // a plain read that other threads' atomics may race by design
};

/// Device memory a launch's parameter points into: from the parameter's
/// value to the end of its allocation.
struct LaunchBuffer {
  uintptr_t begin = 0, end = 0;
  int parameter = 0;
};

/// A named static variable of a module (a kernel's __shared__ variable),
/// for reports.
struct StaticVariable {
  uintptr_t begin = 0;
  size_t size = 0;
  std::string name;
};

/// Checks one launch at a time. Not thread-safe: launches are serialized.
class RaceChecker {
 public:
  RaceChecker();
  ~RaceChecker();
  RaceChecker(const RaceChecker&) = delete;
  RaceChecker& operator=(const RaceChecker&) = delete;

  /// Starts checking a launch of `kernel`: `[shared_begin, shared_end)` holds
  /// its module's __shared__ variables (one block's at a time), `variables`
  /// (by address; may be null, and must outlive the launch) names them,
  /// `buffers` is the device memory its parameters point into. Forgets the
  /// previous launch.
  void BeginLaunch(const std::string& kernel, uintptr_t shared_begin, uintptr_t shared_end,
                   const std::vector<StaticVariable>* variables, std::vector<LaunchBuffer> buffers);

  /// An access of `size` bytes at `address` by thread `thread` of block
  /// `block`, which has passed `epoch` barriers. Addresses outside the
  /// shared variables and the buffers are ignored.
  void Access(uintptr_t address, size_t size, AccessKind kind, unsigned block, unsigned thread, unsigned epoch);

  /// The running thread stopped (at a barrier or at its end): its writes
  /// that met another thread's plain write in the same interval are races
  /// unless they left the value that write had written.
  void ThreadStopped();

  /// The first race of the launch, described for a kiln::Error; empty if
  /// none.
  const std::string& Race() const;

 private:
  struct State;  // emulated_racecheck.cc
  std::unique_ptr<State> state_;
};

}  // namespace kiln::backends::cuda
