// Copyright 2026 The Kiln Authors.
// Row kernels of ReduceWindow and SelectAndScatter (see window_fast.h).
//
// The operand is viewed as [leading axes..., C]: the trailing unit-window
// axes flatten into rows of C contiguous elements, the same in the operand,
// the output and (for SelectAndScatter) the source. A window over the
// leading axes then selects whole rows ("taps"), and every kernel works on
// a row at a time: per tap, one pass over C lanes, which GCC vectorizes.
// Rows are split into chunks of at most kChunk lanes, so per-lane state
// (accumulators, selections) stays in L1 and lanes can be parallel work.
#include "src/backends/cpu/window_fast.h"

#include <algorithm>
#include <memory>
#include <optional>
#include <utility>

#include "src/backends/cpu/window_util.h"

namespace kiln::backends::cpu {

namespace {

constexpr int64_t kChunk = 1024;  // lanes per pass
constexpr int64_t kMinRow = 2;    // rows of 1 element gain nothing: the generic kernel applies
// SelectAndScatter with at most this many taps scatters with one masked pass
// per tap (vectorized); with more, one scalar add per lane is cheaper.
constexpr int64_t kMaskedScatterTaps = 8;
// SelectAndScatter splits work by leading identity axes (the batch) only if
// they give at least this many independent slices.
constexpr int64_t kMinSlices = 16;

int64_t Product(const std::vector<int64_t>& dims, size_t begin, size_t end) {
  int64_t n = 1;
  for (size_t a = begin; a < end; ++a) n *= dims[a];
  return n;
}

int64_t CeilDiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Per-thread buffers of RowPlan::ForEachRow.
struct RowScratch {
  std::vector<int64_t> coords, prefix, next, taps;
};

// The window geometry over the leading axes of an operand viewed as
// [leading..., C]. The leading axes are split into the outer ones (all but
// the last) and the last: an outer position is a run of Last() consecutive
// rows, whose taps share the outer axes' part, computed once per run.
class RowPlan {
 public:
  // The plan of `attrs` (every field filled in) over an operand of `in_dims`
  // with window output dims `out_dims`, or nullopt if rows would hold fewer
  // than kMinRow elements.
  static std::optional<RowPlan> Make(const std::vector<int64_t>& in_dims, const ir::WindowAttrs& attrs,
                                     const std::vector<int64_t>& out_dims) {
    size_t lead = in_dims.size();
    while (lead > 0 && IsUnitWindowAxis(attrs, lead - 1)) --lead;
    RowPlan plan;
    plan.lead_ = static_cast<int>(lead);
    plan.row_ = Product(in_dims, lead, in_dims.size());
    if (lead == in_dims.size() || plan.row_ < kMinRow) return std::nullopt;
    int64_t volume = 1;
    for (size_t a = 0; a < lead; ++a) volume *= attrs.window_dimensions[a];
    if (volume > std::numeric_limits<int32_t>::max()) return std::nullopt;  // tap indices are int32
    const std::vector<int64_t> strides = shapes::Strides(in_dims);
    for (size_t a = 0; a < lead; ++a) {
      AxisTaps taps = MakeAxisTaps({in_dims[a], attrs.window_dimensions[a], attrs.strides[a], attrs.padding_low[a],
                                    attrs.base_dilations[a], attrs.window_dilations[a]},
                                   out_dims[a]);
      for (int64_t& i : taps.input_index) i *= strides[a];  // indices to element offsets
      plan.starts_.push_back(std::move(taps.starts));
      plan.offsets_.push_back(std::move(taps.input_index));
      plan.out_dims_.push_back(out_dims[a]);
    }
    if (lead == 0) {  // the whole operand is one row: a virtual axis of one output with one tap
      plan.starts_.push_back({0, 1});
      plan.offsets_.push_back({0});
      plan.out_dims_.push_back(1);
    }
    plan.volume_ = volume;
    return plan;
  }

  int Lead() const { return lead_; }                       // leading axes (0: none)
  int64_t RowSize() const { return row_; }                 // C
  int64_t Last() const { return out_dims_.back(); }       // rows per outer position
  int64_t Outer() const { return Product(out_dims_, 0, out_dims_.size() - 1); }
  int64_t Rows() const { return Outer() * Last(); }
  int64_t Volume() const { return volume_; }              // taps per window at most
  const std::vector<int64_t>& OutDims() const { return out_dims_; }  // leading output dims

