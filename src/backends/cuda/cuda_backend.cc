// Copyright 2026 The Kiln Authors.
// The CUDA backend: device buffers from the stream-ordered caching allocator
// (cudaMallocAsync on a pool that keeps freed memory), one stream per
// backend, host<->device copies through pinned staging slots (staging.h),
// and executables that run a Program (codegen.h): kernels generated
// per function and compiled by NVRTC for the device, products on cuBLASLt,
// convolutions on cuDNN (cudnn_conv.h) where it is there, factorizations on cuSOLVER (and cuBLAS's batched LU), triangular solves on
// cuBLAS.
//
// The driver library (libcuda.so.1) is never linked: the CUDA runtime is
// linked statically and loads the driver when first called, so libkiln runs
// on machines without a driver and reports why the backend is unavailable.
#include <cublasLt.h>
#include <cublas_v2.h>
#include <cufft.h>
#include <cusolverDn.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "kiln/backends/backend.h"
#include "kiln/core/error.h"
#include "src/backends/cpu/passes.h"
#include "src/backends/cuda/codegen.h"
#include "src/backends/cuda/cuda_backend.h"
#include "src/backends/cuda/cudnn_conv.h"
#include "src/backends/cuda/graph_replay.h"
#include "src/backends/cuda/library_calls.h"
#include "src/backends/cuda/nvrtc_compiler.h"
#include "src/backends/cuda/program_runner.h"
#include "src/backends/cuda/runtime_api.h"
#include "src/backends/cuda/staging.h"
#include "src/backends/cuda/step_labels.h"
#include "src/backends/step_profile.h"
#include "src/distributed/communicator.h"

namespace kiln::backends::cuda {

namespace {

void Check(const RuntimeApi& rt, cudaError_t e, const std::string& what) {
  if (e != cudaSuccess) Throw(std::string(rt.backend_name) + ": " + what + " failed: " + rt.cudaGetErrorString(e));
}

// A release (free, destroy, unload) that failed: destructors cannot throw,
// and a failure means Kiln handed the runtime something it does not own,
// a bug. A warning on a GPU; the emulator aborts, so tests cannot miss it.
// Two failures are expected: frees on a capture that was invalidated (a
// recording that failed, run step by step instead) and releases after the
// runtime has begun unloading at exit.
void Released(const RuntimeApi& rt, cudaError_t e, const char* what) {
  if (e == cudaSuccess) return;
  rt.cudaGetLastError();
  if (e == cudaErrorStreamCaptureInvalidated || e == cudaErrorCudartUnloading) return;
  static std::atomic<int> warnings{0};
  if (rt.fatal_release_errors || warnings++ < 10) {
    std::fprintf(stderr, "kiln: %s: %s failed: %s\n", rt.backend_name, what, rt.cudaGetErrorString(e));
  }
  if (rt.fatal_release_errors) std::abort();
}

// Why no device is usable, or "" when at least one is.
std::string ProbeDevices(const RuntimeApi& rt, int* count) {
  *count = 0;
  const cudaError_t e = rt.cudaGetDeviceCount(count);
  if (e == cudaSuccess && *count > 0) return "";
  rt.cudaGetLastError();  // clear the sticky error state
  *count = 0;
  switch (e) {
    case cudaSuccess:
    case cudaErrorNoDevice: return "no CUDA device is visible";
    case cudaErrorInsufficientDriver:
      return "no NVIDIA driver was found, or it is older than CUDA " + std::to_string(CUDART_VERSION / 1000) + "." +
             std::to_string(CUDART_VERSION % 1000 / 10) + " needs";
    default: return std::string("the CUDA runtime reports: ") + rt.cudaGetErrorString(e);
  }
}

// staging.h's driver calls, on one stream.
struct CudaStagingApi {
  using Event = cudaEvent_t;
  const RuntimeApi& rt;
  cudaStream_t stream = nullptr;
  void* AllocPinned(size_t bytes) {
    void* p = nullptr;
    if (rt.cudaHostAlloc(&p, bytes, cudaHostAllocDefault) != cudaSuccess) {
      rt.cudaGetLastError();  // not sticky: copies then go through pageable memory
      return nullptr;
    }
    return p;
  }
  void FreePinned(void* p) { Released(rt, rt.cudaFreeHost(p), "freeing pinned memory"); }
  Event NewEvent() {
    cudaEvent_t e = nullptr;
    Check(rt, rt.cudaEventCreateWithFlags(&e, cudaEventDisableTiming), "creating an event");
    return e;
  }
  void DestroyEvent(Event e) { Released(rt, rt.cudaEventDestroy(e), "destroying an event"); }
  void CopyAsync(void* dst, const void* src, size_t bytes, bool to_device) {
    Check(rt, rt.cudaMemcpyAsync(dst, src, bytes, to_device ? cudaMemcpyHostToDevice : cudaMemcpyDeviceToHost, stream),
          to_device ? "copying to the device" : "copying to the host");
  }
  void Record(Event e) { Check(rt, rt.cudaEventRecord(e, stream), "recording an event"); }
  void Wait(Event e) { Check(rt, rt.cudaEventSynchronize(e), "running the device's work"); }
  void Sync() { rt.cudaStreamSynchronize(stream); }
};

// Says once per process that convolutions run without cuDNN, and why (a
// slower path: im2col and cuBLASLt products).
void WarnConvolutionsOffCudnn(const std::string& why) {
  static std::once_flag once;
  std::call_once(once, [&] {
    std::fprintf(stderr, "kiln: warning: cuda: convolutions cuDNN cannot run are im2col and cuBLASLt products: %s\n",
                 why.c_str());
  });
}

// Whether a function has convolutions (its sub-functions compile on their own).
bool HasConvolutions(const ir::Function& fn) {
  return std::any_of(fn.instructions.begin(), fn.instructions.end(),
                     [](const ir::Instruction& in) { return in.op == ir::OpType::kConvGeneral; });
}

// Pinned staging slots per device: 4 of 2 MiB (a few batches' worth of
// small uploads in flight; large copies pipelined 2 MiB at a time).
constexpr size_t kStagingSlotBytes = size_t{2} << 20;
constexpr int kStagingSlots = 4;

// The state buffers and executables share with their backend, alive as long
// as any of them.
struct Device {
  explicit Device(const RuntimeApi& r) : rt(r) {}
  const RuntimeApi& rt;  // the CUDA runtime, the kernel compiler and the libraries
  int ordinal = 0;
  cudaStream_t stream = nullptr;
  cublasLtHandle_t lt = nullptr;
  void* workspace = nullptr;
  size_t workspace_size = size_t{32} << 20;
  std::string arch;  // "sm_90"
  int sm_count = 1;
  std::string description;
  std::mutex mu;  // serializes Execute (one stream) and cuDNN planning (one handle)
  // CUDA graphs are recorded on this stream (graph_replay.h), and launched
  // on `stream`.
  cudaStream_t capture_stream = nullptr;
  // Host<->device copies (buffers, predicates) through pinned slots.
  std::unique_ptr<Staging<CudaStagingApi>> staging;
  // Created when a program first needs them (cuSOLVER's handle costs tens
  // of MB of device memory); on `stream`.
  cublasHandle_t blas = nullptr;
  cusolverDnHandle_t solver = nullptr;
  cusolverDnParams_t solver_params = nullptr;
  // cuDNN's handle, made when a program first plans a convolution (null
  // where cuDNN is unavailable).
  std::once_flag cudnn_once;
  std::unique_ptr<CudnnHandle> cudnn;

