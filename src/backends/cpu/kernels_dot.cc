// Copyright 2026 The Kiln Authors.
// CPU kernel of DotGeneral.
//
// Every DotGeneral is a batched matmul [B, M, K] x [B, K, N] -> [B, M, N]:
// the output is already laid out that way (batch axes, lhs free axes, rhs
// free axes), and each operand is viewed as a batch of matrices by grouping
// its axes. When each group of axes collapses into a single stride, the
// operand is read in place through a strided view (this covers transposed
// matrices and batch axes in any position); otherwise it is first gathered
// into a contiguous [B, R, C] copy.
//
// Float32 products without batch axes run on oneDNN's sgemm (operands read
// in place, transposed or not); batched Float32 and BFloat16 on oneDNN's
// matmul (created once, at compile time); Float16 uses oneDNN's f16 matmul where the build has one, else
// converts to Float32 around the f32 matmul (oneDNN 2.6 has no f16 matmul on
// CPU). Half types always accumulate in f32. A Float32 product of precision
// kBFloat16 rounds its operands to bf16 with oneDNN reorders and runs the
// bf16 x bf16 -> f32 matmul, where the CPU has native bf16 dot products
// (AVX512-BF16, AMX); elsewhere oneDNN would emulate them, slower than f32,
// so the precision is not taken. Float64 and the integer types use the loop kernel below, which is
// also the fallback if oneDNN cannot build a primitive. Integer products wrap
// around (two's complement), as in XLA.
#include <algorithm>
#include <cstring>
#include <memory>
#include <optional>
#include <type_traits>

#include "kiln/backends/backend.h"
#include "src/backends/cpu/accumulate.h"
#include "src/backends/cpu/dnnl_util.h"
#include "src/backends/cpu/kernels.h"

namespace kiln::backends::cpu {

namespace {

// Copies the strided N-d array (`dims`, `strides` in elements) at `src` into
// the contiguous row-major array at `dst`, converting elements.
template <typename Src, typename Dst>
void GatherCopy(const Src* src, Dst* dst, const std::vector<int64_t>& dims, const std::vector<int64_t>& strides) {
  int64_t total = 1;
  for (int64_t d : dims) total *= d;
  if (total == 0) return;
  if (dims.empty()) {
    dst[0] = ConvertElement<Dst>(src[0]);
    return;
  }
  const int rank = static_cast<int>(dims.size());
  const int64_t inner = dims.back(), inner_stride = strides.back(), outer = total / inner;
#pragma omp parallel for if (total > kParallelThreshold)
  for (int64_t o = 0; o < outer; ++o) {
    int64_t rem = o, offset = 0;
    for (int a = rank - 2; a >= 0; --a) {
      offset += (rem % dims[a]) * strides[a];
      rem /= dims[a];
    }
    const Src* s = src + offset;
    Dst* d = dst + o * inner;
    for (int64_t i = 0; i < inner; ++i) d[i] = ConvertElement<Dst>(s[i * inner_stride]);
  }
}

// An operand seen as a batch of matrices [batch, rows, cols].
struct MatrixView {
  int64_t batch = 1, rows = 1, cols = 1;
  // Whether the operand must be gathered into a contiguous [B, R, C] copy;
  // if false it is read in place with the strides below.
  bool packed = false;
  int64_t batch_stride = 0, row_stride = 0, col_stride = 0;
  // The operand's axes in [B, R, C] order, for gathering.
  std::vector<int64_t> gather_dims, gather_strides;

