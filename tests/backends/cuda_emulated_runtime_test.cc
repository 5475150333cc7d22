// Copyright 2026 The Kiln Authors.
// The emulator's stand-in for the CUDA runtime (EmulatedRuntimeApi,
// src/backends/cuda/emulator.cc), on which the CUDA backend runs without a
// GPU: it must refuse what CUDA refuses (frees of memory it did not hand
// out, copies past an allocation, waits for the host while a thread-local
// capture runs, launches of unloaded kernels, a graph relaunched before the
// memory it left allocated was freed), run a stream's work only when the
// host waits for it, and record, not run, the work of a stream being
// captured; frees on a capture that was invalidated fail as
// CUDA's do; refuse the legacy default stream, whose work a GPU would not
// order with Kiln's streams; and run a launch's blocks and threads in no
// set order.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <limits>
#include <numeric>
#include <string>
#include <vector>

#include "src/backends/cuda/emulated_library.h"
#include "src/backends/cuda/prelude.h"
#include "src/backends/cuda/runtime_api.h"
#include "tests/testing/testing.h"

namespace kiln::backends::cuda {
namespace {

const RuntimeApi& Rt() { return EmulatedRuntimeApi(); }

// Two modules of KernelSource's shape: out = in + 1, and out = 2 * in.
const char* const kAddOne = R"(
extern "C" __global__ void __launch_bounds__(256) emu_add_one(const float* __restrict__ in0, float* out) {
  for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < 1000; i += (long long)gridDim.x * blockDim.x)
    out[i] = in0[i] + 1.0f;
}
)";
const char* const kTwice = R"(
extern "C" __global__ void __launch_bounds__(256) emu_twice(const float* __restrict__ in0, float* out) {
  for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < 1000; i += (long long)gridDim.x * blockDim.x)
    out[i] = in0[i] * 2.0f;
}
)";

// A loaded module and its kernel.
struct Loaded {
  cudaLibrary_t library = nullptr;
  cudaKernel_t kernel = nullptr;
};

Loaded Load(size_t module, const char* name) {
  const std::vector<std::string> images = Rt().compile_modules({kAddOne, kTwice}, "sm_90");
  Loaded l;
  EXPECT_EQ(Rt().cudaLibraryLoadData(&l.library, images.at(module).c_str(), nullptr, nullptr, 0, nullptr, nullptr, 0),
            cudaSuccess);
  EXPECT_EQ(Rt().cudaLibraryGetKernel(&l.kernel, l.library, name), cudaSuccess);
  return l;
}

// Kernel `name` of a module compiled from `source`, loaded.
Loaded LoadKernel(const char* source, const char* name) {
  const std::vector<std::string> images = Rt().compile_modules({source}, "sm_90");
  Loaded l;
  EXPECT_EQ(Rt().cudaLibraryLoadData(&l.library, images.at(0).c_str(), nullptr, nullptr, 0, nullptr, nullptr, 0),
            cudaSuccess);
  EXPECT_EQ(Rt().cudaLibraryGetKernel(&l.kernel, l.library, name), cudaSuccess);
  return l;
}

cudaError_t Launch(cudaKernel_t k, const void* in, void* out, cudaStream_t s) {
  void* params[2] = {&in, &out};
  return Rt().cudaLaunchKernel(reinterpret_cast<const void*>(k), dim3(2), dim3(256), params, 0, s);
}

// A device buffer of 1000 floats holding `v`.
float* Device(float v, cudaStream_t s) {
  void* p = nullptr;
  EXPECT_EQ(Rt().cudaMallocAsync(&p, 1000 * sizeof(float), s), cudaSuccess);
  const std::vector<float> host(1000, v);
  EXPECT_EQ(Rt().cudaMemcpyAsync(p, host.data(), 1000 * sizeof(float), cudaMemcpyHostToDevice, s), cudaSuccess);
  return static_cast<float*>(p);
}

// A device buffer of 1000 floats starting with `v` (at most 1000 of them), zeros after.
float* Device(const std::vector<float>& v, cudaStream_t s) {
  float* p = Device(0, s);
  EXPECT_EQ(Rt().cudaMemcpyAsync(p, v.data(), v.size() * sizeof(float), cudaMemcpyHostToDevice, s), cudaSuccess);
  return p;
}

float At(const float* device, size_t i, cudaStream_t s) {
  float v = 0;
  EXPECT_EQ(Rt().cudaMemcpyAsync(&v, device + i, sizeof v, cudaMemcpyDeviceToHost, s), cudaSuccess);
  return v;
}

class EmulatedRuntimeTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_EQ(Rt().cudaStreamCreateWithFlags(&s_, cudaStreamNonBlocking), cudaSuccess); }
  void TearDown() override {
    EXPECT_EQ(Rt().cudaStreamDestroy(s_), cudaSuccess);
    Rt().cudaGetLastError();
  }
  cudaStream_t s_ = nullptr;
};

TEST_F(EmulatedRuntimeTest, KernelsRunInStreamOrder) {
  const Loaded add = Load(0, "emu_add_one");
  float* in = Device(3, s_);
  float* out = Device(0, s_);
  ASSERT_EQ(Launch(add.kernel, in, out, s_), cudaSuccess);
  EXPECT_EQ(At(out, 0, s_), 4);
  EXPECT_EQ(At(out, 999, s_), 4);
  int blocks = 0;
  EXPECT_EQ(Rt().cudaOccupancyMaxActiveBlocksPerMultiprocessor(&blocks, reinterpret_cast<const void*>(add.kernel),
                                                                256, 0),
            cudaSuccess);
  EXPECT_GT(blocks, 0);
  // A kernel is looked up in its own module only.
  cudaKernel_t other = nullptr;
  EXPECT_EQ(Rt().cudaLibraryGetKernel(&other, add.library, "emu_twice"), cudaErrorSymbolNotFound);
  EXPECT_EQ(Rt().cudaGetLastError(), cudaErrorSymbolNotFound);
  EXPECT_EQ(Rt().cudaGetLastError(), cudaSuccess);  // read once
  // After its library is unloaded, the kernel is gone.
  EXPECT_EQ(Rt().cudaLibraryUnload(add.library), cudaSuccess);
  EXPECT_EQ(Launch(add.kernel, in, out, s_), cudaErrorInvalidDeviceFunction);
  EXPECT_EQ(Rt().cudaFreeAsync(in, s_), cudaSuccess);
  EXPECT_EQ(Rt().cudaFreeAsync(out, s_), cudaSuccess);
}

