// Copyright 2026 The Kiln Authors.
// The CUDA emulator backend (see emulator.h): CUDA programs on the host.
#include "src/backends/cuda/emulator.h"

#include <dlfcn.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "kiln/backends/backend.h"
#include "kiln/core/error.h"
#include "kiln/core/float16.h"
#include "src/backends/cpu/passes.h"
#include "src/backends/cuda/codegen.h"
#include "src/backends/cuda/cudnn_conv.h"
#include "src/backends/cuda/graph_replay.h"
#include "src/backends/cuda/library_calls.h"
#include "src/backends/cuda/nvrtc_compiler.h"
#include "src/backends/cuda/program_runner.h"
#include "src/distributed/communicator.h"

#ifndef KILN_EMULATOR_CXX
#define KILN_EMULATOR_CXX "c++"
#endif

namespace kiln::backends::cuda {

namespace {

// Multiprocessors the launch grids are sized for: few, so that the kernels'
// grid-stride loops run several rounds on the tests' sizes.
constexpr int kEmulatedSms = 2;

// The state a module's kernels read, owned by the host: the built-in index
// variables and the barrier. The layout is repeated in kShim.
struct EmuDim {
  unsigned x, y, z;
};
struct EmuState {
  EmuDim thread, block, block_dim, grid_dim;
  void (*sync)();
};

// What CUDA C++ needs beyond C++ to compile for the host: the qualifiers as
// nothing, the built-in index variables read from the host's state, bit
// casts, atomics (one host thread runs a launch, so plain
// read-modify-writes), and __syncthreads calling the host's barrier.
const char* const kShim = R"KILN(
#define KILN_CUDA_EMULATION 1
#include <stddef.h>
// The C library's math functions the kernels call (declared here: <cmath>
// alone would double the compile time of a module).
extern "C" {
float fabsf(float); double fabs(double); float ceilf(float); double ceil(double);
float floorf(float); double floor(double); float rintf(float); double rint(double);
float expf(float); double exp(double); float expm1f(float); double expm1(double);
float logf(float); double log(double); float log1pf(float); double log1p(double);
float sinf(float); double sin(double); float cosf(float); double cos(double);
float tanhf(float); double tanh(double); float sqrtf(float); double sqrt(double);
float erff(float); double erf(double); float fmodf(float, float); double fmod(double, double);
float powf(float, float); double pow(double, double); float atan2f(float, float); double atan2(double, double);
}
struct KEmuDim { unsigned x, y, z; };
struct KEmuState { KEmuDim thread, block, block_dim, grid_dim; void (*sync)(); };
static KEmuState* kemu_state;  // the launch's (launches are one at a time)
#define threadIdx (kemu_state->thread)
#define blockIdx (kemu_state->block)
#define blockDim (kemu_state->block_dim)
#define gridDim (kemu_state->grid_dim)
#define __device__
#define __global__
#define __forceinline__ inline
#define __launch_bounds__(n)
#define __shared__ static
inline void __syncthreads() { kemu_state->sync(); }
inline float __uint_as_float(unsigned u) { float f; __builtin_memcpy(&f, &u, 4); return f; }
inline unsigned __float_as_uint(float f) { unsigned u; __builtin_memcpy(&u, &f, 4); return u; }
inline float __int_as_float(int u) { float f; __builtin_memcpy(&f, &u, 4); return f; }
inline int __float_as_int(float f) { int u; __builtin_memcpy(&u, &f, 4); return u; }
inline double __longlong_as_double(long long u) { double f; __builtin_memcpy(&f, &u, 8); return f; }
inline long long __double_as_longlong(double f) { long long u; __builtin_memcpy(&u, &f, 8); return u; }
inline int __popc(unsigned x) { return __builtin_popcount(x); }
inline int __popcll(unsigned long long x) { return __builtin_popcountll(x); }
inline int __clz(int x) { return x == 0 ? 32 : __builtin_clz((unsigned)x); }
inline int __clzll(long long x) { return x == 0 ? 64 : __builtin_clzll((unsigned long long)x); }
template <class T> inline T atomicAdd(T* p, T v) { const T old = *p; *p = (T)(old + v); return old; }
inline unsigned atomicCAS(unsigned* p, unsigned expected, unsigned v) {
  const unsigned old = *p; if (old == expected) *p = v; return old;
}
inline unsigned long long atomicCAS(unsigned long long* p, unsigned long long expected, unsigned long long v) {
  const unsigned long long old = *p; if (old == expected) *p = v; return old;
}
// Calls a kernel with its parameters from an array of pointers.
namespace kemu {
template <size_t... I> struct Seq {};
template <size_t N, size_t... I> struct MakeSeq : MakeSeq<N - 1, N - 1, I...> {};
template <size_t... I> struct MakeSeq<0, I...> { typedef Seq<I...> type; };
template <class... A, size_t... I> void CallI(void (*f)(A...), void** p, Seq<I...>) { f(static_cast<A>(p[I])...); }
template <class... A> void Call(void (*f)(A...), void** p) { CallI(f, p, typename MakeSeq<sizeof...(A)>::type()); }
}  // namespace kemu
)KILN";

// Runs one thread of kernel `index` of a module with `state` (its
// `kiln_emu_call`).
using CallFn = void (*)(int index, void** params, EmuState* state);

// A launch on the host: blocks one after the other; within a block, each
// thread runs on its own fiber (ucontext) until its next __syncthreads or
// its end, round after round, forwards in even rounds and backwards in odd
// ones, so the threads of a block meet at every barrier. Kernels without a
// barrier run their threads as plain calls.
class FiberLauncher {
 public:
  void Launch(CallFn call, int index, bool syncs, void** params, unsigned blocks, unsigned threads) {
    state_.grid_dim = {blocks, 1, 1};
    state_.block_dim = {threads, 1, 1};
    state_.thread = state_.block = {0, 0, 0};
    state_.sync = &FiberLauncher::Sync;
    current_launcher = this;
    call_ = call, index_ = index, params_ = params;
    for (unsigned b = 0; b < blocks; ++b) {
      state_.block.x = b;
      if (!syncs) {
        for (unsigned t = 0; t < threads; ++t) {
          state_.thread.x = t;
          call(index, params, &state_);
        }
        continue;
      }
      RunBlock(threads);
    }
  }

