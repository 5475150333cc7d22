// Copyright 2026 The Kiln Authors.
// The CUDA emulator (see emulator.h): a host stand-in for the CUDA runtime
// (runtime_api.h) on which the CUDA backend itself (cuda_backend.cc) runs.
//
// - Device memory is emulated_memory.h's (ending at an inaccessible page,
//   filled with 0xff); allocations are tracked, so a free of memory the
//   runtime did not hand out, or a copy reaching past an allocation, is an
//   error, as on a GPU.
// - Streams queue their work and run it, in order, on the thread that
//   waits for it (a stream or event synchronization, a copy to pageable
//   memory, cudaFree), as a GPU may run it any time later: a host read that
//   does not wait sees stale bytes. A copy from pageable memory takes its
//   bytes at the call; freed memory is released when its stream gets
//   there. The legacy default stream (null) is refused where work is
//   ordered on a stream: Kiln's streams are non-blocking, so on a GPU
//   work put there would race with theirs. A stream being captured
//   (cudaStreamBeginCapture) records its work instead, and an
//   instantiated graph runs the recording on each launch. Graph memory
//   (cudaMallocAsync while capturing) belongs to the graph. Calls CUDA
//   refuses during a thread-local capture (waits for the host, cudaMalloc)
//   fail and invalidate it.
// - Kernels are emulated_modules.h's: the modules' CUDA C++ compiled by the
//   host's C++ compiler, a launch running the grid's blocks one after the
//   other, in an order shuffled for each launch (a GPU keeps none).
// - The libraries are the stand-ins of emulated_library.h and
//   emulated_cudnn.cc, whose calls go on these streams.
#include "src/backends/cuda/emulator.h"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdint>
#include <cstring>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "kiln/backends/backend.h"
#include "kiln/core/error.h"
#include "src/backends/cuda/cuda_backend.h"
#include "src/backends/cuda/emulated_library.h"
#include "src/backends/cuda/emulated_memory.h"
#include "src/backends/cuda/emulated_modules.h"
#include "src/backends/cuda/runtime_api.h"