// A stream's work runs when the host waits for it (as a GPU may run it
// later): copies into pinned memory land only then, an event's wait runs
// the work up to the event and no further, pageable sources are taken at
// the call, and memory freed in stream order stays usable by the work
// queued before the free.
TEST_F(EmulatedRuntimeTest, StreamWorkRunsWhenTheHostWaits) {
  const Loaded add = Load(0, "emu_add_one");
  void* pinned_memory = nullptr;
  ASSERT_EQ(Rt().cudaHostAlloc(&pinned_memory, 2 * sizeof(float), cudaHostAllocDefault), cudaSuccess);
  auto* pinned = static_cast<float*>(pinned_memory);
  pinned[0] = pinned[1] = -7;
  std::vector<float> pageable(1000, 1);
  void* x = nullptr;
  ASSERT_EQ(Rt().cudaMallocAsync(&x, 1000 * sizeof(float), s_), cudaSuccess);
  ASSERT_EQ(Rt().cudaMemcpyAsync(x, pageable.data(), 1000 * sizeof(float), cudaMemcpyHostToDevice, s_), cudaSuccess);
  pageable.assign(1000, 50);  // the copy took the 1s at the call
  float* y = Device(0, s_);
  ASSERT_EQ(Launch(add.kernel, x, y, s_), cudaSuccess);
  EXPECT_EQ(Rt().cudaFreeAsync(x, s_), cudaSuccess);  // after the launch, in stream order
  ASSERT_EQ(Rt().cudaMemcpyAsync(pinned, y, sizeof(float), cudaMemcpyDeviceToHost, s_), cudaSuccess);
  cudaEvent_t first = nullptr;
  ASSERT_EQ(Rt().cudaEventCreateWithFlags(&first, cudaEventDisableTiming), cudaSuccess);
  ASSERT_EQ(Rt().cudaEventRecord(first, s_), cudaSuccess);
  ASSERT_EQ(Launch(add.kernel, y, y, s_), cudaSuccess);
  ASSERT_EQ(Rt().cudaMemcpyAsync(pinned + 1, y, sizeof(float), cudaMemcpyDeviceToHost, s_), cudaSuccess);
  EXPECT_EQ(pinned[0], -7);  // nothing ran yet
  ASSERT_EQ(Rt().cudaEventSynchronize(first), cudaSuccess);
  EXPECT_EQ(pinned[0], 2);
  EXPECT_EQ(pinned[1], -7);  // after the event: not yet
  ASSERT_EQ(Rt().cudaStreamSynchronize(s_), cudaSuccess);
  EXPECT_EQ(pinned[1], 3);
  EXPECT_EQ(Rt().cudaEventDestroy(first), cudaSuccess);
  EXPECT_EQ(Rt().cudaFreeAsync(y, s_), cudaSuccess);
  EXPECT_EQ(Rt().cudaFreeHost(pinned), cudaSuccess);
  EXPECT_EQ(Rt().cudaLibraryUnload(add.library), cudaSuccess);
}

// Timing events (KILN_CUDA_PROFILE's): the time between two records is
// known once both ran, as CUDA's cudaEventElapsedTime says: not ready while
// pending, an error for events without timing or never recorded (a record
// in a capture stands for no time here), and unknown flags refused.
TEST_F(EmulatedRuntimeTest, ElapsedTimeFollowsCudasRules) {
  const Loaded add = Load(0, "emu_add_one");
  cudaEvent_t start = nullptr, end = nullptr, untimed = nullptr, bad = nullptr;
  ASSERT_EQ(Rt().cudaEventCreateWithFlags(&start, cudaEventDefault), cudaSuccess);
  ASSERT_EQ(Rt().cudaEventCreateWithFlags(&end, cudaEventBlockingSync), cudaSuccess);
  ASSERT_EQ(Rt().cudaEventCreateWithFlags(&untimed, cudaEventDisableTiming), cudaSuccess);
  EXPECT_EQ(Rt().cudaEventCreateWithFlags(&bad, 0x80), cudaErrorInvalidValue);
  EXPECT_EQ(Rt().cudaEventCreateWithFlags(&bad, cudaEventInterprocess), cudaErrorInvalidValue);  // must not time
  Rt().cudaGetLastError();
  float ms = -1;
  EXPECT_EQ(Rt().cudaEventElapsedTime(&ms, start, end), cudaErrorInvalidResourceHandle);  // never recorded
  Rt().cudaGetLastError();
  float* x = Device(0, s_);
  float* y = Device(0, s_);
  ASSERT_EQ(Rt().cudaEventRecord(start, s_), cudaSuccess);
  for (int i = 0; i < 20; ++i) ASSERT_EQ(Launch(add.kernel, x, y, s_), cudaSuccess);
  ASSERT_EQ(Rt().cudaEventRecord(end, s_), cudaSuccess);
  ASSERT_EQ(Rt().cudaEventRecord(untimed, s_), cudaSuccess);
  EXPECT_EQ(Rt().cudaEventElapsedTime(&ms, start, end), cudaErrorNotReady);
  EXPECT_EQ(Rt().cudaGetLastError(), cudaSuccess);  // not sticky
  EXPECT_EQ(ms, -1);
  ASSERT_EQ(Rt().cudaEventSynchronize(start), cudaSuccess);
  EXPECT_EQ(Rt().cudaEventElapsedTime(&ms, start, end), cudaErrorNotReady);  // the launches are still pending
  ASSERT_EQ(Rt().cudaStreamSynchronize(s_), cudaSuccess);
  ASSERT_EQ(Rt().cudaEventElapsedTime(&ms, start, end), cudaSuccess);
  EXPECT_GT(ms, 0);  // 20 emulated launches of 1,000 threads take time
  EXPECT_LT(ms, 60e3);
  float back = 0;
  ASSERT_EQ(Rt().cudaEventElapsedTime(&back, end, start), cudaSuccess);
  EXPECT_EQ(back, -ms);
  EXPECT_EQ(Rt().cudaEventElapsedTime(&ms, start, untimed), cudaErrorInvalidResourceHandle);
  EXPECT_EQ(Rt().cudaEventElapsedTime(nullptr, start, end), cudaErrorInvalidValue);
  Rt().cudaGetLastError();
  // Recorded again in a capture: no time to read.
  ASSERT_EQ(Rt().cudaStreamBeginCapture(s_, cudaStreamCaptureModeThreadLocal), cudaSuccess);
  ASSERT_EQ(Rt().cudaEventRecord(end, s_), cudaSuccess);
  cudaGraph_t graph = nullptr;
  ASSERT_EQ(Rt().cudaStreamEndCapture(s_, &graph), cudaSuccess);
  EXPECT_EQ(Rt().cudaGraphDestroy(graph), cudaSuccess);
  EXPECT_NE(Rt().cudaEventElapsedTime(&ms, start, end), cudaSuccess);  // CUDA's code here is undocumented
  Rt().cudaGetLastError();
  for (cudaEvent_t e : {start, end, untimed}) EXPECT_EQ(Rt().cudaEventDestroy(e), cudaSuccess);
  EXPECT_EQ(Rt().cudaFreeAsync(x, s_), cudaSuccess);
  EXPECT_EQ(Rt().cudaFreeAsync(y, s_), cudaSuccess);
  ASSERT_EQ(Rt().cudaStreamSynchronize(s_), cudaSuccess);
  EXPECT_EQ(Rt().cudaLibraryUnload(add.library), cudaSuccess);
}