 private:
  static constexpr size_t kStack = 64 * 1024;

  static void Sync() {
    FiberLauncher& l = *current_launcher;
    if (l.in_block_) swapcontext(&l.contexts_[l.current_], &l.scheduler_);
  }
  static void Entry() {
    FiberLauncher& l = *current_launcher;
    l.call_(l.index_, l.params_, &l.state_);
    l.done_[l.current_] = 1;  // then uc_link resumes the scheduler
  }

  void RunBlock(unsigned threads) {
    if (contexts_.size() < threads) {
      contexts_.resize(threads);
      stacks_.resize(threads * kStack);
    }
    done_.assign(threads, 0);
    for (unsigned t = 0; t < threads; ++t) {
      getcontext(&contexts_[t]);
      contexts_[t].uc_stack.ss_sp = stacks_.data() + t * kStack;
      contexts_[t].uc_stack.ss_size = kStack;
      contexts_[t].uc_link = &scheduler_;
      makecontext(&contexts_[t], &FiberLauncher::Entry, 0);
    }
    in_block_ = true;
    for (unsigned round = 0;; ++round) {
      bool any = false;
      for (unsigned i = 0; i < threads; ++i) {
        const unsigned t = round % 2 == 0 ? i : threads - 1 - i;
        if (done_[t]) continue;
        any = true;
        current_ = t;
        state_.thread.x = t;
        swapcontext(&scheduler_, &contexts_[t]);
      }
      if (!any) break;
    }
    in_block_ = false;
  }

  static inline FiberLauncher* current_launcher = nullptr;  // launches are one at a time
  EmuState state_{};
  CallFn call_ = nullptr;
  int index_ = 0;
  void** params_ = nullptr;
  std::vector<ucontext_t> contexts_;
  std::vector<char> stacks_;
  std::vector<unsigned char> done_;
  ucontext_t scheduler_{};
  unsigned current_ = 0;
  bool in_block_ = false;
};

// Replays left to fail (FailNextEmulatorReplays).
std::atomic<int> replay_failures_left{0};

// Whether this replay is to fail (taking one of those left).
bool TakeReplayFailure() {
  int left = replay_failures_left.load();
  while (left > 0 && !replay_failures_left.compare_exchange_weak(left, left - 1)) {
  }
  return left > 0;
}

struct Module {
  CallFn call = nullptr;
  const bool* syncs = nullptr;  // per kernel: whether it has a barrier
};

std::string Compiler() {
  const char* cxx = std::getenv("KILN_CUDA_EMULATOR_CXX");
  return cxx != nullptr && *cxx != '\0' ? cxx : KILN_EMULATOR_CXX;
}

// The program's CUDA C++ with the shim, and the entry points: one call of
// kernel `index` as the thread `state` names, and which kernels sync.
// The C library's functions complex_math.cuh calls beyond the shim's (only
// modules with complex values declare them, so the others' sources, and
// their cache entries, stay as they were).
const char* const kComplexShim = R"KILN(
extern "C" {
float sinhf(float); double sinh(double); float coshf(float); double cosh(double);
float hypotf(float, float); double hypot(double, double); float copysignf(float, float); double copysign(double, double);
float fmaf(float, float, float); double fma(double, double, double);
}
)KILN";