  // Sizes `s` for ForEachRow (so that it never allocates).
  void Reserve(RowScratch& s) const {
    s.coords.resize(out_dims_.size());
    s.prefix.reserve(static_cast<size_t>(volume_));
    s.next.reserve(static_cast<size_t>(volume_));
    s.taps.reserve(static_cast<size_t>(volume_));
  }

  // Calls fn(row, taps, num_taps) for the rows of outer position `outer`, in
  // order; taps are the operand offsets of the window's rows that are not
  // padding or dilation holes, in window (row-major) order.
  template <typename Fn>
  void ForEachRow(int64_t outer, RowScratch& s, Fn&& fn) const {
    const size_t last = out_dims_.size() - 1;
    const int64_t first_row = outer * Last();
    for (size_t a = last; a-- > 0;) {
      s.coords[a] = outer % out_dims_[a];
      outer /= out_dims_[a];
    }
    s.prefix.assign(1, 0);
    for (size_t a = 0; a < last; ++a) {
      s.next.clear();
      for (int64_t p : s.prefix) {
        for (int64_t k = starts_[a][s.coords[a]]; k < starts_[a][s.coords[a] + 1]; ++k) {
          s.next.push_back(p + offsets_[a][k]);
        }
      }
      std::swap(s.prefix, s.next);
    }
    for (int64_t o = 0; o < Last(); ++o) {
      s.taps.clear();
      for (int64_t p : s.prefix) {
        for (int64_t k = starts_[last][o]; k < starts_[last][o + 1]; ++k) s.taps.push_back(p + offsets_[last][k]);
      }
      fn(first_row + o, s.taps.data(), static_cast<int64_t>(s.taps.size()));
    }
  }

 private:
  int lead_ = 0;
  int64_t row_ = 1, volume_ = 1;
  std::vector<int64_t> out_dims_;                       // leading output dims (at least one)
  std::vector<std::vector<int64_t>> starts_, offsets_;  // per leading axis, see AxisTaps
};

// ----------------------------------------------------------- ReduceWindow.

// Reduces the rows at x + taps[0..n) (len lanes each) into out.
template <typename T, ir::WindowReduction R>
void ReduceRow(const T* x, const int64_t* taps, int64_t n, int64_t len, T* out) {
  using Reducer = WindowReducer<T, R>;
  using Acc = typename Reducer::Acc;
  alignas(64) Acc acc[kChunk];
  for (int64_t c = 0; c < len; ++c) acc[c] = Reducer::Identity();
  for (int64_t k = 0; k < n; ++k) {
    const T* row = x + taps[k];
    for (int64_t c = 0; c < len; ++c) acc[c] = Reducer::Combine(acc[c], ConvertElement<Acc>(row[c]));
  }
  for (int64_t c = 0; c < len; ++c) out[c] = ConvertElement<T>(acc[c]);
}

template <typename T, ir::WindowReduction R>
Kernel RowReduceWindowKernel(std::shared_ptr<const RowPlan> plan) {
  return [plan](const void* const* in, void* out) {
    const T* x = static_cast<const T*>(in[0]);
    T* o = static_cast<T*>(out);
    const int64_t row = plan->RowSize(), chunks = CeilDiv(row, kChunk), items = plan->Outer() * chunks;
    const int64_t work = plan->Rows() * row * plan->Volume();
    // Output rows are disjoint: any split is safe.
#pragma omp parallel if (work > kParallelThreshold)
    {
      RowScratch scratch;
      plan->Reserve(scratch);
#pragma omp for schedule(static)
      for (int64_t item = 0; item < items; ++item) {
        const int64_t c0 = item % chunks * kChunk, len = std::min(kChunk, row - c0);
        plan->ForEachRow(item / chunks, scratch, [&](int64_t r, const int64_t* taps, int64_t n) {
          ReduceRow<T, R>(x + c0, taps, n, len, o + r * row + c0);
        });
      }
    }
  };
}

template <typename T>
Kernel MakeTypedRowReduceWindow(std::shared_ptr<const RowPlan> plan, ir::WindowReduction reduction) {
  switch (reduction) {
    case ir::WindowReduction::kSum: return RowReduceWindowKernel<T, ir::WindowReduction::kSum>(plan);
    case ir::WindowReduction::kProduct: return RowReduceWindowKernel<T, ir::WindowReduction::kProduct>(plan);
    case ir::WindowReduction::kMax: return RowReduceWindowKernel<T, ir::WindowReduction::kMax>(plan);
    case ir::WindowReduction::kMin: return RowReduceWindowKernel<T, ir::WindowReduction::kMin>(plan);
  }
  Throw("cpu ReduceWindow: unknown reduction");
}

// ------------------------------------------------------- SelectAndScatter.

// How SelectAndScatter splits its rows into groups that write disjoint
// operand elements (overlapping windows may select the same element, so
// rows that share elements must run in one thread, in order).
struct ScatterGroups {
  int64_t count = 1;      // groups: consecutive runs of outer positions
  int64_t outer_per = 1;  // outer positions per group
  // When > 0, group i owns exactly the operand elements [i * slice,
  // (i + 1) * slice) and clears them itself (while they are in cache);
  // otherwise the whole output is cleared first.
  int64_t slice = 0;
};

// Whether the windows along `axis` never share an input element: the window
// span (in the dilated, padded input) is at most the stride.
bool IsDisjointAxis(const ir::WindowAttrs& attrs, size_t axis) {
  return (attrs.window_dimensions[axis] - 1) * attrs.window_dilations[axis] + 1 <= attrs.strides[axis];
}

// Groups by the outer axes 0..g-1: the leading unit-window axes (the batch:
// each group owns a slice of the operand) if there are enough slices, else
// the leading disjoint axes.
ScatterGroups MakeScatterGroups(const RowPlan& plan, const std::vector<int64_t>& in_dims,
                                const ir::WindowAttrs& attrs) {
  ScatterGroups groups;
  if (plan.Lead() <= 1) {
    groups.outer_per = plan.Outer();
    return groups;
  }
  const size_t outer_axes = static_cast<size_t>(plan.Lead() - 1);
  size_t unit = 0, disjoint = 0;
  while (unit < outer_axes && IsUnitWindowAxis(attrs, unit)) ++unit;
  while (disjoint < outer_axes && IsDisjointAxis(attrs, disjoint)) ++disjoint;
  const std::vector<int64_t>& out = plan.OutDims();
  size_t g = disjoint;
  if (unit > 0 && Product(out, 0, unit) >= kMinSlices) {
    g = unit;
    groups.slice = Product(in_dims, unit, in_dims.size());
  }
  groups.count = Product(out, 0, g);
  groups.outer_per = Product(out, g, outer_axes);
  return groups;
}

template <typename T, bool kIsMax>
struct RowSelector {
  using C = ComputeType<T>;
  using Acc = AccType<T>;

