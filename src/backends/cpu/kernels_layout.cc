// Copyright 2026 The Kiln Authors.
// CPU kernels of the data-movement ops: Transpose, BroadcastInDim,
// Concatenate, Slice, Pad, Reverse, Iota, DynamicSlice, DynamicUpdateSlice.
// (Reshape needs no kernel: the executor aliases its operand's bytes.)
//
// Data movement does not look at values, so every op except Iota works on
// opaque words of the element's width (1, 2, 4 or 8 bytes): one instantiation
// per width serves all 13 dtypes. Each factory turns the op into a RowLoop
// over source and destination strides, simplified at compile time.
#include <algorithm>
#include <cstddef>
#include <limits>

#include "src/backends/cpu/kernels.h"
#include "src/backends/cpu/layout_util.h"

namespace kiln::backends::cpu {

namespace {

using ir::Attr;

const std::byte* Bytes(const void* p) { return static_cast<const std::byte*>(p); }
std::byte* Bytes(void* p) { return static_cast<std::byte*>(p); }

size_t ElemBytes(const ir::Instruction& instr) { return dtypes::SizeOf(instr.shape.DType()); }

// A copy of a whole loop: StridedCopy from src + src_off to dst + dst_off
// (offsets in elements).
Kernel CopyKernel(RowLoop loop, size_t elem, int64_t src_off = 0, int64_t dst_off = 0) {
  return [loop = Simplify(loop), elem, src_off, dst_off](const void* const* in, void* out) {
    StridedCopy(loop, elem, Bytes(in[0]) + src_off * static_cast<int64_t>(elem),
                Bytes(out) + dst_off * static_cast<int64_t>(elem));
  };
}

// ----------------------------------------------------------------- Transpose.

// Edge of the square tiles of the blocked transposition: 32x32 elements of
// up to 8 bytes span 8 KiB of source and 8 KiB of destination, which stay in
// L1 while the tile is transposed.
constexpr int64_t kTile = 32;

// Transposition of a simplified loop whose destination is contiguous along
// the innermost axis j and whose source is contiguous along another axis k:
// the two are walked in kTile x kTile tiles so both arrays are read and
// written a cache line at a time. Other axes are iterated outside the tiles.
struct TiledTranspose {
  RowLoop outer;          // the remaining axes (plus a dummy row axis of size 1)
  int64_t dk, dj;         // sizes of axes k and j
  int64_t dst_k_stride;   // destination stride of axis k (source stride is 1)
  int64_t src_j_stride;   // source stride of axis j (destination stride is 1)

  template <typename W>
  void Run(const W* src, W* dst) const {
    const int64_t k_blocks = (dk + kTile - 1) / kTile;
    const int64_t items = outer.NumRows() * k_blocks;
    const bool parallel = outer.Size() * dk * dj > kParallelThreshold;
#pragma omp parallel for schedule(static) if (parallel)
    for (int64_t item = 0; item < items; ++item) {
      const int64_t o = item / k_blocks, k0 = (item % k_blocks) * kTile, k1 = std::min(dk, k0 + kTile);
      ForEachRow(outer, o, o + 1, [&](int64_t a, int64_t b, int64_t) { Tile(src + a, dst + b, k0, k1); });
    }
  }