// Whether a kernel's threads meet at barriers (then each runs on a fiber):
// it calls __syncthreads, itself or through attention.cuh's functions.
bool UsesBarrier(const KernelSpec& k) {
  return k.source.find("__syncthreads") != std::string::npos || k.source.find("kAttention") != std::string::npos;
}

std::string EmulatorSource(const Program& p) {
  std::string s = kShim + std::string(UsesComplex(p) ? kComplexShim : "") + ModuleSource(p) + "\n";
  std::string table, syncs;
  for (size_t i = 0; i < p.kernels.size(); ++i) {
    s += "static void kemu_call_" + std::to_string(i) + "(void** p) { kemu::Call(" + p.kernels[i].name + ", p); }\n";
    table += "kemu_call_" + std::to_string(i) + ", ";
    syncs += UsesBarrier(p.kernels[i]) ? "true, " : "false, ";
  }
  s += "extern \"C\" const bool kiln_emu_syncs[] = {" + syncs + "};\n";
  s += "extern \"C\" void kiln_emu_call(int index, void** params, KEmuState* state) {\n"
       "  static void (*const table[])(void**) = {" + table + "};\n"
       "  kemu_state = state;\n"
       "  table[index](params);\n}\n";
  return s;
}

// Runs a shell command; returns its exit status and puts what it printed
// (stdout and stderr) in `output`.
int RunCommand(const std::string& command, std::string* output) {
  FILE* pipe = ::popen((command + " 2>&1").c_str(), "r");
  if (pipe == nullptr) return -1;
  char buf[4096];
  for (size_t n; (n = std::fread(buf, 1, sizeof buf, pipe)) > 0;) output->append(buf, n);
  return ::pclose(pipe);
}

// Compiles (or finds in the caches) and loads a module; modules stay loaded.
Module LoadModule(const std::string& source) {
  static std::mutex mu;
  static auto* loaded = new std::unordered_map<std::string, Module>();
  const std::string cxx = Compiler();
  const std::string flags = "-std=c++17 -O1 -fPIC -shared -w";
  const std::string key = HashKey(cxx + "\n" + flags + "\n" + source);
  std::lock_guard lock(mu);
  if (auto it = loaded->find(key); it != loaded->end()) return it->second;
  std::string dir = KernelCacheDir();
  const bool cached = !dir.empty();  // else the module lives in a temporary folder until it is loaded
  dir = cached ? dir + "/emulator"
               : (std::filesystem::temp_directory_path() / ("kiln-cuda-emu-" + std::to_string(::getpid()))).string();
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  const std::string so = dir + "/" + key + ".so";
  if (!std::filesystem::exists(so)) {
    const std::string tmp = so + ".tmp" + std::to_string(::getpid());
    {
      std::ofstream f(tmp + ".cc", std::ios::binary | std::ios::trunc);
      f << source;
      if (!f) Throw("cuda-emu: cannot write " + tmp + ".cc");
    }
    std::string log;
    if (RunCommand("'" + cxx + "' " + flags + " -o '" + tmp + "' '" + tmp + ".cc'", &log) != 0) {
      if (log.size() > 4000) log = log.substr(0, 4000) + "...";
      Throw("cuda-emu: the host compiler could not compile a generated module (source kept in " + tmp +
            ".cc): " + log);
    }
    std::filesystem::remove(tmp + ".cc", ec);
    std::filesystem::rename(tmp, so, ec);
    if (ec) Throw("cuda-emu: cannot move the compiled module to " + so + ": " + ec.message());
  }
  void* handle = dlopen(so.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!cached) std::filesystem::remove_all(dir, ec);  // the mapping outlives the file
  if (handle == nullptr) Throw(std::string("cuda-emu: cannot load ") + so + ": " + dlerror());
  Module m{reinterpret_cast<CallFn>(dlsym(handle, "kiln_emu_call")),
           static_cast<const bool*>(dlsym(handle, "kiln_emu_syncs"))};
  if (m.call == nullptr || m.syncs == nullptr) Throw("cuda-emu: " + so + " lacks its entry points");
  loaded->emplace(key, m);
  return m;
}