  // For each lane, the index into taps[0..n) (n >= 1) of the first best
  // element in window order.
  static void Select(const T* x, const int64_t* taps, int64_t n, int64_t len, int32_t* best_tap) {
    alignas(64) C best[kChunk];
    const T* first = x + taps[0];
    for (int64_t c = 0; c < len; ++c) {
      best[c] = ConvertElement<C>(first[c]);
      best_tap[c] = 0;
    }
    for (int64_t k = 1; k < n; ++k) {
      const T* row = x + taps[k];
      const int32_t tap = static_cast<int32_t>(k);
      for (int64_t c = 0; c < len; ++c) {
        const C v = ConvertElement<C>(row[c]);
        const bool better = Better<kIsMax>(v, best[c]);
        best[c] = better ? v : best[c];
        best_tap[c] = better ? tap : best_tap[c];
      }
    }
  }

  // Adds each lane's source value to its selected element of acc. Adding 0
  // to the others leaves them unchanged (they are never -0: sums that start
  // at +0 stay off -0), and their rows belong to the same group.
  static void Scatter(const int64_t* taps, int64_t n, int64_t len, const int32_t* best_tap, const T* source,
                      Acc* acc) {
    if (n <= kMaskedScatterTaps) {
      for (int64_t k = 0; k < n; ++k) {
        Acc* row = acc + taps[k];
        const int32_t tap = static_cast<int32_t>(k);
        for (int64_t c = 0; c < len; ++c) row[c] += best_tap[c] == tap ? ConvertElement<Acc>(source[c]) : Acc{0};
      }
    } else {
      for (int64_t c = 0; c < len; ++c) acc[taps[best_tap[c]] + c] += ConvertElement<Acc>(source[c]);
    }
  }
};

template <typename Acc, typename T>
void ConvertRange(const Acc* acc, int64_t n, T* out) {
  for (int64_t i = 0; i < n; ++i) out[i] = ConvertElement<T>(acc[i]);
}

template <typename T, bool kIsMax>
Kernel RowSelectAndScatterKernel(std::shared_ptr<const RowPlan> plan, ScatterGroups groups, int64_t operand_size) {
  using Selector = RowSelector<T, kIsMax>;
  using Acc = typename Selector::Acc;
  return [plan, groups, operand_size](const void* const* in, void* out) {
    const T* operand = static_cast<const T*>(in[0]);
    const T* source = static_cast<const T*>(in[1]);
    T* o = static_cast<T*>(out);
    std::unique_ptr<Acc[]> acc_buffer;
    Acc* acc = reinterpret_cast<Acc*>(out);
    if constexpr (!std::is_same_v<Acc, T>) {
      acc_buffer = std::make_unique_for_overwrite<Acc[]>(static_cast<size_t>(operand_size));
      acc = acc_buffer.get();
    }
    const int64_t row = plan->RowSize(), chunks = CeilDiv(row, kChunk), items = groups.count * chunks;
    const bool slices = groups.slice > 0 && chunks == 1;  // each item owns a contiguous slice
    const bool parallel = plan->Rows() * row * plan->Volume() > kParallelThreshold;
    if (!slices) {
#pragma omp parallel for simd if (parallel)
      for (int64_t i = 0; i < operand_size; ++i) acc[i] = Acc{0};
    }
#pragma omp parallel if (parallel)
    {
      RowScratch scratch;
      plan->Reserve(scratch);
      alignas(64) int32_t best_tap[kChunk];
#pragma omp for schedule(static)
      for (int64_t item = 0; item < items; ++item) {
        const int64_t group = item / chunks, c0 = item % chunks * kChunk, len = std::min(kChunk, row - c0);
        if (slices) std::fill_n(acc + group * groups.slice, groups.slice, Acc{0});
        for (int64_t outer = group * groups.outer_per; outer < (group + 1) * groups.outer_per; ++outer) {
          plan->ForEachRow(outer, scratch, [&](int64_t r, const int64_t* taps, int64_t n) {
            if (n == 0) return;  // the window covers only padding: its source value is dropped
            Selector::Select(operand + c0, taps, n, len, best_tap);
            Selector::Scatter(taps, n, len, best_tap, source + r * row + c0, acc + c0);
          });
        }
        if constexpr (!std::is_same_v<Acc, T>) {
          if (slices) ConvertRange(acc + group * groups.slice, groups.slice, o + group * groups.slice);
        }
      }
    }
    if constexpr (!std::is_same_v<Acc, T>) {
      if (!slices) {
#pragma omp parallel for if (parallel)
        for (int64_t i = 0; i < operand_size; ++i) o[i] = ConvertElement<T>(acc[i]);
      }
    }
  };
}

}  // namespace

Kernel MakeRowReduceWindow(const shapes::Shape& operand, const ir::WindowAttrs& attrs,
                           const std::vector<int64_t>& out_dims) {
  std::optional<RowPlan> plan = RowPlan::Make(operand.Dims(), attrs, out_dims);
  if (!plan) return nullptr;
  auto shared = std::make_shared<const RowPlan>(std::move(*plan));
  return DispatchDType(operand.DType(), [&](auto zero) -> Kernel {
    using T = decltype(zero);
    if constexpr (std::is_same_v<T, bool>) {
      return nullptr;  // the generic factory reports it
    } else {
      return MakeTypedRowReduceWindow<T>(shared, attrs.reduction);
    }
  });
}

Kernel MakeRowSelectAndScatter(const shapes::Shape& operand, const ir::WindowAttrs& attrs,
                               const std::vector<int64_t>& source_dims) {
  std::optional<RowPlan> plan = RowPlan::Make(operand.Dims(), attrs, source_dims);
  if (!plan) return nullptr;
  const ScatterGroups groups = MakeScatterGroups(*plan, operand.Dims(), attrs);
  auto shared = std::make_shared<const RowPlan>(std::move(*plan));
  const bool is_max = attrs.reduction == ir::WindowReduction::kMax;
  return DispatchDType(operand.DType(), [&](auto zero) -> Kernel {
    using T = decltype(zero);
    if constexpr (std::is_same_v<T, bool>) {
      return nullptr;  // the generic factory reports it
    } else {
      return is_max ? RowSelectAndScatterKernel<T, true>(shared, groups, operand.Size())
                    : RowSelectAndScatterKernel<T, false>(shared, groups, operand.Size());
    }
  });
}

}  // namespace kiln::backends::cpu
