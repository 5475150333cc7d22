// Copyright 2026 The Kiln Authors.
// CPU kernels of ReduceWindow and SelectAndScatter: generic N-d windows with
// strides, padding (negative crops), base and window dilation.
//
// The factory precomputes, per axis and per output coordinate, the operand
// offsets the window covers (padding and dilation holes removed); a kernel
// then walks the cartesian product of those per-axis lists, the innermost
// axis in a tight loop. Padding never contributes: for ReduceWindow that is
// the same as padding with the reduction's identity.
#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>
#include <type_traits>

#include "src/backends/cpu/accumulate.h"
#include "src/backends/cpu/kernels.h"
#include "src/backends/cpu/window_util.h"

namespace kiln::backends::cpu {

namespace {

// The operand elements covered by each window of a ReduceWindow-shaped output.
class WindowMap {
 public:
  WindowMap(const shapes::Shape& operand, const ir::WindowAttrs& attrs, const std::vector<int64_t>& out_dims)
      : out_dims_(out_dims) {
    const std::vector<int64_t> strides = shapes::Strides(operand.Dims());
    for (size_t a = 0; a < out_dims.size(); ++a) {
      AxisTaps taps = MakeAxisTaps({operand.Dims()[a], attrs.window_dimensions[a], attrs.strides[a],
                                    attrs.padding_low[a], attrs.base_dilations[a], attrs.window_dilations[a]},
                                   out_dims[a]);
      for (int64_t& i : taps.input_index) i *= strides[a];  // indices to element offsets
      starts_.push_back(std::move(taps.starts));
      offsets_.push_back(std::move(taps.input_index));
    }
  }

  int Rank() const { return static_cast<int>(out_dims_.size()); }
  const std::vector<int64_t>& OutDims() const { return out_dims_; }
  int64_t OutSize() const {
    int64_t n = 1;
    for (int64_t d : out_dims_) n *= d;
    return n;
  }

  // Writes the coordinates of output element `flat` into `coords`.
  void Coords(int64_t flat, int64_t* coords) const {
    for (int a = Rank() - 1; a >= 0; --a) {
      coords[a] = flat % out_dims_[a];
      flat /= out_dims_[a];
    }
  }

  // Calls fn(offset) for each operand element in the window of output
  // `coords`, in window (row-major) order.
  template <typename Fn>
  void Visit(const int64_t* coords, Fn& fn) const {
    if (Rank() == 0) {
      fn(int64_t{0});
      return;
    }
    VisitAxis(0, coords, 0, fn);
  }

 private:
  template <typename Fn>
  void VisitAxis(int axis, const int64_t* coords, int64_t base, Fn& fn) const {
    const int64_t* it = offsets_[axis].data() + starts_[axis][coords[axis]];
    const int64_t* end = offsets_[axis].data() + starts_[axis][coords[axis] + 1];
    if (axis + 1 == Rank()) {
      for (; it != end; ++it) fn(base + *it);
    } else {
      for (; it != end; ++it) VisitAxis(axis + 1, coords, base + *it, fn);
    }
  }