  template <typename W>
  void Tile(const W* src, W* dst, int64_t k0, int64_t k1) const {
    for (int64_t j0 = 0; j0 < dj; j0 += kTile) {
      const int64_t j1 = std::min(dj, j0 + kTile);
      for (int64_t k = k0; k < k1; ++k) {
        W* d = dst + k * dst_k_stride;
        const W* s = src + k;
        for (int64_t j = j0; j < j1; ++j) d[j] = s[j * src_j_stride];
      }
    }
  }
};

// Returns the axis along which the source of `loop` is contiguous if a tiled
// transposition pays off (it is not the innermost axis and both are long
// enough to fill tiles); -1 otherwise.
int TiledAxis(const RowLoop& loop) {
  const int inner = loop.Rank() - 1;
  if (inner < 1 || loop.a_strides[inner] == 1 || loop.b_strides[inner] != 1 || loop.dims[inner] < 8) return -1;
  for (int k = 0; k < inner; ++k) {
    if (loop.a_strides[k] == 1) return loop.dims[k] >= 8 ? k : -1;
  }
  return -1;
}

Kernel MakeTranspose(const ir::Function& fn, const ir::Instruction& instr) {
  const shapes::Shape& x = OperandShape(fn, instr, 0);
  const auto& perm = Attr<ir::AxesAttrs>(instr).axes;
  const std::vector<int64_t> in_strides = RowMajorStrides(x.Dims());
  RowLoop loop{instr.shape.Dims(), {}, RowMajorStrides(instr.shape.Dims())};
  for (int64_t p : perm) loop.a_strides.push_back(in_strides[p]);
  loop = Simplify(loop);
  const size_t elem = ElemBytes(instr);
  const int k = TiledAxis(loop);
  if (k < 0) return CopyKernel(loop, elem);

  const int inner = loop.Rank() - 1;
  TiledTranspose t{RowLoop{}, loop.dims[k], loop.dims[inner], loop.b_strides[k], loop.a_strides[inner]};
  for (int i = 0; i < inner; ++i) {
    if (i == k) continue;
    t.outer.dims.push_back(loop.dims[i]);
    t.outer.a_strides.push_back(loop.a_strides[i]);
    t.outer.b_strides.push_back(loop.b_strides[i]);
  }
  t.outer.dims.push_back(1);  // dummy row axis: ForEachRow then visits each outer point once
  t.outer.a_strides.push_back(0);
  t.outer.b_strides.push_back(0);
  return [t, elem](const void* const* in, void* out) {
    DispatchWord(elem, [&](auto zero) {
      using W = decltype(zero);
      t.Run(static_cast<const W*>(in[0]), static_cast<W*>(out));
    });
  };
}

// ------------------------------------------------------------ BroadcastInDim.

Kernel MakeBroadcastInDim(const ir::Function& fn, const ir::Instruction& instr) {
  const shapes::Shape& x = OperandShape(fn, instr, 0);
  const auto& axes = Attr<ir::AxesAttrs>(instr).axes;
  const size_t elem = ElemBytes(instr);
  const int64_t n = instr.shape.Size();
  if (x.Size() == 1) {  // scalar (or all size-1 axes): a fill
    return [n, elem](const void* const* in, void* out) {
      if (n > 0) FillElements(out, in[0], n, elem);
    };
  }
  const std::vector<int64_t> in_strides = RowMajorStrides(x.Dims());
  RowLoop loop{instr.shape.Dims(), std::vector<int64_t>(instr.shape.Dims().size(), 0),
               RowMajorStrides(instr.shape.Dims())};
  for (size_t i = 0; i < axes.size(); ++i) {
    if (x.Dims()[i] != 1) loop.a_strides[axes[i]] = in_strides[i];  // size-1 axes repeat: stride 0
  }
  return CopyKernel(loop, elem);
}

// --------------------------------------------------------------- Concatenate.

Kernel MakeConcatenate(const ir::Function& fn, const ir::Instruction& instr) {
  const int64_t axis = Attr<ir::AxesAttrs>(instr).axes.at(0);
  const std::vector<int64_t> out_strides = RowMajorStrides(instr.shape.Dims());
  std::vector<RowLoop> loops;
  std::vector<int64_t> dst_offsets;
  int64_t offset = 0;
  for (size_t i = 0; i < instr.operands.size(); ++i) {
    const shapes::Shape& x = OperandShape(fn, instr, i);
    loops.push_back(Simplify(RowLoop{x.Dims(), RowMajorStrides(x.Dims()), out_strides}));
    dst_offsets.push_back(offset * out_strides[axis]);
    offset += x.Dims()[axis];
  }
  const size_t elem = ElemBytes(instr);
  return [loops = std::move(loops), dst_offsets = std::move(dst_offsets), elem](const void* const* in, void* out) {
    for (size_t i = 0; i < loops.size(); ++i) {
      StridedCopy(loops[i], elem, in[i], Bytes(out) + dst_offsets[i] * static_cast<int64_t>(elem));
    }
  };
}

// --------------------------------------------------------------------- Slice.

Kernel MakeSlice(const ir::Function& fn, const ir::Instruction& instr) {
  const shapes::Shape& x = OperandShape(fn, instr, 0);
  const auto& attrs = Attr<ir::SliceAttrs>(instr);
  const std::vector<int64_t> in_strides = RowMajorStrides(x.Dims());
  RowLoop loop{instr.shape.Dims(), {}, RowMajorStrides(instr.shape.Dims())};
  int64_t src_off = 0;
  for (int i = 0; i < x.Rank(); ++i) {
    loop.a_strides.push_back(in_strides[i] * attrs.strides[i]);
    src_off += attrs.starts[i] * in_strides[i];
  }
  return CopyKernel(loop, ElemBytes(instr), src_off);
}

// ----------------------------------------------------------------------- Pad.

// The part of operand axis i that survives padding (negative low/high crop):
// input elements [first, first + count) land at output first_out, first_out +
// step, ... with step = interior + 1.
struct PaddedAxis {
  int64_t first = 0, count = 0, first_out = 0, step = 1;
};

PaddedAxis PlacePaddedAxis(int64_t d, int64_t low, int64_t interior, int64_t out_dim) {
  PaddedAxis p;
  p.step = interior + 1;
  // Input i lands at low + i * step; keep those inside [0, out_dim).
  p.first = low >= 0 ? 0 : (-low + p.step - 1) / p.step;
  const int64_t last_pos = out_dim - 1 - low;  // largest i * step allowed
  const int64_t end = last_pos < 0 ? 0 : std::min(d, last_pos / p.step + 1);
  p.count = std::max<int64_t>(0, end - p.first);
  p.first_out = low + p.first * p.step;
  return p;
}

Kernel MakePad(const ir::Function& fn, const ir::Instruction& instr) {
  const shapes::Shape& x = OperandShape(fn, instr, 0);
  const auto& attrs = Attr<ir::PadAttrs>(instr);
  const std::vector<int64_t> in_strides = RowMajorStrides(x.Dims());
  const std::vector<int64_t> out_strides = RowMajorStrides(instr.shape.Dims());
  RowLoop loop;
  int64_t src_off = 0, dst_off = 0;
  for (int i = 0; i < x.Rank(); ++i) {
    const PaddedAxis p = PlacePaddedAxis(x.Dims()[i], attrs.low[i], attrs.interior[i], instr.shape.Dims()[i]);
    loop.dims.push_back(p.count);
    loop.a_strides.push_back(in_strides[i]);
    loop.b_strides.push_back(out_strides[i] * p.step);
    src_off += p.first * in_strides[i];
    dst_off += p.first_out * out_strides[i];
  }
  loop = Simplify(loop);
  const size_t elem = ElemBytes(instr);
  const int64_t n = instr.shape.Size();
  return [loop, elem, n, src_off, dst_off](const void* const* in, void* out) {
    if (n == 0) return;
    FillElements(out, in[1], n, elem);
    const auto e = static_cast<int64_t>(elem);
    StridedCopy(loop, elem, Bytes(in[0]) + src_off * e, Bytes(out) + dst_off * e);
  };
}

// ------------------------------------------------------------------- Reverse.

Kernel MakeReverse(const ir::Function& fn, const ir::Instruction& instr) {
  const shapes::Shape& x = OperandShape(fn, instr, 0);
  const auto& axes = Attr<ir::AxesAttrs>(instr).axes;
  RowLoop loop{x.Dims(), RowMajorStrides(x.Dims()), RowMajorStrides(x.Dims())};
  int64_t src_off = 0;
  for (int64_t a : axes) {
    if (x.Dims()[a] == 0) continue;
    src_off += (x.Dims()[a] - 1) * loop.a_strides[a];  // start from the last element ...
    loop.a_strides[a] = -loop.a_strides[a];            // ... and walk backwards
  }
  return CopyKernel(loop, ElemBytes(instr), src_off);
}

// ---------------------------------------------------------------------- Iota.

template <typename T>
Kernel IotaKernel(int64_t outer, int64_t d, int64_t inner) {
  return [outer, d, inner](const void* const*, void* out) {
    T* o = static_cast<T*>(out);
    const int64_t rows = outer * d;
#pragma omp parallel for schedule(static) if (rows * inner > kParallelThreshold)
    for (int64_t r = 0; r < rows; ++r) {
      T v;
      if constexpr (std::is_same_v<T, float16> || std::is_same_v<T, bfloat16>) v = T(static_cast<float>(r % d));
      else v = static_cast<T>(r % d);
      T* row = o + r * inner;
      for (int64_t i = 0; i < inner; ++i) row[i] = v;
    }
  };
}

Kernel MakeIota(const ir::Function&, const ir::Instruction& instr) {
  const int64_t axis = Attr<ir::AxesAttrs>(instr).axes.at(0);
  const auto& dims = instr.shape.Dims();
  int64_t outer = 1, inner = 1;
  for (int64_t i = 0; i < axis; ++i) outer *= dims[i];
  for (size_t i = static_cast<size_t>(axis) + 1; i < dims.size(); ++i) inner *= dims[i];
  const int64_t d = dims[axis];
  return DispatchDType(instr.shape.DType(), [&](auto zero) -> Kernel {
    using T = decltype(zero);
    if constexpr (std::is_same_v<T, bool>) {
      Throw("cpu Iota: Bool is not a numeric dtype (" + instr.location + ")");
    } else {
      return IotaKernel<T>(outer, d, inner);
    }
  });
}

// ------------------------------------------- DynamicSlice, DynamicUpdateSlice.

// Reads a scalar start index of any integer dtype as int64 (Uint64 values
// beyond int64 saturate; they are clamped to the dimension anyway).
using IndexReader = int64_t (*)(const void*);

template <typename T>
int64_t ReadIndex(const void* p) {
  const T v = *static_cast<const T*>(p);
  if constexpr (std::is_same_v<T, uint64_t>) {
    return static_cast<int64_t>(std::min<uint64_t>(v, std::numeric_limits<int64_t>::max()));
  } else {
    return static_cast<int64_t>(v);
  }
}

IndexReader IndexReaderFor(dtypes::DType dt, const ir::Instruction& instr) {
  return DispatchDType(dt, [&](auto zero) -> IndexReader {
    using T = decltype(zero);
    if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) {
      return &ReadIndex<T>;
    } else {
      Throw("cpu " + std::string(ir::OpName(instr.op)) + ": start indices must be integers, got " +
            dtypes::Name(dt) + " (" + instr.location + ")");
    }
  });
}

// The element offset of a window of `window` dims inside `dims`, from the
// start indices at inputs[first_index...], each clamped to [0, dim - window]
// as StableHLO specifies.
struct ClampedOffset {
  std::vector<int64_t> max_start;  // dim - window per axis
  std::vector<int64_t> strides;    // row-major strides of dims
  IndexReader read = nullptr;
  size_t first_index = 0;

