// Copyright 2026 The Kiln Authors.
// CPU kernels of the reductions (Reduce*) and ArgMinMax.
//
// A reduction is a RowLoop over the input (array a) and an accumulator of the
// output's shape (array b, stride 0 along reduced axes), simplified so that
// neighbouring reduced or kept axes merge. The input is then read in memory
// order, row by row:
//  - when the innermost axis is reduced, each row is folded into one value
//    with several independent accumulators (the loop vectorizes, and for
//    floats the partial sums also lose less precision); float sums of rows
//    longer than 1024 add blocks of 1024 pairwise;
//  - when it is kept, each row is combined elementwise into a row of the
//    accumulator (again a vectorizable loop over contiguous memory); float
//    sums over more than 64 rows add blocks of 64 rows pairwise.
// Float sums thus have errors growing like log2(n), not sqrt(n) or n
// (docs/numerics.md).
// Float16/BFloat16 accumulate in float32 and signed integer sums/products in
// the unsigned type of the same width, so overflow wraps (two's complement)
// instead of being undefined behaviour.
#include <algorithm>
#include <limits>
#include <memory>
#include <type_traits>

#include "src/backends/cpu/elementwise_math.h"
#include "src/backends/cpu/kernels.h"
#include "src/backends/cpu/layout_util.h"

namespace kiln::backends::cpu {

namespace {

using ir::Attr;
using ir::OpType;

enum class Reduction : uint8_t { kSum, kProduct, kMax, kMin, kAnd, kOr, kXor };

template <typename T>
constexpr bool kIsHalf = std::is_same_v<T, float16> || std::is_same_v<T, bfloat16>;

// The type a reduction accumulates T in (see the file comment).
template <Reduction R, typename T>
using AccOf = std::conditional_t<
    kIsHalf<T>, float,
    std::conditional_t<(R == Reduction::kSum || R == Reduction::kProduct) && std::is_integral_v<T> &&
                           std::is_signed_v<T>,
                       std::make_unsigned_t<std::conditional_t<std::is_integral_v<T> && !std::is_same_v<T, bool>, T, int>>, T>>;

// Identity and combination of each reduction over accumulator type A.
template <Reduction R, typename A>
struct Reducer {
  static A Identity() {
    if constexpr (R == Reduction::kProduct) {
      return A(1);
    } else if constexpr (R == Reduction::kAnd) {
      if constexpr (std::is_same_v<A, bool>) return true;
      else return static_cast<A>(~A(0));
    } else if constexpr (R == Reduction::kMax) {
      if constexpr (std::is_floating_point_v<A>) return -std::numeric_limits<A>::infinity();
      else return std::numeric_limits<A>::lowest();
    } else if constexpr (R == Reduction::kMin) {
      if constexpr (std::is_floating_point_v<A>) return std::numeric_limits<A>::infinity();
      else return std::numeric_limits<A>::max();
    } else {
      return A(0);  // kSum, kOr, kXor
    }
  }

