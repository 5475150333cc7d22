// Copyright 2026 The Kiln Authors.
// The emulator's kernels (see emulated_modules.h).
#include "src/backends/cuda/emulated_modules.h"

#include <cxxabi.h>
#include <dlfcn.h>
#include <elf.h>
#include <link.h>
#include <ucontext.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <numeric>
#include <random>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "kiln/core/error.h"
#include "src/backends/cuda/emulated_racecheck.h"
#include "src/backends/cuda/kernel_cache.h"
#include "src/backends/cuda/nvrtc_compiler.h"

#ifndef KILN_EMULATOR_CXX
#define KILN_EMULATOR_CXX "c++"
#endif

namespace kiln::backends::cuda {

namespace {

// The state a module's kernels read, owned by the host: the built-in index
// variables and the barrier. The layout is repeated in kShim.
struct EmuDim {
  unsigned x, y, z;
};
struct EmuState {
  EmuDim thread, block, block_dim, grid_dim;
  void (*sync)();
  void (*access)(const void* address, unsigned long size, int kind);  // the race check's, or null
};

// What CUDA C++ needs beyond C++ to compile for the host: the qualifiers as
// nothing, the built-in index variables read from the host's state, bit
// casts, atomics (one host thread runs a launch, so plain
// read-modify-writes), __syncthreads calling the host's barrier, and the
// race check's hooks: the ThreadSanitizer instrumentation's calls
// (__tsan_read4, ...), defined here (hidden, so a host process under TSan
// keeps its own) to tell the host's checker of each access
// (emulated_racecheck.h). The hooks, the atomics and the entry points are
// not instrumented themselves.
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
struct KEmuState {
  KEmuDim thread, block, block_dim, grid_dim; void (*sync)(); void (*access)(const void*, unsigned long, int);
};
static KEmuState* kemu_state;  // the launch's (launches are one at a time)
#define KEMU_UNCHECKED __attribute__((no_sanitize("thread")))
// Never inlined into an instrumented kernel, whose instrumentation would
// then see an atomic's plain load and store (compilers that do not compare
// the attribute when inlining).
#define KEMU_ATOMIC KEMU_UNCHECKED __attribute__((noinline))
// Kinds: 0 read, 1 write, 2 atomic read-modify-write, 3 a read atomics may race (AccessKind).
KEMU_UNCHECKED static inline void kemu_access(const void* p, unsigned long n, int kind) {
  KEmuState* s = kemu_state;
  if (s != 0 && s->access != 0 && p != (const void*)&kemu_state) s->access(p, n, kind);
}
#define KEMU_HOOK(name, n, kind) \
  extern "C" __attribute__((visibility("hidden"))) KEMU_UNCHECKED void name(void* p) { kemu_access(p, n, kind); }
KEMU_HOOK(__tsan_read1, 1, 0) KEMU_HOOK(__tsan_read2, 2, 0) KEMU_HOOK(__tsan_read4, 4, 0)
KEMU_HOOK(__tsan_read8, 8, 0) KEMU_HOOK(__tsan_read16, 16, 0)
KEMU_HOOK(__tsan_write1, 1, 1) KEMU_HOOK(__tsan_write2, 2, 1) KEMU_HOOK(__tsan_write4, 4, 1)
KEMU_HOOK(__tsan_write8, 8, 1) KEMU_HOOK(__tsan_write16, 16, 1)
KEMU_HOOK(__tsan_unaligned_read2, 2, 0) KEMU_HOOK(__tsan_unaligned_read4, 4, 0)
KEMU_HOOK(__tsan_unaligned_read8, 8, 0) KEMU_HOOK(__tsan_unaligned_read16, 16, 0)
KEMU_HOOK(__tsan_unaligned_write2, 2, 1) KEMU_HOOK(__tsan_unaligned_write4, 4, 1)
KEMU_HOOK(__tsan_unaligned_write8, 8, 1) KEMU_HOOK(__tsan_unaligned_write16, 16, 1)
extern "C" {
// Newer LLVMs instrument memcpy, memset and memmove calls as these.
__attribute__((visibility("hidden"))) KEMU_UNCHECKED void* __tsan_memcpy(void* d, const void* s, unsigned long n) {
  kemu_access(s, n, 0); kemu_access(d, n, 1); return __builtin_memcpy(d, s, n);
}
__attribute__((visibility("hidden"))) KEMU_UNCHECKED void* __tsan_memmove(void* d, const void* s, unsigned long n) {
  kemu_access(s, n, 0); kemu_access(d, n, 1); return __builtin_memmove(d, s, n);
}
__attribute__((visibility("hidden"))) KEMU_UNCHECKED void* __tsan_memset(void* d, int c, unsigned long n) {
  kemu_access(d, n, 1); return __builtin_memset(d, c, n);
}
__attribute__((visibility("hidden"))) KEMU_UNCHECKED void __tsan_read_range(void* p, unsigned long n) { kemu_access(p, n, 0); }
__attribute__((visibility("hidden"))) KEMU_UNCHECKED void __tsan_write_range(void* p, unsigned long n) { kemu_access(p, n, 1); }
__attribute__((visibility("hidden"))) KEMU_UNCHECKED void __tsan_func_entry(void*) {}
__attribute__((visibility("hidden"))) KEMU_UNCHECKED void __tsan_func_exit() {}
__attribute__((visibility("hidden"))) KEMU_UNCHECKED void __tsan_init() {}
}
// A compare-and-swap loop's first guess (the prelude's kRacyLoad).
template <class T> KEMU_ATOMIC T kemu_racy_load(const T* p) { kemu_access(p, sizeof(T), 3); return *p; }
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
template <class T> KEMU_ATOMIC T atomicAdd(T* p, T v) {
  kemu_access(p, sizeof(T), 2); const T old = *p; *p = (T)(old + v); return old;
}
KEMU_ATOMIC inline unsigned atomicCAS(unsigned* p, unsigned expected, unsigned v) {
  kemu_access(p, sizeof *p, 2); const unsigned old = *p; if (old == expected) *p = v; return old;
}
KEMU_ATOMIC inline unsigned long long atomicCAS(unsigned long long* p, unsigned long long expected, unsigned long long v) {
  kemu_access(p, sizeof *p, 2); const unsigned long long old = *p; if (old == expected) *p = v; return old;
}
// Calls a kernel with its parameters from an array of pointers to them.
namespace kemu {
template <size_t... I> struct Seq {};
template <size_t N, size_t... I> struct MakeSeq : MakeSeq<N - 1, N - 1, I...> {};
template <size_t... I> struct MakeSeq<0, I...> { typedef Seq<I...> type; };
// p[i] points at parameter i's value, as cudaLaunchKernel's args do.
template <class... A, size_t... I> void CallI(void (*f)(A...), void** p, Seq<I...>) { f(*static_cast<A*>(p[I])...); }
template <class... A> void Call(void (*f)(A...), void** p) { CallI(f, p, typename MakeSeq<sizeof...(A)>::type()); }
template <class... A> constexpr int Arity(void (*)(A...)) { return (int)sizeof...(A); }
template <class T> struct IsPointer { static const bool value = false; };
template <class T> struct IsPointer<T*> { static const bool value = true; };
// Kiln's kernels take pointers only (KernelSource): a capture copies them.
template <class... A> constexpr bool AllPointers(void (*)(A...)) { return (true && ... && IsPointer<A>::value); }
}  // namespace kemu
)KILN";

// The C library's functions complex_math.cuh calls beyond the shim's.
const char* const kComplexShim = R"KILN(
extern "C" {
float sinhf(float); double sinh(double); float coshf(float); double cosh(double);
float hypotf(float, float); double hypot(double, double); float copysignf(float, float); double copysign(double, double);
float fmaf(float, float, float); double fma(double, double, double);
}
)KILN";

