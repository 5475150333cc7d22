// Copyright 2026 The Kiln Authors.
// CPU kernel of Fft (see ir::FftAttrs) on FFTW 3, in single and double
// precision.
//
// Plans are made when the executable is compiled (FFTW_ESTIMATE: a heuristic
// plan in microseconds, where FFTW_MEASURE would time candidates for seconds;
// FFTW_UNALIGNED: the plan runs on any buffer), under one lock, since FFTW's
// planner is not thread-safe; running plans on new arrays is. The batch (the
// leading, untransformed axes) is split over the OpenMP threads, one plan per
// chunk size, each transform run by FFTW's own loop over its chunk.
//
// IRFFT over several axes runs as numpy's irfftn does: the inverse complex
// transform over the leading transformed axes, then the complex-to-real one
// over the last axis. (FFTW's multi-dimensional c2r assumes a Hermitian input
// and is unspecified otherwise; gradients and finite differences need the
// function to be defined for every input.)
#include <omp.h>

#include <algorithm>
#include <climits>
#include <complex>
#include <cstring>
#include <functional>
#include <memory>
#include <mutex>
#include <vector>

#include "src/backends/cpu/fftw.h"
#include "src/backends/cpu/fusion.h"
#include "src/backends/cpu/kernels.h"

namespace kiln::backends::cpu {

std::mutex& FftwPlannerLock() {
  static std::mutex lock;
  return lock;
}

namespace {

template <typename R>
using Cx = std::complex<R>;

// A plan shared by the kernel's copies, destroyed under the planner lock.
template <typename R>
using PlanPtr = std::shared_ptr<std::remove_pointer_t<typename Fftw<R>::Plan>>;

template <typename R>
PlanPtr<R> Own(typename Fftw<R>::Plan plan, const ir::Instruction& instr) {
  if (plan == nullptr) Throw("cpu Fft: FFTW could not plan " + instr.shape.ToString() + " (" + instr.location + ")");
  return PlanPtr<R>(plan, [](typename Fftw<R>::Plan p) {
    std::lock_guard<std::mutex> hold(FftwPlannerLock());
    Fftw<R>::kDestroy(p);
  });
}

// Scratch arrays to plan on (FFTW_ESTIMATE never touches them).
template <typename R>
struct PlanningArrays {
  explicit PlanningArrays(size_t bytes)
      : a(Fftw<R>::kMalloc(std::max<size_t>(bytes, 16))), b(Fftw<R>::kMalloc(std::max<size_t>(bytes, 16))) {}
  ~PlanningArrays() {
    Fftw<R>::kFree(a);
    Fftw<R>::kFree(b);
  }
  void* a;
  void* b;
};

constexpr unsigned kFlags = FFTW_ESTIMATE | FFTW_UNALIGNED;

// The geometry of one Fft instruction: `batch` independent transforms of
// in_item (out_item) elements each.
struct Geometry {
  ir::FftType type;
  std::vector<int> lengths;  // the transformed axes, time domain
  int64_t batch = 1;
  int64_t in_item = 1, out_item = 1;
  int64_t total = 1;  // product of lengths (the N of the 1/N factors)
};

Geometry GeometryOf(const ir::Function& fn, const ir::Instruction& instr) {
  const auto& attrs = ir::Attr<ir::FftAttrs>(instr);
  Geometry g;
  g.type = attrs.type;
  const shapes::Shape& in = OperandShape(fn, instr, 0);
  const int rank = static_cast<int>(attrs.lengths.size());
  for (int64_t l : attrs.lengths) {
    if (l > INT_MAX) Throw("cpu Fft: transform length " + std::to_string(l) + " exceeds FFTW's int (" + instr.location + ")");
    g.lengths.push_back(static_cast<int>(l));
    g.total *= l;
  }
  for (int a = 0; a < in.Rank() - rank; ++a) g.batch *= in.Dims()[static_cast<size_t>(a)];
  for (int a = in.Rank() - rank; a < in.Rank(); ++a) g.in_item *= in.Dims()[static_cast<size_t>(a)];
  for (int a = instr.shape.Rank() - rank; a < instr.shape.Rank(); ++a) g.out_item *= instr.shape.Dims()[static_cast<size_t>(a)];
  // FFTW's plans take ints: the points of one transform (its distance to the
  // next) and, per chunk, the count of transforms and of rows of 2 x that.
  if (std::max(g.in_item, g.out_item) > INT_MAX / 2 || g.batch > INT_MAX) {
    Throw("cpu Fft: " + instr.shape.ToString() + " exceeds FFTW's int sizes (at most 2^30 points per transform) (" +
          instr.location + ")");
  }
  return g;
}

// Runs run(first, count, thread) over the batch in chunks of `chunk`, in
// parallel when there is more than one.
template <typename Run>
void ForChunks(int64_t batch, int64_t chunk, Run&& run) {
  const int64_t chunks = (batch + chunk - 1) / chunk;
#pragma omp parallel for if (chunks > 1) schedule(static, 1)
  for (int64_t c = 0; c < chunks; ++c) run(c * chunk, std::min(chunk, batch - c * chunk));
}

// Transforms per chunk: the batch split evenly over the threads when the
// whole job is worth it, else one chunk.
int64_t ChunkOf(const Geometry& g) {
  const int64_t work = g.batch * std::max(g.in_item, g.out_item);
  const int64_t threads = omp_get_max_threads();
  if (g.batch < 2 || threads < 2 || work < kParallelThreshold) return std::max<int64_t>(g.batch, 1);
  return (g.batch + threads - 1) / threads;
}

// Transforms of at least this many points, alone in their batch, run on
// FFTW's own threads (libfftw3_threads, a pthreads pool): one transform
// cannot be split over Kiln's OpenMP threads.
constexpr int64_t kThreadedMinPoints = int64_t{1} << 15;

// The plans for `chunk` transforms and for the last, shorter chunk (the
// same plan when the chunks divide the batch).
template <typename R, typename MakePlan>
std::function<typename Fftw<R>::Plan(int64_t)> PlansFor(const Geometry& g, int64_t chunk, MakePlan&& make,
                                                       const ir::Instruction& instr) {
  const int64_t tail = g.batch % chunk;
  typename Fftw<R>::Plan full = nullptr, last = nullptr;
  {
    std::lock_guard<std::mutex> hold(FftwPlannerLock());
    static const bool threads_ready = Fftw<R>::kInitThreads() != 0;
    const bool threaded = threads_ready && g.batch == 1 && std::max(g.in_item, g.out_item) >= kThreadedMinPoints;
    Fftw<R>::kPlanWithNthreads(threaded ? omp_get_max_threads() : 1);
    full = make(static_cast<int>(chunk));
    last = tail == 0 ? full : make(static_cast<int>(tail));
    if (full == nullptr || last == nullptr) {  // destroyed here: Own's deleter takes the lock
      if (full != nullptr) Fftw<R>::kDestroy(full);
      if (last != nullptr && last != full) Fftw<R>::kDestroy(last);
      full = last = nullptr;
    }
  }
  if (full == nullptr) Throw("cpu Fft: FFTW could not plan " + instr.shape.ToString() + " (" + instr.location + ")");
  PlanPtr<R> full_ptr = Own<R>(full, instr);
  PlanPtr<R> last_ptr = last == full ? full_ptr : Own<R>(last, instr);
  return [full_ptr, last_ptr, chunk](int64_t count) { return count == chunk ? full_ptr.get() : last_ptr.get(); };
}

template <typename R>
void Scale(R* data, int64_t n, R factor) {
  for (int64_t i = 0; i < n; ++i) data[i] *= factor;
}

// FFT and IFFT: complex to complex.
template <typename R>
Kernel ComplexToComplex(const Geometry& g, const ir::Instruction& instr) {
  using F = Fftw<R>;
  const int64_t chunk = ChunkOf(g);
  const int rank = static_cast<int>(g.lengths.size());
  const int item = static_cast<int>(g.in_item);
  const int sign = g.type == ir::FftType::kFft ? FFTW_FORWARD : FFTW_BACKWARD;
  PlanningArrays<R> arrays(static_cast<size_t>(chunk * g.in_item) * sizeof(Cx<R>));
  auto plan = PlansFor<R>(g, chunk, [&](int count) {
    return F::kManyDft(rank, g.lengths.data(), count, static_cast<typename F::Cx*>(arrays.a), nullptr, 1, item,
                       static_cast<typename F::Cx*>(arrays.b), nullptr, 1, item, sign, kFlags);
  }, instr);
  const R scale = g.type == ir::FftType::kIfft ? R(1) / static_cast<R>(g.total) : R(1);
  return [g, chunk, plan, scale](const void* const* in, void* out) {
    auto* x = static_cast<Cx<R>*>(const_cast<void*>(in[0]));  // read only: out of place
    auto* y = static_cast<Cx<R>*>(out);
    ForChunks(g.batch, chunk, [&](int64_t first, int64_t count) {
      auto* src = reinterpret_cast<typename F::Cx*>(x + first * g.in_item);
      auto* dst = reinterpret_cast<typename F::Cx*>(y + first * g.out_item);
      F::kExecDft(plan(count), src, dst);
      if (scale != R(1)) Scale(reinterpret_cast<R*>(dst), 2 * count * g.out_item, scale);
    });
  };
}

// RFFT: real to the half spectrum.
template <typename R>
Kernel RealToComplex(const Geometry& g, const ir::Instruction& instr) {
  using F = Fftw<R>;
  const int64_t chunk = ChunkOf(g);
  const int rank = static_cast<int>(g.lengths.size());
  PlanningArrays<R> arrays(static_cast<size_t>(chunk * std::max(g.in_item, 2 * g.out_item)) * sizeof(R));
  auto plan = PlansFor<R>(g, chunk, [&](int count) {
    return F::kManyR2c(rank, g.lengths.data(), count, static_cast<R*>(arrays.a), nullptr, 1,
                       static_cast<int>(g.in_item), static_cast<typename F::Cx*>(arrays.b), nullptr, 1,
                       static_cast<int>(g.out_item), kFlags);
  }, instr);
  return [g, chunk, plan](const void* const* in, void* out) {
    R* x = static_cast<R*>(const_cast<void*>(in[0]));  // r2c preserves its input
    auto* y = static_cast<Cx<R>*>(out);
    ForChunks(g.batch, chunk, [&](int64_t first, int64_t count) {
      F::kExecR2c(plan(count), x + first * g.in_item, reinterpret_cast<typename F::Cx*>(y + first * g.out_item));
    });
  };
}

// IRFFT: the half spectrum to real. Stage 1 (several axes only): the inverse
// complex transform over the leading transformed axes, into scratch. Stage 2:
// the complex-to-real transform of each last-axis row, which overwrites its
// input (hence the scratch copy even for one axis).
template <typename R>
Kernel ComplexToReal(const Geometry& g, const ir::Instruction& instr) {
  using F = Fftw<R>;
  const int64_t chunk = ChunkOf(g);
  const int rank = static_cast<int>(g.lengths.size());
  const int n = g.lengths.back(), m = n / 2 + 1;
  const int64_t rows = g.in_item / m;  // last-axis rows per transform
  if (chunk * rows > INT_MAX) {
    Throw("cpu Fft: " + instr.shape.ToString() + " has too many rows per thread for FFTW's int (" + instr.location + ")");
  }
  PlanningArrays<R> arrays(static_cast<size_t>(chunk * std::max(2 * g.in_item, g.out_item)) * sizeof(R));
  std::function<typename F::Plan(int64_t)> lead;
  if (rank > 1) {
    // Over the leading axes, for each of the m frequencies of each transform:
    // stride m between elements, m transforms per item, one element apart.
    lead = PlansFor<R>(g, 1, [&](int) {
      return F::kManyDft(rank - 1, g.lengths.data(), m, static_cast<typename F::Cx*>(arrays.a), nullptr, m, 1,
                         static_cast<typename F::Cx*>(arrays.b), nullptr, m, 1, FFTW_BACKWARD, kFlags);
    }, instr);
  }
  auto last = PlansFor<R>(g, chunk, [&](int count) {
    return F::kManyC2r(1, &n, static_cast<int>(count * rows), static_cast<typename F::Cx*>(arrays.a), nullptr, 1, m,
                       static_cast<R*>(arrays.b), nullptr, 1, n, kFlags);
  }, instr);
  const R scale = R(1) / static_cast<R>(g.total);
  return [g, chunk, lead, last, scale](const void* const* in, void* out) {
    const auto* x = static_cast<const Cx<R>*>(in[0]);
    R* y = static_cast<R*>(out);
    ForChunks(g.batch, chunk, [&](int64_t first, int64_t count) {
      // This thread's scratch (shared with the fused kernels, none of which
      // runs inside this one), kept between calls: no allocation per step.
      const size_t items = static_cast<size_t>(count * g.in_item);
      auto* scratch = reinterpret_cast<Cx<R>*>(ThreadScratch(items * sizeof(Cx<R>)));
      if (lead) {
        for (int64_t b = 0; b < count; ++b) {
          auto* src = reinterpret_cast<typename F::Cx*>(const_cast<Cx<R>*>(x + (first + b) * g.in_item));
          F::kExecDft(lead(1), src, reinterpret_cast<typename F::Cx*>(scratch + b * g.in_item));
        }
      } else {
        std::memcpy(scratch, x + first * g.in_item, items * sizeof(Cx<R>));
      }
      R* dst = y + first * g.out_item;
      F::kExecC2r(last(count), reinterpret_cast<typename F::Cx*>(scratch), dst);
      Scale(dst, count * g.out_item, scale);
    });
  };
}

template <typename R>
Kernel FftKernelOf(const Geometry& g, const ir::Instruction& instr) {
  switch (g.type) {
    case ir::FftType::kFft:
    case ir::FftType::kIfft: return ComplexToComplex<R>(g, instr);
    case ir::FftType::kRfft: return RealToComplex<R>(g, instr);
    case ir::FftType::kIrfft: return ComplexToReal<R>(g, instr);
  }
  Throw("cpu Fft: unknown transform type (" + instr.location + ")");
}

Kernel MakeFft(const ir::Function& fn, const ir::Instruction& instr) {
  const Geometry g = GeometryOf(fn, instr);
  const size_t out_bytes = static_cast<size_t>(instr.shape.ByteSize());
  // No element to transform (a zero length or an empty batch): the output is
  // empty, or the zero spectrum of empty rows (RFFT of length 0 keeps 1).
  if (g.batch == 0 || g.total == 0) {
    return [out_bytes](const void* const*, void* out) {
      if (out_bytes > 0) std::memset(out, 0, out_bytes);
    };
  }
  const dtypes::DType real = dtypes::RealPart(OperandShape(fn, instr, 0).DType());
  if (real == dtypes::Float32) return FftKernelOf<float>(g, instr);
  if (real == dtypes::Float64) return FftKernelOf<double>(g, instr);
  Throw("cpu Fft: unsupported operand " + OperandShape(fn, instr, 0).ToString() + " (" + instr.location + ")");
}

}  // namespace

void RegisterFftKernels(KernelTable& table) { table[static_cast<size_t>(ir::OpType::kFft)] = MakeFft; }

}  // namespace kiln::backends::cpu