  static A Apply(A a, A b) {
    if constexpr (R == Reduction::kSum) {
      return static_cast<A>(a + b);
    } else if constexpr (R == Reduction::kProduct) {
      // Narrow unsigned types promote to int, whose product may overflow.
      if constexpr (std::is_integral_v<A> && sizeof(A) < 4) return static_cast<A>(uint32_t{a} * uint32_t{b});
      else return static_cast<A>(a * b);
    } else if constexpr (R == Reduction::kMax || R == Reduction::kMin) {
      const bool a_wins = R == Reduction::kMax ? a > b : a < b;
      if constexpr (std::is_floating_point_v<A>) return (a_wins || a != a) ? a : b;  // NaN propagates
      else return a_wins ? a : b;
    } else if constexpr (R == Reduction::kAnd) {
      return static_cast<A>(a & b);
    } else if constexpr (R == Reduction::kOr) {
      return static_cast<A>(a | b);
    } else {
      return static_cast<A>(a ^ b);
    }
  }
};

template <typename A, typename T>
A ToAcc(T x) {
  return static_cast<A>(x);
}

template <typename T, typename A>
T FromAcc(A a) {
  if constexpr (kIsHalf<T>) return T(a);
  else return static_cast<T>(a);
}

constexpr int kLanes = 16;

// Float max/min of a contiguous row. A NaN test inside the max loop keeps GCC
// from vectorizing it, so each L1-sized block is first scanned for NaN (a
// vectorized count) and then folded with plain compare-selects (which drop
// NaNs, but there are none left by then). A NaN ends the scan early.
template <Reduction R, typename T, typename A>
A ReduceRowMinMax(const T* x, int64_t n) {
  constexpr int64_t kBlock = 1024;
  A lanes[kLanes];
  for (A& l : lanes) l = Reducer<R, A>::Identity();
  for (int64_t b0 = 0; b0 < n; b0 += kBlock) {
    const int64_t b1 = std::min(n, b0 + kBlock);
    int nans = 0;
    for (int64_t i = b0; i < b1; ++i) nans += ToAcc<A>(x[i]) != ToAcc<A>(x[i]);
    if (nans > 0) return std::numeric_limits<A>::quiet_NaN();
    int64_t i = b0;
    for (; i + kLanes <= b1; i += kLanes) {
      for (int j = 0; j < kLanes; ++j) {
        const A v = ToAcc<A>(x[i + j]);
        lanes[j] = (R == Reduction::kMax ? v > lanes[j] : v < lanes[j]) ? v : lanes[j];
      }
    }
    for (; i < b1; ++i) lanes[0] = Reducer<R, A>::Apply(lanes[0], ToAcc<A>(x[i]));
  }
  A r = lanes[0];
  for (A l : lanes) r = Reducer<R, A>::Apply(r, l);
  return r;
}

// Float sums of a contiguous row longer than kSumLeaf: blocks of kSumLeaf
// elements are each summed by kSumAcc accumulators (four independent
// vectors), and the blocks' accumulators are added pairwise; one fold at the
// end. A sequential sum loses the terms below half an ulp of the running
// sum: a softmax denominator over 32000 exps of [-16, 0] came out 27u low in
// float32 with 16 sequential lanes, against about 1u this way. n is a
// multiple of kSumAcc.
constexpr int64_t kSumLeaf = 1024;
constexpr int kSumAcc = 4 * kLanes;
template <typename T, typename A>
void RowSumPairwise(const T* x, int64_t n, A* out) {
  if (n <= kSumLeaf) {
    A acc[kSumAcc] = {};
    for (int64_t i = 0; i < n; i += kSumAcc) {
      for (int j = 0; j < kSumAcc; ++j) acc[j] += ToAcc<A>(x[i + j]);
    }
    for (int j = 0; j < kSumAcc; ++j) out[j] = acc[j];
    return;
  }
  const int64_t half = (n / 2 + kSumLeaf - 1) / kSumLeaf * kSumLeaf;
  A left[kSumAcc], right[kSumAcc];
  RowSumPairwise(x, half, left);
  RowSumPairwise(x + half, n - half, right);
  for (int j = 0; j < kSumAcc; ++j) out[j] = left[j] + right[j];
}

// Folds a contiguous row into one value. kLanes independent accumulators let
// GCC vectorize the loop (floats are not reassociated otherwise).
template <Reduction R, typename T, typename A>
A ReduceRow(const T* x, int64_t n) {
  if constexpr (R == Reduction::kSum && std::is_floating_point_v<A>) {
    if (n > kSumLeaf) {
      const int64_t body = n / kSumAcc * kSumAcc;
      A acc[kSumAcc];
      RowSumPairwise(x, body, acc);
      for (int width = kSumAcc / 2; width >= 1; width /= 2) {
        for (int j = 0; j < width; ++j) acc[j] += acc[j + width];
      }
      A r = acc[0];
      for (int64_t i = body; i < n; ++i) r += ToAcc<A>(x[i]);
      return r;
    }
  }
  if constexpr (R == Reduction::kMax || R == Reduction::kMin) {
    constexpr bool kIsMin = R == Reduction::kMin;
    if constexpr (std::is_same_v<T, float> && std::is_same_v<A, float>) return RowExtremumF32(x, n, kIsMin);
    if constexpr (std::is_same_v<T, double> && std::is_same_v<A, double>) return RowExtremumF64(x, n, kIsMin);
  }
  if constexpr (std::is_floating_point_v<A> && (R == Reduction::kMax || R == Reduction::kMin)) {
    return ReduceRowMinMax<R, T, A>(x, n);
  }
  using Op = Reducer<R, A>;
  A lanes[kLanes];
  for (A& l : lanes) l = Op::Identity();
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    for (int j = 0; j < kLanes; ++j) lanes[j] = Op::Apply(lanes[j], ToAcc<A>(x[i + j]));
  }
  A r = Op::Identity();
  for (A l : lanes) r = Op::Apply(r, l);
  for (; i < n; ++i) r = Op::Apply(r, ToAcc<A>(x[i]));
  return r;
}

// acc[i] = acc[i] (op) x[i] for a contiguous row.
template <Reduction R, typename T, typename A>
void AccumulateRow(A* acc, const T* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) acc[i] = Reducer<R, A>::Apply(acc[i], ToAcc<A>(x[i]));
}