// A host that never waits: the oldest work runs once thousands are queued
// (a GPU keeps up), instead of piling up without bound.
TEST_F(EmulatedRuntimeTest, AHostThatNeverWaitsDoesNotPileUpWork) {
  void* pinned = nullptr;
  ASSERT_EQ(Rt().cudaHostAlloc(&pinned, sizeof(float), cudaHostAllocDefault), cudaSuccess);
  *static_cast<float*>(pinned) = -1;
  float* x = Device(4, s_);
  for (int i = 0; i < 5000; ++i) {
    ASSERT_EQ(Rt().cudaMemcpyAsync(pinned, x, sizeof(float), cudaMemcpyDeviceToHost, s_), cudaSuccess);
  }
  EXPECT_EQ(*static_cast<float*>(pinned), 4);  // without a wait
  EXPECT_EQ(Rt().cudaFreeAsync(x, s_), cudaSuccess);
  EXPECT_EQ(Rt().cudaFreeHost(pinned), cudaSuccess);
}

TEST_F(EmulatedRuntimeTest, BadFreesAndCopiesAreRefused) {
  float* p = Device(1, s_);
  float host[2] = {0, 0};
  // Past the allocation's end, on either side of a copy.
  EXPECT_EQ(Rt().cudaMemcpyAsync(host, p + 999, 2 * sizeof(float), cudaMemcpyDeviceToHost, s_), cudaErrorInvalidValue);
  EXPECT_EQ(Rt().cudaMemcpyAsync(p + 999, host, 2 * sizeof(float), cudaMemcpyHostToDevice, s_), cudaErrorInvalidValue);
  // Host memory named as device memory.
  EXPECT_EQ(Rt().cudaMemcpyAsync(p, host, sizeof(float), cudaMemcpyDeviceToDevice, s_), cudaErrorInvalidValue);
  EXPECT_EQ(Rt().cudaMemcpyAsync(host, p + 998, 2 * sizeof(float), cudaMemcpyDeviceToHost, s_), cudaSuccess);
  EXPECT_EQ(host[1], 1);
  // Not an allocation's start; freed twice.
  EXPECT_EQ(Rt().cudaFreeAsync(p + 1, s_), cudaErrorInvalidValue);
  EXPECT_EQ(Rt().cudaFreeAsync(p, s_), cudaSuccess);
  EXPECT_EQ(Rt().cudaFreeAsync(p, s_), cudaErrorInvalidValue);
  EXPECT_EQ(Rt().cudaFree(host), cudaErrorInvalidValue);
  EXPECT_EQ(Rt().cudaFreeHost(host), cudaErrorInvalidValue);
}

TEST_F(EmulatedRuntimeTest, ACaptureRecordsAndEachLaunchRuns) {
  const Loaded twice = Load(1, "emu_twice");
  float* x = Device(1, s_);
  ASSERT_EQ(Rt().cudaStreamBeginCapture(s_, cudaStreamCaptureModeThreadLocal), cudaSuccess);
  // x = 2x through graph memory: allocated, written, copied back, freed.
  void* tmp = nullptr;
  ASSERT_EQ(Rt().cudaMallocAsync(&tmp, 1000 * sizeof(float), s_), cudaSuccess);
  ASSERT_EQ(Launch(twice.kernel, x, tmp, s_), cudaSuccess);
  ASSERT_EQ(Rt().cudaMemcpyAsync(x, tmp, 1000 * sizeof(float), cudaMemcpyDeviceToDevice, s_), cudaSuccess);
  ASSERT_EQ(Rt().cudaFreeAsync(tmp, s_), cudaSuccess);
  cudaGraph_t graph = nullptr;
  ASSERT_EQ(Rt().cudaStreamEndCapture(s_, &graph), cudaSuccess);
  EXPECT_EQ(At(x, 0, s_), 1);  // recorded, not run
  cudaGraphExec_t exec = nullptr;
  ASSERT_EQ(Rt().cudaGraphInstantiate(&exec, graph, 0), cudaSuccess);
  EXPECT_EQ(Rt().cudaGraphDestroy(graph), cudaSuccess);  // the instantiation keeps its own
  ASSERT_EQ(Rt().cudaGraphUpload(exec, s_), cudaSuccess);
  for (float want : {2.0f, 4.0f, 8.0f}) {
    ASSERT_EQ(Rt().cudaGraphLaunch(exec, s_), cudaSuccess);
    EXPECT_EQ(At(x, 999, s_), want);
  }
  EXPECT_EQ(Rt().cudaGraphExecDestroy(exec), cudaSuccess);
  EXPECT_EQ(Rt().cudaGraphLaunch(exec, s_), cudaErrorInvalidValue);
  EXPECT_EQ(Rt().cudaFreeAsync(x, s_), cudaSuccess);
}

TEST_F(EmulatedRuntimeTest, GraphMemoryLeftAllocatedMustBeFreedBeforeTheNextLaunch) {
  ASSERT_EQ(Rt().cudaStreamBeginCapture(s_, cudaStreamCaptureModeThreadLocal), cudaSuccess);
  void* kept = nullptr;
  ASSERT_EQ(Rt().cudaMallocAsync(&kept, 64, s_), cudaSuccess);
  cudaGraph_t graph = nullptr;
  ASSERT_EQ(Rt().cudaStreamEndCapture(s_, &graph), cudaSuccess);
  EXPECT_EQ(Rt().cudaFreeAsync(kept, s_), cudaErrorInvalidValue);  // not made before a launch
  cudaGraphExec_t exec = nullptr;
  ASSERT_EQ(Rt().cudaGraphInstantiate(&exec, graph, 0), cudaSuccess);
  cudaGraphExec_t second = nullptr;  // at most one executable graph with memory nodes at a time
  EXPECT_EQ(Rt().cudaGraphInstantiate(&second, graph, 0), cudaErrorNotSupported);
  ASSERT_EQ(Rt().cudaGraphLaunch(exec, s_), cudaSuccess);
  EXPECT_EQ(Rt().cudaGraphLaunch(exec, s_), cudaErrorInvalidValue);
  EXPECT_EQ(Rt().cudaFreeAsync(kept, s_), cudaSuccess);
  EXPECT_EQ(Rt().cudaGraphLaunch(exec, s_), cudaSuccess);
  EXPECT_EQ(Rt().cudaFreeAsync(kept, s_), cudaSuccess);
  EXPECT_EQ(Rt().cudaGraphExecDestroy(exec), cudaSuccess);
  EXPECT_EQ(Rt().cudaGraphDestroy(graph), cudaSuccess);
}