// CUDA's math functions are not the C library's: the CUDA C++ Programming
// Guide documents their maximum errors against the correctly rounded result
// as a few ulp (expf 2, powf 4, atan2f 3, hypotf 3; pow 2, ...), where
// glibc's are within one or two (its manual's table for x86_64: expf 1,
// powf 1, atan2f 2, hypotf 1, pow 1, ...). So each result the kernels get is
// glibc's moved by up to the difference (expf 1 ulp, powf 3, atan2f 1,
// hypotf 2, pow 1, ...; none where glibc's bound is already CUDA's: logf,
// tanhf, exp, ...), by a hash of the function and its arguments, so a run
// repeats itself: it stays within what CUDA may return, and a tolerance
// that holds only for glibc's results fails here as it would on a GPU.
// Kept as they are: results exact on both (zeros, infinities, NaN, integers
// below 2^24, powers of two: exp(0), cos(0), pow(2, 3), a saturated tanh),
// two-argument results where an argument is zero, infinite or NaN (CUDA's
// special values: hypot(x, 0) = |x|, atan2(0, -1) = pi), the sign, and the
// function's range (|sin| <= 1, cosh >= 1, hypot >= max(|x|, |y|), ...).
const char* const kMathShim = R"KILN(
static inline unsigned long long kemu_mix(unsigned long long x) {
  x ^= x >> 33; x *= 0xff51afd7ed558ccdULL; x ^= x >> 33; x *= 0xc4ceb9fe1a85ec53ULL; return x ^ (x >> 33);
}
static inline unsigned long long kemu_key(int fn, double a, double b) {
  unsigned long long u, v; __builtin_memcpy(&u, &a, 8); __builtin_memcpy(&v, &b, 8);
  return kemu_mix(kemu_mix(u + (unsigned long long)fn) * 0x9e3779b97f4a7c15ULL + v);
}
static inline bool kemu_special(double x) { return x == 0 || !(x == x) || __builtin_isinf(x); }
// y moved by up to n ulp, staying within [lo, hi].
template <class F, class U> static inline F kemu_ulps(F y, int n, unsigned long long key, F lo, F hi) {
  if (n == 0 || !(y == y) || y == (F)0 || __builtin_isinf(y)) return y;
  const F a = y < 0 ? -y : y;
  if (a < (F)16777216 && a == __builtin_floor(a)) return y;
  U u; __builtin_memcpy(&u, &y, sizeof u);
  const int mantissa_bits = sizeof(F) == 4 ? 23 : 52;
  if ((u & (((U)1 << mantissa_bits) - 1)) == 0) return y;
  const long long k = (long long)(key % (unsigned long long)(2 * n + 1)) - n;
  const U moved = u + (U)k;  // the magnitude's bits: same sign, k ulp on
  F r; __builtin_memcpy(&r, &moved, sizeof r);
  if ((r < 0) != (y < 0) || __builtin_isinf(r) || !(r == r) || r < lo || r > hi) return y;
  return r;
}
#define KEMU_INF(F) ((F)__builtin_inf())
#define KEMU_PI(F) ((F)3.14159265358979323846)
// name's wrapper: `fn` tells the functions apart in the hash, [lo, hi] is
// its range.
#define KEMU_MATH1(name, F, U, ulps, fn, lo, hi) \
  static inline F kemu_##name(F x) { return kemu_ulps<F, U>(name(x), ulps, kemu_key(fn, x, 0), lo, hi); }