// `loop` with axis k restricted to [lo, hi); the offsets of the new origin in
// a and b are returned through a_off and b_off.
RowLoop Restrict(RowLoop loop, int k, int64_t lo, int64_t hi, int64_t& a_off, int64_t& b_off) {
  a_off = lo * loop.a_strides[k];
  b_off = lo * loop.b_strides[k];
  loop.dims[k] = hi - lo;
  return loop;
}

// How a large reduction is split across threads (chosen at compile time).
enum class Split : uint8_t {
  kNone,     // small: one thread
  kPartial,  // axis 0 is reduced and the output small: per-chunk accumulators, combined in order
  kKept,     // axis 0 is kept: chunks of it own disjoint outputs
  kColumns,  // [reduced, kept] with a wide kept axis: chunks of columns
};

// Work is split in this many chunks. It is fixed (not the thread count) so
// results do not depend on the machine.
constexpr int64_t kChunks = 32;

Split ChooseSplit(const RowLoop& loop, int64_t n_in, int64_t n_out) {
  if (n_in <= kParallelThreshold) return Split::kNone;
  if (loop.b_strides[0] == 0) {
    if (n_out * kChunks <= n_in / 8 && loop.dims[0] >= 2) return Split::kPartial;
    if (loop.Rank() == 2 && loop.dims[1] >= 2 * kChunks) return Split::kColumns;
    return Split::kNone;  // rare shapes (e.g. [big reduced, small kept, reduced]): not worth a strategy
  }
  return loop.dims[0] >= 2 ? Split::kKept : Split::kNone;
}

// Moves the first kept axis that is not innermost to the front when axis 0 is
// reduced but the output is too large for per-chunk accumulators: iteration
// order does not change results along reduced axes.
RowLoop KeptAxisFirst(const RowLoop& loop, int64_t n_in, int64_t n_out) {
  if (loop.b_strides[0] != 0 || n_out * kChunks <= n_in / 8) return loop;
  for (int k = 1; k + 1 < loop.Rank(); ++k) {
    if (loop.b_strides[k] == 0) continue;
    RowLoop out = loop;
    for (auto* v : {&out.dims, &out.a_strides, &out.b_strides}) std::rotate(v->begin(), v->begin() + k, v->begin() + k + 1);
    return out;
  }
  return loop;
}

template <Reduction R, typename T>
class ReduceKernel {
 public:
  using A = AccOf<R, T>;
  using Op = Reducer<R, A>;
  // The accumulator can live in the output buffer when it has T's size.
  static constexpr bool kAccInOutput = sizeof(A) == sizeof(T) && !kIsHalf<T>;

  ReduceKernel(RowLoop loop, int64_t n_in, int64_t n_out)
      : loop_(std::move(loop)), n_in_(n_in), n_out_(n_out), split_(ChooseSplit(loop_, n_in, n_out)) {}

  void operator()(const void* const* inputs, void* output) const {
    const T* x = static_cast<const T*>(inputs[0]);
    std::unique_ptr<A[]> temp;
    A* acc;
    if constexpr (kAccInOutput) {
      acc = reinterpret_cast<A*>(output);
    } else {
      temp = std::make_unique_for_overwrite<A[]>(static_cast<size_t>(n_out_));
      acc = temp.get();
    }
    Fill(acc, n_out_);
    if (n_in_ > 0) Reduce(x, acc);
    if constexpr (!kAccInOutput) {
      T* out = static_cast<T*>(output);
#pragma omp parallel for simd if (n_out_ > kParallelThreshold)
      for (int64_t i = 0; i < n_out_; ++i) out[i] = FromAcc<T>(acc[i]);
    }
  }