TEST_F(EmulatedRuntimeTest, WaitingForTheHostInvalidatesAThreadLocalCapture) {
  cudaStream_t other = nullptr;
  ASSERT_EQ(Rt().cudaStreamCreateWithFlags(&other, cudaStreamNonBlocking), cudaSuccess);
  cudaEvent_t event = nullptr;
  ASSERT_EQ(Rt().cudaEventCreateWithFlags(&event, cudaEventDisableTiming), cudaSuccess);
  const auto invalidated_by = [&](const std::function<cudaError_t()>& call) {
    EXPECT_EQ(Rt().cudaStreamBeginCapture(s_, cudaStreamCaptureModeThreadLocal), cudaSuccess);
    const cudaError_t e = call();
    cudaGraph_t graph = nullptr;
    EXPECT_EQ(Rt().cudaStreamEndCapture(s_, &graph), cudaErrorStreamCaptureInvalidated);
    EXPECT_EQ(graph, nullptr);
    return e;
  };
  // A predicate read (Kiln's staging: copy on the device's stream, then wait).
  EXPECT_EQ(invalidated_by([&] {
              EXPECT_EQ(Rt().cudaEventRecord(event, other), cudaSuccess);
              return Rt().cudaEventSynchronize(event);
            }),
            cudaErrorStreamCaptureUnsupported);
  EXPECT_EQ(invalidated_by([&] { return Rt().cudaStreamSynchronize(other); }), cudaErrorStreamCaptureUnsupported);
  void* device = nullptr;
  ASSERT_EQ(Rt().cudaMallocAsync(&device, sizeof(float), other), cudaSuccess);
  float pageable = 0;  // a copy into it waits for the host
  EXPECT_EQ(invalidated_by([&] {
              return Rt().cudaMemcpyAsync(&pageable, device, sizeof pageable, cudaMemcpyDeviceToHost, other);
            }),
            cudaErrorStreamCaptureUnsupported);
  EXPECT_EQ(Rt().cudaFreeAsync(device, other), cudaSuccess);
  EXPECT_EQ(invalidated_by([&] {
              void* p = nullptr;
              return Rt().cudaMalloc(&p, 16);
            }),
            cudaErrorStreamCaptureUnsupported);
  // After that, the capture refuses allocations, and a free of its graph
  // memory says why (the graph is dropped at its end).
  ASSERT_EQ(Rt().cudaStreamBeginCapture(s_, cudaStreamCaptureModeThreadLocal), cudaSuccess);
  void* graph_memory = nullptr;
  ASSERT_EQ(Rt().cudaMallocAsync(&graph_memory, 64, s_), cudaSuccess);
  EXPECT_EQ(Rt().cudaStreamSynchronize(other), cudaErrorStreamCaptureUnsupported);
  void* refused = nullptr;
  EXPECT_EQ(Rt().cudaMallocAsync(&refused, 64, s_), cudaErrorStreamCaptureInvalidated);
  EXPECT_EQ(Rt().cudaFreeAsync(graph_memory, s_), cudaErrorStreamCaptureInvalidated);
  cudaGraph_t dropped = nullptr;
  EXPECT_EQ(Rt().cudaStreamEndCapture(s_, &dropped), cudaErrorStreamCaptureInvalidated);
  EXPECT_EQ(Rt().cudaFreeAsync(graph_memory, s_), cudaErrorInvalidValue);  // gone with the capture
  // Stream-ordered allocation on another stream is fine.
  ASSERT_EQ(Rt().cudaStreamBeginCapture(s_, cudaStreamCaptureModeThreadLocal), cudaSuccess);
  void* p = nullptr;
  EXPECT_EQ(Rt().cudaMallocAsync(&p, 64, other), cudaSuccess);
  EXPECT_EQ(Rt().cudaFreeAsync(p, other), cudaSuccess);
  cudaGraph_t graph = nullptr;
  ASSERT_EQ(Rt().cudaStreamEndCapture(s_, &graph), cudaSuccess);
  EXPECT_EQ(Rt().cudaGraphDestroy(graph), cudaSuccess);
  EXPECT_EQ(Rt().cudaEventDestroy(event), cudaSuccess);
  EXPECT_EQ(Rt().cudaStreamDestroy(other), cudaSuccess);
}

// The library stand-ins' work goes on their streams: a product on a stream
// being captured runs only when the graph does.
TEST_F(EmulatedRuntimeTest, LibraryCallsGoOnTheirStreams) {
  const LibraryApi& lib = *Rt().libraries;
  cublasLtHandle_t lt = nullptr;
  ASSERT_EQ(lib.cublasLtCreate(&lt), CUBLAS_STATUS_SUCCESS);
  cublasLtMatmulDesc_t desc = nullptr;
  ASSERT_EQ(lib.cublasLtMatmulDescCreate(&desc, CUBLAS_COMPUTE_32F, CUDA_R_32F), CUBLAS_STATUS_SUCCESS);
  cublasLtMatrixLayout_t layout = nullptr;  // 1 x 1
  ASSERT_EQ(lib.cublasLtMatrixLayoutCreate(&layout, CUDA_R_32F, 1, 1, 1), CUBLAS_STATUS_SUCCESS);
  float* a = Device(3, s_);
  float* d = Device(0, s_);
  const float one = 1, zero = 0;
  cublasLtMatmulAlgo_t algo{};
  ASSERT_EQ(Rt().cudaStreamBeginCapture(s_, cudaStreamCaptureModeThreadLocal), cudaSuccess);
  ASSERT_EQ(lib.cublasLtMatmul(lt, desc, &one, a, layout, a, layout, &zero, d, layout, d, layout, &algo, nullptr, 0, s_),
            CUBLAS_STATUS_SUCCESS);
  cudaGraph_t graph = nullptr;
  ASSERT_EQ(Rt().cudaStreamEndCapture(s_, &graph), cudaSuccess);
  EXPECT_EQ(At(d, 0, s_), 0);  // recorded, not run
  cudaGraphExec_t exec = nullptr;
  ASSERT_EQ(Rt().cudaGraphInstantiate(&exec, graph, 0), cudaSuccess);
  ASSERT_EQ(Rt().cudaGraphLaunch(exec, s_), cudaSuccess);
  EXPECT_EQ(At(d, 0, s_), 9);
  EXPECT_EQ(Rt().cudaGraphExecDestroy(exec), cudaSuccess);
  EXPECT_EQ(Rt().cudaGraphDestroy(graph), cudaSuccess);
  EXPECT_EQ(lib.cublasLtMatrixLayoutDestroy(layout), CUBLAS_STATUS_SUCCESS);
  EXPECT_EQ(lib.cublasLtMatmulDescDestroy(desc), CUBLAS_STATUS_SUCCESS);
  EXPECT_EQ(lib.cublasLtDestroy(lt), CUBLAS_STATUS_SUCCESS);
  EXPECT_EQ(Rt().cudaFreeAsync(a, s_), cudaSuccess);
  EXPECT_EQ(Rt().cudaFreeAsync(d, s_), cudaSuccess);
}