  int64_t Size() const { return batch * rows * cols; }
  // Switches to reading a contiguous packed copy.
  void UsePacked() {
    packed = true;
    batch_stride = rows * cols;
    row_stride = cols;
    col_stride = 1;
  }
};

// A group of axes merged into one dimension of a MatrixView.
struct AxisGroup {
  int64_t size = 1;
  std::optional<int64_t> stride;  // unset when size is 1 (any stride works)
  bool collapsible = true;        // the axes form one strided dimension
};

AxisGroup CollapseAxes(const std::vector<int64_t>& axes, const std::vector<int64_t>& dims,
                       const std::vector<int64_t>& strides) {
  AxisGroup g;
  int64_t prev = -1;  // the last axis of size > 1
  for (int64_t a : axes) {
    g.size *= dims[a];
    if (dims[a] == 1) continue;
    if (prev >= 0 && strides[prev] != strides[a] * dims[a]) g.collapsible = false;
    prev = a;
  }
  if (prev >= 0) g.stride = strides[prev];
  return g;
}

// Builds the view of an operand of `shape` whose batch, row and column
// dimensions are the given groups of axes (each in the order they flatten).
MatrixView MakeView(const shapes::Shape& shape, const std::vector<int64_t>& batch_axes,
                    const std::vector<int64_t>& row_axes, const std::vector<int64_t>& col_axes) {
  const std::vector<int64_t>& dims = shape.Dims();
  const std::vector<int64_t> strides = shapes::Strides(dims);
  MatrixView v;
  for (const auto* group : {&batch_axes, &row_axes, &col_axes}) {
    for (int64_t a : *group) {
      v.gather_dims.push_back(dims[a]);
      v.gather_strides.push_back(strides[a]);
    }
  }
  const AxisGroup b = CollapseAxes(batch_axes, dims, strides), r = CollapseAxes(row_axes, dims, strides),
                  c = CollapseAxes(col_axes, dims, strides);
  v.batch = b.size;
  v.rows = r.size;
  v.cols = c.size;
  if (!b.collapsible || !r.collapsible || !c.collapsible) {
    v.UsePacked();
    return v;
  }
  // Size-1 groups may take any stride: pick ones that make the matrix plainly
  // row- or column-major, the layouts matmul implementations accept.
  v.col_stride = c.stride.value_or(1);
  v.row_stride = r.stride.value_or(v.col_stride == 1 ? v.cols : 1);
  v.batch_stride = b.stride.value_or(std::max(v.rows * v.row_stride, v.cols * v.col_stride));
  return v;
}

// The axes of `rank` in neither `a` nor `b`, in order.
std::vector<int64_t> FreeAxes(int rank, const std::vector<int64_t>& a, const std::vector<int64_t>& b) {
  std::vector<int64_t> out;
  for (int64_t i = 0; i < rank; ++i) {
    if (std::find(a.begin(), a.end(), i) == a.end() && std::find(b.begin(), b.end(), i) == b.end()) out.push_back(i);
  }
  return out;
}

// DotGeneral as lhs [B, M, K] x rhs [B, K, N].
struct DotPlan {
  MatrixView lhs, rhs;
  int64_t b = 1, m = 1, k = 1, n = 1;
};

DotPlan MakeDotPlan(const ir::Function& fn, const ir::Instruction& instr) {
  const auto& attrs = ir::Attr<ir::DotGeneralAttrs>(instr);
  const shapes::Shape &ls = OperandShape(fn, instr, 0), &rs = OperandShape(fn, instr, 1);
  DotPlan p;
  p.lhs = MakeView(ls, attrs.lhs_batch, FreeAxes(ls.Rank(), attrs.lhs_batch, attrs.lhs_contracting),
                   attrs.lhs_contracting);
  p.rhs = MakeView(rs, attrs.rhs_batch, attrs.rhs_contracting,
                   FreeAxes(rs.Rank(), attrs.rhs_batch, attrs.rhs_contracting));
  p.b = p.lhs.batch;
  p.m = p.lhs.rows;
  p.k = p.lhs.cols;
  p.n = p.rhs.cols;
  return p;
}

// Returns `data`, or a contiguous copy (converted to C) in `buffer` when the
// view is packed or the compute type differs.
template <typename T, typename C>
const C* ReadOperand(const void* data, const MatrixView& view, std::unique_ptr<C[]>& buffer) {
  if constexpr (std::is_same_v<T, C>) {
    if (!view.packed) return static_cast<const C*>(data);
  }
  buffer = std::make_unique_for_overwrite<C[]>(static_cast<size_t>(view.Size()));
  GatherCopy<T, C>(static_cast<const T*>(data), buffer.get(), view.gather_dims, view.gather_strides);
  return buffer.get();
}

// --------------------------------------------------------- Loop kernel.

// out[b, i, :] = sum_k lhs[b, i, k] * rhs[b, k, :], with the inner loop over
// contiguous rhs rows and output columns.
template <typename T>
void LoopMatmul(const T* lhs, const MatrixView& lv, const T* rhs, const MatrixView& rv, T* out, const DotPlan& p) {
  using Acc = AccType<T>;
  const int64_t rows = p.b * p.m, n = p.n, k_size = p.k;
#pragma omp parallel if (rows * n * k_size > kParallelThreshold)
  {
    std::vector<Acc> acc(static_cast<size_t>(n));
#pragma omp for
    for (int64_t r = 0; r < rows; ++r) {
      const int64_t b = r / p.m, i = r % p.m;
      const T* a_row = lhs + b * lv.batch_stride + i * lv.row_stride;
      const T* b_mat = rhs + b * rv.batch_stride;
      std::fill(acc.begin(), acc.end(), Acc{0});
      for (int64_t k = 0; k < k_size; ++k) {
        const Acc a = ConvertElement<Acc>(a_row[k * lv.col_stride]);
        const T* b_row = b_mat + k * rv.row_stride;
        for (int64_t j = 0; j < n; ++j) acc[j] += a * ConvertElement<Acc>(b_row[j]);
      }
      T* o_row = out + r * n;
      for (int64_t j = 0; j < n; ++j) o_row[j] = ConvertElement<T>(acc[j]);
    }
  }
}

template <typename T>
Kernel MakeLoopDot(DotPlan plan) {
  // The inner loop walks rhs rows, so they must be contiguous.
  if (plan.rhs.col_stride != 1) plan.rhs.UsePacked();
  return [plan](const void* const* in, void* out) {
    std::unique_ptr<T[]> lhs_buf, rhs_buf;
    const T* lhs = ReadOperand<T, T>(in[0], plan.lhs, lhs_buf);
    const T* rhs = ReadOperand<T, T>(in[1], plan.rhs, rhs_buf);
    LoopMatmul(lhs, plan.lhs, rhs, plan.rhs, static_cast<T*>(out), plan);
  };
}

// ------------------------------------------------------- oneDNN kernel.

template <typename C>
constexpr dnnl::memory::data_type DnnlType() {
  if constexpr (std::is_same_v<C, float>) return dnnl::memory::data_type::f32;
  else if constexpr (std::is_same_v<C, bfloat16>) return dnnl::memory::data_type::bf16;
  else return dnnl::memory::data_type::f16;
}

dnnl::memory::desc ViewDesc(const MatrixView& v, dnnl::memory::data_type dt) {
  return dnnl::memory::desc({v.batch, v.rows, v.cols}, dt, {v.batch_stride, v.row_stride, v.col_stride});
}

struct DnnlMatmul {
  dnnl::matmul primitive;
  dnnl::memory::desc lhs, rhs, out, scratchpad;
};

// The matmul primitive for the views (operands of type dt, output of type
// out_dt, dt by default), or nullopt when oneDNN has no implementation other
// than its slow reference one.
std::optional<DnnlMatmul> CreateMatmul(const DotPlan& p, dnnl::memory::data_type dt,
                                       std::optional<dnnl::memory::data_type> out_dt = std::nullopt) {
  try {
    DnnlMatmul mm;
    mm.lhs = ViewDesc(p.lhs, dt);
    mm.rhs = ViewDesc(p.rhs, dt);
    mm.out = dnnl::memory::desc({p.b, p.m, p.n}, out_dt.value_or(dt), dnnl::memory::format_tag::abc);
    dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(mm.lhs, mm.rhs, mm.out), dnnl_util::UserScratchpadAttr(),
                                    dnnl_util::Engine());
    if (dnnl_util::IsReferenceImpl(pd.impl_info_str())) return std::nullopt;
    mm.scratchpad = pd.scratchpad_desc();
    mm.primitive = dnnl::matmul(pd);
    return mm;
  } catch (const dnnl::error&) {
    return std::nullopt;
  }
}

// A kernel computing T's DotGeneral with a oneDNN matmul in type C (T itself,
// or float for a type oneDNN lacks); an empty Kernel if oneDNN cannot.
template <typename T, typename C>
Kernel TryDnnlDot(DotPlan plan) {
  if constexpr (!std::is_same_v<T, C>) {
    plan.lhs.UsePacked();  // the conversion makes a copy anyway
    plan.rhs.UsePacked();
  }
  std::optional<DnnlMatmul> mm = CreateMatmul(plan, DnnlType<C>());
  if (!mm && (!plan.lhs.packed || !plan.rhs.packed)) {
    plan.lhs.UsePacked();  // contiguous layouts always have a fast implementation
    plan.rhs.UsePacked();
    mm = CreateMatmul(plan, DnnlType<C>());
  }
  if (!mm) return nullptr;
  return [plan, mm = *mm](const void* const* in, void* out) {
    std::unique_ptr<C[]> lhs_buf, rhs_buf, out_buf;
    const C* lhs = ReadOperand<T, C>(in[0], plan.lhs, lhs_buf);
    const C* rhs = ReadOperand<T, C>(in[1], plan.rhs, rhs_buf);
    void* dst = out;
    const int64_t out_size = plan.b * plan.m * plan.n;
    if constexpr (!std::is_same_v<T, C>) {
      out_buf = std::make_unique_for_overwrite<C[]>(static_cast<size_t>(out_size));
      dst = out_buf.get();
    }
    dnnl_util::Execute(mm.primitive,
                       {{DNNL_ARG_SRC, dnnl_util::Wrap(mm.lhs, lhs)},
                        {DNNL_ARG_WEIGHTS, dnnl_util::Wrap(mm.rhs, rhs)},
                        {DNNL_ARG_DST, dnnl_util::Wrap(mm.out, dst)}},
                       mm.scratchpad);
    if constexpr (!std::is_same_v<T, C>) {
      T* o = static_cast<T*>(out);
#pragma omp parallel for simd if (out_size > kParallelThreshold)
      for (int64_t i = 0; i < out_size; ++i) o[i] = ConvertElement<T>(out_buf[i]);
    }
  };
}

// ----------------------------------------- Float32 at BFloat16 precision.

// Whether oneDNN has native bf16 dot products on this CPU (AVX512-BF16 or
// AMX; DNNL_MAX_CPU_ISA can lower what it uses).
bool NativeBf16() {
  static const bool native = [] {
    const auto isa = static_cast<unsigned>(dnnl::get_effective_cpu_isa());
    const auto bf16 = static_cast<unsigned>(dnnl::cpu_isa::avx512_core_bf16);
    return (isa & bf16) == bf16;
  }();
  return native;
}

// Rounds one Float32 operand to bf16: a oneDNN reorder (vectorized, round to
// nearest even) element by element in the operand's own layout, so the
// matmul reads the copy through the same strides (a transposed operand stays
// transposed, no transposition on the way); a gather into a dense
// [B, R, C] copy for layouts a strided view cannot describe.
struct Bf16Operand {
  MatrixView view;
  std::optional<dnnl::reorder> reorder;
  dnnl::memory::desc src, dst, scratchpad;