// Emulated device memory. Each buffer ends (rounded up to 16 bytes, the
// vector loads' alignment) where an inaccessible page begins, so a kernel
// or library call reading or writing past its end faults at once (on a GPU
// that is an illegal address, or a silent read of a neighbour); the few
// bytes of rounding hold a canary, checked when the buffer is freed. New
// buffers are filled with 0xff, so an output element nobody wrote shows.
constexpr size_t kEmuAlignment = 16;
constexpr unsigned char kEmuCanary = 0xa5;

struct HostMem {
  void* ptr = nullptr;
  size_t bytes = 0;
  bool owned = true;  // false: a view (graph_replay.h), never freed
  explicit HostMem(size_t n) : bytes(n) {
    if (n == 0) return;
    const size_t rounded = (n + kEmuAlignment - 1) / kEmuAlignment * kEmuAlignment;
    slack_ = rounded - n;
    // Without a guard page where the process runs out of mappings
    // (vm.max_map_count): the canary still catches writes.
    if (!MapWithGuard(rounded)) {
      heap_ = std::aligned_alloc(kEmuAlignment, rounded);
      if (heap_ == nullptr) Throw("cuda-emu: out of memory allocating " + std::to_string(n) + " bytes");
      ptr = heap_;
    }
    std::memset(ptr, 0xff, n);
    std::memset(static_cast<char*>(ptr) + n, kEmuCanary, slack_);
  }
  HostMem(void* p, size_t n) : ptr(p), bytes(n), owned(false) {}
  ~HostMem() {
    if (!owned || ptr == nullptr) return;
    const auto* tail = static_cast<const unsigned char*>(ptr) + bytes;
    for (size_t i = 0; i < slack_; ++i) {
      if (tail[i] != kEmuCanary) {
        std::fprintf(stderr, "cuda-emu: a kernel or library call wrote byte %zu after the end of a %zu-byte buffer\n",
                     i + 1, bytes);
        std::abort();
      }
    }
    if (mapping_ != nullptr) ::munmap(mapping_, mapped_);
    std::free(heap_);
  }
  HostMem(const HostMem&) = delete;
  HostMem& operator=(const HostMem&) = delete;

 private:
  // Maps `rounded` bytes ending at an inaccessible page; false if the
  // mapping or its protection fails.
  bool MapWithGuard(size_t rounded) {
    const auto page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
    const size_t data_pages = (rounded + page - 1) / page * page;
    void* m = ::mmap(nullptr, data_pages + page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) return false;
    char* guard = static_cast<char*>(m) + data_pages;
    if (::mprotect(guard, page, PROT_NONE) != 0) {
      ::munmap(m, data_pages + page);
      return false;
    }
    mapping_ = m;
    mapped_ = data_pages + page;
    ptr = guard - rounded;
    return true;
  }

  size_t slack_ = 0;  // the canary's bytes after `bytes`
  void* mapping_ = nullptr;
  size_t mapped_ = 0;
  void* heap_ = nullptr;  // the fallback allocation
};
using MemPtr = std::shared_ptr<HostMem>;

class EmuBuffer final : public Buffer {
 public:
  EmuBuffer(Backend* owner, const shapes::Shape& shape, MemPtr mem) : Buffer(owner, shape), mem_(std::move(mem)) {}
  void CopyToHost(void* dst) const override {
    if (Shape().ByteSize() > 0) std::memcpy(dst, mem_->ptr, static_cast<size_t>(Shape().ByteSize()));
  }
  const MemPtr& Mem() const { return mem_; }

 private:
  MemPtr mem_;
};

// Handles for the emulated libraries (library_api.h): any non-null value.
template <typename H>
H FakeHandle() {
  static char token;
  return reinterpret_cast<H>(&token);
}