// The legacy default stream (null) is refused wherever work is ordered on
// a stream: Kiln's streams are non-blocking, so on a GPU work put there by
// mistake would race with theirs, while here it would have run at once and
// hidden the race. cudaMalloc and cudaFree, which order with the whole
// device, still work.
TEST_F(EmulatedRuntimeTest, TheLegacyDefaultStreamIsRefused) {
  const Loaded add = Load(0, "emu_add_one");
  float* in = Device(3, s_);
  float* out = Device(0, s_);
  EXPECT_EQ(Launch(add.kernel, in, out, nullptr), cudaErrorInvalidResourceHandle);
  float host = 0;
  EXPECT_EQ(Rt().cudaMemcpyAsync(&host, in, sizeof host, cudaMemcpyDeviceToHost, nullptr),
            cudaErrorInvalidResourceHandle);
  void* p = nullptr;
  EXPECT_EQ(Rt().cudaMallocAsync(&p, 16, nullptr), cudaErrorInvalidResourceHandle);
  EXPECT_EQ(Rt().cudaFreeAsync(in, nullptr), cudaErrorInvalidResourceHandle);
  EXPECT_EQ(Rt().cudaStreamSynchronize(nullptr), cudaErrorInvalidResourceHandle);
  cudaEvent_t event = nullptr;
  ASSERT_EQ(Rt().cudaEventCreateWithFlags(&event, cudaEventDisableTiming), cudaSuccess);
  EXPECT_EQ(Rt().cudaEventRecord(event, nullptr), cudaErrorInvalidResourceHandle);
  EXPECT_EQ(Rt().cudaEventDestroy(event), cudaSuccess);
  KILN_EXPECT_ERROR(EmulatedStreamWork(nullptr, [] {}), "cuda-emu: a library call on the legacy default stream");
  // Nothing of the refused calls ran or was freed.
  EXPECT_EQ(At(in, 0, s_), 3);
  EXPECT_EQ(At(out, 0, s_), 0);
  ASSERT_EQ(Rt().cudaMalloc(&p, 16), cudaSuccess);
  EXPECT_EQ(Rt().cudaFree(p), cudaSuccess);
  EXPECT_EQ(Rt().cudaFreeAsync(in, s_), cudaSuccess);
  EXPECT_EQ(Rt().cudaFreeAsync(out, s_), cudaSuccess);
  EXPECT_EQ(Rt().cudaLibraryUnload(add.library), cudaSuccess);
}

// A GPU runs a grid's blocks, and a block's threads, in no set order, so
// the emulator shuffles both on every launch: a kernel right only in
// ascending order fails its tests here too. Each thread of emu_order
// writes when it ran (a shared counter).
TEST_F(EmulatedRuntimeTest, LaunchesRunBlocksAndThreadsInShuffledOrder) {
  // emu_order records when each thread ran; emu_order_sync, when each ran
  // before and after a barrier (its threads run on fibers).
  const char* const kOrder = R"(
extern "C" __global__ void __launch_bounds__(256) emu_order(float* counter, float* out) {
  out[blockIdx.x * blockDim.x + threadIdx.x] = atomicAdd(counter, 1.0f);
}
extern "C" __global__ void __launch_bounds__(256) emu_order_sync(float* counter, float* out) {
  out[2 * (blockIdx.x * blockDim.x + threadIdx.x)] = atomicAdd(counter, 1.0f);
  __syncthreads();
  out[2 * (blockIdx.x * blockDim.x + threadIdx.x) + 1] = atomicAdd(counter, 1.0f);
}
)";
  testing::ScopedEnv shuffled("KILN_CUDA_EMU_ORDER", "shuffled");
  const std::vector<std::string> images = Rt().compile_modules({kOrder}, "sm_90");
  cudaLibrary_t library = nullptr;
  cudaKernel_t kernel = nullptr, synced = nullptr;
  ASSERT_EQ(Rt().cudaLibraryLoadData(&library, images.at(0).c_str(), nullptr, nullptr, 0, nullptr, nullptr, 0),
            cudaSuccess);
  ASSERT_EQ(Rt().cudaLibraryGetKernel(&kernel, library, "emu_order"), cudaSuccess);
  ASSERT_EQ(Rt().cudaLibraryGetKernel(&synced, library, "emu_order_sync"), cudaSuccess);
  constexpr int kBlocks = 3, kThreads = 256, kN = kBlocks * kThreads;
  // What one launch of `k` wrote: `per_thread` values per thread of the grid.
  const auto ran = [&](cudaKernel_t k, int per_thread) {
    float* counter = Device(0, s_);
    std::vector<float> when(static_cast<size_t>(kN * per_thread));
    void* out = nullptr;
    EXPECT_EQ(Rt().cudaMallocAsync(&out, when.size() * sizeof(float), s_), cudaSuccess);
    void* params[2] = {&counter, &out};
    EXPECT_EQ(Rt().cudaLaunchKernel(reinterpret_cast<const void*>(k), dim3(kBlocks), dim3(kThreads), params, 0, s_),
              cudaSuccess);
    EXPECT_EQ(Rt().cudaMemcpyAsync(when.data(), out, when.size() * sizeof(float), cudaMemcpyDeviceToHost, s_),
              cudaSuccess);
    EXPECT_EQ(Rt().cudaFreeAsync(counter, s_), cudaSuccess);
    EXPECT_EQ(Rt().cudaFreeAsync(out, s_), cudaSuccess);
    return std::vector<int>(when.begin(), when.end());
  };
  std::vector<int> ascending(kN);
  std::iota(ascending.begin(), ascending.end(), 0);
  const std::vector<int> first = ran(kernel, 1), second = ran(kernel, 1);
  for (const std::vector<int>* order : {&first, &second}) {
    std::vector<int> sorted = *order;
    std::sort(sorted.begin(), sorted.end());
    EXPECT_EQ(sorted, ascending) << "every thread runs once";
    EXPECT_NE(*order, ascending);
    // Blocks run one after the other (a block's __shared__ arrays are the
    // module's statics): a block's threads ran at consecutive times.
    for (int b = 0; b < kBlocks; ++b) {
      const auto block = order->begin() + b * kThreads;
      EXPECT_EQ(*std::max_element(block, block + kThreads) - *std::min_element(block, block + kThreads), kThreads - 1);
    }
  }
  EXPECT_NE(first, second) << "each launch draws its own order";
  // Before the barrier, a block's threads run in a shuffled order; all of
  // them reach it before any goes on.
  const std::vector<int> both = ran(synced, 2);
  for (int b = 0; b < kBlocks; ++b) {
    std::vector<int> before, after;
    for (int t = 0; t < kThreads; ++t) {
      before.push_back(both[static_cast<size_t>(2 * (b * kThreads + t))]);
      after.push_back(both[static_cast<size_t>(2 * (b * kThreads + t) + 1)]);
    }
    EXPECT_LT(*std::max_element(before.begin(), before.end()), *std::min_element(after.begin(), after.end()));
    EXPECT_FALSE(std::is_sorted(before.begin(), before.end())) << "block " << b;
  }
  {
    testing::ScopedEnv order("KILN_CUDA_EMU_ORDER", "ascending");
    EXPECT_EQ(ran(kernel, 1), ascending);
  }
  {
    testing::ScopedEnv order("KILN_CUDA_EMU_ORDER", "backwards");
    void* params[2] = {nullptr, nullptr};
    KILN_EXPECT_ERROR(
        Rt().cudaLaunchKernel(reinterpret_cast<const void*>(kernel), dim3(1), dim3(1), params, 0, s_),
        "cuda-emu: KILN_CUDA_EMU_ORDER must be \"shuffled\" (the default) or \"ascending\", got \"backwards\"");
  }
  EXPECT_EQ(Rt().cudaStreamSynchronize(s_), cudaSuccess);
  EXPECT_EQ(Rt().cudaLibraryUnload(library), cudaSuccess);
}