  explicit Bf16Operand(const MatrixView& v) : view(v) {
    if (v.packed) return;
    using dt = dnnl::memory::data_type;
    src = dnnl::memory::desc({v.Size()}, dt::f32, dnnl::memory::format_tag::a);
    dst = dnnl::memory::desc({v.Size()}, dt::bf16, dnnl::memory::format_tag::a);
    try {
      dnnl::reorder::primitive_desc pd(dnnl_util::Engine(), src, dnnl_util::Engine(), dst,
                                       dnnl_util::UserScratchpadAttr());
      reorder = dnnl::reorder(pd);
      scratchpad = pd.scratchpad_desc();
    } catch (const dnnl::error&) {
      // no reorder: convert in a loop instead
    }
  }

  void Run(const void* in, void* out) const {
    if (reorder) {
      dnnl_util::Execute(*reorder, {{DNNL_ARG_FROM, dnnl_util::Wrap(src, in)}, {DNNL_ARG_TO, dnnl_util::Wrap(dst, out)}},
                         scratchpad);
    } else if (!view.packed) {
      const auto* f = static_cast<const float*>(in);
      auto* b = static_cast<bfloat16*>(out);
      const int64_t n = view.Size();
#pragma omp parallel for if (n > kParallelThreshold)
      for (int64_t i = 0; i < n; ++i) b[i] = bfloat16(f[i]);
    } else {
      GatherCopy<float, bfloat16>(static_cast<const float*>(in), static_cast<bfloat16*>(out), view.gather_dims,
                                  view.gather_strides);
    }
  }
};

// Float32 DotGeneral at precision kBFloat16: both operands rounded to bf16,
// then oneDNN's bf16 x bf16 -> f32 matmul; an empty Kernel (the Float32
// kernels run) where that is no faster. Measured on Zen 5 (2 threads) at the
// char-GPT's shapes: 1.5-1.7x faster than Float32 when the lhs rows are
// contiguous (transposed rhs included); with a transposed lhs (a weight
// gradient, contracting over the batch) oneDNN 2.6's bf16 matmul is 20%
// slower in place, and no faster after a transposing reorder. Nor is it for
// products with few rows or columns, where the roundings cost as much as
// the products save (a decode step of 4 rows: half the tokens per second).
Kernel TryBf16Dot(DotPlan plan) {
  if (!NativeBf16() || plan.lhs.packed || plan.lhs.col_stride != 1) return nullptr;
  // The roundings cost O(m k + k n) per batch, the products O(m k n).
  if (plan.m * plan.n < 32 * (plan.m + plan.n)) return nullptr;
  Bf16Operand lhs(plan.lhs), rhs(plan.rhs);  // a gathered rhs is dense: its view's strides say so already
  std::optional<DnnlMatmul> mm = CreateMatmul(plan, dnnl::memory::data_type::bf16, dnnl::memory::data_type::f32);
  if (!mm) return nullptr;
  const auto lhs_bytes = static_cast<size_t>(plan.lhs.Size()) * sizeof(bfloat16);
  const auto rhs_bytes = static_cast<size_t>(plan.rhs.Size()) * sizeof(bfloat16);
  return [lhs = std::move(lhs), rhs = std::move(rhs), mm = *mm, lhs_bytes, rhs_bytes](const void* const* in,
                                                                                      void* out) {
    // From the host block cache: fresh pages would fault on every call.
    auto lhs_bf16 = HostStorage::Allocate(lhs_bytes), rhs_bf16 = HostStorage::Allocate(rhs_bytes);
    lhs.Run(in[0], lhs_bf16->Data());
    rhs.Run(in[1], rhs_bf16->Data());
    dnnl_util::Execute(mm.primitive,
                       {{DNNL_ARG_SRC, dnnl_util::Wrap(mm.lhs, lhs_bf16->Data())},
                        {DNNL_ARG_WEIGHTS, dnnl_util::Wrap(mm.rhs, rhs_bf16->Data())},
                        {DNNL_ARG_DST, dnnl_util::Wrap(mm.out, out)}},
                       mm.scratchpad);
  };
}

// How dnnl_sgemm (row-major) reads a matrix view: 'N' with leading
// dimension row_stride when rows are contiguous, 'T' with col_stride when
// columns are.
struct GemmOperand {
  char trans = 'N';
  int64_t ld = 0;
};

std::optional<GemmOperand> AsGemmOperand(const MatrixView& v) {
  if (v.packed) return std::nullopt;  // needs a gather first: the matmul path does it
  if (v.col_stride == 1 && v.row_stride >= std::max<int64_t>(v.cols, 1)) return GemmOperand{'N', v.row_stride};
  if (v.row_stride == 1 && v.col_stride >= std::max<int64_t>(v.rows, 1)) return GemmOperand{'T', v.col_stride};
  return std::nullopt;
}

// Float32 matrix products (no batch) on oneDNN's sgemm, which reads either
// operand transposed in place. Measured against the matmul primitive on the
// same shapes (2 threads, AVX-512): 1.1-1.5x faster at 128-256 and at
// 1024-2048, level on the MLP's shapes, 7% slower at 512.
Kernel TrySgemm(const DotPlan& plan) {
  if (plan.b != 1) return nullptr;
  const std::optional<GemmOperand> a = AsGemmOperand(plan.lhs), b = AsGemmOperand(plan.rhs);
  if (!a || !b) return nullptr;
  return [m = plan.m, n = plan.n, k = plan.k, a = *a, b = *b](const void* const* in, void* out) {
    const dnnl_status_t status = dnnl_sgemm(a.trans, b.trans, m, n, k, 1.0f, static_cast<const float*>(in[0]), a.ld,
                                            static_cast<const float*>(in[1]), b.ld, 0.0f, static_cast<float*>(out),
                                            std::max<int64_t>(n, 1));
    if (status != dnnl_success) Throw("cpu DotGeneral: dnnl_sgemm failed with status " + std::to_string(status));
  };
}

// The fastest available kernel for dtype T at `precision`.
template <typename T>
Kernel MakeTypedDot(const DotPlan& plan, ir::DotPrecision precision) {
  Kernel k;
  if constexpr (std::is_same_v<T, float>) {
    if (precision == ir::DotPrecision::kBFloat16) k = TryBf16Dot(plan);
    if (!k) k = TrySgemm(plan);
  }
  if constexpr (std::is_same_v<T, float> || kIsHalf<T>) {
    if (!k) k = TryDnnlDot<T, T>(plan);
  }
  if constexpr (kIsHalf<T>) {
    if (!k) k = TryDnnlDot<T, float>(plan);
  }
  return k ? k : MakeLoopDot<T>(plan);
}

Kernel MakeDotGeneral(const ir::Function& fn, const ir::Instruction& instr) {
  const DotPlan plan = MakeDotPlan(fn, instr);
  const int64_t out_bytes = instr.shape.ByteSize();
  if (out_bytes == 0) return [](const void* const*, void*) {};
  if (plan.k == 0) {  // empty sums
    return [out_bytes](const void* const*, void* out) { std::memset(out, 0, static_cast<size_t>(out_bytes)); };
  }
  return DispatchDType(instr.shape.DType(), [&](auto zero) -> Kernel {
    using T = decltype(zero);
    if constexpr (std::is_same_v<T, bool>) {
      Throw("cpu DotGeneral: Bool is not supported (" + instr.location + ")");
    } else {
      return MakeTypedDot<T>(plan, ir::Attr<ir::DotGeneralAttrs>(instr).precision);
    }
  });
}

}  // namespace

void RegisterDotKernels(KernelTable& table) {
  table[static_cast<size_t>(ir::OpType::kDotGeneral)] = MakeDotGeneral;
}

}  // namespace kiln::backends::cpu
