// Copyright 2026 The Kiln Authors.
// CPU kernels of Gather and Scatter{Sum,Max,Min,Update} (StableHLO semantics,
// checked by the graph layer in src/graph/ops_gather.cc).
//
// Both kernels work in two passes. The first pass (specialized on the index
// dtype) reads every index vector once and turns it into offsets: the
// operand offset of each gathered slice, or the per-axis start of each
// scatter window. The second pass (specialized on the element size or type)
// moves the data along axes that the factory simplified at compile time:
// size-1 axes are dropped and axes contiguous in both tensors are merged, so
// the common embedding lookup (operand [V, D], indices [N] or [N, 1]) becomes
// one memcpy per row, and its gradient (ScatterSum of rows) one vectorized
// row addition per index.
#include <omp.h>

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <memory>
#include <type_traits>
#include <utility>
#include <vector>

#include "src/backends/cpu/kernels.h"

namespace kiln::backends::cpu {

namespace {

// ------------------------------------------------------------- Shared parts.

// One axis of a two-tensor iteration: `size` positions, each advancing the
// offsets (in elements) into tensors "a" and "b" by their strides.
struct Axis {
  int64_t size = 1;
  int64_t stride_a = 0;
  int64_t stride_b = 0;
};

// Drops size-1 axes and merges neighbours that are contiguous in both
// tensors, which leaves the fewest and longest loops.
std::vector<Axis> Simplify(const std::vector<Axis>& axes) {
  std::vector<Axis> out;
  for (const Axis& ax : axes) {
    if (ax.size == 1) continue;
    if (!out.empty() && out.back().stride_a == ax.size * ax.stride_a && out.back().stride_b == ax.size * ax.stride_b) {
      out.back().size *= ax.size;
      out.back().stride_a = ax.stride_a;
      out.back().stride_b = ax.stride_b;
    } else {
      out.push_back(ax);
    }
  }
  return out;
}

int64_t Product(const std::vector<Axis>& axes) {
  int64_t n = 1;
  for (const Axis& ax : axes) n *= ax.size;
  return n;
}

// The offsets into "a" and "b" of position `p` (row-major) of `axes`.
inline std::pair<int64_t, int64_t> OffsetsAt(const std::vector<Axis>& axes, int64_t p) {
  int64_t a = 0, b = 0;
  for (size_t i = axes.size(); i-- > 0;) {
    const int64_t q = p / axes[i].size;
    const int64_t r = p - q * axes[i].size;
    a += r * axes[i].stride_a;
    b += r * axes[i].stride_b;
    p = q;
  }
  return {a, b};
}

// The axes of a tensor of `rank` other than `skip` (pass rank to skip none).
std::vector<int> AxesExcept(int rank, int64_t skip) {
  std::vector<int> axes;
  for (int d = 0; d < rank; ++d) {
    if (d != skip) axes.push_back(d);
  }
  return axes;
}

// The axes of a tensor of `rank` not listed in the sorted `listed`.
std::vector<int> AxesNotIn(int rank, const std::vector<int64_t>& listed) {
  std::vector<int> axes;
  for (int d = 0; d < rank; ++d) {
    if (!std::binary_search(listed.begin(), listed.end(), d)) axes.push_back(d);
  }
  return axes;
}

// Calls fn(I{}) with I the C++ type of the integer index dtype.
template <typename Fn>
decltype(auto) DispatchIndex(dtypes::DType dtype, const char* op, Fn&& fn) {
  if (!dtypes::IsInteger(dtype)) Throw(std::string("cpu ") + op + ": indices must be integers");
  return DispatchDType(dtype, [&](auto zero) {
    using I = decltype(zero);
    if constexpr (std::is_integral_v<I> && !std::is_same_v<I, bool>) fn(I{});
  });
}

// `v` clamped to [lo, hi] (requires lo <= hi and hi >= 0), exact for every
// index type, including Uint64 values above INT64_MAX.
template <typename I>
inline int64_t ClampIndex(I v, int64_t lo, int64_t hi) {
  if constexpr (std::is_unsigned_v<I>) {
    if (static_cast<uint64_t>(v) > static_cast<uint64_t>(hi)) return hi;
    return std::max(lo, static_cast<int64_t>(v));
  } else {
    const auto x = static_cast<int64_t>(v);
    return x < lo ? lo : (x > hi ? hi : x);
  }
}

// Where the index vectors are: one per position of `batch` (whose stride_a
// is the offset into the indices), `components` values `vector_stride` apart.
struct IndexLayout {
  std::vector<Axis> batch;  // a: indices, b: output (Gather) or updates (Scatter)
  int64_t count = 0;        // number of index vectors
  int64_t components = 0;
  int64_t vector_stride = 0;
};

// The batch axes: indices axes other than index_vector_dim, paired in order
// with `other_axes` of the other tensor (of `other_dims`).
IndexLayout MakeIndexLayout(const shapes::Shape& indices, int64_t index_vector_dim, const std::vector<int>& other_axes,
                            const std::vector<int64_t>& other_dims) {
  IndexLayout layout;
  const std::vector<int64_t> index_strides = shapes::Strides(indices.Dims());
  const std::vector<int64_t> other_strides = shapes::Strides(other_dims);
  const std::vector<int> batch_axes = AxesExcept(indices.Rank(), index_vector_dim);
  std::vector<Axis> batch;
  layout.count = 1;
  for (size_t i = 0; i < batch_axes.size(); ++i) {
    const int d = batch_axes[i];
    batch.push_back({indices.Dims()[d], index_strides[d], other_strides[other_axes[i]]});
    layout.count *= indices.Dims()[d];
  }
  layout.batch = Simplify(batch);
  const bool has_vector = index_vector_dim < indices.Rank();
  layout.components = has_vector ? indices.Dims()[index_vector_dim] : 1;
  layout.vector_stride = has_vector ? index_strides[index_vector_dim] : 0;
  return layout;
}

// Parallel loops over `n` items of `work_per_item` elements each run serially
// below the threshold.
inline bool Parallel(int64_t n, int64_t work_per_item) { return n > 1 && n * work_per_item > kParallelThreshold; }

// --------------------------------------------------------------- Gather.

struct GatherPlan {
  IndexLayout index;
  // Per index vector component: the operand axis's largest valid start
  // (dim - slice size) and its stride; starts are clamped to [0, max].
  std::vector<int64_t> max_start, start_stride;
  // The slice: outer axes walked by position, then one innermost run.
  // a: operand, b: output.
  std::vector<Axis> outer;
  Axis inner;
  int64_t outer_count = 1;
  size_t element_size = 0;
};

// Pass 1: offsets[2b] = operand offset of slice b, offsets[2b+1] = its output offset.
template <typename I>
void GatherOffsets(const GatherPlan& p, const I* indices, int64_t* offsets) {
  const IndexLayout& ix = p.index;
#pragma omp parallel for if (Parallel(ix.count, ix.components + 1))
  for (int64_t b = 0; b < ix.count; ++b) {
    const auto [index_offset, output_offset] = OffsetsAt(ix.batch, b);
    int64_t src = 0;
    for (int64_t k = 0; k < ix.components; ++k) {
      const I v = indices[index_offset + k * ix.vector_stride];
      src += ClampIndex(v, 0, p.max_start[k]) * p.start_stride[k];
    }
    offsets[2 * b] = src;
    offsets[2 * b + 1] = output_offset;
  }
}

// Copies `n` elements of kSize bytes with strides (in elements).
template <size_t kSize>
inline void CopyRun(const std::byte* src, int64_t src_stride, std::byte* dst, int64_t dst_stride, int64_t n) {
  if (src_stride == 1 && dst_stride == 1) {
    std::memcpy(dst, src, static_cast<size_t>(n) * kSize);
    return;
  }
  for (int64_t i = 0; i < n; ++i) std::memcpy(dst + i * dst_stride * kSize, src + i * src_stride * kSize, kSize);
}

// Pass 2: copies every slice, by bytes (the dtype does not matter).
template <size_t kSize>
void GatherCopy(const GatherPlan& p, const std::byte* operand, const int64_t* offsets, std::byte* output) {
  const int64_t run = p.inner.size;
#pragma omp parallel for if (Parallel(p.index.count, p.outer_count * run))
  for (int64_t b = 0; b < p.index.count; ++b) {
    const std::byte* src = operand + offsets[2 * b] * static_cast<int64_t>(kSize);
    std::byte* dst = output + offsets[2 * b + 1] * static_cast<int64_t>(kSize);
    for (int64_t o = 0; o < p.outer_count; ++o) {
      const auto [src_offset, dst_offset] = OffsetsAt(p.outer, o);
      CopyRun<kSize>(src + src_offset * static_cast<int64_t>(kSize), p.inner.stride_a,
                     dst + dst_offset * static_cast<int64_t>(kSize), p.inner.stride_b, run);
    }
  }
}

GatherPlan MakeGatherPlan(const ir::Function& fn, const ir::Instruction& instr) {
  const auto& a = ir::Attr<ir::GatherAttrs>(instr);
  const shapes::Shape& operand = OperandShape(fn, instr, 0);
  const shapes::Shape& indices = OperandShape(fn, instr, 1);
  const std::vector<int64_t> operand_strides = shapes::Strides(operand.Dims());
  const std::vector<int64_t> output_strides = shapes::Strides(instr.shape.Dims());
  GatherPlan p;
  p.inner = {1, 1, 1};  // a one-element slice when every axis is dropped
  p.element_size = dtypes::SizeOf(instr.shape.DType());
  p.index = MakeIndexLayout(indices, a.index_vector_dim, AxesNotIn(instr.shape.Rank(), a.offset_dims),
                            instr.shape.Dims());
  for (int64_t d : a.start_index_map) {
    p.max_start.push_back(operand.Dims()[d] - a.slice_sizes[d]);
    p.start_stride.push_back(operand_strides[d]);
  }
  // Non-collapsed operand axes map, in order, to the output's offset_dims.
  std::vector<Axis> window;
  const std::vector<int> slice_axes = AxesNotIn(operand.Rank(), a.collapsed_slice_dims);
  for (size_t i = 0; i < slice_axes.size(); ++i) {
    const int d = slice_axes[i];
    window.push_back({a.slice_sizes[d], operand_strides[d], output_strides[a.offset_dims[i]]});
  }
  window = Simplify(window);
  if (!window.empty()) {
    p.inner = window.back();
    window.pop_back();
  }
  p.outer = std::move(window);
  p.outer_count = Product(p.outer);
  return p;
}

Kernel MakeGather(const ir::Function& fn, const ir::Instruction& instr) {
  if (instr.shape.Size() == 0) return [](const void* const*, void*) {};
  auto plan = std::make_shared<const GatherPlan>(MakeGatherPlan(fn, instr));
  using CopyFn = void (*)(const GatherPlan&, const std::byte*, const int64_t*, std::byte*);
  CopyFn copy = nullptr;
  switch (plan->element_size) {
    case 1: copy = GatherCopy<1>; break;
    case 2: copy = GatherCopy<2>; break;
    case 4: copy = GatherCopy<4>; break;
    case 8: copy = GatherCopy<8>; break;
    case 16: copy = GatherCopy<16>; break;  // Complex128
    default: Throw("cpu Gather: unsupported element size for " + instr.shape.ToString());
  }
  Kernel kernel;
  DispatchIndex(OperandShape(fn, instr, 1).DType(), "Gather", [&](auto zero) {
    using I = decltype(zero);
    kernel = [plan, copy](const void* const* in, void* out) {
      std::vector<int64_t> offsets(static_cast<size_t>(2 * plan->index.count));
      GatherOffsets<I>(*plan, static_cast<const I*>(in[1]), offsets.data());
      copy(*plan, static_cast<const std::byte*>(in[0]), offsets.data(), static_cast<std::byte*>(out));
    };
  });
  return kernel;
}

// -------------------------------------------------------------- Scatter.

// One operand axis of a scatter. The update window covers `window` positions
// starting at the index vector's component `component` (or at 0 when the
// axis is not indexed).
struct ScatterAxis {
  int64_t size = 1;    // operand extent
  int64_t window = 1;  // update window extent
  int64_t operand_stride = 0, update_stride = 0;
  int component = -1;
};

struct ScatterPlan {
  IndexLayout index;                   // a: indices, b: updates
  std::vector<int64_t> operand_dim;    // per component: the indexed axis's size
  std::vector<int> component_axis;     // per component: its position in `axes`
  std::vector<ScatterAxis> axes;       // simplified operand axes, the last one innermost
  int64_t update_size = 0;
};

// Indexed axes stay as they are; unindexed ones are dropped when their window
// is one element (its target is always coordinate 0) and merged into an
// unindexed predecessor when they are fully covered and contiguous in both
// operand and updates. The innermost axis therefore stays unindexed when the
// operand's trailing axes are (the embedding-gradient case), which lets the
// kernel split it across threads.
std::vector<ScatterAxis> SimplifyScatterAxes(const std::vector<ScatterAxis>& axes) {
  std::vector<ScatterAxis> out;
  for (const ScatterAxis& ax : axes) {
    if (ax.component < 0 && ax.window == 1) continue;
    if (!out.empty()) {
      ScatterAxis& prev = out.back();
      if (ax.component < 0 && prev.component < 0 && ax.window == ax.size &&
          prev.operand_stride == ax.size * ax.operand_stride && prev.update_stride == ax.window * ax.update_stride) {
        prev.size *= ax.size;
        prev.window *= ax.size;
        prev.operand_stride = ax.operand_stride;
        prev.update_stride = ax.update_stride;
        continue;
      }
    }
    out.push_back(ax);
  }
  return out;
}

ScatterPlan MakeScatterPlan(const ir::Function& fn, const ir::Instruction& instr) {
  const auto& a = ir::Attr<ir::ScatterAttrs>(instr);
  const shapes::Shape& operand = OperandShape(fn, instr, 0);
  const shapes::Shape& indices = OperandShape(fn, instr, 1);
  const shapes::Shape& updates = OperandShape(fn, instr, 2);
  ScatterPlan p;
  p.update_size = updates.Size();
  p.index = MakeIndexLayout(indices, a.index_vector_dim, AxesNotIn(updates.Rank(), a.update_window_dims),
                            updates.Dims());
  const std::vector<int64_t> operand_strides = shapes::Strides(operand.Dims());
  const std::vector<int64_t> update_strides = shapes::Strides(updates.Dims());
  std::vector<ScatterAxis> axes(static_cast<size_t>(operand.Rank()));
  for (int d = 0; d < operand.Rank(); ++d) axes[d] = {operand.Dims()[d], 1, operand_strides[d], 0, -1};
  const std::vector<int> window_axes = AxesNotIn(operand.Rank(), a.inserted_window_dims);
  for (size_t i = 0; i < window_axes.size(); ++i) {
    const int64_t u = a.update_window_dims[i];
    axes[window_axes[i]].window = updates.Dims()[u];
    axes[window_axes[i]].update_stride = update_strides[u];
  }
  for (size_t k = 0; k < a.scatter_dims_to_operand_dims.size(); ++k) {
    const int64_t d = a.scatter_dims_to_operand_dims[k];
    axes[d].component = static_cast<int>(k);
    p.operand_dim.push_back(operand.Dims()[d]);
  }
  p.axes = SimplifyScatterAxes(axes);
  p.component_axis.assign(p.operand_dim.size(), -1);
  for (size_t c = 0; c < p.axes.size(); ++c) {
    if (p.axes[c].component >= 0) p.component_axis[p.axes[c].component] = static_cast<int>(c);
  }
  return p;
}

// Pass 1: for index vector b, starts[b * (n + 1) + c] is the window start on
// simplified axis c (n axes), and starts[b * (n + 1) + n] its updates offset.
// Starts are clamped to [-dim, dim], which keeps them exact for the bounds
// test (a window of at most dim elements starting there is out of range
// exactly when the original start's is) and free of overflow.
template <typename I>
void ScatterStarts(const ScatterPlan& p, const I* indices, int64_t* starts) {
  const IndexLayout& ix = p.index;
  const auto n = static_cast<int64_t>(p.axes.size());
#pragma omp parallel for if (Parallel(ix.count, ix.components + n))
  for (int64_t b = 0; b < ix.count; ++b) {
    const auto [index_offset, update_offset] = OffsetsAt(ix.batch, b);
    int64_t* s = starts + b * (n + 1);
    std::fill(s, s + n, 0);
    for (int64_t k = 0; k < ix.components; ++k) {
      const I v = indices[index_offset + k * ix.vector_stride];
      s[p.component_axis[k]] = ClampIndex(v, -p.operand_dim[k], p.operand_dim[k]);
    }
    s[n] = update_offset;
  }
}

// Combiners, applied as target = Combine(target, update).
struct SumOp {
  template <typename T>
  static T Apply(T a, T b) {
    if constexpr (std::is_integral_v<T>) {
      using U = std::make_unsigned_t<T>;  // wraps around instead of overflowing
      return static_cast<T>(static_cast<U>(a) + static_cast<U>(b));
    } else {
      return a + b;
    }
  }
};
struct MaxOp {
  template <typename T>
  static T Apply(T a, T b) {
    if constexpr (std::is_floating_point_v<T>) return (a > b || a != a) ? a : b;  // NaN propagates
    else return a > b ? a : b;
  }
};
struct MinOp {
  template <typename T>
  static T Apply(T a, T b) {
    if constexpr (std::is_floating_point_v<T>) return (a < b || a != a) ? a : b;  // NaN propagates
    else return a < b ? a : b;
  }
};
struct UpdateOp {
  template <typename T>
  static T Apply(T, T b) {
    return b;
  }
};

// Applies Op to the run target[i * ts] = Op(target[i * ts], update[i * us]);
// half types compute in float. U is T, or a half type when T is the float
// accumulator of a half ScatterSum (see MakeScatterOf).
template <typename Op, typename T, typename U>
inline void CombineRun(T* target, int64_t ts, const U* update, int64_t us, int64_t n) {
  constexpr bool kHalf =
      (std::is_same_v<T, float16> || std::is_same_v<T, bfloat16>) && !std::is_same_v<Op, UpdateOp>;
  if constexpr (!kHalf) {
    if (ts == 1 && us == 1) {  // the common contiguous run: vectorizes
      for (int64_t i = 0; i < n; ++i) target[i] = Op::Apply(target[i], static_cast<T>(update[i]));
      return;
    }
  }
  for (int64_t i = 0; i < n; ++i) {
    T& t = target[i * ts];
    if constexpr (kHalf) t = T(Op::Apply(static_cast<float>(t), static_cast<float>(update[i * us])));
    else t = Op::Apply(t, static_cast<T>(update[i * us]));
  }
}

// Combines index vector b's window into `out`, restricted on the innermost
// axis to [inner_lo, inner_hi). Elements whose target falls outside the
// operand are skipped: on each axis only the window positions w with
// 0 <= start + w < size are visited. `lo` and `extent` are scratch of n.
template <typename Op, typename T, typename U>
void ScatterOne(const ScatterPlan& p, const int64_t* start, const U* updates, T* out, int64_t inner_lo,
                int64_t inner_hi, int64_t* lo, int64_t* extent) {
  const auto n = static_cast<int64_t>(p.axes.size());
  int64_t target = 0, source = start[n], outer_count = 1;
  for (int64_t c = 0; c < n; ++c) {
    const ScatterAxis& ax = p.axes[c];
    int64_t l = std::max<int64_t>(0, -start[c]);
    int64_t h = std::min(ax.window, ax.size - start[c]);
    if (c == n - 1) {
      l = std::max(l, inner_lo);
      h = std::min(h, inner_hi);
    }
    if (l >= h) return;  // the whole window (or this thread's part) is out of bounds
    lo[c] = l;
    extent[c] = h - l;
    target += (start[c] + l) * ax.operand_stride;
    source += l * ax.update_stride;
    if (c < n - 1) outer_count *= extent[c];
  }
  if (n == 0) {  // scalar operand
    CombineRun<Op>(out, 1, updates + source, 1, 1);
    return;
  }
  const ScatterAxis& inner = p.axes[n - 1];
  for (int64_t o = 0; o < outer_count; ++o) {
    int64_t t = target, s = source, q = o;
    for (int64_t c = n - 2; c >= 0; --c) {
      const int64_t r = q % extent[c];
      q /= extent[c];
      t += r * p.axes[c].operand_stride;
      s += r * p.axes[c].update_stride;
    }
    CombineRun<Op>(out + t, inner.operand_stride, updates + s, inner.update_stride, extent[n - 1]);
  }
}

// Pass 2: combines the windows one index vector after the other, each in
// row-major order, so duplicates combine in that order (the last
// ScatterUpdate wins). When the innermost axis is
// not indexed, its target coordinate is the window position itself, so
// threads can each own a range of it without races and in the same order.
template <typename Op, typename T, typename U>
void ScatterApply(const ScatterPlan& p, const int64_t* starts, const U* updates, T* out) {
  const auto n = static_cast<int64_t>(p.axes.size());
  const int64_t inner_window = n > 0 ? p.axes[n - 1].window : 1;
  constexpr int64_t kMinChunk = 64;  // elements per thread and window row
  const bool split = n > 0 && p.axes[n - 1].component < 0 && inner_window >= 2 * kMinChunk &&
                     p.update_size > kParallelThreshold;
#pragma omp parallel if (split)
  {
    int64_t lo_col = 0, hi_col = inner_window;
    if (split) {
      const int64_t chunks = std::min<int64_t>(omp_get_num_threads(), inner_window / kMinChunk);
      const int64_t t = omp_get_thread_num();
      lo_col = t < chunks ? inner_window * t / chunks : inner_window;
      hi_col = t < chunks ? inner_window * (t + 1) / chunks : inner_window;
    }
    std::vector<int64_t> scratch(static_cast<size_t>(2 * n));
    if (lo_col < hi_col) {
      for (int64_t b = 0; b < p.index.count; ++b) {
        ScatterOne<Op, T, U>(p, starts + b * (n + 1), updates, out, lo_col, hi_col, scratch.data(),
                          scratch.data() + n);
      }
    }
  }
}

template <typename Op>
Kernel MakeScatterOf(const ir::Function& fn, const ir::Instruction& instr, const char* name) {
  const size_t bytes = static_cast<size_t>(instr.shape.ByteSize());
  if (instr.shape.Size() == 0) return [](const void* const*, void*) {};
  auto plan = std::make_shared<const ScatterPlan>(MakeScatterPlan(fn, instr));
  if (plan->update_size == 0) {
    return [bytes](const void* const* in, void* out) {
      if (out != in[0]) std::memcpy(out, in[0], bytes);
    };
  }
  Kernel kernel;
  DispatchDTypeWithComplex(instr.shape.DType(), [&](auto zero) {
    using T = decltype(zero);
    constexpr bool kComplex = std::is_same_v<T, dtypes::complex64> || std::is_same_v<T, dtypes::complex128>;
    if constexpr (std::is_same_v<T, bool> && !std::is_same_v<Op, UpdateOp>) {
      Throw(std::string("cpu ") + name + ": Bool operands are not supported");
    } else if constexpr (kComplex && !std::is_same_v<Op, UpdateOp> && !std::is_same_v<Op, SumOp>) {
      Throw(std::string("cpu ") + name + ": complex numbers are not ordered");
    } else {
      DispatchIndex(OperandShape(fn, instr, 1).DType(), name, [&](auto index_zero) {
        using I = decltype(index_zero);
        kernel = [plan, bytes](const void* const* in, void* out) {
          const ScatterPlan& p = *plan;
          if (out != in[0]) std::memcpy(out, in[0], bytes);  // in place when the executor reuses the operand
          const auto n = static_cast<int64_t>(p.axes.size());
          std::vector<int64_t> starts(static_cast<size_t>(p.index.count * (n + 1)));
          ScatterStarts<I>(p, static_cast<const I*>(in[1]), starts.data());
          const T* updates = static_cast<const T*>(in[2]);
          if constexpr (std::is_same_v<Op, SumOp> && (std::is_same_v<T, float16> || std::is_same_v<T, bfloat16>)) {
            // Sums of 16-bit floats accumulate in a float32 copy of the
            // operand, rounded once at the end: rounding after each update
            // stalls a long sum (in bfloat16, 0.5 added to 2048 is lost).
            const int64_t size = static_cast<int64_t>(bytes / sizeof(T));
            T* o = static_cast<T*>(out);
            auto acc = std::make_unique_for_overwrite<float[]>(static_cast<size_t>(size));
            for (int64_t i = 0; i < size; ++i) acc[i] = static_cast<float>(o[i]);
            ScatterApply<Op, float, T>(p, starts.data(), updates, acc.get());
            for (int64_t i = 0; i < size; ++i) o[i] = T(acc[i]);
          } else {
            ScatterApply<Op, T, T>(p, starts.data(), updates, static_cast<T*>(out));
          }
        };
      });
    }
  });
  return kernel;
}

Kernel MakeScatterSum(const ir::Function& fn, const ir::Instruction& instr) {
  return MakeScatterOf<SumOp>(fn, instr, "ScatterSum");
}
Kernel MakeScatterMax(const ir::Function& fn, const ir::Instruction& instr) {
  return MakeScatterOf<MaxOp>(fn, instr, "ScatterMax");
}
Kernel MakeScatterMin(const ir::Function& fn, const ir::Instruction& instr) {
  return MakeScatterOf<MinOp>(fn, instr, "ScatterMin");
}
Kernel MakeScatterUpdate(const ir::Function& fn, const ir::Instruction& instr) {
  return MakeScatterOf<UpdateOp>(fn, instr, "ScatterUpdate");
}

}  // namespace

void RegisterGatherKernels(KernelTable& table) {
  table[static_cast<size_t>(ir::OpType::kGather)] = MakeGather;
  table[static_cast<size_t>(ir::OpType::kScatterSum)] = MakeScatterSum;
  table[static_cast<size_t>(ir::OpType::kScatterMax)] = MakeScatterMax;
  table[static_cast<size_t>(ir::OpType::kScatterMin)] = MakeScatterMin;
  table[static_cast<size_t>(ir::OpType::kScatterUpdate)] = MakeScatterUpdate;
}

}  // namespace kiln::backends::cpu