// A barrier that some threads of a block skip (here by returning first) is
// undefined in CUDA: it may hang the block on a GPU. The emulator stops with
// the reason when the stream runs the launch.
TEST_F(EmulatedRuntimeTest, ABarrierSomeThreadsSkipIsAnError) {
  const char* const kDivergent = R"(
extern "C" __global__ void __launch_bounds__(256) emu_divergent(const float* __restrict__ in0, float* out) {
  if (threadIdx.x == 17) return;
  out[threadIdx.x] = in0[threadIdx.x];
  __syncthreads();
  out[threadIdx.x] += 1.0f;
}
)";
  const Loaded l = LoadKernel(kDivergent, "emu_divergent");
  ASSERT_NE(l.kernel, nullptr);
  float* in = Device(1, s_);
  float* out = Device(0, s_);
  EXPECT_DEATH(
      {
        Launch(l.kernel, in, out, s_);
        Rt().cudaStreamSynchronize(s_);
      },
      "cuda-emu: work queued on a stream failed: cuda-emu: the threads of a block passed __syncthreads a different "
      "number of times \\(thread 0: 1, thread 17: 0\\)");
  EXPECT_EQ(Rt().cudaFreeAsync(in, s_), cudaSuccess);
  EXPECT_EQ(Rt().cudaFreeAsync(out, s_), cudaSuccess);
  EXPECT_EQ(Rt().cudaLibraryUnload(l.library), cudaSuccess);
}

// NVRTC contracts a * b + c into one fused multiply-add (--fmad=true), and
// so do the emulated kernels where the host has FMA instructions:
// (1 + 2^-12)^2 - 1 is 2^-11 + 2^-24 rounded once, 2^-11 rounded twice.
TEST_F(EmulatedRuntimeTest, KernelsContractMultiplyAddsAsNvrtcDoes) {
#if defined(__x86_64__)
  if (!__builtin_cpu_supports("fma")) GTEST_SKIP() << "this CPU has no FMA instructions";
#elif !defined(__aarch64__)
  GTEST_SKIP() << "the emulator contracts only on x86-64 with FMA and on AArch64";
#endif
  const char* const kFma = R"(
extern "C" __global__ void __launch_bounds__(256) emu_fma(const float* __restrict__ in0, float* out) {
  if (blockIdx.x == 0 && threadIdx.x == 0) out[0] = in0[0] * in0[1] + in0[2];
}
)";
  const Loaded l = LoadKernel(kFma, "emu_fma");
  ASSERT_NE(l.kernel, nullptr);
  const float a = 1 + std::ldexp(1.0f, -12);
  const std::vector<float> abc = {a, a, -1};
  float* in = Device(abc, s_);
  float* out = Device(0, s_);
  ASSERT_EQ(Launch(l.kernel, in, out, s_), cudaSuccess);
  EXPECT_EQ(At(out, 0, s_), std::ldexp(1.0f, -11) + std::ldexp(1.0f, -24));
  EXPECT_EQ(Rt().cudaFreeAsync(in, s_), cudaSuccess);
  EXPECT_EQ(Rt().cudaFreeAsync(out, s_), cudaSuccess);
  EXPECT_EQ(Rt().cudaLibraryUnload(l.library), cudaSuccess);
}

// CUDA's expf is documented to within 2 ulp of the correctly rounded
// result, glibc's to 1: the emulated one is glibc's moved by up to the
// difference, 1 ulp, the same each time for the same argument, exact
// results kept.
TEST_F(EmulatedRuntimeTest, MathFunctionsErrAsMuchAsCudas) {
  const char* const kExp = R"(
extern "C" __global__ void __launch_bounds__(256) emu_exp(const float* __restrict__ in0, float* out) {
  for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < 1000; i += (long long)gridDim.x * blockDim.x)
    out[i] = expf(in0[i]);
}
)";
  const Loaded l = LoadKernel(kExp, "emu_exp");
  ASSERT_NE(l.kernel, nullptr);
  std::vector<float> x(1000);
  for (size_t i = 0; i < x.size(); ++i) x[i] = -10.0f + 0.0201f * static_cast<float>(i);
  const float inf = std::numeric_limits<float>::infinity();
  x[0] = 0, x[1] = inf, x[2] = -inf, x[3] = std::numeric_limits<float>::quiet_NaN();
  float* in = Device(x, s_);
  float* out = Device(0, s_);
  // The results of one launch.
  const auto run = [&] {
    EXPECT_EQ(Launch(l.kernel, in, out, s_), cudaSuccess);
    std::vector<float> y(x.size());
    EXPECT_EQ(Rt().cudaMemcpyAsync(y.data(), out, y.size() * sizeof(float), cudaMemcpyDeviceToHost, s_), cudaSuccess);
    return y;
  };
  const std::vector<float> y = run();
  EXPECT_EQ(y[0], 1.0f);
  EXPECT_EQ(y[1], inf);
  EXPECT_EQ(y[2], 0.0f);
  EXPECT_TRUE(std::isnan(y[3]));
  int moved = 0;
  for (size_t i = 4; i < x.size(); ++i) {
    const float glibc = std::exp(x[i]);
    int32_t a = 0, b = 0;
    std::memcpy(&a, &y[i], 4);
    std::memcpy(&b, &glibc, 4);
    EXPECT_LE(std::abs(a - b), 1) << "expf(" << x[i] << ")";
    moved += a != b;
  }
  EXPECT_GT(moved, 500) << "of 996 results, most are moved";
  const std::vector<float> again = run();
  EXPECT_EQ(std::memcmp(again.data(), y.data(), y.size() * sizeof(float)), 0) << "the same arguments, the same results";
  EXPECT_EQ(Rt().cudaFreeAsync(in, s_), cudaSuccess);
  EXPECT_EQ(Rt().cudaFreeAsync(out, s_), cudaSuccess);
  EXPECT_EQ(Rt().cudaLibraryUnload(l.library), cudaSuccess);
}