#define KEMU_MATH2(name, F, U, ulps, fn, lo, hi)                                              \
  static inline F kemu_##name(F x, F y) {                                                     \
    const F r = name(x, y);                                                                   \
    return kemu_special(x) || kemu_special(y) ? r : kemu_ulps<F, U>(r, ulps, kemu_key(fn, x, y), lo, hi); \
  }
KEMU_MATH1(expf, float, unsigned, 1, 1, -KEMU_INF(float), KEMU_INF(float))
KEMU_MATH1(exp, double, unsigned long long, 0, 1, -KEMU_INF(double), KEMU_INF(double))
KEMU_MATH1(expm1f, float, unsigned, 0, 2, -KEMU_INF(float), KEMU_INF(float))
KEMU_MATH1(expm1, double, unsigned long long, 0, 2, -KEMU_INF(double), KEMU_INF(double))
KEMU_MATH1(logf, float, unsigned, 0, 3, -KEMU_INF(float), KEMU_INF(float))
KEMU_MATH1(log, double, unsigned long long, 0, 3, -KEMU_INF(double), KEMU_INF(double))
KEMU_MATH1(log1pf, float, unsigned, 0, 4, -KEMU_INF(float), KEMU_INF(float))
KEMU_MATH1(log1p, double, unsigned long long, 0, 4, -KEMU_INF(double), KEMU_INF(double))
KEMU_MATH1(sinf, float, unsigned, 1, 5, (float)-1, (float)1)
KEMU_MATH1(sin, double, unsigned long long, 1, 5, (double)-1, (double)1)
KEMU_MATH1(cosf, float, unsigned, 1, 6, (float)-1, (float)1)
KEMU_MATH1(cos, double, unsigned long long, 1, 6, (double)-1, (double)1)
KEMU_MATH1(tanhf, float, unsigned, 0, 7, (float)-1, (float)1)
KEMU_MATH1(tanh, double, unsigned long long, 0, 7, (double)-1, (double)1)
KEMU_MATH1(erff, float, unsigned, 1, 8, (float)-1, (float)1)
KEMU_MATH1(erf, double, unsigned long long, 1, 8, (double)-1, (double)1)
KEMU_MATH1(sinhf, float, unsigned, 1, 9, -KEMU_INF(float), KEMU_INF(float))
KEMU_MATH1(sinh, double, unsigned long long, 0, 9, -KEMU_INF(double), KEMU_INF(double))
KEMU_MATH1(coshf, float, unsigned, 0, 10, 1.0f, KEMU_INF(float))
KEMU_MATH1(cosh, double, unsigned long long, 0, 10, 1.0, KEMU_INF(double))
KEMU_MATH2(powf, float, unsigned, 3, 11, -KEMU_INF(float), KEMU_INF(float))
KEMU_MATH2(pow, double, unsigned long long, 1, 11, -KEMU_INF(double), KEMU_INF(double))
KEMU_MATH2(atan2f, float, unsigned, 1, 12, -KEMU_PI(float), KEMU_PI(float))
KEMU_MATH2(atan2, double, unsigned long long, 1, 12, -KEMU_PI(double), KEMU_PI(double))
KEMU_MATH2(hypotf, float, unsigned, 2, 13, (x < 0 ? -x : x) > (y < 0 ? -y : y) ? (x < 0 ? -x : x) : (y < 0 ? -y : y), KEMU_INF(float))
KEMU_MATH2(hypot, double, unsigned long long, 1, 13, (x < 0 ? -x : x) > (y < 0 ? -y : y) ? (x < 0 ? -x : x) : (y < 0 ? -y : y), KEMU_INF(double))
#define expf(x) kemu_expf(x)
#define exp(x) kemu_exp(x)
#define expm1f(x) kemu_expm1f(x)
#define expm1(x) kemu_expm1(x)
#define logf(x) kemu_logf(x)
#define log(x) kemu_log(x)
#define log1pf(x) kemu_log1pf(x)
#define log1p(x) kemu_log1p(x)
#define sinf(x) kemu_sinf(x)
#define sin(x) kemu_sin(x)
#define cosf(x) kemu_cosf(x)
#define cos(x) kemu_cos(x)
#define tanhf(x) kemu_tanhf(x)
#define tanh(x) kemu_tanh(x)
#define erff(x) kemu_erff(x)
#define erf(x) kemu_erf(x)
#define sinhf(x) kemu_sinhf(x)
#define sinh(x) kemu_sinh(x)
#define coshf(x) kemu_coshf(x)
#define cosh(x) kemu_cosh(x)
#define powf(x, y) kemu_powf(x, y)
#define pow(x, y) kemu_pow(x, y)
#define atan2f(x, y) kemu_atan2f(x, y)
#define atan2(x, y) kemu_atan2(x, y)
#define hypotf(x, y) kemu_hypotf(x, y)
#define hypot(x, y) kemu_hypot(x, y)
)KILN";

