// Copyright 2026 The Kiln Authors.
// CPU kernels of ReduceWindow and SelectAndScatter: generic N-d windows with
// strides, padding (negative crops), base and window dilation.
//
// The factory precomputes, per axis and per output coordinate, the operand
// offsets the window covers (padding and dilation holes removed); a kernel
// then walks the cartesian product of those per-axis lists, the innermost
// axis in a tight loop. Padding never contributes: for ReduceWindow that is
// the same as padding with the reduction's identity.
//
// Windows whose trailing axes are unit windows (NHWC pooling) go to the row
// kernels of window_fast.cc instead, which combine whole contiguous rows, and
// cumulative windows (CumSum & co.) to the O(n) scans of window_scan.cc.
#include <omp.h>

#include <algorithm>
#include <memory>
#include <type_traits>

#include "src/backends/cpu/accumulate.h"
#include "src/backends/cpu/kernels.h"
#include "src/backends/cpu/window_scan.h"
#include "src/backends/cpu/window_fast.h"
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

  // Advances `coords` to the next output element in row-major order.
  void Next(int64_t* coords) const {
    for (int a = Rank() - 1; a >= 0; --a) {
      if (++coords[a] < out_dims_[a]) return;
      coords[a] = 0;
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
// when `work_per_element` * size is large. Each thread takes one contiguous
// range of outputs and steps its coordinates like an odometer (no divisions
// per element).
template <typename Body>
void ForEachOutput(const WindowMap& map, int64_t work_per_element, Body&& body) {
  const int64_t n = map.OutSize();
#pragma omp parallel if (n * work_per_element > kParallelThreshold)
  {
    const int64_t threads = omp_get_num_threads(), thread = omp_get_thread_num();
    const int64_t begin = n * thread / threads, end = n * (thread + 1) / threads;
    std::vector<int64_t> coords(static_cast<size_t>(map.Rank()) + 1);
    if (begin < end) map.Coords(begin, coords.data());
    for (int64_t i = begin; i < end; ++i) {
      body(i, coords.data());
      map.Next(coords.data());
    }
  }
}

int64_t WindowVolume(const ir::WindowAttrs& attrs) {
  int64_t v = 1;
  for (int64_t w : attrs.window_dimensions) v *= w;
  return v;
}

// ----------------------------------------------------------- ReduceWindow.

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

Kernel MakeReduceWindow(const ir::Function& fn, const ir::Instruction& instr) {
  const auto& attrs = ir::Attr<ir::WindowAttrs>(instr);
  if (Kernel scan = MakeScanReduceWindow(fn, instr)) return scan;
  if (!dtypes::IsComplex(instr.shape.DType())) {
    if (Kernel rows = MakeRowReduceWindow(OperandShape(fn, instr, 0), attrs, instr.shape.Dims())) return rows;
  }
  auto map = std::make_shared<const WindowMap>(OperandShape(fn, instr, 0), attrs, instr.shape.Dims());
  const int64_t volume = WindowVolume(attrs);
  Kernel kernel = DispatchDTypeWithComplex(instr.shape.DType(), [&](auto zero) -> Kernel {
    using T = decltype(zero);
    if constexpr (std::is_same_v<T, bool>) {
      return {};
    } else {
      return WithReduction<T>(attrs.reduction,
                              [&]<ir::WindowReduction R>() { return ReduceWindowKernel<T, R>(map, volume); });
    }
  });
  if (!kernel) {
    Throw("cpu ReduceWindow: no kernel for this reduction of " + instr.shape.ToString() + " (" + instr.location + ")");
  }
  return kernel;
}

// ------------------------------------------------------- SelectAndScatter.

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
  const bool is_max = attrs.reduction == ir::WindowReduction::kMax;
  if (!is_max && attrs.reduction != ir::WindowReduction::kMin) {
    Throw("cpu SelectAndScatter: the select must be kMax or kMin (" + instr.location + ")");
  }
  if (Kernel scan = MakeScanSelectAndScatter(fn, instr)) return scan;
  if (Kernel rows = MakeRowSelectAndScatter(OperandShape(fn, instr, 0), attrs, OperandShape(fn, instr, 1).Dims())) {
    return rows;
  }
  auto map = std::make_shared<const WindowMap>(OperandShape(fn, instr, 0), attrs, OperandShape(fn, instr, 1).Dims());
  const int64_t operand_size = instr.shape.Size(), volume = WindowVolume(attrs);
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