  cublasHandle_t Blas() {
    if (blas == nullptr) {
      CheckBlas(rt.libraries->cublasCreate_v2(&blas), "create");
      CheckBlas(rt.libraries->cublasSetStream_v2(blas, stream), "set stream");
    }
    return blas;
  }
  cusolverDnHandle_t Solver() {
    if (solver == nullptr) {
      CheckSolver(rt.libraries->cusolverDnCreate(&solver), "create");
      CheckSolver(rt.libraries->cusolverDnSetStream(solver, stream), "set stream");
      CheckSolver(rt.libraries->cusolverDnCreateParams(&solver_params), "params");
    }
    return solver;
  }
  const CudnnHandle* Cudnn() {
    std::call_once(cudnn_once, [this] {
      if (!rt.cudnn_unavailable_reason().empty() || rt.cudaSetDevice(ordinal) != cudaSuccess) return;
      try {
        cudnn = std::make_unique<CudnnHandle>(rt.cudnn);
      } catch (const Error& e) {
        rt.convolutions_off_cudnn(e.what());
      }
    });
    return cudnn.get();
  }

  ~Device() {
    rt.cudaSetDevice(ordinal);
    staging.reset();  // waits for its copies
    if (stream != nullptr) rt.cudaStreamSynchronize(stream);
    cudnn.reset();
    if (solver_params != nullptr) rt.libraries->cusolverDnDestroyParams(solver_params);
    if (solver != nullptr) rt.libraries->cusolverDnDestroy(solver);
    if (blas != nullptr) rt.libraries->cublasDestroy_v2(blas);
    if (workspace != nullptr) Released(rt, rt.cudaFree(workspace), "freeing the cuBLASLt workspace");
    if (lt != nullptr) rt.libraries->cublasLtDestroy(lt);
    if (capture_stream != nullptr) Released(rt, rt.cudaStreamDestroy(capture_stream), "destroying a stream");
    if (stream != nullptr) Released(rt, rt.cudaStreamDestroy(stream), "destroying a stream");
  }
};

// A block of device memory, freed in stream order on release: on the
// device's stream, or on its capture stream while a CUDA graph is being
// recorded (graph memory, which the graph owns).
struct DeviceMem {
  std::shared_ptr<Device> device;
  void* ptr = nullptr;
  size_t bytes = 0;
  cudaStream_t stream = nullptr;
  bool owned = true;  // false: a view (graph_replay.h), never freed
  DeviceMem(std::shared_ptr<Device> d, size_t n) : DeviceMem(d, n, d->stream) {}
  DeviceMem(std::shared_ptr<Device> d, size_t n, cudaStream_t s) : device(std::move(d)), bytes(n), stream(s) {
    if (n == 0) return;
    const RuntimeApi& rt = device->rt;
    Check(rt, rt.cudaMallocAsync(&ptr, n, stream), "allocating " + std::to_string(n) + " bytes of device memory");
  }
  // A view of `m`'s bytes.
  explicit DeviceMem(const DeviceMem& m, bool /*view*/)
      : device(m.device), ptr(m.ptr), bytes(m.bytes), stream(m.stream), owned(false) {}
  ~DeviceMem() {
    if (owned && ptr != nullptr) Released(device->rt, device->rt.cudaFreeAsync(ptr, stream), "freeing device memory");
  }
  DeviceMem(const DeviceMem&) = delete;
  DeviceMem& operator=(const DeviceMem&) = delete;
};
using MemPtr = std::shared_ptr<DeviceMem>;

// A buffer keeps its backend alive: tensors recognise their buffers by the
// owner's address, which a later backend could otherwise be given (and
// SharedCudaBackend hands out the live one).
class CudaBuffer final : public Buffer {
 public:
  CudaBuffer(std::shared_ptr<Backend> owner, const shapes::Shape& shape, MemPtr mem)
      : Buffer(owner.get(), shape), owner_(std::move(owner)), mem_(std::move(mem)) {}
  void CopyToHost(void* dst) const override {
    const auto bytes = static_cast<size_t>(Shape().ByteSize());
    if (bytes == 0) return;
    Device& d = *mem_->device;
    Check(d.rt, d.rt.cudaSetDevice(d.ordinal), "cudaSetDevice");
    d.staging->ToHost(dst, mem_->ptr, bytes);
  }
  const MemPtr& Mem() const { return mem_; }
  MemPtr& MutableMem() { return mem_; }