// Runs a shell command; returns its exit status and puts what it printed
// (stdout and stderr) in `output`.
int RunCommand(const std::string& command, std::string* output) {
  FILE* pipe = ::popen((command + " 2>&1").c_str(), "r");
  if (pipe == nullptr) return -1;
  char buf[4096];
  for (size_t n; (n = std::fread(buf, 1, sizeof buf, pipe)) > 0;) output->append(buf, n);
  return ::pclose(pipe);
}

// Runs one thread of a kernel with its arguments (cudaLaunchKernel's
// array of pointers to them) as `state` names it: a module's
// `kemu_run_<name>` (EmulatedKernel::run, whose state is an EmuState).
using RunFn = void (*)(void** args, void* state);

// A launch on the host: blocks one after the other; within a block, each
// thread runs on its own fiber (ucontext) until its next __syncthreads or
// its end, round after round, forwards in even rounds and backwards in odd
// ones, so the threads of a block meet at every barrier; threads that pass
// different numbers of barriers are an error (CUDA leaves that undefined).
// Kernels without a barrier run their threads as plain calls.
//
// A GPU runs a grid's blocks, and a block's warps, in no set order and at
// once, so a kernel whose result depends on that order (a block reading
// what another writes, without atomics or a barrier between) is wrong
// there. The launcher therefore takes the blocks, and the threads of each
// block, in a different shuffled order on each launch (seeded by the
// kernel and how many times it was launched before, so a run repeats
// itself, and a test run alone sees the orders it saw in the whole suite):
// such a kernel gives wrong values here too instead of passing by the luck
// of ascending order (EmulatedLaunchesShuffled).
//
// With a race checker, every access the kernel's code makes goes to it
// (EmuState::access), with the thread, its block and how many barriers it
// has passed.
class FiberLauncher {
 public:
  void Launch(RunFn run, bool syncs, void** args, unsigned blocks, unsigned threads, bool shuffled, uint64_t seed,
              RaceChecker* checker) {
    state_.grid_dim = {blocks, 1, 1};
    state_.block_dim = {threads, 1, 1};
    state_.thread = state_.block = {0, 0, 0};
    state_.sync = &FiberLauncher::Sync;
    state_.access = checker != nullptr ? &FiberLauncher::Access : nullptr;
    current_launcher = this;
    run_ = run, args_ = args, checker_ = checker;
    std::mt19937_64 gen(seed);
    Order(blocks, shuffled, gen, &block_order_);
    for (const unsigned b : block_order_) {
      state_.block.x = b;
      Order(threads, shuffled, gen, &thread_order_);
      if (!syncs) {
        for (const unsigned t : thread_order_) {
          state_.thread.x = t;
          run(args, &state_);
          if (checker != nullptr) checker->ThreadStopped();
        }
        continue;
      }
      RunBlock(threads);
    }
  }

 private:
  static constexpr size_t kStack = 64 * 1024;

  static void Access(const void* address, unsigned long size, int kind) {
    FiberLauncher& l = *current_launcher;
    l.checker_->Access(reinterpret_cast<uintptr_t>(address), size, static_cast<AccessKind>(kind), l.state_.block.x,
                       l.state_.thread.x, l.in_block_ ? l.barriers_[l.current_] : 0);
  }

  static void Sync() {
    FiberLauncher& l = *current_launcher;
    if (!l.in_block_) return;
    ++l.barriers_[l.current_];
    swapcontext(&l.contexts_[l.current_], &l.scheduler_);
  }
  static void Entry() {
    FiberLauncher& l = *current_launcher;
    l.run_(l.args_, &l.state_);
    l.done_[l.current_] = 1;  // then uc_link resumes the scheduler
  }

  void RunBlock(unsigned threads) {
    if (contexts_.size() < threads) {
      contexts_.resize(threads);
      stacks_.resize(threads * kStack);
    }
    done_.assign(threads, 0);
    barriers_.assign(threads, 0);
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
        const unsigned t = thread_order_[round % 2 == 0 ? i : threads - 1 - i];
        if (done_[t]) continue;
        any = true;
        current_ = t;
        state_.thread.x = t;
        swapcontext(&scheduler_, &contexts_[t]);
        if (checker_ != nullptr) checker_->ThreadStopped();
      }
      if (!any) break;
    }
    in_block_ = false;
    // CUDA allows __syncthreads in conditional code only where the condition
    // is the same for the whole block: a thread that skips a barrier (or
    // returns before it) while others wait hangs the block or corrupts its
    // shared memory on a GPU. Here every thread would have run to its end.
    for (unsigned t = 1; t < threads; ++t) {
      if (barriers_[t] != barriers_[0]) {
        Throw("cuda-emu: the threads of a block passed __syncthreads a different number of times (thread 0: " +
              std::to_string(barriers_[0]) + ", thread " + std::to_string(t) + ": " + std::to_string(barriers_[t]) +
              "), which CUDA leaves undefined: a barrier in code not every thread of the block runs");
      }
    }
  }

  // 0, 1, ..., n - 1, shuffled by `gen` where asked.
  static void Order(unsigned n, bool shuffled, std::mt19937_64& gen, std::vector<unsigned>* order) {
    order->resize(n);
    std::iota(order->begin(), order->end(), 0u);
    if (shuffled) std::shuffle(order->begin(), order->end(), gen);
  }
  static inline FiberLauncher* current_launcher = nullptr;  // launches are one at a time
  std::vector<unsigned> block_order_, thread_order_;
  EmuState state_{};
  RunFn run_ = nullptr;
  void** args_ = nullptr;
  RaceChecker* checker_ = nullptr;
  std::vector<ucontext_t> contexts_;
  std::vector<char> stacks_;
  std::vector<unsigned char> done_;
  std::vector<unsigned> barriers_;  // the barriers each thread of the block passed
  ucontext_t scheduler_{};
  unsigned current_ = 0;
  bool in_block_ = false;
};


