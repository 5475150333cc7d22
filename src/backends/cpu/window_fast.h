// Copyright 2026 The Kiln Authors.
// The reduction and selection semantics of ReduceWindow and SelectAndScatter
// (shared by the generic kernels of kernels_window.cc and the row kernels of
// window_fast.cc), and the row kernels' factories.
//
// Row kernels cover the common pooling layout: trailing axes whose window is
// 1 with stride 1 and no padding or base dilation (NHWC pooling: the channel
// axis). Those axes form contiguous rows of C elements, identical in operand
// and output, so a window reduces whole rows with tight vectorizable loops.
#pragma once

#include <cstdint>
#include <limits>
#include <type_traits>
#include <vector>

#include "src/backends/cpu/accumulate.h"
#include "src/backends/cpu/kernels.h"

namespace kiln::backends::cpu {

/// ReduceWindow reductions: the accumulator type, its identity (the padding
/// value) and the combining step. Max/Min propagate NaN, like
/// ReduceMax/ReduceMin.
template <typename T, ir::WindowReduction R>
struct WindowReducer;

template <typename T>
struct WindowReducer<T, ir::WindowReduction::kSum> {
  using Acc = AccType<T>;
  static Acc Identity() { return Acc{0}; }
  static Acc Combine(Acc a, Acc b) { return a + b; }
};

template <typename T>
struct WindowReducer<T, ir::WindowReduction::kProduct> {
  using Acc = AccType<T>;
  static Acc Identity() { return Acc{1}; }
  static Acc Combine(Acc a, Acc b) { return a * b; }
};

template <typename T>
struct WindowReducer<T, ir::WindowReduction::kMax> {
  using Acc = ComputeType<T>;
  static Acc Identity() {
    if constexpr (std::numeric_limits<Acc>::has_infinity) return -std::numeric_limits<Acc>::infinity();
    else return std::numeric_limits<Acc>::lowest();
  }
  static Acc Combine(Acc a, Acc b) { return (b > a || b != b) ? b : a; }  // b != b: NaN
};

template <typename T>
struct WindowReducer<T, ir::WindowReduction::kMin> {
  using Acc = ComputeType<T>;
  static Acc Identity() {
    if constexpr (std::numeric_limits<Acc>::has_infinity) return std::numeric_limits<Acc>::infinity();
    else return std::numeric_limits<Acc>::max();
  }
  static Acc Combine(Acc a, Acc b) { return (b < a || b != b) ? b : a; }
};

/// make.template operator()<R>() for the reduction R named by `reduction`, a
/// compile-time constant for the kernel templates; an empty Kernel for max
/// and min of a complex T (which the graph layer refuses).
template <typename T, typename Make>
Kernel WithReduction(ir::WindowReduction reduction, Make&& make) {
  switch (reduction) {
    case ir::WindowReduction::kSum: return make.template operator()<ir::WindowReduction::kSum>();
    case ir::WindowReduction::kProduct: return make.template operator()<ir::WindowReduction::kProduct>();
    case ir::WindowReduction::kMax:
    case ir::WindowReduction::kMin:
      if constexpr (kIsComplex<T>) {
        return {};
      } else if (reduction == ir::WindowReduction::kMax) {
        return make.template operator()<ir::WindowReduction::kMax>();
      } else {
        return make.template operator()<ir::WindowReduction::kMin>();
      }
  }
  return {};
}

/// SelectAndScatter's select: whether `v` should replace the current
/// selection `cur`. Strictly better, so the first of equal values stays
/// selected. A NaN counts as both the largest and the smallest value
/// (ReduceWindow's max/min of a window with a NaN is NaN, so the gradient
/// flows to the first NaN). Branch-free, so that lane loops vectorize.
template <bool kIsMax, typename C>
inline bool Better(C v, C cur) {
  const bool ordered = kIsMax ? v > cur : v < cur;
  if constexpr (std::is_floating_point_v<C>) {
    return ordered || (v != v && cur == cur);  // v is NaN and cur is not
  } else {
    return ordered;
  }
}

/// Whether an axis takes no part in the window: window 1, stride 1, no
/// padding, no base dilation (its output dim equals its input dim).
inline bool IsUnitWindowAxis(const ir::WindowAttrs& attrs, size_t axis) {
  return attrs.window_dimensions[axis] == 1 && attrs.strides[axis] == 1 && attrs.padding_low[axis] == 0 &&
         attrs.padding_high[axis] == 0 && attrs.base_dilations[axis] == 1;
}

/// The row kernel of ReduceWindow over `operand` (attrs with every field
/// filled in, output dims `out_dims`), or an empty Kernel when the window
/// has no trailing unit-window axes holding at least 2 elements per row (the
/// generic kernel then applies). Results are identical to the generic
/// kernel's: windows are combined in the same (row-major) order.
Kernel MakeRowReduceWindow(const shapes::Shape& operand, const ir::WindowAttrs& attrs,
                           const std::vector<int64_t>& out_dims);

/// The row kernel of SelectAndScatter (`source_dims`: the window output
/// dims), or an empty Kernel, as MakeRowReduceWindow. Selects the first
/// best element in window order, never padding, and adds the source values
/// of each operand element in output order, as the generic kernel does.
Kernel MakeRowSelectAndScatter(const shapes::Shape& operand, const ir::WindowAttrs& attrs,
                               const std::vector<int64_t>& source_dims);

}  // namespace kiln::backends::cpu