 private:
  static void Fill(A* acc, int64_t n) {
    const A id = Op::Identity();
    for (int64_t i = 0; i < n; ++i) acc[i] = id;
  }

  // Accumulates the rows of `loop` (input from x, accumulator at acc).
  static void Accumulate(const RowLoop& loop, const T* x, A* acc) {
    const int inner = loop.Rank() - 1;
    if (loop.b_strides[inner] == 0) {
      ForEachRow(loop, 0, loop.NumRows(), [&](int64_t a, int64_t b, int64_t n) {
        acc[b] = Op::Apply(acc[b], ReduceRow<R, T, A>(x + a, n));
      });
      return;
    }
    if constexpr (R == Reduction::kSum && std::is_floating_point_v<A>) {
      if (loop.b_strides[0] == 0 && loop.dims[0] > kSumBlock) {
        int64_t extent = 1;  // the accumulator elements the loop touches
        for (int k = 0; k < loop.Rank(); ++k) extent += (loop.dims[k] - 1) * loop.b_strides[k];
        SumColumnsPairwise(loop, x, acc, extent);
        return;
      }
    }
    ForEachRow(loop, 0, loop.NumRows(),
               [&](int64_t a, int64_t b, int64_t n) { AccumulateRow<R, T, A>(acc + b, x + a, n); });
  }

  // A float sum whose outer axis 0 is reduced while the innermost is kept
  // (columns: a bias gradient, softmax over a leading axis). Adding the rows
  // one after the other into the accumulator would give each output a
  // sequential sum, whose rounding error grows like sqrt(n) (n the length of
  // axis 0; 67u normwise for softmax over 4096 rows): instead the rows are
  // summed pairwise, halving axis 0 down to blocks of kSumBlock rows summed
  // sequentially, so the error grows like sqrt(kSumBlock) + log2(n / kSumBlock).
  // The extra traffic is one accumulator-sized buffer per block.
  static constexpr int64_t kSumBlock = 64;
  static void SumColumnsPairwise(const RowLoop& loop, const T* x, A* acc, int64_t extent) {
    const int64_t d = loop.dims[0];
    if (d <= kSumBlock) {
      ForEachRow(loop, 0, loop.NumRows(),
                 [&](int64_t a, int64_t b, int64_t n) { AccumulateRow<R, T, A>(acc + b, x + a, n); });
      return;
    }
    const int64_t mid = (d / 2 + kSumBlock - 1) / kSumBlock * kSumBlock;
    int64_t a_off, b_off;  // b_off is 0: axis 0 is reduced
    const RowLoop left = Restrict(loop, 0, 0, mid, a_off, b_off);
    SumColumnsPairwise(left, x + a_off, acc, extent);
    const RowLoop right_loop = Restrict(loop, 0, mid, d, a_off, b_off);
    auto right = std::make_unique<A[]>(static_cast<size_t>(extent));  // zeros
    SumColumnsPairwise(right_loop, x + a_off, right.get(), extent);
    for (int64_t i = 0; i < extent; ++i) acc[i] += right[i];
  }

  void Reduce(const T* x, A* acc) const {
    switch (split_) {
      case Split::kNone: Accumulate(loop_, x, acc); return;
      case Split::kPartial: ReducePartials(x, acc); return;
      case Split::kKept: ReduceChunks(0, x, acc); return;
      case Split::kColumns: ReduceChunks(1, x, acc); return;
    }
  }

  // Chunks of axis k, each writing its own part of the output.
  void ReduceChunks(int k, const T* x, A* acc) const {
    const int64_t d = loop_.dims[k], chunks = std::min(kChunks, d);
#pragma omp parallel for schedule(static)
    for (int64_t c = 0; c < chunks; ++c) {
      int64_t a_off, b_off;
      RowLoop part = Restrict(loop_, k, d * c / chunks, d * (c + 1) / chunks, a_off, b_off);
      Accumulate(part, x + a_off, acc + b_off);
    }
  }