// A kernel a module defines (KernelSource's signature), and whether its
// threads meet at barriers (then each runs on a fiber): its code calls
// __syncthreads, itself or through attention.cuh's functions.
struct KernelEntry {
  std::string name;
  bool syncs = false;
};

std::vector<KernelEntry> KernelsOf(const std::string& source) {
  static const std::string kSignature = "extern \"C\" __global__ void __launch_bounds__(";
  std::vector<size_t> starts;
  for (size_t at = source.find(kSignature); at != std::string::npos; at = source.find(kSignature, at + 1)) {
    starts.push_back(at);
  }
  std::vector<KernelEntry> kernels;
  for (size_t i = 0; i < starts.size(); ++i) {
    const size_t bounds_end = source.find(") ", starts[i] + kSignature.size());
    const size_t paren = source.find('(', bounds_end + 2);
    if (bounds_end == std::string::npos || paren == std::string::npos) Throw("cuda-emu: a kernel signature is cut short");
    const size_t end = i + 1 < starts.size() ? starts[i + 1] : source.size();
    const std::string text = source.substr(starts[i], end - starts[i]);
    kernels.push_back({source.substr(bounds_end + 2, paren - bounds_end - 2),
                       text.find("__syncthreads") != std::string::npos || text.find("kAttention") != std::string::npos});
  }
  return kernels;
}

// One host source for a compile call's modules: the shim, each module in a
// namespace of its own (each repeats the prelude), and per kernel its
// entry points (kemu_run_, kemu_arity_, kemu_syncs_ and its name).
std::string EmulatorSource(const std::vector<std::string>& modules) {
  std::string s = kShim + std::string(kComplexShim) + kMathShim, entries;
  for (size_t m = 0; m < modules.size(); ++m) {
    const std::string ns = "kemu_m" + std::to_string(m);
    s += "namespace " + ns + " {\n" + modules[m] + "\n}  // namespace " + ns + "\n";
    for (const KernelEntry& k : KernelsOf(modules[m])) {
      const std::string f = ns + "::" + k.name;
      entries += "static_assert(kemu::AllPointers(" + f + "), \"a kernel takes a non-pointer parameter\");\n" +
                 "extern \"C\" KEMU_UNCHECKED void kemu_run_" + k.name + "(void** a, void* s) { kemu_state = (KEmuState*)s; kemu::Call(" +
                 f + ", a); }\n" + "extern \"C\" const int kemu_arity_" + k.name + " = kemu::Arity(" + f + ");\n" +
                 "extern \"C\" const bool kemu_syncs_" + k.name + " = " + (k.syncs ? "true" : "false") + ";\n";
    }
  }
  return s + entries;
}

// A compiled host module: loaded once, never unloaded (its code may be on
// any thread's stack), and which kernels each of its CUDA modules defines.
struct HostModule {
  void* handle = nullptr;
  std::vector<std::set<std::string>> kernels;  // per CUDA module
  uintptr_t writable_begin = 0, writable_end = 0;  // its __shared__ variables (and kemu_state) lie here
  std::vector<StaticVariable> variables;           // those variables, by address, for the race check's reports
};

// The address the loaded object `handle` was loaded at (its symbols' and
// segments' addresses are relative to it).
uintptr_t LoadBase(void* handle) {
  struct link_map* map = nullptr;
  if (dlinfo(handle, RTLD_DI_LINKMAP, &map) != 0 || map == nullptr) Throw("cuda-emu: cannot inspect a loaded module");
  return static_cast<uintptr_t>(map->l_addr);
}

// Whether `file` (a module file's contents) starts as an ELF object does.
bool IsElf(const std::string& file) { return file.size() >= SELFMAG && file.compare(0, SELFMAG, ELFMAG) == 0; }