// The emulated cuBLASLt, with no workspace.
LtContext EmulatedLt() { return {&EmulatedLibraryApi(), FakeHandle<cublasLtHandle_t>(), nullptr, 0}; }

// The emulated cuSOLVER and cuBLAS, workspaces on the heap.
const LibraryContext& EmulatedSolver() {
  static const LibraryContext c = [] {
    LibraryContext l;
    l.api = &EmulatedLibraryApi();
    l.blas = [] { return FakeHandle<cublasHandle_t>(); };
    l.solver = [] { return SolverHandles{FakeHandle<cusolverDnHandle_t>(), FakeHandle<cusolverDnParams_t>()}; };
    l.allocate = [](size_t bytes) -> std::shared_ptr<void> {
      return std::shared_ptr<void>(::operator new(bytes), [](void* p) { ::operator delete(p); });
    };
    l.synchronize = [] {};
    return l;
  }();
  return c;
}

// The emulated cuDNN's handle, shared by the executables.
const CudnnHandle& EmulatedCudnnHandle() {
  static const CudnnHandle handle(CudnnImpl::kEmulated);
  return handle;
}

// A batched call's pointer arrays must point at the matrices, one after
// the other (the library would read or write wherever they point: on the
// host, memory the emulator does not own).
void CheckBatchPointers(const LibraryCall& s, void* x, void* const* inputs) {
  if (!s.batched) return;
  const int64_t esize = dtypes::SizeOf(s.dtype), k = s.left_side ? s.rows : s.cols;
  const auto check = [&](size_t array, const void* base, int64_t size) {
    const auto* pointers = static_cast<const uint64_t*>(inputs[array]);
    for (int64_t i = 0; i < s.batch; ++i) {
      if (pointers[i] != reinterpret_cast<uint64_t>(static_cast<const char*>(base) + i * size * esize)) {
        Throw("cuda-emu: pointer " + std::to_string(i) + " of a batched library call is wrong");
      }
    }
  };
  if (s.kind == LibraryCall::Kind::kTrsm) {
    check(1, inputs[0], k * k);
    check(2, x, s.rows * s.cols);
  } else {
    check(0, x, s.rows * s.cols);
  }
}

// A recording of the emulator (graph_replay.h): its work in order, and the
// memory it allocated, alive as long as it.
struct EmuGraph {
  std::vector<std::function<void()>> work;
  std::vector<std::shared_ptr<HostMem>> memory;
};

std::mutex& LaunchMutex() {
  static std::mutex mu;
  return mu;
}

class EmuExecutable final : public Executable {
 public:
  EmuExecutable(Backend* backend, std::shared_ptr<const ir::Function> fn) : backend_(backend), fn_(std::move(fn)) {
    // Planned as the CUDA backend plans (PlanProgram), on the emulated
    // cuBLASLt and cuDNN (without cuDNN's headers, convolutions off it).
    ProgramOptions options = ProgramOptionsFromEnvironment();
    PlanContext plan;
    plan.lt = EmulatedLt();
    plan.cudnn = options.cudnn && HaveEmulatedCudnn() ? &EmulatedCudnnHandle() : nullptr;
    // On a GPU, whatever cuDNN refuses leaves it quietly; here a refusal
    // the test did not ask for (RefuseEmulatedConvolutions) is a Kiln bug
    // the stand-in found (a descriptor cuDNN would reject), and an error.
    plan.warn_off_cudnn = [](const std::string& why) {
      if (EmulatedConvolutionRefusal() < 0) Throw("cuda-emu: the emulated cuDNN refused a convolution: " + why);
    };
    LibraryPlans plans;
    program_ = PlanProgram(*cpu::OptimizeFunction(fn_), &options, plan, &plans);
    matmuls_ = std::move(plans.matmuls);
    convs_ = std::move(plans.convs);
    conv_workspace_.resize(plans.conv_workspace);
    if (!program_.kernels.empty()) module_ = LoadModule(EmulatorSource(program_));
    constants_ = UploadConstants<HostMem>(program_, [](const std::vector<std::byte>& data) {
      auto mem = std::make_shared<HostMem>(data.size());
      if (!data.empty()) std::memcpy(mem->ptr, data.data(), data.size());
      return mem;
    });
    fft_plans_ = PlanFfts(&EmulatedLibraryApi(), program_, nullptr);
    last_use_ = LastUses(program_);
    subexecutables_.resize(program_.function.subfunctions.size());
    for (int sub : ControlFlowSubfunctions(program_)) {
      subexecutables_[static_cast<size_t>(sub)] =
          std::make_unique<EmuExecutable>(backend_, program_.function.subfunctions[static_cast<size_t>(sub)]);
    }
    replays_ = std::make_unique<Replays<HostMem, EmuGraph>>(program_, GraphPolicyFromEnvironment());
  }