  // Chunks of the reduced axis 0, each into its own accumulator; then the
  // chunk results are combined in chunk order.
  void ReducePartials(const T* x, A* acc) const {
    const int64_t d = loop_.dims[0], chunks = std::min(kChunks, d);
    // Not std::vector: vector<bool> has no data().
    auto partial = std::make_unique_for_overwrite<A[]>(static_cast<size_t>(chunks * n_out_));
#pragma omp parallel for schedule(static)
    for (int64_t c = 0; c < chunks; ++c) {
      A* p = partial.get() + c * n_out_;
      Fill(p, n_out_);
      int64_t a_off, b_off;
      RowLoop part = Restrict(loop_, 0, d * c / chunks, d * (c + 1) / chunks, a_off, b_off);
      Accumulate(part, x + a_off, p + b_off);
    }
    for (int64_t c = 0; c < chunks; ++c) {
      const A* p = partial.get() + c * n_out_;
      for (int64_t i = 0; i < n_out_; ++i) acc[i] = Op::Apply(acc[i], p[i]);
    }
  }

  RowLoop loop_;
  int64_t n_in_, n_out_;
  Split split_;
};

// The simplified loop of a reduction of `x` over sorted `axes`.
RowLoop ReduceLoop(const shapes::Shape& x, const std::vector<int64_t>& axes) {
  RowLoop loop{x.Dims(), RowMajorStrides(x.Dims()), std::vector<int64_t>(x.Dims().size(), 0)};
  int64_t stride = 1;
  for (int k = x.Rank() - 1; k >= 0; --k) {
    if (std::binary_search(axes.begin(), axes.end(), k)) continue;
    loop.b_strides[k] = stride;
    stride *= x.Dims()[k];
  }
  return Simplify(loop);
}

Reduction ReductionOf(OpType op) {
  switch (op) {
    case OpType::kReduceSum: return Reduction::kSum;
    case OpType::kReduceProduct: return Reduction::kProduct;
    case OpType::kReduceMax: return Reduction::kMax;
    case OpType::kReduceMin: return Reduction::kMin;
    case OpType::kReduceLogicalAnd:
    case OpType::kReduceBitwiseAnd: return Reduction::kAnd;
    case OpType::kReduceLogicalOr:
    case OpType::kReduceBitwiseOr: return Reduction::kOr;
    default: return Reduction::kXor;
  }
}

// Whether reduction R is defined for T: arithmetic ones for numbers (sums
// and products only for complex numbers, which have no order), logical ones
// for Bool, bitwise ones for integers.
template <Reduction R, typename T>
constexpr bool Supports(bool logical) {
  constexpr bool is_bool = std::is_same_v<T, bool>;
  if constexpr (std::is_same_v<T, dtypes::complex64> || std::is_same_v<T, dtypes::complex128>) {
    return !logical && (R == Reduction::kSum || R == Reduction::kProduct);
  } else if constexpr (R == Reduction::kSum || R == Reduction::kProduct || R == Reduction::kMax || R == Reduction::kMin) {
    return !is_bool;
  } else {
    return logical ? is_bool : (std::is_integral_v<T> && !is_bool);
  }
}

template <Reduction R>
Kernel MakeReduceOf(const ir::Instruction& instr, const shapes::Shape& x, RowLoop loop) {
  const bool logical = instr.op == OpType::kReduceLogicalAnd || instr.op == OpType::kReduceLogicalOr ||
                       instr.op == OpType::kReduceLogicalXor;
  return DispatchDTypeWithComplex(x.DType(), [&](auto zero) -> Kernel {
    using T = decltype(zero);
    if constexpr (Supports<R, T>(true) || Supports<R, T>(false)) {
      if (Supports<R, T>(logical)) return ReduceKernel<R, T>(std::move(loop), x.Size(), instr.shape.Size());
    }
    Throw("cpu " + std::string(ir::OpName(instr.op)) + ": unsupported dtype " + dtypes::Name(x.DType()) + " (" +
          instr.location + ")");
  });
}

Kernel MakeReduce(const ir::Function& fn, const ir::Instruction& instr) {
  const shapes::Shape& x = OperandShape(fn, instr, 0);
  RowLoop loop = ReduceLoop(x, Attr<ir::AxesAttrs>(instr).axes);
  loop = KeptAxisFirst(loop, x.Size(), instr.shape.Size());
  switch (ReductionOf(instr.op)) {
    case Reduction::kSum: return MakeReduceOf<Reduction::kSum>(instr, x, loop);
    case Reduction::kProduct: return MakeReduceOf<Reduction::kProduct>(instr, x, loop);
    case Reduction::kMax: return MakeReduceOf<Reduction::kMax>(instr, x, loop);
    case Reduction::kMin: return MakeReduceOf<Reduction::kMin>(instr, x, loop);
    case Reduction::kAnd: return MakeReduceOf<Reduction::kAnd>(instr, x, loop);
    case Reduction::kOr: return MakeReduceOf<Reduction::kOr>(instr, x, loop);
    case Reduction::kXor: return MakeReduceOf<Reduction::kXor>(instr, x, loop);
  }
  Throw("cpu: unknown reduction");
}