// The named variables of the module whose file holds `elf`, loaded at
// `base`, within [begin, end), by address, from its symbol table: a
// kernel's __shared__ variables are its function's static locals, so a race
// check report can name them. None where `elf` is not a 64-bit ELF object.
std::vector<StaticVariable> StaticVariables(const std::string& elf, uintptr_t base, uintptr_t begin, uintptr_t end) {
  std::vector<StaticVariable> variables;
  if (elf.size() < sizeof(ElfW(Ehdr)) || elf.compare(0, SELFMAG, ELFMAG) != 0 || elf[EI_CLASS] != ELFCLASS64) {
    return variables;
  }
  // [offset, offset + count * sizeof(T)) of the file, or null where it is not all there.
  const auto table = [&](uint64_t offset, uint64_t count, size_t size) -> const char* {
    return offset <= elf.size() && count <= (elf.size() - offset) / size ? elf.data() + offset : nullptr;
  };
  ElfW(Ehdr) header;
  std::memcpy(&header, elf.data(), sizeof header);
  const char* sections = table(header.e_shoff, header.e_shnum, sizeof(ElfW(Shdr)));
  if (sections == nullptr || header.e_shentsize != sizeof(ElfW(Shdr))) return variables;
  const auto section = [&](size_t i) {
    ElfW(Shdr) s;
    std::memcpy(&s, sections + i * sizeof s, sizeof s);
    return s;
  };
  for (size_t i = 0; i < header.e_shnum; ++i) {
    const ElfW(Shdr) symtab = section(i);
    if (symtab.sh_type != SHT_SYMTAB || symtab.sh_link >= header.e_shnum) continue;
    const ElfW(Shdr) strtab = section(symtab.sh_link);
    const char* syms = table(symtab.sh_offset, symtab.sh_size / sizeof(ElfW(Sym)), sizeof(ElfW(Sym)));
    const char* strs = table(strtab.sh_offset, strtab.sh_size, 1);
    if (syms == nullptr || strs == nullptr || strtab.sh_size == 0 || strs[strtab.sh_size - 1] != '\0') continue;
    for (size_t k = 0; k < symtab.sh_size / sizeof(ElfW(Sym)); ++k) {
      ElfW(Sym) sym;
      std::memcpy(&sym, syms + k * sizeof sym, sizeof sym);
      const uintptr_t at = base + sym.st_value;
      if (ELF64_ST_TYPE(sym.st_info) != STT_OBJECT || sym.st_size == 0 || at < begin || at >= end ||
          sym.st_name >= strtab.sh_size) {
        continue;
      }
      // kemu_m0::kiln_reduce_1(float const*, float*)::red -> red
      const char* mangled = strs + sym.st_name;
      int status = 0;
      char* demangled = abi::__cxa_demangle(mangled, nullptr, nullptr, &status);
      std::string name = status == 0 && demangled != nullptr ? demangled : mangled;
      std::free(demangled);
      if (const size_t colons = name.rfind("::"); colons != std::string::npos) name = name.substr(colons + 2);
      variables.push_back({at, static_cast<size_t>(sym.st_size), name});
    }
  }
  std::sort(variables.begin(), variables.end(),
            [](const StaticVariable& a, const StaticVariable& b) { return a.begin < b.begin; });
  return variables;
}

// The addresses of the writable segments of the object loaded at `base`:
// its static variables, which for a module are the kernels' __shared__
// variables (and the shim's kemu_state, which the hooks skip).
void WritableRange(uintptr_t base, uintptr_t* begin, uintptr_t* end) {
  struct Query {
    uintptr_t base, begin, end;
  } q{base, UINTPTR_MAX, 0};
  dl_iterate_phdr(
      [](dl_phdr_info* info, size_t, void* data) {
        auto& q = *static_cast<Query*>(data);
        if (info->dlpi_addr != q.base) return 0;
        for (int i = 0; i < info->dlpi_phnum; ++i) {
          const ElfW(Phdr)& ph = info->dlpi_phdr[i];
          if (ph.p_type != PT_LOAD || (ph.p_flags & PF_W) == 0) continue;
          q.begin = std::min<uintptr_t>(q.begin, q.base + ph.p_vaddr);
          q.end = std::max<uintptr_t>(q.end, q.base + ph.p_vaddr + ph.p_memsz);
        }
        return 1;
      },
      &q);
  *begin = q.end > q.begin ? q.begin : 0;
  *end = q.end > q.begin ? q.end : 0;
}

std::mutex& ModulesMutex() {
  static std::mutex mu;
  return mu;
}
std::unordered_map<std::string, HostModule>& Modules() {
  static auto* modules = new std::unordered_map<std::string, HostModule>();
  return *modules;
}

constexpr char kImagePrefix[] = "kiln-cuda-emu:";

// Whether the environment variable `name` says `on` (also where it is unset
// or empty) or `off`; read on each call, as tests switch it. Throws
// kiln::Error naming both for another value.
bool EnvSwitch(const char* name, const char* on, const char* off) {
  const char* env = std::getenv(name);
  const std::string value = env != nullptr ? env : "";
  if (value.empty() || value == on) return true;
  if (value == off) return false;
  Throw(std::string("cuda-emu: ") + name + " must be \"" + on + "\" (the default) or \"" + off + "\", got \"" +
        value + "\"");
}

// Which launches of a kernel the race check watches (RunEmulatedKernel).
constexpr uint64_t kRaceCheckFirst = 256, kRaceCheckEvery = 64;

// Whether the compiler `cxx` is Clang (else GCC), as its --version says
// (asked once per compiler).
bool IsClang(const std::string& cxx) {
  static std::mutex mu;
  static std::unordered_map<std::string, bool> known;
  std::lock_guard lock(mu);
  if (const auto it = known.find(cxx); it != known.end()) return it->second;
  std::string version;
  RunCommand("'" + cxx + "' --version", &version);
  return known[cxx] = version.find("clang") != std::string::npos;
}