 private:
  std::shared_ptr<Backend> owner_;
  MemPtr mem_;
};

LtContext LtContextOf(const Device& d) { return {d.rt.libraries, d.lt, d.workspace, d.workspace_size}; }

// Float32 products are exact FP32 unless KILN_CUDA_TF32=1 opts into TF32
// tensor cores (10-bit mantissas in the products).
bool Tf32Enabled() {
  const char* v = std::getenv("KILN_CUDA_TF32");
  return v != nullptr && std::string(v) == "1";
}

// An instantiated CUDA graph (graph_replay.h's recording), destroyed when
// its last launch is done (cudaGraphExecDestroy defers it).
struct CudaGraph {
  const RuntimeApi* rt = nullptr;
  cudaGraphExec_t exec = nullptr;
  CudaGraph() = default;
  CudaGraph(CudaGraph&& o) noexcept : rt(o.rt), exec(std::exchange(o.exec, nullptr)) {}
  CudaGraph& operator=(CudaGraph&& o) noexcept {
    std::swap(rt, o.rt);
    std::swap(exec, o.exec);
    return *this;
  }
  ~CudaGraph() {
    if (exec != nullptr) Released(*rt, rt->cudaGraphExecDestroy(exec), "destroying a CUDA graph");
  }
};

// Loaded kernel modules, unloaded once the stream's work is done (also when
// an executable's construction fails halfway).
struct Libraries {
  const RuntimeApi* rt = nullptr;
  cudaStream_t stream = nullptr;
  std::vector<cudaLibrary_t> loaded;
  Libraries() = default;
  Libraries(const Libraries&) = delete;
  Libraries& operator=(const Libraries&) = delete;
  ~Libraries() {
    if (!loaded.empty()) rt->cudaStreamSynchronize(stream);
    for (cudaLibrary_t library : loaded) Released(*rt, rt->cudaLibraryUnload(library), "unloading kernels");
  }
};

// KILN_CUDA_PROFILE's timing of one executable: a start and an end event
// around each step's work on the stream, read once the execution is done
// (or, inside long loops, every kMaxPairs steps), adding up to the table
// printed when the executable goes.
class StepTimes {
 public:
  StepTimes(const RuntimeApi& rt, std::unique_ptr<StepProfile> table, size_t step_count)
      : rt_(rt), table_(std::move(table)), seconds_(step_count, 0.0) {}
  ~StepTimes() {
    for (cudaEvent_t e : events_) Released(rt_, rt_.cudaEventDestroy(e), "destroying an event");
  }
  StepTimes(const StepTimes&) = delete;
  StepTimes& operator=(const StepTimes&) = delete;