  std::vector<int64_t> out_dims_;
  std::vector<std::vector<int64_t>> starts_, offsets_;  // per axis, see AxisTaps
};

// Calls body(flat, coords) for every output element of `map`, in parallel
// when `work_per_element` * size is large.
template <typename Body>
void ForEachOutput(const WindowMap& map, int64_t work_per_element, Body&& body) {
  const int64_t n = map.OutSize();
#pragma omp parallel if (n * work_per_element > kParallelThreshold)
  {
    std::vector<int64_t> coords(static_cast<size_t>(map.Rank()) + 1);
#pragma omp for
    for (int64_t i = 0; i < n; ++i) {
      map.Coords(i, coords.data());
      body(i, coords.data());
    }
  }
}

int64_t WindowVolume(const ir::WindowAttrs& attrs) {
  int64_t v = 1;
  for (int64_t w : attrs.window_dimensions) v *= w;
  return v;
}

// ----------------------------------------------------------- ReduceWindow.

// Reductions: the accumulator type, its identity (the padding value) and the
// combining step. Max/Min propagate NaN, like ReduceMax/ReduceMin.
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

template <typename T, ir::WindowReduction R>
Kernel ReduceWindowKernel(std::shared_ptr<const WindowMap> map, int64_t volume) {
  using Reducer = WindowReducer<T, R>;
  using Acc = typename Reducer::Acc;
  return [map, volume](const void* const* in, void* out) {
    const T* x = static_cast<const T*>(in[0]);
    T* o = static_cast<T*>(out);
    ForEachOutput(*map, volume, [&](int64_t i, const int64_t* coords) {
      Acc acc = Reducer::Identity();
      auto step = [&](int64_t offset) { acc = Reducer::Combine(acc, ConvertElement<Acc>(x[offset])); };
      map->Visit(coords, step);
      o[i] = ConvertElement<T>(acc);
    });
  };
}

template <typename T>
Kernel MakeTypedReduceWindow(std::shared_ptr<const WindowMap> map, const ir::WindowAttrs& attrs) {
  const int64_t volume = WindowVolume(attrs);
  switch (attrs.reduction) {
    case ir::WindowReduction::kSum: return ReduceWindowKernel<T, ir::WindowReduction::kSum>(map, volume);
    case ir::WindowReduction::kProduct: return ReduceWindowKernel<T, ir::WindowReduction::kProduct>(map, volume);
    case ir::WindowReduction::kMax: return ReduceWindowKernel<T, ir::WindowReduction::kMax>(map, volume);
    case ir::WindowReduction::kMin: return ReduceWindowKernel<T, ir::WindowReduction::kMin>(map, volume);
  }
  Throw("cpu ReduceWindow: unknown reduction");
}

Kernel MakeReduceWindow(const ir::Function& fn, const ir::Instruction& instr) {
  const auto& attrs = ir::Attr<ir::WindowAttrs>(instr);
  auto map = std::make_shared<const WindowMap>(OperandShape(fn, instr, 0), attrs, instr.shape.Dims());
  return DispatchDType(instr.shape.DType(), [&](auto zero) -> Kernel {
    using T = decltype(zero);
    if constexpr (std::is_same_v<T, bool>) {
      Throw("cpu ReduceWindow: Bool is not supported (" + instr.location + ")");
    } else {
      return MakeTypedReduceWindow<T>(map, attrs);
    }
  });
}

// ------------------------------------------------------- SelectAndScatter.

// Whether `v` should replace the current selection `cur`: strictly better,
// so the first of equal values stays selected. A NaN counts as both the
// largest and the smallest value (ReduceWindow's max/min of a window with a
// NaN is NaN, so the gradient flows to the first NaN).
template <bool kIsMax, typename C>
inline bool Better(C v, C cur) {
  if constexpr (std::is_floating_point_v<C>) {
    if (std::isnan(v)) return !std::isnan(cur);
    if (std::isnan(cur)) return false;
  }
  return kIsMax ? v > cur : v < cur;
}

template <typename T, bool kIsMax>
Kernel SelectAndScatterKernel(std::shared_ptr<const WindowMap> map, int64_t operand_size, int64_t volume) {
  using C = ComputeType<T>;
  using Acc = AccType<T>;
  return [map, operand_size, volume](const void* const* in, void* out) {
    const T* operand = static_cast<const T*>(in[0]);
    const T* source = static_cast<const T*>(in[1]);
    // Selection (the costly part) runs in parallel; the scatter is serial
    // since overlapping windows may select the same element.
    const int64_t n = map->OutSize();
    auto selected = std::make_unique_for_overwrite<int64_t[]>(static_cast<size_t>(n));
    ForEachOutput(*map, volume, [&](int64_t i, const int64_t* coords) {
      int64_t best = -1;
      C best_value{};
      auto step = [&](int64_t offset) {
        const C v = ConvertElement<C>(operand[offset]);
        if (best < 0 || Better<kIsMax>(v, best_value)) {
          best = offset;
          best_value = v;
        }
      };
      map->Visit(coords, step);
      selected[i] = best;  // -1: the window covers only padding
    });
    std::unique_ptr<Acc[]> acc_buffer;
    Acc* acc = reinterpret_cast<Acc*>(out);
    if constexpr (!std::is_same_v<Acc, T>) {
      acc_buffer = std::make_unique_for_overwrite<Acc[]>(static_cast<size_t>(operand_size));
      acc = acc_buffer.get();
    }
    std::fill(acc, acc + operand_size, Acc{0});
    for (int64_t i = 0; i < n; ++i) {
      if (selected[i] >= 0) acc[selected[i]] += ConvertElement<Acc>(source[i]);
    }
    if constexpr (!std::is_same_v<Acc, T>) {
      T* o = static_cast<T*>(out);
#pragma omp parallel for simd if (operand_size > kParallelThreshold)
      for (int64_t i = 0; i < operand_size; ++i) o[i] = ConvertElement<T>(acc[i]);
    }
  };
}

Kernel MakeSelectAndScatter(const ir::Function& fn, const ir::Instruction& instr) {
  const auto& attrs = ir::Attr<ir::WindowAttrs>(instr);
  auto map = std::make_shared<const WindowMap>(OperandShape(fn, instr, 0), attrs, OperandShape(fn, instr, 1).Dims());
  const int64_t operand_size = instr.shape.Size(), volume = WindowVolume(attrs);
  const bool is_max = attrs.reduction == ir::WindowReduction::kMax;
  if (!is_max && attrs.reduction != ir::WindowReduction::kMin) {
    Throw("cpu SelectAndScatter: the select must be kMax or kMin (" + instr.location + ")");
  }
  return DispatchDType(instr.shape.DType(), [&](auto zero) -> Kernel {
    using T = decltype(zero);
    if constexpr (std::is_same_v<T, bool>) {
      Throw("cpu SelectAndScatter: Bool is not supported (" + instr.location + ")");
    } else {
      return is_max ? SelectAndScatterKernel<T, true>(map, operand_size, volume)
                    : SelectAndScatterKernel<T, false>(map, operand_size, volume);
    }
  });
}

}  // namespace

void RegisterWindowKernels(KernelTable& table) {
  table[static_cast<size_t>(ir::OpType::kReduceWindow)] = MakeReduceWindow;
  table[static_cast<size_t>(ir::OpType::kSelectAndScatter)] = MakeSelectAndScatter;
}

}  // namespace kiln::backends::cpu