  const ir::Function& Function() const override { return *fn_; }

  std::vector<BufferPtr> Execute(std::vector<BufferPtr> args, const std::vector<bool>& donate) override {
    // One launch at a time: the modules' __shared__ arrays are static, and
    // so is the launcher.
    std::lock_guard lock(LaunchMutex());
    return ExecuteProgram("cuda-emu", fn_->name, program_, last_use_, constants_, std::move(args), donate, *this,
                          *replays_);
  }

  // ExecuteProgram's device interface.
  MemPtr MemOf(const Buffer& b) const {
    const auto* buf = dynamic_cast<const EmuBuffer*>(&b);
    return buf != nullptr ? buf->Mem() : nullptr;
  }
  BufferPtr Wrap(const shapes::Shape& shape, MemPtr mem) {
    return std::make_shared<EmuBuffer>(backend_, shape, std::move(mem));
  }
  // RunProgram's device interface. While recording, the memory belongs to
  // the recording (as CUDA's graph memory does).
  MemPtr Allocate(size_t bytes) {
    auto m = std::make_shared<HostMem>(bytes);
    if (recording_) pending_.memory.push_back(m);
    return m;
  }
  std::vector<MemPtr> RunSubfunction(int index, std::vector<MemPtr> args, const std::vector<bool>& donate) {
    EmuExecutable& sub = *subexecutables_[static_cast<size_t>(index)];
    return RunWithArguments(sub.program_, sub.last_use_, sub.constants_, std::move(args), donate, sub);
  }
  bool ReadPredicate(const HostMem& m) {
    // A CUDA graph capture cannot wait for the host (Recordable keeps such
    // programs out): the emulator holds recordings to the same rule.
    if (recording_) Throw("cuda-emu: a While or If predicate read on the host while recording (a Kiln bug)");
    return *static_cast<const unsigned char*>(m.ptr) != 0;
  }
  void Launch(int index, const KernelSpec& k, void** pointers) {
    if (recording_) {
      std::vector<void*> baked(pointers, pointers + k.inputs.size() + 1);
      const unsigned blocks = LaunchBlocks(k, kEmulatedSms);
      pending_.work.push_back([this, index, blocks, baked]() mutable { LaunchNow(index, blocks, baked.data()); });
      return;
    }
    LaunchNow(index, LaunchBlocks(k, kEmulatedSms), pointers);
  }
  void LaunchNow(int index, unsigned blocks, void** pointers) {
    static FiberLauncher launcher;  // guarded by LaunchMutex()
    launcher.Launch(module_.call, index, module_.syncs[index], pointers, blocks, kBlockSize);
  }
  void Matmul(int index, const void* lhs, const void* rhs, const void* bias, void* out) {
    if (recording_) {
      pending_.work.push_back([this, index, lhs, rhs, bias, out] { MatmulNow(index, lhs, rhs, bias, out); });
      return;
    }
    MatmulNow(index, lhs, rhs, bias, out);
  }
  void MatmulNow(int index, const void* lhs, const void* rhs, const void* bias, void* out) {
    matmuls_[static_cast<size_t>(index)]->Run(EmulatedLt(), lhs, rhs, bias, out, nullptr);
  }
  void Conv(int index, const void* a, const void* b, void* out) {
    if (recording_) {
      pending_.work.push_back([this, index, a, b, out] { ConvNow(index, a, b, out); });
      return;
    }
    ConvNow(index, a, b, out);
  }
  // The CUDA backend's own cuDNN calls (CudnnConv) on the emulated cuDNN.
  void ConvNow(int index, const void* a, const void* b, void* out) {
    convs_[static_cast<size_t>(index)]->Run(EmulatedCudnnHandle(), nullptr, a, b, out, conv_workspace_.data());
  }
  void CallLibrary(int index, void* x, void* const* inputs, void* const* outputs) {
    if (recording_) Throw("cuda-emu: a library call while recording (a Kiln bug: Recordable keeps them out)");
    const LibraryCall& s = program_.library_calls[static_cast<size_t>(index)];
    if (s.kind == LibraryCall::Kind::kCollective) {  // the buffers are host memory already
      distributed::internal::RunCollective("cuda-emu", s.collective, s.dtype, s.inputs.empty() ? x : inputs[0], x,
                                           s.in_count, s.out_count);
      return;
    }
    if (IsFourier(s.kind)) {
      fft_plans_[static_cast<size_t>(index)]->Run(x, inputs);
      return;
    }
    CheckBatchPointers(s, x, inputs);
    RunSolverCall(EmulatedSolver(), s, x, inputs, outputs);
  }
  // Replays' device interface: a recording is the list of its launches,
  // products and copies with their addresses baked in, and the memory it
  // allocated.
  MemPtr View(const HostMem& m) { return std::make_shared<HostMem>(m.ptr, m.bytes); }
  MemPtr AllocateFixed(size_t bytes) { return std::make_shared<HostMem>(bytes); }
  void BeginRecording() {
    pending_ = {};
    recording_ = true;
  }
  EmuGraph EndRecording() {
    recording_ = false;
    return std::move(pending_);
  }
  void AbandonRecording() {
    recording_ = false;
    pending_ = {};
  }
  void Replay(EmuGraph& g) {
    if (TakeReplayFailure()) Throw("cuda-emu: a replay failed (FailNextEmulatorReplays)");
    for (const std::function<void()>& w : g.work) w();
  }
  void Copy(void* dst, const void* src, size_t bytes) {
    if (recording_) {
      pending_.work.push_back([dst, src, bytes] { std::memcpy(dst, src, bytes); });
      return;
    }
    std::memcpy(dst, src, bytes);
  }