// The moved results stay in the functions' ranges (|sin| <= 1,
// hypot(x, y) >= |x|), and CUDA's exact special values stay exact:
// hypot(x, 0) = |x|, atan2(0, -x) = pi.
TEST_F(EmulatedRuntimeTest, MovedMathResultsKeepRangesAndSpecialValues) {
  const char* const kRanges = R"(
extern "C" __global__ void __launch_bounds__(256) emu_ranges(const float* __restrict__ in0, float* out) {
  for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < 250; i += (long long)gridDim.x * blockDim.x) {
    const float x = in0[i];
    out[4 * i] = sinf(1.5707964f + x);
    out[4 * i + 1] = hypotf(1.0f + x, 1e-4f);
    out[4 * i + 2] = hypotf(x, 0.0f);
    out[4 * i + 3] = atan2f(0.0f, -1.0f - x * x);
  }
}
)";
  const Loaded l = LoadKernel(kRanges, "emu_ranges");
  ASSERT_NE(l.kernel, nullptr);
  std::vector<float> x(250);
  // sin(pi / 2 + x) within 2 ulp of 1, and hypot(1 + x, 1e-4) within an ulp
  // of 1 + x, where a move could cross them.
  for (size_t i = 0; i < x.size(); ++i) x[i] = 5e-6f * (static_cast<float>(i) - 125);
  float* in = Device(x, s_);
  float* out = Device(0, s_);
  ASSERT_EQ(Launch(l.kernel, in, out, s_), cudaSuccess);
  std::vector<float> y(1000);
  ASSERT_EQ(Rt().cudaMemcpyAsync(y.data(), out, y.size() * sizeof(float), cudaMemcpyDeviceToHost, s_), cudaSuccess);
  int below_one = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    EXPECT_LE(y[4 * i], 1.0f) << "sin near pi / 2, " << x[i];
    below_one += y[4 * i] < 1.0f;
    EXPECT_GE(y[4 * i + 1], 1.0f + x[i]) << "hypot(1 + x, 1e-4), " << x[i];
    EXPECT_EQ(y[4 * i + 2], std::abs(x[i])) << "hypot(x, 0)";
    EXPECT_EQ(y[4 * i + 3], static_cast<float>(M_PI)) << "atan2(0, -1 - x^2)";
  }
  EXPECT_GT(below_one, 10) << "some sin results are moved below 1";
  EXPECT_EQ(Rt().cudaFreeAsync(in, s_), cudaSuccess);
  EXPECT_EQ(Rt().cudaFreeAsync(out, s_), cudaSuccess);
  EXPECT_EQ(Rt().cudaLibraryUnload(l.library), cudaSuccess);
}

// The race check: accesses of two threads to one address, one a write, not
// both atomic, with no barrier between (for the same block) are reported
// once the launch has run, whatever order the threads ran in; barriers,
// atomics, writes of one value and other blocks' shared variables are not.
const char* const kRaces = R"(
extern "C" __global__ void __launch_bounds__(256) emu_shared_race(const float* __restrict__ in0, float* out) {
  __shared__ float s[256];
  s[threadIdx.x] = in0[blockIdx.x * blockDim.x + threadIdx.x];
  out[blockIdx.x * blockDim.x + threadIdx.x] = s[(threadIdx.x + 1) % 256];  // a neighbour's, maybe not yet written
}
extern "C" __global__ void __launch_bounds__(256) emu_shared_synced(const float* __restrict__ in0, float* out) {
  __shared__ float s[256];
  __shared__ int flag;
  if (threadIdx.x == 0) flag = 0;
  s[threadIdx.x] = in0[blockIdx.x * blockDim.x + threadIdx.x];
  __syncthreads();
  if (s[threadIdx.x] > 1.5f) flag = 1;  // one value from many threads
  out[blockIdx.x * blockDim.x + threadIdx.x] = s[(threadIdx.x + 1) % 256];
  __syncthreads();
  const float before = out[blockIdx.x * blockDim.x + (threadIdx.x + 255) % 256];  // read before it changes
  __syncthreads();
  out[blockIdx.x * blockDim.x + threadIdx.x] += before + flag;
  atomicAdd(out + 999, 1.0f);
}
extern "C" __global__ void __launch_bounds__(256) emu_global_race(const float* __restrict__ in0, float* out) {
  if (threadIdx.x == 0) out[7] = (float)blockIdx.x;  // every block writes its own value to one element
}
extern "C" __global__ void __launch_bounds__(256) emu_same_value(const float* __restrict__ in0, float* out) {
  out[7] = 3.0f;
}
extern "C" __global__ void __launch_bounds__(256) emu_atomic_and_read(const float* __restrict__ in0, float* out) {
  atomicAdd(out, 1.0f);
  if (blockIdx.x == 1 && threadIdx.x == 0) out[1] = out[0];  // a plain read of what others update atomically
}
extern "C" __global__ void __launch_bounds__(256) emu_read_then_written(const float* __restrict__ in0, float* out) {
  __shared__ float s;
  if (threadIdx.x == 0) s = 1.0f;
  __syncthreads();
  const float v = s;
  if (threadIdx.x == 200) s = 2.0f;  // while the others read it
  out[blockIdx.x * blockDim.x + threadIdx.x] = v;
  __syncthreads();
}
)";

TEST_F(EmulatedRuntimeTest, RacesAreReportedWhateverTheOrder) {
  const Loaded l = LoadKernel(kRaces, "emu_shared_synced");
  ASSERT_NE(l.kernel, nullptr);
  // Each kernel of kRaces by name.
  const auto kernel = [&](const char* name) {
    cudaKernel_t k = nullptr;
    EXPECT_EQ(Rt().cudaLibraryGetKernel(&k, l.library, name), cudaSuccess);
    return k;
  };
  std::vector<float> x(1000);
  for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(i % 3);
  float* in = Device(x, s_);
  for (const char* order : {"shuffled", "ascending"}) {
    SCOPED_TRACE(order);
    testing::ScopedEnv env("KILN_CUDA_EMU_ORDER", order);
    // Race-free: barriers order the shared and the global accesses, many
    // threads write one value to `flag`, the others' adds are atomic.
    float* out = Device(0, s_);
    ASSERT_EQ(Launch(l.kernel, in, out, s_), cudaSuccess);
    for (const size_t i : {size_t{0}, size_t{255}, size_t{300}}) {
      const size_t next = i / 256 * 256 + (i + 1) % 256;  // out[i - 1] held x[i]
      EXPECT_EQ(At(out, i, s_), x[next] + x[i] + 1.0f) << i;
    }
    EXPECT_EQ(At(out, 999, s_), 512.0f);
    ASSERT_EQ(Launch(kernel("emu_same_value"), in, out, s_), cudaSuccess);
    EXPECT_EQ(At(out, 7, s_), 3.0f);
    EXPECT_EQ(Rt().cudaFreeAsync(out, s_), cudaSuccess);
    const std::string thread = "thread [0-9]+ of block [01]";
    const std::string same_interval = "in the same interval between barriers \\(after ([01]) __syncthreads\\)";
    const std::string tail = ", and not both atomically: on a GPU the result depends on the order the threads run in";
    // Each racy kernel stops the process with its race.
    const auto expect_race = [&](const char* name, const std::string& race) {
      float* racy_out = Device(0, s_);
      EXPECT_DEATH(
          {
            Launch(kernel(name), in, racy_out, s_);
            Rt().cudaStreamSynchronize(s_);
          },
          "cuda-emu: work queued on a stream failed: cuda-emu: a data race in kernel " + std::string(name) + ": " +
              race + tail);
      EXPECT_EQ(Rt().cudaFreeAsync(racy_out, s_), cudaSuccess);
    };
    expect_race("emu_shared_race", thread + " (reads|writes) shared memory \\(byte [0-9]+ of __shared__ s\\) that " +
                                            thread + " (wrote|read) " + same_interval);
    expect_race("emu_global_race",
                thread + " writes global memory \\(byte 28 from parameter 1's pointer\\) that " + thread +
                    " wrote from another block");
    expect_race("emu_atomic_and_read", thread + " (reads|atomically updates) global memory \\(byte 0 from parameter "
                                                "1's pointer\\) that " + thread + " (atomically updated|read) (" +
                                           same_interval + "|from another block)");
    expect_race("emu_read_then_written", thread + " (reads|writes) shared memory \\(byte 0 of __shared__ s\\) that " +
                                                  thread + " (wrote|read) " + same_interval);
  }
  {
    // Off: the racy kernel runs, and leaves one block's value.
    testing::ScopedEnv off("KILN_CUDA_EMU_RACECHECK", "0");
    float* out = Device(5, s_);
    ASSERT_EQ(Launch(kernel("emu_global_race"), in, out, s_), cudaSuccess);
    const float v = At(out, 7, s_);
    EXPECT_TRUE(v == 0.0f || v == 1.0f) << v;
    EXPECT_EQ(Rt().cudaFreeAsync(out, s_), cudaSuccess);
  }
  {
    testing::ScopedEnv bad("KILN_CUDA_EMU_RACECHECK", "yes");
    void* params[2] = {nullptr, nullptr};
    KILN_EXPECT_ERROR(Rt().cudaLaunchKernel(reinterpret_cast<const void*>(l.kernel), dim3(1), dim3(1), params, 0, s_),
                      "cuda-emu: KILN_CUDA_EMU_RACECHECK must be \"1\" (the default) or \"0\", got \"yes\"");
  }
  EXPECT_EQ(Rt().cudaFreeAsync(in, s_), cudaSuccess);
  EXPECT_EQ(Rt().cudaStreamSynchronize(s_), cudaSuccess);
  EXPECT_EQ(Rt().cudaLibraryUnload(l.library), cudaSuccess);
}