  /// Records step `step`'s start on `stream` (its previous step has ended).
  void Begin(int step, cudaStream_t stream) {
    if (steps_.size() == kMaxPairs) {  // a loop body's many trips: read them and reuse the events
      Check(rt_, rt_.cudaStreamSynchronize(stream), "running profiled steps");
      Fold();
    }
    const size_t pair = steps_.size();
    while (events_.size() < 2 * pair + 2) {
      cudaEvent_t e = nullptr;
      Check(rt_, rt_.cudaEventCreateWithFlags(&e, cudaEventDefault), "creating a profile event");
      events_.push_back(e);
    }
    Check(rt_, rt_.cudaEventRecord(events_[2 * pair], stream), "recording a profile event");
    steps_.push_back(step);
  }
  /// Records the started step's end on `stream`.
  void End(cudaStream_t stream) {
    Check(rt_, rt_.cudaEventRecord(events_[2 * steps_.size() - 1], stream), "recording a profile event");
  }
  /// One more execution to count (a loop body's: one per trip).
  void CountRun() { ++runs_; }
  /// Once the stream's work is done: the executions since the last Collect
  /// into the table.
  void Collect() {
    Fold();
    if (runs_ > 0) table_->Add(seconds_, runs_);
    Discard();
  }
  /// After a failed execution: its steps are not counted.
  void Discard() {
    steps_.clear();
    std::fill(seconds_.begin(), seconds_.end(), 0.0);
    runs_ = 0;
  }
  /// Adds the host's time from call to results of one execution.
  void AddWall(double seconds) { table_->AddWall(seconds); }

 private:
  static constexpr size_t kMaxPairs = 4096;

  // The recorded (and finished) pairs' times into seconds_.
  void Fold() {
    for (size_t i = 0; i < steps_.size(); ++i) {
      float ms = 0;
      Check(rt_, rt_.cudaEventElapsedTime(&ms, events_[2 * i], events_[2 * i + 1]), "reading a profile event");
      seconds_[static_cast<size_t>(steps_[i])] += ms / 1e3;
    }
    steps_.clear();
  }

  const RuntimeApi& rt_;
  std::unique_ptr<StepProfile> table_;
  std::vector<cudaEvent_t> events_;  // pairs, reused from execution to execution
  std::vector<int> steps_;           // per pair recorded since the last Fold: its step
  std::vector<double> seconds_;      // per step, since the last Collect
  int64_t runs_ = 0;                 // executions since the last Collect
};

class CudaExecutable final : public Executable {
 public:
  // `profile`: time each step (KILN_CUDA_PROFILE, read once for an
  // executable and its sub-functions' executables).
  CudaExecutable(std::shared_ptr<Backend> backend, std::shared_ptr<Device> device,
                 std::shared_ptr<const ir::Function> fn, bool profile)
      : backend_(std::move(backend)), device_(std::move(device)), rt(device_->rt), fn_(std::move(fn)) {
    const std::shared_ptr<const ir::Function> optimized = cpu::OptimizeFunction(fn_);
    ProgramOptions options = ProgramOptionsFromEnvironment();
    Device& d = *device_;
    Check(rt, rt.cudaSetDevice(d.ordinal), "cudaSetDevice");
    // cuDNN (and its handle, which loads its kernels) only for programs
    // with convolutions.
    options.cudnn = options.cudnn && HasConvolutions(*optimized) && d.Cudnn() != nullptr;
    // The products and convolutions first (PlanProgram: epilogues or
    // convolutions cuBLASLt and cuDNN refuse are generated again without
    // them), then the convolutions' workspace: where it cannot be had, the
    // program is generated once more without cuDNN.
    PlanContext plan;
    plan.lt = LtContextOf(d);
    plan.cudnn = options.cudnn ? d.Cudnn() : nullptr;
    plan.cudnn_mu = &d.mu;  // the handle is Execute's too
    plan.tf32 = Tf32Enabled();
    plan.warn_off_cudnn = rt.convolutions_off_cudnn;
    LibraryPlans plans;
    program_ = PlanProgram(*optimized, &options, plan, &plans);
    try {
      if (plans.conv_workspace > 0) conv_workspace_ = std::make_shared<DeviceMem>(device_, plans.conv_workspace);
    } catch (const Error& e) {
      CountCudnn(&CudnnStats::refused, static_cast<int64_t>(plans.convs.size()));
      rt.convolutions_off_cudnn(e.what());
      options.cudnn = false;
      plan.cudnn = nullptr;
      program_ = PlanProgram(*optimized, &options, plan, &plans);
    }
    CountCudnn(&CudnnStats::planned, static_cast<int64_t>(plans.convs.size()));
    matmuls_ = std::move(plans.matmuls);
    convs_ = std::move(plans.convs);
    libraries_.rt = &rt;
    libraries_.stream = d.stream;
    const KernelModules modules = SplitModules(program_);
    for (const std::string& cubin : rt.compile_modules(modules.sources, d.arch)) {
      cudaLibrary_t library = nullptr;
      Check(rt, rt.cudaLibraryLoadData(&library, cubin.data(), nullptr, nullptr, 0, nullptr, nullptr, 0),
            "loading the generated kernels");
      libraries_.loaded.push_back(library);
    }
    for (size_t i = 0; i < program_.kernels.size(); ++i) {
      const std::string& entry = modules.entry[i];
      cudaKernel_t kernel;
      Check(rt, rt.cudaLibraryGetKernel(&kernel, libraries_.loaded[static_cast<size_t>(modules.module_of[i])], entry.c_str()),
            "finding kernel " + entry);
      kernels_.push_back(kernel);
      // Blocks of this kernel one multiprocessor holds at once (its
      // registers and shared memory decide): a grid-stride launch of more
      // runs in two uneven waves. 0 (unknown) keeps LaunchBlocks' default.
      int resident = 0;
      if (rt.cudaOccupancyMaxActiveBlocksPerMultiprocessor(&resident, reinterpret_cast<const void*>(kernel), kBlockSize,
                                                        0) != cudaSuccess) {
        rt.cudaGetLastError();
        resident = 0;
      }
      resident_blocks_.push_back(resident);
    }
    fft_plans_ = PlanFfts(rt.libraries, program_, d.stream);
    solver_ = SolverContext();
    constants_ = UploadConstants<DeviceMem>(program_, [&](const std::vector<std::byte>& data) {
      auto mem = std::make_shared<DeviceMem>(device_, data.size());
      if (!data.empty()) {
        Check(rt, rt.cudaMemcpyAsync(mem->ptr, data.data(), data.size(), cudaMemcpyHostToDevice, d.stream), "uploading a constant");
      }
      return mem;
    });
    Check(rt, rt.cudaStreamSynchronize(d.stream), "uploading constants");
    last_use_ = LastUses(program_);
    subexecutables_.resize(program_.function.subfunctions.size());
    for (int sub : ControlFlowSubfunctions(program_)) {
      subexecutables_[static_cast<size_t>(sub)] =
          std::make_unique<CudaExecutable>(backend_, device_, program_.function.subfunctions[static_cast<size_t>(sub)],
                                           profile);
    }
    stream_ = d.stream;
    replays_ = std::make_unique<Replays<DeviceMem, CudaGraph>>(program_, GraphPolicyFromEnvironment());
    if (profile) {
      times_ = std::make_unique<StepTimes>(
          rt, std::make_unique<StepProfile>(rt.backend_name, "KILN_CUDA_PROFILE", fn_->name, ProgramStepLabels(program_),
                                            "GPU time"),
          program_.steps.size());
    }
  }