// ----------------------------------------------------------------- ArgMinMax.

// Whether v replaces the current best b: strictly better (so ties keep the
// first index), or the first NaN (a NaN counts as both the max and the min,
// and once found is never replaced), as JAX does.
template <bool kIsMin, typename A>
inline bool Better(A v, A b) {
  if constexpr (std::is_floating_point_v<A>) {
    return (kIsMin ? v < b : v > b) || (v != v && b == b);
  } else {
    return kIsMin ? v < b : v > b;
  }
}

// ArgMinMax over the middle axis of an [outer, d, inner] view of x; indices
// are computed as int64 and converted to the output dtype at the end.
template <bool kIsMin, typename T>
class ArgMinMaxKernel {
 public:
  using A = std::conditional_t<kIsHalf<T>, float, T>;

  ArgMinMaxKernel(int64_t outer, int64_t d, int64_t inner, dtypes::DType index_dtype)
      : outer_(outer), d_(d), inner_(inner), index_dtype_(index_dtype) {}

  void operator()(const void* const* inputs, void* output) const {
    const T* x = static_cast<const T*>(inputs[0]);
    const int64_t n_out = outer_ * inner_;
    std::vector<int64_t> temp;
    int64_t* idx = static_cast<int64_t*>(output);
    if (index_dtype_ != dtypes::Int64) {
      temp.resize(static_cast<size_t>(n_out));
      idx = temp.data();
    }
#pragma omp parallel for schedule(static) if (n_out * d_ > kParallelThreshold && outer_ > 1)
    for (int64_t o = 0; o < outer_; ++o) {
      const T* slab = x + o * d_ * inner_;
      if (inner_ == 1) idx[o] = ScanRow(slab);
      else ScanSlab(slab, idx + o * inner_);
    }
    if (index_dtype_ != dtypes::Int64) StoreIndices(idx, n_out, output);
  }

 private:
  // One contiguous row of d elements: the (vectorized) max/min first, then
  // the first element equal to it, or the first NaN when it is NaN.
  int64_t ScanRow(const T* row) const {
    constexpr Reduction kR = kIsMin ? Reduction::kMin : Reduction::kMax;
    const A best = ReduceRow<kR, T, A>(row, d_);
    if constexpr (std::is_floating_point_v<A>) {
      if (best != best) {
        for (int64_t i = 0; i < d_; ++i) {
          if (ToAcc<A>(row[i]) != ToAcc<A>(row[i])) return i;
        }
      }
    }
    for (int64_t i = 0; i < d_; ++i) {
      if (ToAcc<A>(row[i]) == best) return i;
    }
    return 0;  // not reached: best is one of the elements
  }

  // A [d, inner] slab: rows are compared elementwise against the running
  // best row, so memory is read sequentially.
  void ScanSlab(const T* slab, int64_t* idx) const {
    std::vector<A> best(static_cast<size_t>(inner_));
    for (int64_t j = 0; j < inner_; ++j) {
      best[j] = static_cast<A>(slab[j]);
      idx[j] = 0;
    }
    for (int64_t i = 1; i < d_; ++i) {
      const T* row = slab + i * inner_;
      for (int64_t j = 0; j < inner_; ++j) {
        const A v = static_cast<A>(row[j]);
        const bool better = Better<kIsMin>(v, best[j]);
        best[j] = better ? v : best[j];
        idx[j] = better ? i : idx[j];
      }
    }
  }

  void StoreIndices(const int64_t* idx, int64_t n, void* output) const {
    DispatchDType(index_dtype_, [&](auto zero) {
      using I = decltype(zero);
      if constexpr (std::is_integral_v<I> && !std::is_same_v<I, bool>) {
        I* out = static_cast<I*>(output);
        for (int64_t i = 0; i < n; ++i) out[i] = static_cast<I>(idx[i]);
      }
    });
  }

  int64_t outer_, d_, inner_;
  dtypes::DType index_dtype_;
};