// The prelude's compare-and-swap loops (kAtomicCas: Scatter's Max, and its
// 16-bit updates) start from a plain read that other threads' atomics race
// by design; the loop checks it, so the race check lets it be. A plain
// update in their place is reported.
TEST_F(EmulatedRuntimeTest, CompareAndSwapLoopsAreNotRaces) {
  const std::string source = std::string(KernelPrelude()) + R"(
extern "C" __global__ void __launch_bounds__(256) emu_cas_max(const float* __restrict__ in0, float* out) {
  const float v = in0[blockIdx.x * blockDim.x + threadIdx.x];
  kAtomicCas(out, [&](float old) { return old > v ? old : v; });
  kAtomicCas((unsigned short*)(out + 1), [&](unsigned short old) { return (unsigned short)(old + 1); });
}
extern "C" __global__ void __launch_bounds__(256) emu_plain_max(const float* __restrict__ in0, float* out) {
  const float v = in0[blockIdx.x * blockDim.x + threadIdx.x];
  if (v > out[0]) out[0] = v;
}
)";
  const Loaded l = LoadKernel(source.c_str(), "emu_cas_max");
  ASSERT_NE(l.kernel, nullptr);
  std::vector<float> x(1000);
  for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>((i * 37) % 512);
  float* in = Device(x, s_);
  float* out = Device(0, s_);
  ASSERT_EQ(Launch(l.kernel, in, out, s_), cudaSuccess);
  EXPECT_EQ(At(out, 0, s_), 511.0f);
  float counts = 0;
  ASSERT_EQ(Rt().cudaMemcpyAsync(&counts, out + 1, sizeof counts, cudaMemcpyDeviceToHost, s_), cudaSuccess);
  uint16_t low = 0;
  std::memcpy(&low, &counts, sizeof low);
  EXPECT_EQ(low, 512) << "one 16-bit increment per thread";
  cudaKernel_t plain = nullptr;
  ASSERT_EQ(Rt().cudaLibraryGetKernel(&plain, l.library, "emu_plain_max"), cudaSuccess);
  float* zero = Device(0, s_);  // so that some threads write
  EXPECT_DEATH(
      {
        Launch(plain, in, zero, s_);
        Rt().cudaStreamSynchronize(s_);
      },
      "cuda-emu: a data race in kernel emu_plain_max: thread [0-9]+ of block [01] (reads|writes) global memory "
      "\\(byte 0 from parameter 1's pointer\\)");
  EXPECT_EQ(Rt().cudaFreeAsync(zero, s_), cudaSuccess);
  EXPECT_EQ(Rt().cudaFreeAsync(in, s_), cudaSuccess);
  EXPECT_EQ(Rt().cudaFreeAsync(out, s_), cudaSuccess);
  EXPECT_EQ(Rt().cudaLibraryUnload(l.library), cudaSuccess);
}

// KILN_CUDA_EMU_NVRTC (set for the suites' *_cuda_emu ctests): every module
// the emulator compiles also goes through NVRTC, which refuses what only the
// host compiler takes.
TEST(EmulatedModulesTest, NvrtcChecksEveryModuleWhereAsked) {
  const char* const kHostOnly = R"(
extern "C" __global__ void __launch_bounds__(256) emu_host_only(float* out) {
  __builtin_ia32_pause();
  out[0] = 1.0f;
}
)";
  {
    testing::ScopedEnv nvrtc("KILN_CUDA_EMU_NVRTC", "");
    EXPECT_NO_THROW(Rt().compile_modules({kAddOne, kHostOnly}, "sm_90"));  // the host compiler takes it
  }
  {
    testing::ScopedEnv nvrtc("KILN_CUDA_EMU_NVRTC", "sm_80,sm_90");
    EXPECT_NO_THROW(Rt().compile_modules({kAddOne, kTwice}, "sm_90"));
    KILN_EXPECT_ERROR(Rt().compile_modules({kAddOne, kHostOnly}, "sm_90"),
                      "NVRTC could not compile a generated kernel for sm_80");
  }
  for (const char* bad : {"compute_90", "sm_90,", "sm_", "sm_9x", "sm_90ab", ",sm_90"}) {
    testing::ScopedEnv nvrtc("KILN_CUDA_EMU_NVRTC", bad);
    KILN_EXPECT_ERROR(Rt().compile_modules({kAddOne}, "sm_90"),
                      "cuda-emu: KILN_CUDA_EMU_NVRTC must list real architectures such as \"sm_80,sm_90\", got \"" +
                          std::string(bad) + "\"");
  }
  testing::ScopedEnv nvrtc("KILN_CUDA_EMU_NVRTC", "sm_90a");
  EXPECT_NO_THROW(Rt().compile_modules({kAddOne}, "sm_90"));
}

}  // namespace
}  // namespace kiln::backends::cuda