// The host compiler's flags for a module. NVRTC contracts `a * b + c` into
// one fused multiply-add (its default --fmad=true), rounded once; so do the
// emulated kernels where the host has FMA instructions (GCC contracts at
// -O1 only with -fexpensive-optimizations), so that a test whose tolerance
// holds only for the host's two roundings fails here as it would on a GPU.
// The race check's hooks come from ThreadSanitizer's instrumentation
// (-fsanitize=thread when compiling; the link leaves its runtime out). GCC
// makes a template's static locals (attention.cuh's __shared__ arrays)
// GNU-unique symbols, which the loader binds to the first module that
// defines them, outside the others' static data: -fno-gnu-unique keeps each
// module's own. Clang leaves out a read followed by a write of the same
// address unless told not to, and the check needs both.
std::string EmulatorFlags(const std::string& cxx) {
  std::string flags = "-std=c++17 -O1 -fPIC -w -fsanitize=thread";
  flags += IsClang(cxx) ? " -mllvm -tsan-instrument-read-before-write" : " -fno-gnu-unique";
#if defined(__x86_64__)
  if (__builtin_cpu_supports("fma")) flags += " -fexpensive-optimizations -ffp-contract=fast -mfma";
#elif defined(__aarch64__)
  flags += " -fexpensive-optimizations -ffp-contract=fast";
#endif
  return flags;
}

// The name of the host module of `source` compiled by `cxx` with `flags`:
// a hash of all three.
std::string ModuleKey(const std::string& cxx, const std::string& flags, const std::string& source) {
  return HashKey(cxx + "\n" + flags + "\n" + source);
}

// Compiles the module `source` with `cxx` and `flags` into the shared
// object `so`, through a temporary file renamed into place (another process
// may be loading `so`). Throws kiln::Error with the compiler's output, the
// source kept beside `so` to look at.
void CompileHostModule(const std::string& cxx, const std::string& flags, const std::string& source,
                       const std::string& so) {
  const std::string tmp = so + ".tmp" + std::to_string(::getpid());
  {
    std::ofstream f(tmp + ".cc", std::ios::binary | std::ios::trunc);
    f << source;
    if (!f) Throw("cuda-emu: cannot write " + tmp + ".cc");
  }
  std::string log;
  if (RunCommand("'" + cxx + "' " + flags + " -c -o '" + tmp + ".o' '" + tmp + ".cc' && '" + cxx + "' -shared -o '" +
                     tmp + "' '" + tmp + ".o'",
                 &log) != 0) {
    if (log.size() > 4000) log = log.substr(0, 4000) + "...";
    Throw("cuda-emu: the host compiler could not compile a generated module (source kept in " + tmp + ".cc): " + log);
  }
  std::error_code ec;
  std::filesystem::remove(tmp + ".cc", ec);
  std::filesystem::remove(tmp + ".o", ec);
  std::filesystem::rename(tmp, so, ec);
  if (ec) Throw("cuda-emu: cannot move the compiled module to " + so + ": " + ec.message());
}

}  // namespace

std::vector<std::string> CompileEmulatedModules(const std::vector<std::string>& sources, const std::string& /*arch*/) {
  // The GPU's compiler too, where asked: the host compiler accepts code NVRTC
  // refuses (host library calls, C++ it lacks), and these are the kernels
  // the suites' own graphs generate, beyond cuda_codegen_test's cases.
  for (const std::string& arch : NvrtcCheckArchitectures()) CompileToCubins(sources, arch);
  const std::string source = EmulatorSource(sources);
  const std::string cxx = EmulatorCompiler();
  const std::string flags = EmulatorFlags(cxx);
  const std::string key = ModuleKey(cxx, flags, source);
  std::vector<std::string> images;
  for (size_t i = 0; i < sources.size(); ++i) images.push_back(kImagePrefix + key + ":" + std::to_string(i));
  std::lock_guard lock(ModulesMutex());
  if (Modules().count(key) != 0) return images;
  const std::string cache = KernelCacheDir();
  const bool cached = !cache.empty();  // else the module lives in a temporary folder until it is loaded
  const std::string dir =
      cached ? cache + "/" + kEmulatorSubfolder
             : (std::filesystem::temp_directory_path() / ("kiln-cuda-emu-" + std::to_string(::getpid()))).string();
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  const std::string so = dir + "/" + key + ".so";
  // The module's file is read before it is loaded: its symbol table names
  // the __shared__ variables for the race check.
  std::string elf = ReadCacheEntry(so);  // "" where it is not there
  bool compiled = false;
  const auto compile = [&] {
    CompileHostModule(cxx, flags, source, so);
    compiled = true;
    const uintmax_t size = std::filesystem::file_size(so, ec);
    if (cached && !ec) AddedToCache(cache, so, size);
    elf = ReadCacheEntry(so);
  };
  if (!IsElf(elf)) compile();
  void* handle = dlopen(so.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr && !compiled) {
    // A cached file that does not load (damaged, or removed by another
    // process's trim since it was read) is compiled again, once; a module
    // just compiled that does not load stays on disk to look at.
    compile();
    handle = dlopen(so.c_str(), RTLD_NOW | RTLD_LOCAL);
  }
  const std::string load_error = handle == nullptr ? dlerror() : "";
  HostModule m;
  m.handle = handle;
  if (handle != nullptr) {
    const uintptr_t base = LoadBase(handle);
    WritableRange(base, &m.writable_begin, &m.writable_end);
    m.variables = StaticVariables(elf, base, m.writable_begin, m.writable_end);
  }
  if (!cached) std::filesystem::remove_all(dir, ec);  // the mapping outlives the file
  if (handle == nullptr) Throw("cuda-emu: cannot load " + so + ": " + load_error);
  for (const std::string& s : sources) {
    m.kernels.emplace_back();
    for (const KernelEntry& k : KernelsOf(s)) m.kernels.back().insert(k.name);
  }
  Modules().emplace(key, std::move(m));
  return images;
}