Kernel MakeArgMinMax(const ir::Function& fn, const ir::Instruction& instr) {
  const shapes::Shape& x = OperandShape(fn, instr, 0);
  const auto& attrs = Attr<ir::ArgMinMaxAttrs>(instr);
  const dtypes::DType index_dtype = instr.shape.DType();
  if (!dtypes::IsInteger(index_dtype) || x.Dims().at(attrs.axis) == 0) {
    Throw("cpu ArgMinMax: needs an integer index dtype and a non-empty axis (" + instr.location + ")");
  }
  int64_t outer = 1, inner = 1;
  for (int64_t i = 0; i < attrs.axis; ++i) outer *= x.Dims()[i];
  for (int i = static_cast<int>(attrs.axis) + 1; i < x.Rank(); ++i) inner *= x.Dims()[i];
  const int64_t d = x.Dims()[attrs.axis];
  return DispatchDType(x.DType(), [&](auto zero) -> Kernel {
    using T = decltype(zero);
    if constexpr (std::is_same_v<T, bool>) {
      Throw("cpu ArgMinMax: Bool is not a numeric dtype (" + instr.location + ")");
    } else {
      if (attrs.is_min) return ArgMinMaxKernel<true, T>(outer, d, inner, index_dtype);
      return ArgMinMaxKernel<false, T>(outer, d, inner, index_dtype);
    }
  });
}

// One output element of a last-axis reduction: what ReduceKernel::Accumulate
// does for a row (Apply to the identity, then the conversion to T).
template <Reduction R, typename T>
void ReduceOneRow(const void* row, int64_t n, void* out) {
  using A = AccOf<R, T>;
  const A acc = Reducer<R, A>::Apply(Reducer<R, A>::Identity(), ReduceRow<R, T, A>(static_cast<const T*>(row), n));
  *static_cast<T*>(out) = FromAcc<T>(acc);
}

template <Reduction R>
RowReduceFn RowReducerOf(dtypes::DType dtype) {
  if (dtype == dtypes::Float32) return &ReduceOneRow<R, float>;
  if (dtype == dtypes::Float64) return &ReduceOneRow<R, double>;
  return nullptr;
}

}  // namespace

RowReduceFn LastAxisRowReducer(const ir::Function& fn, const ir::Instruction& reduce) {
  if (reduce.op != OpType::kReduceSum && reduce.op != OpType::kReduceMax && reduce.op != OpType::kReduceMin) {
    return nullptr;
  }
  const shapes::Shape& x = OperandShape(fn, reduce, 0);
  const auto& axes = Attr<ir::AxesAttrs>(reduce).axes;
  if (x.Rank() < 2 || axes != std::vector<int64_t>{x.Rank() - 1} || x.Size() == 0) return nullptr;
  RowLoop loop = ReduceLoop(x, axes);
  loop = KeptAxisFirst(loop, x.Size(), reduce.shape.Size());
  // Rows of the loop must be the rows of x: [kept, reduced], contiguous.
  if (loop.Rank() != 2 || loop.dims[1] != x.Dims().back() || loop.a_strides[1] != 1 || loop.b_strides[1] != 0) {
    return nullptr;
  }
  const Split split = ChooseSplit(loop, x.Size(), reduce.shape.Size());
  if (split != Split::kNone && split != Split::kKept) return nullptr;
  switch (ReductionOf(reduce.op)) {
    case Reduction::kSum: return RowReducerOf<Reduction::kSum>(x.DType());
    case Reduction::kMax: return RowReducerOf<Reduction::kMax>(x.DType());
    case Reduction::kMin: return RowReducerOf<Reduction::kMin>(x.DType());
    default: return nullptr;
  }
}

void RegisterReduceKernels(KernelTable& table) {
  for (OpType op : {OpType::kReduceSum, OpType::kReduceProduct, OpType::kReduceMax, OpType::kReduceMin,
                    OpType::kReduceLogicalAnd, OpType::kReduceLogicalOr, OpType::kReduceLogicalXor,
                    OpType::kReduceBitwiseAnd, OpType::kReduceBitwiseOr, OpType::kReduceBitwiseXor}) {
    table[static_cast<size_t>(op)] = MakeReduce;
  }
  table[static_cast<size_t>(OpType::kArgMinMax)] = MakeArgMinMax;
}

}  // namespace kiln::backends::cpu