  const ir::Function& Function() const override { return *fn_; }

  std::vector<BufferPtr> Execute(std::vector<BufferPtr> args, const std::vector<bool>& donate) override {
    Device& d = *device_;
    std::lock_guard lock(d.mu);
    Check(rt, rt.cudaSetDevice(d.ordinal), "cudaSetDevice");
    if (!times_) {
      return ExecuteProgram(rt.backend_name, fn_->name, program_, last_use_, constants_, std::move(args), donate, *this,
                            *replays_);
    }
    // Profiled: step by step (a CUDA graph's steps cannot be timed one by
    // one), and the host waits for each execution's work to read its times.
    const auto start = std::chrono::steady_clock::now();
    times_->CountRun();
    std::vector<BufferPtr> outputs;
    try {
      outputs = ExecuteProgram(rt.backend_name, fn_->name, program_, last_use_, constants_, std::move(args), donate,
                               *this, StepByStep{});
      Check(rt, rt.cudaStreamSynchronize(d.stream), "running a profiled execution");
      CollectProfile(false);
    } catch (...) {
      CollectProfile(true);
      throw;
    }
    times_->AddWall(SecondsSince(start));
    return outputs;
  }

  // KILN_CUDA_PROFILE: after an execution, this executable's step times and
  // its sub-functions' into their tables, or (`discard`, a failed one)
  // dropped.
  void CollectProfile(bool discard) {
    if (times_ && discard) {
      times_->Discard();
    } else if (times_) {
      times_->Collect();
    }
    for (const auto& sub : subexecutables_) {
      if (sub) sub->CollectProfile(discard);
    }
  }
  // RunProgram's optional timing interface.
  void StepBegins(int step) {
    if (times_ && Timed(program_.steps[static_cast<size_t>(step)])) times_->Begin(step, stream_);
  }
  void StepEnds(int step) {
    if (times_ && Timed(program_.steps[static_cast<size_t>(step)])) times_->End(stream_);
  }
  // Steps that put work on the stream.
  bool Timed(const Step& s) const {
    switch (s.kind) {
      case StepKind::kKernel:
      case StepKind::kUpdate: return program_.kernels[static_cast<size_t>(s.index)].work_items > 0;
      case StepKind::kMatmul:
      case StepKind::kConv:
      case StepKind::kLibrary:
      case StepKind::kWhile:
      case StepKind::kIf: return true;
      default: return false;
    }
  }

