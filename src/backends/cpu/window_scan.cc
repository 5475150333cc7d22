// Copyright 2026 The Kiln Authors.
// Scan kernels of cumulative windows (see window_scan.h).
//
// The operand is viewed as [outer, n, inner] around the scanned axis. Each
// (outer, chunk of inner lanes) is independent: it walks the axis once,
// forward or backward, with one accumulator (or selection) per lane, so
// lanes vectorize and (outer, chunk) units run in parallel.
#include "src/backends/cpu/window_scan.h"

#include <omp.h>

#include <algorithm>
#include <memory>
#include <optional>
#include <type_traits>

#include "src/backends/cpu/accumulate.h"
#include "src/backends/cpu/window_fast.h"
#include "src/ir/cumulative_window.h"

namespace kiln::backends::cpu {

namespace {

constexpr int64_t kLanes = 256;  // inner lanes per unit: their state stays in L1

struct ScanGeometry {
  int64_t outer = 1, n = 1, inner = 1;
  bool exclusive = false, reverse = false;

  int64_t Chunks() const { return (inner + kLanes - 1) / kLanes; }
  int64_t Units() const { return outer * Chunks(); }
  int64_t Size() const { return outer * n * inner; }
};

std::optional<ScanGeometry> Geometry(const ir::WindowAttrs& attrs, const std::vector<int64_t>& dims) {
  const std::optional<ir::CumulativeWindow> c = ir::AsCumulativeWindow(attrs, dims);
  if (!c) return std::nullopt;
  ScanGeometry g{.exclusive = c->exclusive, .reverse = c->reverse};
  const auto axis = static_cast<size_t>(c->axis);
  for (size_t a = 0; a < dims.size(); ++a) {
    if (a < axis) g.outer *= dims[a];
    else if (a > axis) g.inner *= dims[a];
  }
  g.n = dims[axis];
  return g;
}

// Calls body(outer index, first lane, lane count) for every unit, in
// parallel when the whole scan is large.
template <typename Body>
void ForEachUnit(const ScanGeometry& g, Body&& body) {
  const int64_t units = g.Units(), chunks = g.Chunks();
#pragma omp parallel for schedule(static) if (g.Size() > kParallelThreshold && units > 1)
  for (int64_t u = 0; u < units; ++u) {
    const int64_t first = (u % chunks) * kLanes;
    body(u / chunks, first, std::min(kLanes, g.inner - first));
  }
}

template <typename T, ir::WindowReduction R>
Kernel ScanReduceKernel(ScanGeometry g) {
  using Reducer = WindowReducer<T, R>;
  using Acc = typename Reducer::Acc;
  return [g](const void* const* in, void* out) {
    const T* x = static_cast<const T*>(in[0]);
    T* o = static_cast<T*>(out);
    if (g.inner == 1) {  // contiguous rows: one running value, no lane loop
      ForEachUnit(g, [&](int64_t outer, int64_t, int64_t) {
        const T* row = x + outer * g.n;
        T* out_row = o + outer * g.n;
        const int64_t step = g.reverse ? -1 : 1;
        Acc acc = Reducer::Identity();
        for (int64_t s = 0, i = g.reverse ? g.n - 1 : 0; s < g.n; ++s, i += step) {
          if (g.exclusive) {
            out_row[i] = ConvertElement<T>(acc);
            acc = Reducer::Combine(acc, ConvertElement<Acc>(row[i]));
          } else {
            acc = Reducer::Combine(acc, ConvertElement<Acc>(row[i]));
            out_row[i] = ConvertElement<T>(acc);
          }
        }
      });
      return;
    }
    ForEachUnit(g, [&](int64_t outer, int64_t first, int64_t lanes) {
      Acc acc[kLanes];
      std::fill(acc, acc + lanes, Reducer::Identity());
      for (int64_t s = 0; s < g.n; ++s) {
        const int64_t i = g.reverse ? g.n - 1 - s : s;
        const int64_t base = (outer * g.n + i) * g.inner + first;
        if (g.exclusive) {
          for (int64_t l = 0; l < lanes; ++l) {
            o[base + l] = ConvertElement<T>(acc[l]);
            acc[l] = Reducer::Combine(acc[l], ConvertElement<Acc>(x[base + l]));
          }
        } else {
          for (int64_t l = 0; l < lanes; ++l) {
            acc[l] = Reducer::Combine(acc[l], ConvertElement<Acc>(x[base + l]));
            o[base + l] = ConvertElement<T>(acc[l]);
          }
        }
      }
    });
  };
}

template <typename T, bool kIsMax>
Kernel ScanSelectAndScatterKernel(ScanGeometry g) {
  using C = ComputeType<T>;
  using Acc = AccType<T>;
  return [g](const void* const* in, void* out) {
    const T* operand = static_cast<const T*>(in[0]);
    const T* source = static_cast<const T*>(in[1]);
    T* o = static_cast<T*>(out);
    ForEachUnit(g, [&](int64_t outer, int64_t first, int64_t lanes) {
      int64_t best[kLanes];
      C best_value[kLanes];
      Acc acc[kLanes];
      std::fill(best, best + lanes, int64_t{-1});
      std::fill(best_value, best_value + lanes, C{});
      // A lane's selection only moves in the scan's direction, never back
      // to an element it left, so its sum is written when it changes.
      auto flush = [&](int64_t l) {
        if (best[l] >= 0) o[(outer * g.n + best[l]) * g.inner + first + l] = ConvertElement<T>(acc[l]);
      };
      for (int64_t l = 0; l < lanes; ++l) acc[l] = Acc{0};
      for (int64_t i = 0; i < g.n; ++i) {  // the output starts at zero
        const int64_t base = (outer * g.n + i) * g.inner + first;
        for (int64_t l = 0; l < lanes; ++l) o[base + l] = ConvertElement<T>(Acc{0});
      }
      for (int64_t s = 0; s < g.n; ++s) {
        const int64_t i = g.reverse ? g.n - 1 - s : s;
        const int64_t base = (outer * g.n + i) * g.inner + first;
        for (int64_t l = 0; l < lanes; ++l) {
          const C v = ConvertElement<C>(operand[base + l]);
          // Window order is increasing index: going forward the first best
          // stays unless beaten; going backward an element at least as good
          // as the selection comes first in every window that holds it.
          auto take = [&] {
            if (best[l] < 0) return true;
            return g.reverse ? !Better<kIsMax>(best_value[l], v) : Better<kIsMax>(v, best_value[l]);
          };
          if (g.exclusive && best[l] >= 0) acc[l] += ConvertElement<Acc>(source[base + l]);
          if (take()) {
            flush(l);
            best[l] = i;
            best_value[l] = v;
            acc[l] = Acc{0};
          }
          if (!g.exclusive) acc[l] += ConvertElement<Acc>(source[base + l]);
        }
      }
      for (int64_t l = 0; l < lanes; ++l) flush(l);
    });
  };
}

}  // namespace

Kernel MakeScanReduceWindow(const ir::Function& fn, const ir::Instruction& instr) {
  const auto& attrs = ir::Attr<ir::WindowAttrs>(instr);
  const std::optional<ScanGeometry> g = Geometry(attrs, OperandShape(fn, instr, 0).Dims());
  if (!g) return {};
  return DispatchDTypeWithComplex(instr.shape.DType(), [&](auto zero) -> Kernel {
    using T = decltype(zero);
    if constexpr (std::is_same_v<T, bool>) {
      return {};
    } else {
      return WithReduction<T>(attrs.reduction, [&]<ir::WindowReduction R>() { return ScanReduceKernel<T, R>(*g); });
    }
  });
}

Kernel MakeScanSelectAndScatter(const ir::Function& fn, const ir::Instruction& instr) {
  const auto& attrs = ir::Attr<ir::WindowAttrs>(instr);
  const std::optional<ScanGeometry> g = Geometry(attrs, OperandShape(fn, instr, 0).Dims());
  if (!g || dtypes::IsComplex(instr.shape.DType()) || instr.shape.DType() == dtypes::Bool) return {};
  const bool is_max = attrs.reduction == ir::WindowReduction::kMax;
  return DispatchDType(instr.shape.DType(), [&](auto zero) -> Kernel {
    using T = decltype(zero);
    if constexpr (std::is_same_v<T, bool>) {
      return {};
    } else {
      return is_max ? ScanSelectAndScatterKernel<T, true>(*g) : ScanSelectAndScatterKernel<T, false>(*g);
    }
  });
}

}  // namespace kiln::backends::cpu