namespace kiln::backends::cuda {

namespace {

// Multiprocessors the emulated device has: few, so that the kernels'
// grid-stride loops run several rounds on the tests' sizes.
constexpr int kEmulatedSms = 2;

// A graph's work and memory (a capture's, then its graph's and its
// instantiations'): alive while any of them is.
struct GraphBody;

// A block of emulated device memory the runtime handed out.
struct Allocation {
  std::unique_ptr<HostMem> own;  // null for graph memory (its body owns it)
  HostMem* mem = nullptr;
  GraphBody* graph = nullptr;   // graph memory: the body it belongs to
  bool freed_in_graph = false;  // freed during the capture that allocated it
  bool outstanding = false;     // graph memory a launch made and nobody freed since
};

// Work submitted to a stream and not yet run, with its place in the
// stream's order.
struct Pending {
  uint64_t seq = 0;
  std::function<void()> work;
};
struct EmuStream {
  bool capturing = false;
  bool invalidated = false;  // an unsafe call during the capture
  cudaStreamCaptureMode mode = cudaStreamCaptureModeGlobal;
  std::thread::id capturer;
  std::shared_ptr<GraphBody> capture;
  std::deque<Pending> pending;  // in order; run when the host waits for it
  uint64_t submitted = 0;       // the last submitted work's seq
  std::mutex run_mu;            // held while running pending work, so it runs in order
};
// When a timing event's work ran (cudaEventElapsedTime), set by the work
// its record submitted.
struct EmuStamp {
  std::atomic<bool> done{false};
  std::chrono::steady_clock::time_point time;
};
// A recorded event: the point of its stream's work it stands for.
struct EmuEvent {
  EmuStream* stream = nullptr;
  uint64_t seq = 0;
  bool timing = true;               // created without cudaEventDisableTiming
  std::shared_ptr<EmuStamp> stamp;  // the last record's (null: none, or recorded in a capture)
};
struct EmuGraph {
  std::shared_ptr<GraphBody> body;
};
struct EmuGraphExec {
  std::shared_ptr<GraphBody> body;
};
struct EmuLibrary {
  std::string image;  // CompileEmulatedModules'
  std::vector<std::unique_ptr<EmulatedKernel>> kernels;
};

// Everything the runtime handed out, under one mutex. Work (kernels,
// copies, library calls) runs without it.
struct Runtime {
  std::mutex mu;
  std::map<const char*, Allocation> allocations;  // by start address
  std::map<const char*, size_t> pinned;  // cudaHostAlloc's blocks, by start
  std::set<const void*> streams, events, graphs, execs, libraries, kernels;
  std::vector<std::unique_ptr<EmuStream>> retired;  // destroyed streams (under a KiB each)
};
Runtime& Rt() {
  static auto* rt = new Runtime();  // never destroyed: buffers may outlive static destruction
  return *rt;
}

struct GraphBody {
  std::vector<std::function<void()>> work;
  std::vector<std::unique_ptr<HostMem>> memory;
  int instances = 0;  // its executable graphs alive (at most one with memory nodes)
  ~GraphBody() {
    std::lock_guard lock(Rt().mu);
    for (const auto& m : memory) Rt().allocations.erase(static_cast<const char*>(m->ptr));
  }
};

thread_local cudaError_t last_error = cudaSuccess;

cudaError_t Fail(cudaError_t e) {
  last_error = e;
  return e;
}

EmuStream* StreamOf(cudaStream_t s) { return reinterpret_cast<EmuStream*>(s); }

// Whether `s` is a stream this runtime made. The legacy default stream
// (null) is not: it does not order work with the non-blocking streams the
// backend makes, so on a GPU work put on it by mistake (a launch, a copy,
// a library handle whose stream was never set) would race with theirs;
// here it would run at once, in a safe order, and hide the race. Stream-
// ordered calls refuse it (cudaErrorInvalidResourceHandle). Needs Rt().mu.
bool KnownStream(cudaStream_t s) { return s != nullptr && Rt().streams.count(s) != 0; }

// A call CUDA forbids while this thread captures a stream (it would wait
// for the device, or map memory): true, and that capture is invalidated.
// Needs Rt().mu.
bool ForbiddenWhileCapturing() {
  for (const void* p : Rt().streams) {
    auto* s = static_cast<EmuStream*>(const_cast<void*>(p));
    if (s->capturing && s->mode != cudaStreamCaptureModeRelaxed &&
        (s->mode == cudaStreamCaptureModeGlobal || s->capturer == std::this_thread::get_id())) {
      s->invalidated = true;
      return true;
    }
  }
  return false;
}

// The block of `blocks` (by start address; `size` gives a block's length)
// holding [p, p + bytes), or null.
template <typename V, typename Size>
V* Containing(std::map<const char*, V>& blocks, const void* p, size_t bytes, Size size) {
  auto it = blocks.upper_bound(static_cast<const char*>(p));
  if (it == blocks.begin()) return nullptr;
  --it;
  return static_cast<const char*>(p) + bytes <= it->first + size(it->second) ? &it->second : nullptr;
}

// The allocation holding [p, p + bytes), or null. Needs Rt().mu.
Allocation* Holding(const void* p, size_t bytes) {
  return Containing(Rt().allocations, p, bytes, [](const Allocation& a) { return a.mem->bytes; });
}

// Whether [p, p + bytes) lies in pinned host memory. Needs Rt().mu.
bool Pinned(const void* p, size_t bytes) {
  return Containing(Rt().pinned, p, bytes, [](size_t n) { return n; }) != nullptr;
}

// Runs `s`'s pending work up to `upto` (its seq) on the calling thread, in
// order: the host waiting for the device. Without Rt().mu.
// Work that throws (a stand-in's computation refusing what its call
// accepted) would surface in whichever call waits, maybe a destructor: it
// aborts with the message instead, as the canary does.
void Drain(EmuStream* s, uint64_t upto) {
  std::lock_guard run(s->run_mu);
  for (;;) {
    std::function<void()> work;
    {
      std::lock_guard lock(Rt().mu);
      if (s->pending.empty() || s->pending.front().seq > upto) return;
      work = std::move(s->pending.front().work);
      s->pending.pop_front();
    }
    try {
      work();
    } catch (const std::exception& e) {
      std::fprintf(stderr, "cuda-emu: work queued on a stream failed: %s\n", e.what());
      std::abort();
    }
  }
}

// `s`'s work submitted so far (a wait covers that, not work submitted by
// other threads while it runs). Needs Rt().mu.
uint64_t Submitted(cudaStream_t s) { return StreamOf(s)->submitted; }

// Every stream's pending work (a device-wide synchronization). Without
// Rt().mu.
void DrainAll() {
  std::vector<std::pair<EmuStream*, uint64_t>> streams;
  {
    std::lock_guard lock(Rt().mu);
    for (const void* p : Rt().streams) {
      auto* s = static_cast<EmuStream*>(const_cast<void*>(p));
      streams.emplace_back(s, s->submitted);
    }
  }
  for (const auto& [s, upto] : streams) Drain(s, upto);
}

constexpr size_t kMaxPending = 4096;

// Submits `work` to `s` (a KnownStream): recorded where `s` is being
// captured, else queued until the host waits for it, as a GPU runs a
// stream's work later, in order. `seq`, if given, gets its place. Needs
// Rt().mu held through `lock`, which it may release.
cudaError_t Submit(cudaStream_t s, std::function<void()> work, std::unique_lock<std::mutex>& lock,
                   uint64_t* seq = nullptr) {
  EmuStream& stream = *StreamOf(s);
  if (stream.capturing) {
    if (stream.invalidated) {
      lock.unlock();  // `work` may own what takes the lock when it dies
      return Fail(cudaErrorStreamCaptureInvalidated);
    }
    stream.capture->work.push_back(std::move(work));
    return cudaSuccess;
  }
  stream.pending.push_back({++stream.submitted, std::move(work)});
  if (seq != nullptr) *seq = stream.submitted;
  // A host that never waits: the device keeps up (the queue's closures and
  // freed blocks would pile up otherwise).
  if (stream.pending.size() > kMaxPending) {
    const uint64_t upto = stream.submitted - kMaxPending / 2;
    lock.unlock();
    Drain(&stream, upto);
    lock.lock();
  }
  return cudaSuccess;
}

cudaError_t GetDeviceCount(int* count) {
  if (count == nullptr) return Fail(cudaErrorInvalidValue);
  *count = 1;
  return cudaSuccess;
}
cudaError_t SetDevice(int device) { return device == 0 ? cudaSuccess : Fail(cudaErrorInvalidDevice); }
cudaError_t GetLastError() { return std::exchange(last_error, cudaSuccess); }
const char* GetErrorString(cudaError_t e) { return ::cudaGetErrorString(e); }  // a table: needs no driver
cudaError_t GetDeviceProperties(cudaDeviceProp* prop, int device) {
  if (prop == nullptr) return Fail(cudaErrorInvalidValue);
  if (device != 0) return Fail(cudaErrorInvalidDevice);
  *prop = cudaDeviceProp{};
  std::snprintf(prop->name, sizeof prop->name, "emulated GPU, kernels compiled by %s", EmulatorCompiler().c_str());
  prop->major = 9;
  prop->minor = 0;
  prop->multiProcessorCount = kEmulatedSms;
  prop->totalGlobalMem = size_t{16} << 30;
  return cudaSuccess;
}

cudaError_t StreamCreateWithFlags(cudaStream_t* s, unsigned int) {
  if (s == nullptr) return Fail(cudaErrorInvalidValue);
  auto* stream = new EmuStream;
  std::lock_guard lock(Rt().mu);
  Rt().streams.insert(stream);
  *s = reinterpret_cast<cudaStream_t>(stream);
  return cudaSuccess;
}
// The stream's work completes first, as CUDA's does before it releases it.
cudaError_t StreamDestroy(cudaStream_t s) {
  uint64_t upto = 0;
  {
    std::lock_guard lock(Rt().mu);
    if (s == nullptr || Rt().streams.count(s) == 0) return Fail(cudaErrorInvalidResourceHandle);
    if (StreamOf(s)->capturing) return Fail(cudaErrorStreamCaptureUnsupported);
    upto = Submitted(s);
  }
  Drain(StreamOf(s), upto);
  std::lock_guard lock(Rt().mu);
  if (Rt().streams.erase(s) == 0) return Fail(cudaErrorInvalidResourceHandle);  // destroyed meanwhile
  // Kept, not deleted: a device-wide wait on another thread may hold it.
  Rt().retired.emplace_back(StreamOf(s));
  return cudaSuccess;
}
cudaError_t StreamSynchronize(cudaStream_t s) {
  uint64_t upto = 0;
  {
    std::lock_guard lock(Rt().mu);
    if (!KnownStream(s)) return Fail(cudaErrorInvalidResourceHandle);
    if (StreamOf(s)->capturing) {
      StreamOf(s)->invalidated = true;
      return Fail(cudaErrorStreamCaptureUnsupported);
    }
    if (ForbiddenWhileCapturing()) return Fail(cudaErrorStreamCaptureUnsupported);
    upto = Submitted(s);
  }
  Drain(StreamOf(s), upto);
  return cudaSuccess;
}

cudaError_t StreamBeginCapture(cudaStream_t s, cudaStreamCaptureMode mode) {
  std::lock_guard lock(Rt().mu);
  if (s == nullptr || Rt().streams.count(s) == 0) return Fail(cudaErrorStreamCaptureUnsupported);
  EmuStream& stream = *StreamOf(s);
  if (stream.capturing) return Fail(cudaErrorIllegalState);
  stream.capturing = true;
  stream.invalidated = false;
  stream.mode = mode;
  stream.capturer = std::this_thread::get_id();
  stream.capture = std::make_shared<GraphBody>();
  return cudaSuccess;
}
cudaError_t StreamEndCapture(cudaStream_t s, cudaGraph_t* graph) {
  std::shared_ptr<GraphBody> body;  // destroyed after the lock is released
  std::lock_guard lock(Rt().mu);
  if (s == nullptr || Rt().streams.count(s) == 0 || graph == nullptr) return Fail(cudaErrorInvalidValue);
  EmuStream& stream = *StreamOf(s);
  if (!stream.capturing) return Fail(cudaErrorIllegalState);
  if (stream.mode != cudaStreamCaptureModeRelaxed && stream.capturer != std::this_thread::get_id()) {
    return Fail(cudaErrorStreamCaptureWrongThread);
  }
  stream.capturing = false;
  body = std::move(stream.capture);
  *graph = nullptr;
  if (stream.invalidated) return Fail(cudaErrorStreamCaptureInvalidated);
  auto* g = new EmuGraph{body};
  Rt().graphs.insert(g);
  *graph = reinterpret_cast<cudaGraph_t>(g);
  return cudaSuccess;
}
cudaError_t GraphInstantiate(cudaGraphExec_t* exec, cudaGraph_t graph, unsigned long long) {
  std::lock_guard lock(Rt().mu);
  if (exec == nullptr || Rt().graphs.count(graph) == 0) return Fail(cudaErrorInvalidValue);
  const std::shared_ptr<GraphBody>& body = reinterpret_cast<EmuGraph*>(graph)->body;
  // CUDA: a graph with allocation or free nodes has at most one executable
  // graph at a time.
  if (!body->memory.empty() && body->instances > 0) return Fail(cudaErrorNotSupported);
  ++body->instances;
  auto* e = new EmuGraphExec{body};
  Rt().execs.insert(e);
  *exec = reinterpret_cast<cudaGraphExec_t>(e);
  return cudaSuccess;
}
cudaError_t GraphDestroy(cudaGraph_t graph) {
  std::unique_ptr<EmuGraph> g;  // destroyed after the lock is released
  std::lock_guard lock(Rt().mu);
  if (Rt().graphs.erase(graph) == 0) return Fail(cudaErrorInvalidValue);
  g.reset(reinterpret_cast<EmuGraph*>(graph));
  return cudaSuccess;
}
cudaError_t GraphExecDestroy(cudaGraphExec_t exec) {
  std::unique_ptr<EmuGraphExec> e;
  std::lock_guard lock(Rt().mu);
  if (Rt().execs.erase(exec) == 0) return Fail(cudaErrorInvalidValue);
  e.reset(reinterpret_cast<EmuGraphExec*>(exec));
  --e->body->instances;
  return cudaSuccess;
}
cudaError_t GraphUpload(cudaGraphExec_t exec, cudaStream_t s) {
  std::lock_guard lock(Rt().mu);
  if (Rt().execs.count(exec) == 0 || !KnownStream(s)) return Fail(cudaErrorInvalidValue);
  return cudaSuccess;
}

// Replays left to fail (FailNextEmulatorReplays).
std::atomic<int> replay_failures_left{0};

// Whether this replay is to fail (taking one of those left).
bool TakeReplayFailure() {
  int left = replay_failures_left.load();
  while (left > 0 && !replay_failures_left.compare_exchange_weak(left, left - 1)) {
  }
  return left > 0;
}

cudaError_t GraphLaunch(cudaGraphExec_t exec, cudaStream_t s) {
  std::shared_ptr<GraphBody> body;
  std::unique_lock lock(Rt().mu);
  if (Rt().execs.count(exec) == 0 || !KnownStream(s)) return Fail(cudaErrorInvalidValue);
  if (StreamOf(s)->capturing) return Fail(cudaErrorStreamCaptureUnsupported);
  // As a launch fails where the graph's memory cannot be had.
  if (TakeReplayFailure()) return Fail(cudaErrorMemoryAllocation);
  body = reinterpret_cast<EmuGraphExec*>(exec)->body;
  // Memory the graph allocates and does not free itself must be freed
  // before the graph runs again.
  for (const auto& m : body->memory) {
    Allocation& a = Rt().allocations.at(static_cast<const char*>(m->ptr));
    if (!a.freed_in_graph && a.outstanding) return Fail(cudaErrorInvalidValue);
  }
  for (const auto& m : body->memory) {
    Allocation& a = Rt().allocations.at(static_cast<const char*>(m->ptr));
    a.outstanding = !a.freed_in_graph;
  }
  return Submit(
      s,
      [body] {
        for (const std::function<void()>& w : body->work) w();
      },
      lock);
}

// Allocates `bytes` on `s` (null: cudaMalloc, forbidden during a capture).
cudaError_t MallocOn(void** p, size_t bytes, cudaStream_t s) {
  if (p == nullptr) return Fail(cudaErrorInvalidValue);
  auto mem = NewHostMem(bytes);
  std::lock_guard lock(Rt().mu);
  if (s == nullptr && ForbiddenWhileCapturing()) return Fail(cudaErrorStreamCaptureUnsupported);
  if (s != nullptr && !KnownStream(s)) return Fail(cudaErrorInvalidResourceHandle);
  EmuStream* capturing = s != nullptr && StreamOf(s)->capturing ? StreamOf(s) : nullptr;
  if (capturing != nullptr && capturing->invalidated) return Fail(cudaErrorStreamCaptureInvalidated);
  *p = mem->ptr;
  if (bytes == 0) return cudaSuccess;
  Allocation& a = Rt().allocations[static_cast<const char*>(mem->ptr)];
  a.mem = mem.get();
  if (capturing != nullptr) {  // graph memory: the graph's for its lifetime
    EmuStream& stream = *capturing;
    a.graph = stream.capture.get();
    stream.capture->memory.push_back(std::move(mem));
  } else {
    a.own = std::move(mem);
  }
  return cudaSuccess;
}
cudaError_t Malloc(void** p, size_t bytes) { return MallocOn(p, bytes, nullptr); }
cudaError_t MallocAsync(void** p, size_t bytes, cudaStream_t s) {
  // Null would be cudaMalloc's stream-ordered twin on the legacy stream.
  if (s == nullptr) return Fail(cudaErrorInvalidResourceHandle);
  return MallocOn(p, bytes, s);
}
// Frees `p` on `s` (`sync`, with `s` null: cudaFree's). Ordinary memory leaves the
// allocations at once (later work may not use it) and is released when
// the stream reaches the free (cudaFree: after all the device's work);
// graph memory freed inside its own capture stays the graph's; freed
// outside, it must have been made by a launch.
cudaError_t FreeOn(void* p, cudaStream_t s, bool sync) {
  if (p == nullptr) return cudaSuccess;
  // The memory, released (its canary checked) when its stream gets there.
  std::shared_ptr<HostMem> released;
  std::unique_lock lock(Rt().mu);
  if (sync && ForbiddenWhileCapturing()) return Fail(cudaErrorStreamCaptureUnsupported);
  if (!sync && !KnownStream(s)) return Fail(cudaErrorInvalidResourceHandle);
  auto it = Rt().allocations.find(static_cast<const char*>(p));
  if (it == Rt().allocations.end()) return Fail(cudaErrorInvalidValue);  // not an allocation's start, or freed
  Allocation& a = it->second;
  EmuStream* stream = !sync && StreamOf(s)->capturing ? StreamOf(s) : nullptr;
  if (a.graph != nullptr) {
    if (stream != nullptr ? stream->capture.get() != a.graph || a.freed_in_graph : !a.outstanding) {
      return Fail(cudaErrorInvalidValue);
    }
    (stream != nullptr ? a.freed_in_graph : a.outstanding) = stream != nullptr;
    // As every call on a capture that was invalidated (the graph is dropped at its end).
    return stream != nullptr && stream->invalidated ? Fail(cudaErrorStreamCaptureInvalidated) : cudaSuccess;
  }
  // A free node for ordinary memory would free it on every replay: Kiln
  // never captures one.
  if (stream != nullptr) return Fail(cudaErrorInvalidValue);
  released = std::shared_ptr<HostMem>(a.own.release(), [](HostMem* m) { ReleaseHostMem(std::unique_ptr<HostMem>(m)); });
  Rt().allocations.erase(it);
  if (!sync) return Submit(s, [released]() mutable { released.reset(); }, lock);
  lock.unlock();
  DrainAll();
  return cudaSuccess;
}
cudaError_t Free(void* p) { return FreeOn(p, nullptr, true); }
cudaError_t FreeAsync(void* p, cudaStream_t s) { return FreeOn(p, s, false); }

char fake_pool;
cudaError_t DeviceGetDefaultMemPool(cudaMemPool_t* pool, int device) {
  if (pool == nullptr) return Fail(cudaErrorInvalidValue);
  if (device != 0) return Fail(cudaErrorInvalidDevice);
  *pool = reinterpret_cast<cudaMemPool_t>(&fake_pool);
  return cudaSuccess;
}
cudaError_t MemPoolSetAttribute(cudaMemPool_t pool, cudaMemPoolAttr attr, void* value) {
  if (pool != reinterpret_cast<cudaMemPool_t>(&fake_pool) || value == nullptr) return Fail(cudaErrorInvalidValue);
  return attr == cudaMemPoolAttrReleaseThreshold ? cudaSuccess : Fail(cudaErrorNotSupported);
}

cudaError_t HostAlloc(void** p, size_t bytes, unsigned int) {
  if (p == nullptr) return Fail(cudaErrorInvalidValue);
  std::lock_guard lock(Rt().mu);
  if (ForbiddenWhileCapturing()) return Fail(cudaErrorStreamCaptureUnsupported);
  *p = std::malloc(std::max<size_t>(bytes, 1));
  if (*p == nullptr) return Fail(cudaErrorMemoryAllocation);
  Rt().pinned[static_cast<const char*>(*p)] = bytes;
  return cudaSuccess;
}
// After the device's work, as CUDA's cudaFreeHost synchronizes.
cudaError_t FreeHost(void* p) {
  {
    std::lock_guard lock(Rt().mu);
    if (ForbiddenWhileCapturing()) return Fail(cudaErrorStreamCaptureUnsupported);
    if (Rt().pinned.count(static_cast<const char*>(p)) == 0) return Fail(cudaErrorInvalidValue);
  }
  DrainAll();
  std::lock_guard lock(Rt().mu);
  if (Rt().pinned.erase(static_cast<const char*>(p)) == 0) return Fail(cudaErrorInvalidValue);
  std::free(p);
  return cudaSuccess;
}

cudaError_t EventCreateWithFlags(cudaEvent_t* e, unsigned int flags) {
  constexpr unsigned kKnown = cudaEventBlockingSync | cudaEventDisableTiming | cudaEventInterprocess;
  if (e == nullptr || (flags & ~kKnown) != 0) return Fail(cudaErrorInvalidValue);
  // An interprocess event must not time (CUDA's rule).
  if ((flags & cudaEventInterprocess) != 0 && (flags & cudaEventDisableTiming) == 0) return Fail(cudaErrorInvalidValue);
  auto* event = new EmuEvent;
  event->timing = (flags & cudaEventDisableTiming) == 0;
  std::lock_guard lock(Rt().mu);
  Rt().events.insert(event);
  *e = reinterpret_cast<cudaEvent_t>(event);
  return cudaSuccess;
}
cudaError_t EventDestroy(cudaEvent_t e) {
  std::lock_guard lock(Rt().mu);
  if (Rt().events.erase(e) == 0) return Fail(cudaErrorInvalidResourceHandle);
  delete reinterpret_cast<EmuEvent*>(e);
  return cudaSuccess;
}
cudaError_t EventRecord(cudaEvent_t e, cudaStream_t s) {
  std::unique_lock lock(Rt().mu);
  if (Rt().events.count(e) == 0 || !KnownStream(s)) return Fail(cudaErrorInvalidResourceHandle);
  auto& event = *reinterpret_cast<EmuEvent*>(e);
  event.stream = !StreamOf(s)->capturing ? StreamOf(s) : nullptr;
  event.stamp.reset();
  event.seq = event.stream != nullptr ? event.stream->submitted : 0;
  if (event.timing && event.stream != nullptr) {
    // A timing event's record is work of its own: it notes the time when
    // the stream's work before it has run. Its place is the event's (Submit
    // may let other threads submit more before it returns).
    auto stamp = std::make_shared<EmuStamp>();
    event.stamp = stamp;
    uint64_t seq = 0;
    const cudaError_t r = Submit(
        s,
        [stamp] {
          stamp->time = std::chrono::steady_clock::now();
          stamp->done = true;
        },
        lock, &seq);
    if (r != cudaSuccess) return r;
    event.seq = seq;
  }
  return cudaSuccess;
}
// Milliseconds between two timing events' records, once both have run.
cudaError_t EventElapsedTime(float* ms, cudaEvent_t start, cudaEvent_t end) {
  std::lock_guard lock(Rt().mu);
  if (ms == nullptr) return Fail(cudaErrorInvalidValue);
  if (Rt().events.count(start) == 0 || Rt().events.count(end) == 0) return Fail(cudaErrorInvalidResourceHandle);
  const auto& a = *reinterpret_cast<EmuEvent*>(start);
  const auto& b = *reinterpret_cast<EmuEvent*>(end);
  // Events without timing, or never recorded (or only in a capture).
  if (!a.timing || !b.timing || a.stamp == nullptr || b.stamp == nullptr) return Fail(cudaErrorInvalidResourceHandle);
  if (!a.stamp->done || !b.stamp->done) return cudaErrorNotReady;  // not sticky: the work is still pending
  *ms = std::chrono::duration<float, std::milli>(b.stamp->time - a.stamp->time).count();
  return cudaSuccess;
}
// Runs the event's stream up to the event (no further: later work stays
// pending, as it may on a GPU).
cudaError_t EventSynchronize(cudaEvent_t e) {
  EmuEvent event;
  {
    std::lock_guard lock(Rt().mu);
    if (Rt().events.count(e) == 0) return Fail(cudaErrorInvalidResourceHandle);
    if (ForbiddenWhileCapturing()) return Fail(cudaErrorStreamCaptureUnsupported);
    event = *reinterpret_cast<EmuEvent*>(e);
    if (event.stream != nullptr && Rt().streams.count(event.stream) == 0) event.stream = nullptr;  // destroyed: done
  }
  if (event.stream != nullptr) Drain(event.stream, event.seq);
  return cudaSuccess;
}

cudaError_t MemcpyAsync(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind, cudaStream_t s) {
  std::unique_lock lock(Rt().mu);
  if (!KnownStream(s)) return Fail(cudaErrorInvalidResourceHandle);
  if (bytes == 0) return cudaSuccess;
  if (dst == nullptr || src == nullptr) return Fail(cudaErrorInvalidValue);
  // Device sides must lie inside an allocation.
  const bool device_dst = kind == cudaMemcpyHostToDevice || kind == cudaMemcpyDeviceToDevice;
  const bool device_src = kind == cudaMemcpyDeviceToHost || kind == cudaMemcpyDeviceToDevice;
  if (kind != cudaMemcpyHostToDevice && kind != cudaMemcpyDeviceToHost && kind != cudaMemcpyDeviceToDevice) {
    return Fail(cudaErrorInvalidMemcpyDirection);
  }
  if ((device_dst && Holding(dst, bytes) == nullptr) || (device_src && Holding(src, bytes) == nullptr)) {
    return Fail(cudaErrorInvalidValue);
  }
  const bool queued = !StreamOf(s)->capturing;
  if (queued && kind == cudaMemcpyHostToDevice && !Pinned(src, bytes)) {
    // From pageable memory: the bytes are taken now (the caller may reuse
    // its memory on return), written in stream order.
    auto staged = std::make_shared<std::vector<char>>(static_cast<const char*>(src), static_cast<const char*>(src) + bytes);
    return Submit(s, [dst, staged] { std::memcpy(dst, staged->data(), staged->size()); }, lock);
  }
  // To pageable memory, the call returns once the copy is done: a wait for
  // the host, which a capture on this thread forbids.
  const bool waits = queued && kind == cudaMemcpyDeviceToHost && !Pinned(dst, bytes);
  if (waits && ForbiddenWhileCapturing()) return Fail(cudaErrorStreamCaptureUnsupported);
  uint64_t seq = 0;
  const cudaError_t e = Submit(s, [dst, src, bytes] { std::memcpy(dst, src, bytes); }, lock, &seq);
  if (e != cudaSuccess || !waits) return e;
  lock.unlock();
  Drain(StreamOf(s), seq);
  return cudaSuccess;
}

cudaError_t LibraryLoadData(cudaLibrary_t* library, const void* code, cudaJitOption*, void**, unsigned int,
                            cudaLibraryOption*, void**, unsigned int) {
  if (library == nullptr || code == nullptr) return Fail(cudaErrorInvalidValue);
  const std::string image(static_cast<const char*>(code));
  if (!IsEmulatedImage(image)) return Fail(cudaErrorInvalidKernelImage);
  auto* lib = new EmuLibrary{image, {}};
  std::lock_guard lock(Rt().mu);
  Rt().libraries.insert(lib);
  *library = reinterpret_cast<cudaLibrary_t>(lib);
  return cudaSuccess;
}
cudaError_t LibraryUnload(cudaLibrary_t library) {
  std::lock_guard lock(Rt().mu);
  if (Rt().libraries.erase(library) == 0) return Fail(cudaErrorInvalidResourceHandle);
  auto* lib = reinterpret_cast<EmuLibrary*>(library);
  for (const auto& k : lib->kernels) Rt().kernels.erase(k.get());
  delete lib;
  return cudaSuccess;
}
cudaError_t LibraryGetKernel(cudaKernel_t* kernel, cudaLibrary_t library, const char* name) {
  if (kernel == nullptr || name == nullptr) return Fail(cudaErrorInvalidValue);
  std::string image;
  {
    std::lock_guard lock(Rt().mu);
    if (Rt().libraries.count(library) == 0) return Fail(cudaErrorInvalidResourceHandle);
    image = reinterpret_cast<EmuLibrary*>(library)->image;
  }
  // Looked up without the runtime's lock (another thread may be compiling).
  auto k = std::make_unique<EmulatedKernel>();
  if (!FindEmulatedKernel(image, name, k.get())) return Fail(cudaErrorSymbolNotFound);  // in this module
  std::lock_guard lock(Rt().mu);
  if (Rt().libraries.count(library) == 0) return Fail(cudaErrorInvalidResourceHandle);  // unloaded meanwhile
  auto* lib = reinterpret_cast<EmuLibrary*>(library);
  *kernel = reinterpret_cast<cudaKernel_t>(k.get());
  Rt().kernels.insert(k.get());
  lib->kernels.push_back(std::move(k));
  return cudaSuccess;
}
cudaError_t OccupancyMaxActiveBlocksPerMultiprocessor(int* blocks, const void* func, int block_size, size_t) {
  std::lock_guard lock(Rt().mu);
  if (blocks == nullptr || Rt().kernels.count(func) == 0 || block_size < 1 || block_size > 1024) {
    return Fail(cudaErrorInvalidValue);
  }
  // Threads per multiprocessor, without a register limit; kernels whose
  // threads meet at barriers hold one block per multiprocessor, as if their
  // shared memory allowed no more, so that their loops over work items
  // (BlockLoop) take several rounds on the tests' sizes, and a hazard
  // between one round and the next (a missing barrier) shows.
  *blocks = static_cast<const EmulatedKernel*>(func)->syncs ? 1 : 2048 / block_size;
  return cudaSuccess;
}
cudaError_t LaunchKernel(const void* func, dim3 grid, dim3 block, void** args, size_t shared, cudaStream_t s) {
  const bool shuffled = EmulatedLaunchesShuffled();  // throws for a bad $KILN_CUDA_EMU_ORDER
  const bool race_check = EmulatedRaceCheck();       // and $KILN_CUDA_EMU_RACECHECK
  std::unique_lock lock(Rt().mu);
  if (Rt().kernels.count(func) == 0) return Fail(cudaErrorInvalidDeviceFunction);
  if (!KnownStream(s)) return Fail(cudaErrorInvalidResourceHandle);
  // Kiln's launches are one-dimensional, without dynamic shared memory.
  if (grid.x == 0 || grid.y != 1 || grid.z != 1 || block.x == 0 || block.x > 1024 || block.y != 1 || block.z != 1 ||
      shared != 0) {
    return Fail(cudaErrorInvalidConfiguration);
  }
  const EmulatedKernel k = *static_cast<const EmulatedKernel*>(func);
  if (k.arity > 0 && args == nullptr) return Fail(cudaErrorInvalidValue);
  // The arguments' values now, as a launch (or a graph's kernel node) takes them.
  std::vector<void*> values(static_cast<size_t>(k.arity));
  for (size_t i = 0; i < values.size(); ++i) std::memcpy(&values[i], args[i], sizeof(void*));
  // The memory the race check watches: from each parameter's pointer to the
  // end of its allocation (its buffers stay allocated until the launch has
  // run: a free waits for the stream).
  std::vector<LaunchBuffer> buffers;
  if (race_check) {
    for (size_t i = 0; i < values.size(); ++i) {
      if (const Allocation* a = Holding(values[i], 1)) {
        const auto end = reinterpret_cast<uintptr_t>(a->mem->ptr) + a->mem->bytes;
        buffers.push_back({reinterpret_cast<uintptr_t>(values[i]), end, static_cast<int>(i)});
      }
    }
  }
  return Submit(
      s,
      [k, values, grid, block, shuffled, race_check, buffers = std::move(buffers)]() mutable {
        std::vector<void*> pointers(values.size());
        for (size_t i = 0; i < values.size(); ++i) pointers[i] = &values[i];
        RunEmulatedKernel(k, pointers.data(), grid.x, block.x, shuffled, race_check ? &buffers : nullptr);
      },
      lock);
}

// Convolutions leave cuDNN only where a test told it to refuse them.
void ConvolutionsOffCudnn(const std::string& why) {
  if (EmulatedConvolutionRefusal() < 0) Throw("cuda-emu: the emulated cuDNN refused a convolution: " + why);
}
const std::string& EmulatedCudnnUnavailableReason() {
  static const std::string reason = HaveEmulatedCudnn() ? "" : "Kiln was built without cuDNN's headers";
  return reason;
}

}  // namespace

void EmulatedStreamWork(cudaStream_t stream, std::function<void()> work) {
  std::unique_lock lock(Rt().mu);
  if (stream == nullptr) {
    Throw("cuda-emu: a library call on the legacy default stream (a handle whose stream was never set): on a GPU it "
          "would not be ordered with the backend's non-blocking streams");
  }
  if (!KnownStream(stream)) Throw("cuda-emu: a library call on a stream this runtime did not make");
  Submit(stream, std::move(work), lock);
}

const RuntimeApi& EmulatedRuntimeApi() {
  static const RuntimeApi api = [] {
    RuntimeApi a;
    a.cudaGetDeviceCount = GetDeviceCount;
    a.cudaSetDevice = SetDevice;
    a.cudaGetLastError = GetLastError;
    a.cudaGetErrorString = GetErrorString;
    a.cudaGetDeviceProperties = GetDeviceProperties;
    a.cudaStreamCreateWithFlags = StreamCreateWithFlags;
    a.cudaStreamDestroy = StreamDestroy;
    a.cudaStreamSynchronize = StreamSynchronize;
    a.cudaStreamBeginCapture = StreamBeginCapture;
    a.cudaStreamEndCapture = StreamEndCapture;
    a.cudaGraphInstantiate = GraphInstantiate;
    a.cudaGraphDestroy = GraphDestroy;
    a.cudaGraphExecDestroy = GraphExecDestroy;
    a.cudaGraphUpload = GraphUpload;
    a.cudaGraphLaunch = GraphLaunch;
    a.cudaMalloc = Malloc;
    a.cudaFree = Free;
    a.cudaMallocAsync = MallocAsync;
    a.cudaFreeAsync = FreeAsync;
    a.cudaDeviceGetDefaultMemPool = DeviceGetDefaultMemPool;
    a.cudaMemPoolSetAttribute = MemPoolSetAttribute;
    a.cudaHostAlloc = HostAlloc;
    a.cudaFreeHost = FreeHost;
    a.cudaEventCreateWithFlags = EventCreateWithFlags;
    a.cudaEventDestroy = EventDestroy;
    a.cudaEventRecord = EventRecord;
    a.cudaEventSynchronize = EventSynchronize;
    a.cudaEventElapsedTime = EventElapsedTime;
    a.cudaMemcpyAsync = MemcpyAsync;
    a.cudaLibraryLoadData = LibraryLoadData;
    a.cudaLibraryUnload = LibraryUnload;
    a.cudaLibraryGetKernel = LibraryGetKernel;
    a.cudaOccupancyMaxActiveBlocksPerMultiprocessor = OccupancyMaxActiveBlocksPerMultiprocessor;
    a.cudaLaunchKernel = LaunchKernel;
    a.backend_name = "cuda-emu";
    a.compile_modules = CompileEmulatedModules;
    a.libraries = &EmulatedLibraryApi();
    a.cudnn = CudnnImpl::kEmulated;
    a.cudnn_unavailable_reason = EmulatedCudnnUnavailableReason;
    a.convolutions_off_cudnn = ConvolutionsOffCudnn;
    a.fatal_release_errors = true;
    return a;
  }();
  return api;
}

void FailNextEmulatorReplays(int n) { replay_failures_left.store(n); }

void RegisterCudaEmulatorBackend() {
  static std::once_flag once;
  std::call_once(once, [] {
    Registration r;
    r.name = "cuda-emu";
    r.priority = 0;
    r.is_available = [] { return true; };
    r.create = [] { return SharedCudaBackend(EmulatedRuntimeApi(), 0); };
    Register(std::move(r));
  });
}

}  // namespace kiln::backends::cuda