  // ExecuteProgram's device interface.
  MemPtr MemOf(const Buffer& b) const {
    const auto* buf = dynamic_cast<const CudaBuffer*>(&b);
    return buf != nullptr && buf->Mem()->device == device_ ? buf->Mem() : nullptr;
  }
  BufferPtr Wrap(const shapes::Shape& shape, MemPtr mem) {
    return std::make_shared<CudaBuffer>(backend_, shape, std::move(mem));
  }
  // RunProgram's device interface.
  // On the capture stream while recording: graph memory.
  MemPtr Allocate(size_t bytes) { return std::make_shared<DeviceMem>(device_, bytes, stream_); }
  void Matmul(int index, const void* lhs, const void* rhs, const void* bias, void* out) {
    matmuls_[static_cast<size_t>(index)]->Run(LtContextOf(*device_), lhs, rhs, bias, out, stream_);
  }
  void Conv(int index, const void* a, const void* b, void* out) {
    convs_[static_cast<size_t>(index)]->Run(*device_->cudnn, stream_, a, b, out,
                                           conv_workspace_ ? conv_workspace_->ptr : nullptr);
  }
  void CallLibrary(int index, void* x, void* const* inputs, void* const* outputs) {
    const LibraryCall& s = program_.library_calls[static_cast<size_t>(index)];
    if (s.kind == LibraryCall::Kind::kCollective) {
      RunStagedCollective(s, x, s.inputs.empty() ? x : inputs[0]);
    } else if (IsFourier(s.kind)) {
      fft_plans_[static_cast<size_t>(index)]->Run(x, inputs);
    } else {
      RunSolverCall(solver_, s, x, inputs, outputs);
    }
  }
  // The linked cuSOLVER and cuBLAS on the device's stream, workspaces from
  // its pool (made once per executable).
  LibraryContext SolverContext() {
    LibraryContext c;
    c.api = rt.libraries;
    Device* d = device_.get();
    c.blas = [d] { return d->Blas(); };
    c.solver = [d] {
      d->Solver();
      return SolverHandles{d->solver, d->solver_params};
    };
    c.allocate = [device = device_](size_t bytes) {
      auto m = std::make_shared<DeviceMem>(device, bytes);
      return std::shared_ptr<void>(m, m->ptr);
    };
    c.synchronize = [d] { d->rt.cudaStreamSynchronize(d->stream); };
    return c;
  }
  // A collective through host memory: the operand copied to the host (after
  // the stream's work), the distributed engine (Gloo) run there, the result
  // uploaded through the pinned slots in stream order. (NCCL on the device buffers is the way to skip the
  // copies when every process has a GPU of its own.)
  void RunStagedCollective(const LibraryCall& s, void* x, const void* in) {
    const bool in_place = s.inputs.empty();  // AllReduce, Broadcast
    const auto esize = static_cast<size_t>(dtypes::SizeOf(s.dtype));
    const size_t in_bytes = static_cast<size_t>(s.in_count) * esize, out_bytes = static_cast<size_t>(s.out_count) * esize;
    std::vector<std::byte> host_in(in_bytes), host_out(in_place ? 0 : out_bytes);
    device_->staging->ToHost(host_in.data(), in, in_bytes);  // after the step's producers
    void* result = in_place ? host_in.data() : host_out.data();
    distributed::internal::RunCollective(rt.backend_name, s.collective, s.dtype, host_in.data(), result, s.in_count, s.out_count);
    device_->staging->ToDevice(x, result, out_bytes);  // staged: the host copy may go
  }

  // Replays' device interface: the program's launches, products and copies
  // captured from the capture stream into a CUDA graph, which later calls
  // launch on the device's stream. Capture is thread-local: other threads'
  // work on the device's stream (copies, frees) goes on meanwhile.
  MemPtr View(const DeviceMem& m) { return std::make_shared<DeviceMem>(m, true); }
  MemPtr AllocateFixed(size_t bytes) { return std::make_shared<DeviceMem>(device_, bytes); }
  void BeginRecording() {
    Check(rt, rt.cudaStreamBeginCapture(device_->capture_stream, cudaStreamCaptureModeThreadLocal), "starting a CUDA graph");
    stream_ = device_->capture_stream;
  }
  CudaGraph EndRecording() {
    stream_ = device_->stream;
    cudaGraph_t graph = nullptr;
    Check(rt, rt.cudaStreamEndCapture(device_->capture_stream, &graph), "recording a CUDA graph");
    CudaGraph g;
    g.rt = &rt;
    const cudaError_t e = rt.cudaGraphInstantiate(&g.exec, graph, 0);
    rt.cudaGraphDestroy(graph);
    Check(rt, e, "instantiating a CUDA graph");
    // The graph's own memory is mapped now, not at its first launch, so a
    // lack of memory is a failed recording (the program then runs step by
    // step) rather than a failed replay.
    Check(rt, rt.cudaGraphUpload(g.exec, device_->stream), "uploading a CUDA graph");
    return g;
  }
  void AbandonRecording() {
    stream_ = device_->stream;
    cudaGraph_t graph = nullptr;
    if (rt.cudaStreamEndCapture(device_->capture_stream, &graph) == cudaSuccess && graph != nullptr) {
      rt.cudaGraphDestroy(graph);
    }
    rt.cudaGetLastError();  // capture errors are not sticky; clear the last one
  }
  void Replay(CudaGraph& g) { Check(rt, rt.cudaGraphLaunch(g.exec, device_->stream), "launching a CUDA graph"); }
  void Copy(void* dst, const void* src, size_t bytes) {
    Check(rt, rt.cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, stream_), "copying on the device");
  }