  int64_t operator()(const void* const* inputs) const {
    int64_t off = 0;
    for (size_t i = 0; i < strides.size(); ++i) {
      const int64_t s = std::clamp<int64_t>(read(inputs[first_index + i]), 0, max_start[i]);
      off += s * strides[i];
    }
    return off;
  }
};

ClampedOffset MakeClampedOffset(const ir::Function& fn, const ir::Instruction& instr, const shapes::Shape& x,
                                const std::vector<int64_t>& window, size_t first_index) {
  ClampedOffset c;
  c.strides = RowMajorStrides(x.Dims());
  for (int i = 0; i < x.Rank(); ++i) c.max_start.push_back(x.Dims()[i] - window[i]);
  c.first_index = first_index;
  if (x.Rank() > 0) c.read = IndexReaderFor(OperandShape(fn, instr, first_index).DType(), instr);
  return c;
}

Kernel MakeDynamicSlice(const ir::Function& fn, const ir::Instruction& instr) {
  const shapes::Shape& x = OperandShape(fn, instr, 0);
  const auto& sizes = Attr<ir::DynamicSliceAttrs>(instr).sizes;
  ClampedOffset offset = MakeClampedOffset(fn, instr, x, sizes, 1);
  const RowLoop loop = Simplify(RowLoop{sizes, offset.strides, RowMajorStrides(sizes)});
  const auto elem = static_cast<int64_t>(ElemBytes(instr));
  return [loop, offset = std::move(offset), elem](const void* const* in, void* out) {
    StridedCopy(loop, static_cast<size_t>(elem), Bytes(in[0]) + offset(in) * elem, out);
  };
}

Kernel MakeDynamicUpdateSlice(const ir::Function& fn, const ir::Instruction& instr) {
  const shapes::Shape& x = OperandShape(fn, instr, 0);
  const shapes::Shape& update = OperandShape(fn, instr, 1);
  ClampedOffset offset = MakeClampedOffset(fn, instr, x, update.Dims(), 2);
  const RowLoop whole{{x.Size()}, {1}, {1}};
  const RowLoop loop = Simplify(RowLoop{update.Dims(), RowMajorStrides(update.Dims()), offset.strides});
  const auto elem = static_cast<int64_t>(ElemBytes(instr));
  return [whole, loop, offset = std::move(offset), elem](const void* const* in, void* out) {
    // The executor may hand us the operand's own buffer (in-place update).
    if (out != in[0]) StridedCopy(whole, static_cast<size_t>(elem), in[0], out);
    StridedCopy(loop, static_cast<size_t>(elem), in[1], Bytes(out) + offset(in) * elem);
  };
}

}  // namespace

void RegisterLayoutKernels(KernelTable& table) {
  const auto set = [&](ir::OpType op, KernelFactory f) { table[static_cast<size_t>(op)] = f; };
  set(ir::OpType::kTranspose, MakeTranspose);
  set(ir::OpType::kBroadcastInDim, MakeBroadcastInDim);
  set(ir::OpType::kConcatenate, MakeConcatenate);
  set(ir::OpType::kSlice, MakeSlice);
  set(ir::OpType::kPad, MakePad);
  set(ir::OpType::kReverse, MakeReverse);
  set(ir::OpType::kIota, MakeIota);
  set(ir::OpType::kDynamicSlice, MakeDynamicSlice);
  set(ir::OpType::kDynamicUpdateSlice, MakeDynamicUpdateSlice);
}

}  // namespace kiln::backends::cpu