 private:
  Backend* backend_;
  std::shared_ptr<const ir::Function> fn_;
  Program program_;
  Module module_;
  std::vector<MemPtr> constants_;
  std::vector<std::unique_ptr<LtMatmul>> matmuls_;  // on the emulated cuBLASLt
  std::vector<std::unique_ptr<CudnnConv>> convs_;   // on the emulated cuDNN
  std::vector<std::unique_ptr<FftPlan>> fft_plans_;  // per library call (null for the non-Fourier ones)
  std::vector<std::byte> conv_workspace_;
  std::vector<int> last_use_;
  std::vector<std::unique_ptr<EmuExecutable>> subexecutables_;  // per sub-function (null if no While/If runs it)
  std::unique_ptr<Replays<HostMem, EmuGraph>> replays_;
  bool recording_ = false;
  EmuGraph pending_;  // while recording
};

class EmuBackend final : public Backend {
 public:
  EmuBackend() : caps_(ProgramCapabilities()) {}
  std::string Name() const override { return "cuda-emu"; }
  std::string Description() const override {
    return "cuda-emu (the CUDA backend's kernels run on the host, compiled by " + Compiler() + ")";
  }
  const Capabilities& GetCapabilities() const override { return caps_; }
  BufferPtr BufferFromHost(const shapes::Shape& shape, const void* data) override {
    auto mem = std::make_shared<HostMem>(static_cast<size_t>(shape.ByteSize()));
    if (mem->bytes > 0) std::memcpy(mem->ptr, data, mem->bytes);
    return std::make_shared<EmuBuffer>(this, shape, std::move(mem));
  }
  std::unique_ptr<Executable> Compile(std::shared_ptr<const ir::Function> function) override {
    function->Validate();
    return std::make_unique<EmuExecutable>(this, std::move(function));
  }

 private:
  Capabilities caps_;
};

}  // namespace

void FailNextEmulatorReplays(int n) { replay_failures_left.store(n); }

void RegisterCudaEmulatorBackend() {
  static std::once_flag once;
  std::call_once(once, [] {
    Registration r;
    r.name = "cuda-emu";
    r.priority = 0;
    r.is_available = [] { return true; };
    r.create = [] {
      static std::mutex mu;
      static std::weak_ptr<Backend> shared;
      std::lock_guard lock(mu);
      if (auto b = shared.lock()) return b;
      std::shared_ptr<Backend> b = std::make_shared<EmuBackend>();
      shared = b;
      return b;
    };
    Register(std::move(r));
  });
}

}  // namespace kiln::backends::cuda