  std::vector<MemPtr> RunSubfunction(int index, std::vector<MemPtr> args, const std::vector<bool>& donate) {
    CudaExecutable& sub = *subexecutables_[static_cast<size_t>(index)];
    if (sub.times_) sub.times_->CountRun();
    return RunWithArguments(sub.program_, sub.last_use_, sub.constants_, std::move(args), donate, sub);
  }
  // A While's condition or an If's predicate: one byte copied to the host,
  // which waits for the stream (as XLA's GPU while loops do).
  bool ReadPredicate(const DeviceMem& m) {
    unsigned char b = 0;
    device_->staging->ToHost(&b, m.ptr, 1);
    return b != 0;
  }
  void Launch(int index, const KernelSpec& k, void** pointers) {
    std::vector<void*> params(k.inputs.size() + 1);
    for (size_t i = 0; i < params.size(); ++i) params[i] = &pointers[i];
    const unsigned blocks = LaunchBlocks(k, device_->sm_count, resident_blocks_[static_cast<size_t>(index)]);
    Check(rt, rt.cudaLaunchKernel(reinterpret_cast<const void*>(kernels_[static_cast<size_t>(index)]), dim3(blocks),
                           dim3(kBlockSize), params.data(), 0, stream_),
          "launching " + k.name);
  }

 private:
  std::shared_ptr<Backend> backend_;  // alive while its executables are (CudaBuffer says why)
  std::shared_ptr<Device> device_;
  const RuntimeApi& rt;
  std::shared_ptr<const ir::Function> fn_;
  Program program_;
  Libraries libraries_;                // the modules of SplitModules
  std::vector<cudaKernel_t> kernels_;  // per kernel of the program
  std::vector<int> resident_blocks_;   // per kernel: blocks per multiprocessor at once (0: unknown)
  std::vector<std::unique_ptr<LtMatmul>> matmuls_;
  std::vector<std::unique_ptr<CudnnConv>> convs_;  // per ConvSpec of the program
  MemPtr conv_workspace_;                           // the convolutions' (null: none needs one)
  std::vector<std::unique_ptr<FftPlan>> fft_plans_;  // per library call (null for the non-Fourier ones)
  LibraryContext solver_;                             // where factorizations and triangular solves run
  std::vector<MemPtr> constants_;
  std::vector<int> last_use_;
  std::vector<std::unique_ptr<CudaExecutable>> subexecutables_;  // per sub-function (null if no While/If runs it)
  cudaStream_t stream_ = nullptr;  // where steps go: the device's stream, or its capture stream while recording
  std::unique_ptr<Replays<DeviceMem, CudaGraph>> replays_;
  std::unique_ptr<StepTimes> times_;  // with KILN_CUDA_PROFILE=1
};

class CudaBackend final : public Backend, public std::enable_shared_from_this<CudaBackend> {
 public:
  CudaBackend(const RuntimeApi& runtime, int ordinal) : rt(runtime) {
    device_ = std::make_shared<Device>(rt);
    Device& d = *device_;
    d.ordinal = ordinal;
    Check(rt, rt.cudaSetDevice(ordinal), "selecting device " + std::to_string(ordinal));
    cudaDeviceProp prop{};
    Check(rt, rt.cudaGetDeviceProperties(&prop, ordinal), "reading the device's properties");
    d.arch = "sm_" + std::to_string(prop.major) + std::to_string(prop.minor);
    d.sm_count = prop.multiProcessorCount;
    Check(rt, rt.cudaStreamCreateWithFlags(&d.stream, cudaStreamNonBlocking), "creating a stream");
    Check(rt, rt.cudaStreamCreateWithFlags(&d.capture_stream, cudaStreamNonBlocking), "creating a stream");
    d.staging = std::make_unique<Staging<CudaStagingApi>>(CudaStagingApi{rt, d.stream}, kStagingSlotBytes, kStagingSlots);
    // Freed blocks stay in the device's pool for reuse: no cudaMalloc per step.
    cudaMemPool_t pool;
    Check(rt, rt.cudaDeviceGetDefaultMemPool(&pool, ordinal), "getting the memory pool");
    uint64_t threshold = UINT64_MAX;
    Check(rt, rt.cudaMemPoolSetAttribute(pool, cudaMemPoolAttrReleaseThreshold, &threshold), "configuring the memory pool");
    CheckLt(rt.libraries->cublasLtCreate(&d.lt), "create");
    Check(rt, rt.cudaMalloc(&d.workspace, d.workspace_size), "allocating the cuBLASLt workspace");
    d.description = std::string(rt.backend_name) + ":" + std::to_string(ordinal) + " (" + prop.name + ", " + d.arch + ", " +
                    std::to_string(prop.multiProcessorCount) + " SMs, " +
                    std::to_string(prop.totalGlobalMem >> 30) + " GiB, " +
                    (!rt.cudnn_unavailable_reason().empty() ? std::string("no cuDNN")
                     : rt.cudnn == CudnnImpl::kEmulated ? std::string("emulated cuDNN")
                                                        : "cuDNN " + CudnnVersion()) +
                    ")";
    caps_ = ProgramCapabilities();
  }