std::string EmulatedModuleFile(const std::vector<std::string>& sources) {
  const std::string cache = KernelCacheDir();
  if (cache.empty()) return "";
  const std::string cxx = EmulatorCompiler();
  const std::string key = ModuleKey(cxx, EmulatorFlags(cxx), EmulatorSource(sources));
  return cache + "/" + kEmulatorSubfolder + "/" + key + ".so";
}

std::vector<std::string> NvrtcCheckArchitectures() {
  const char* env = std::getenv("KILN_CUDA_EMU_NVRTC");
  std::vector<std::string> archs;
  const std::string list = env != nullptr ? env : "";
  if (list.empty()) return archs;
  for (size_t start = 0;;) {
    const size_t comma = std::min(list.find(',', start), list.size());
    const std::string arch = list.substr(start, comma - start);
    // sm_<digits>, with NVRTC's suffixes for architecture- and family-specific features (sm_90a, sm_100f).
    const size_t digits_end = arch.find_first_not_of("0123456789", 3);
    const bool valid = arch.rfind("sm_", 0) == 0 && arch.size() >= 5 && digits_end != 3 &&
                       (digits_end == std::string::npos ||
                        (digits_end + 1 == arch.size() && (arch.back() == 'a' || arch.back() == 'f')));
    if (!valid) {
      Throw("cuda-emu: KILN_CUDA_EMU_NVRTC must list real architectures such as \"sm_80,sm_90\", got \"" + list +
            "\"");
    }
    archs.push_back(arch);
    if (comma == list.size()) return archs;
    start = comma + 1;
  }
}

std::string EmulatorCompiler() {
  const char* cxx = std::getenv("KILN_CUDA_EMULATOR_CXX");
  return cxx != nullptr && *cxx != '\0' ? cxx : KILN_EMULATOR_CXX;
}

bool IsEmulatedImage(const std::string& image) {
  const size_t colon = image.rfind(':');
  if (image.rfind(kImagePrefix, 0) != 0 || colon == std::string::npos || colon < sizeof kImagePrefix) return false;
  const std::string key = image.substr(sizeof kImagePrefix - 1, colon - (sizeof kImagePrefix - 1));
  const size_t index = std::strtoul(image.c_str() + colon + 1, nullptr, 10);
  std::lock_guard lock(ModulesMutex());
  const auto it = Modules().find(key);
  return it != Modules().end() && index < it->second.kernels.size();
}

bool FindEmulatedKernel(const std::string& image, const std::string& name, EmulatedKernel* kernel) {
  if (!IsEmulatedImage(image)) return false;
  const size_t colon = image.rfind(':');
  const std::string key = image.substr(sizeof kImagePrefix - 1, colon - (sizeof kImagePrefix - 1));
  const size_t index = std::strtoul(image.c_str() + colon + 1, nullptr, 10);
  void* handle = nullptr;
  uintptr_t shared_begin = 0, shared_end = 0;
  const std::vector<StaticVariable>* variables = nullptr;  // modules are never unloaded
  {
    std::lock_guard lock(ModulesMutex());
    const HostModule& m = Modules().at(key);
    if (m.kernels[index].count(name) == 0) return false;  // another module's, or none
    handle = m.handle;
    shared_begin = m.writable_begin, shared_end = m.writable_end, variables = &m.variables;
  }
  const auto run = reinterpret_cast<RunFn>(dlsym(handle, ("kemu_run_" + name).c_str()));
  const auto* arity = static_cast<const int*>(dlsym(handle, ("kemu_arity_" + name).c_str()));
  const auto* syncs = static_cast<const bool*>(dlsym(handle, ("kemu_syncs_" + name).c_str()));
  if (run == nullptr || arity == nullptr || syncs == nullptr) return false;
  *kernel = {run,        *syncs,       *arity,   std::hash<std::string>{}(image + ":" + name), name,
             shared_begin, shared_end, variables};
  return true;
}

void RunEmulatedKernel(const EmulatedKernel& k, void** args, unsigned blocks, unsigned threads, bool shuffled,
                       const std::vector<LaunchBuffer>* race_check) {
  static std::mutex mu;
  static FiberLauncher launcher;
  static RaceChecker checker;
  static std::unordered_map<uint64_t, uint64_t> launches;  // by kernel id: how many so far
  std::lock_guard lock(mu);
  const uint64_t launch = launches[k.id]++;
  const uint64_t seed = k.id * 0x9e3779b97f4a7c15ull + launch;
  // A kernel relaunched many times (a loop's body, a training step's) is
  // checked on its first launches and then on one in kRaceCheckEvery: the
  // check costs several times the kernel.
  const bool check = race_check != nullptr && (launch < kRaceCheckFirst || launch % kRaceCheckEvery == 0);
  if (check) checker.BeginLaunch(k.name, k.shared_begin, k.shared_end, k.variables, *race_check);
  launcher.Launch(k.run, k.syncs, args, blocks, threads, shuffled, seed, check ? &checker : nullptr);
  if (check && !checker.Race().empty()) Throw(checker.Race());
}

bool EmulatedRaceCheck() { return EnvSwitch("KILN_CUDA_EMU_RACECHECK", "1", "0"); }

bool EmulatedLaunchesShuffled() { return EnvSwitch("KILN_CUDA_EMU_ORDER", "shuffled", "ascending"); }

}  // namespace kiln::backends::cuda