  std::string Name() const override { return rt.backend_name; }
  std::string Description() const override { return device_->description; }
  const Capabilities& GetCapabilities() const override { return caps_; }

  BufferPtr BufferFromHost(const shapes::Shape& shape, const void* data) override {
    const auto bytes = static_cast<size_t>(shape.ByteSize());
    Check(rt, rt.cudaSetDevice(device_->ordinal), "cudaSetDevice");
    auto mem = std::make_shared<DeviceMem>(device_, bytes);
    // Returns once `data` is in a pinned slot (the caller may then free
    // it); the upload runs in stream order.
    device_->staging->ToDevice(mem->ptr, data, bytes);
    return std::make_shared<CudaBuffer>(shared_from_this(), shape, std::move(mem));
  }

  std::unique_ptr<Executable> Compile(std::shared_ptr<const ir::Function> function) override {
    function->Validate();
    return std::make_unique<CudaExecutable>(shared_from_this(), device_, std::move(function),
                                            ProfilingEnabled("KILN_CUDA_PROFILE"));
  }

 private:
  const RuntimeApi& rt;
  std::shared_ptr<Device> device_;
  Capabilities caps_;
};

int ParseOrdinal(const std::string& config, int count) {
  char* end = nullptr;
  const long v = std::strtol(config.c_str(), &end, 10);
  if (config.empty() || *end != '\0' || v < 0) Throw("cuda: bad device \"" + config + "\": expected a number, as in \"cuda:1\"");
  if (v >= count) {
    Throw("cuda: device " + config + " does not exist: " + std::to_string(count) + " CUDA device" +
          (count == 1 ? " is" : "s are") + " visible");
  }
  return static_cast<int>(v);
}

}  // namespace

const void* DeviceAddress(const Buffer& buffer) {
  const auto* b = dynamic_cast<const CudaBuffer*>(&buffer);
  return b != nullptr && b->Mem() != nullptr ? b->Mem()->ptr : nullptr;
}

std::shared_ptr<Backend> SharedCudaBackend(const RuntimeApi& rt, int ordinal) {
  static std::mutex mu;
  static auto* backends = new std::map<std::pair<const RuntimeApi*, int>, std::weak_ptr<Backend>>();
  std::lock_guard lock(mu);
  std::weak_ptr<Backend>& shared = (*backends)[{&rt, ordinal}];
  if (auto b = shared.lock()) return b;
  auto b = std::make_shared<CudaBackend>(rt, ordinal);
  shared = b;
  return b;
}

const RuntimeApi& LinkedRuntimeApi() {
  static const RuntimeApi api = [] {
    RuntimeApi a;
#define KILN_RUNTIME_LINKED(name, type) a.name = static_cast<type>(&::name);
    KILN_CUDA_RUNTIME_FUNCTIONS(KILN_RUNTIME_LINKED)
#undef KILN_RUNTIME_LINKED
    a.backend_name = "cuda";
    a.compile_modules = CompileToCubins;
    a.libraries = &LinkedLibraryApi();
    a.cudnn = CudnnImpl::kLibrary;
    a.cudnn_unavailable_reason = CudnnUnavailableReason;
    a.convolutions_off_cudnn = WarnConvolutionsOffCudnn;
    return a;
  }();
  return api;
}

void RegisterCudaBackend() {
  Registration r;
  r.name = "cuda";
  r.priority = 20;
  r.is_available = [] {
    int count = 0;
    return ProbeDevices(LinkedRuntimeApi(), &count).empty();
  };
  r.unavailable_reason = [] {
    int count = 0;
    return ProbeDevices(LinkedRuntimeApi(), &count);
  };
  r.create = [] { return SharedCudaBackend(LinkedRuntimeApi(), 0); };
  r.create_with_config = [](const std::string& config) {
    int count = 0;
    ProbeDevices(LinkedRuntimeApi(), &count);
    return SharedCudaBackend(LinkedRuntimeApi(), ParseOrdinal(config, count));
  };
  Register(std::move(r));
}

}  // namespace kiln::backends::cuda
