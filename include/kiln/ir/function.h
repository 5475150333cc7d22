// Copyright 2026 The Kiln Authors.
// The IR handed from the graph layer to a backend: a function of the op set.
//
// A Function is a flat list of instructions in topological order (every
// operand id is smaller than the instruction's own id), its parameters and its
// outputs. Each instruction produces one value with a fully known shape.
// Sub-functions (the condition and body of a While, the branches of an If)
// live in Function::subfunctions and are referred to by index from the
// instruction's ControlFlowAttrs. A control-flow instruction produces a tuple
// (its shape is the placeholder TupleShape()); GetTupleElement instructions
// read its elements, so every other instruction still produces one array.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "kiln/core/shapes.h"
#include "kiln/ir/ops.h"

namespace kiln::ir {

/// Attributes of ops that have none.
struct NoAttrs {
  friend bool operator==(const NoAttrs&, const NoAttrs&) = default;
};

/// Parameter: position in the function's argument list and a debug name.
struct ParameterAttrs {
  int index = 0;
  std::string name;
  friend bool operator==(const ParameterAttrs&, const ParameterAttrs&) = default;
};

/// Constant: the literal's bytes (row-major, the instruction's shape), shared
/// so that copying an instruction is cheap.
struct ConstantAttrs {
  std::shared_ptr<const std::vector<std::byte>> data;
  friend bool operator==(const ConstantAttrs& a, const ConstantAttrs& b) {
    return a.data == b.data || (a.data && b.data && *a.data == *b.data);
  }
};

/// Ops parameterized by a list of axes: Transpose (the permutation: output axis
/// i is operand axis axes[i]), BroadcastInDim (operand axis i maps to output
/// axis axes[i]), Reverse, Reduce* (the reduced axes), Iota and Concatenate
/// (axes[0]).
struct AxesAttrs {
  std::vector<int64_t> axes;
  friend bool operator==(const AxesAttrs&, const AxesAttrs&) = default;
};

/// Slice: [start, limit) with stride, per axis.
struct SliceAttrs {
  std::vector<int64_t> starts, limits, strides;
  friend bool operator==(const SliceAttrs&, const SliceAttrs&) = default;
};

/// Pad: per axis padding before, after and between elements. Low and high may
/// be negative (cropping); interior is >= 0.
struct PadAttrs {
  std::vector<int64_t> low, high, interior;
  friend bool operator==(const PadAttrs&, const PadAttrs&) = default;
};

/// DynamicSlice: the slice sizes (start indices are operands).
struct DynamicSliceAttrs {
  std::vector<int64_t> sizes;
  friend bool operator==(const DynamicSliceAttrs&, const DynamicSliceAttrs&) = default;
};

/// ArgMinMax: the reduced axis and whether it looks for the minimum. The
/// output dtype is the instruction's shape dtype.
struct ArgMinMaxAttrs {
  int64_t axis = 0;
  bool is_min = false;
  friend bool operator==(const ArgMinMaxAttrs&, const ArgMinMaxAttrs&) = default;
};

/// How much precision a Float32 DotGeneral may trade for speed (XLA's
/// PrecisionConfig, JAX's `precision=`, PyTorch's
/// `torch.set_float32_matmul_precision`). A permission, not a demand: a
/// backend without a faster lower-precision path computes in full Float32.
/// Other dtypes ignore it.
enum class DotPrecision : uint8_t {
  /// Full Float32 products and sums (the default).
  kHighest = 0,
  /// Each operand may be rounded to BFloat16 (round to nearest even) before
  /// the products, which are summed in Float32: about 3 significant digits
  /// per product, 1.5-1.7x the Float32 matmul on CPUs with AVX512-BF16; on
  /// CUDA, cuBLASLt's CUBLAS_COMPUTE_32F_FAST_16BF (bf16 tensor cores).
  kBFloat16 = 1,
};

/// "highest" or "bfloat16".
std::string_view DotPrecisionName(DotPrecision p);
/// The precision named by DotPrecisionName; throws kiln::Error for another name.
DotPrecision ParseDotPrecision(std::string_view name);

/// DotGeneral: output axes are batch axes, then lhs free axes, then rhs free
/// axes (each in operand order).
struct DotGeneralAttrs {
  std::vector<int64_t> lhs_batch, lhs_contracting, rhs_batch, rhs_contracting;
  DotPrecision precision = DotPrecision::kHighest;  ///< Float32 dots only (see DotPrecision).
  friend bool operator==(const DotGeneralAttrs&, const DotGeneralAttrs&) = default;
};

/// ConvGeneral (StableHLO convolution). Axes of input, kernel and output are
/// named explicitly so any layout (NHWC, NCHW, HWIO, ...) is expressible.
struct ConvAttrs {
  int64_t input_batch_axis = 0, input_feature_axis = 1;
  std::vector<int64_t> input_spatial_axes;
  int64_t kernel_input_feature_axis = 0, kernel_output_feature_axis = 1;
  std::vector<int64_t> kernel_spatial_axes;
  int64_t output_batch_axis = 0, output_feature_axis = 1;
  std::vector<int64_t> output_spatial_axes;
  std::vector<int64_t> strides;            // per spatial axis
  std::vector<int64_t> padding_low, padding_high;  // per spatial axis
  std::vector<int64_t> input_dilation;     // "lhs dilation", per spatial axis
  std::vector<int64_t> kernel_dilation;    // "rhs dilation", per spatial axis
  int64_t feature_group_count = 1;
  int64_t batch_group_count = 1;
  friend bool operator==(const ConvAttrs&, const ConvAttrs&) = default;
};

/// The reduction of ReduceWindow.
enum class WindowReduction : uint8_t { kSum, kProduct, kMax, kMin };

/// "sum", "product", "max", "min".
const char* WindowReductionName(WindowReduction reduction);

/// ReduceWindow and SelectAndScatter windows, per operand axis.
struct WindowAttrs {
  WindowReduction reduction = WindowReduction::kSum;  // SelectAndScatter: kMax or kMin select
  std::vector<int64_t> window_dimensions, strides, base_dilations, window_dilations;
  std::vector<int64_t> padding_low, padding_high;
  friend bool operator==(const WindowAttrs&, const WindowAttrs&) = default;
};

/// Gather, as in XLA/StableHLO.
struct GatherAttrs {
  std::vector<int64_t> offset_dims, collapsed_slice_dims, start_index_map;
  int64_t index_vector_dim = 0;
  std::vector<int64_t> slice_sizes;
  bool indices_are_sorted = false;
  friend bool operator==(const GatherAttrs&, const GatherAttrs&) = default;
};

/// Scatter*, as in XLA/StableHLO.
struct ScatterAttrs {
  std::vector<int64_t> update_window_dims, inserted_window_dims, scatter_dims_to_operand_dims;
  int64_t index_vector_dim = 0;
  bool indices_are_sorted = false, unique_indices = false;
  friend bool operator==(const ScatterAttrs&, const ScatterAttrs&) = default;
};

/// While and If. Each sub-function takes some leading values, then the
/// instruction's operands listed in captures[k] (the values its traced C++
/// function closed over), in that order.
///   While: subfunctions = {cond, body}. The first num_carried operands are the
///     initial carry; cond(carry..., captures[0]...) returns a Bool scalar,
///     body(carry..., captures[1]...) returns the next carry (same shapes).
///     The results are the final carry. max_trip_count >= 0 bounds the number
///     of body runs (exceeding it is a run-time error; reverse-mode autodiff
///     needs it); -1 means unbounded.
///   If: operand 0 is the Bool scalar predicate; subfunctions = {then, else},
///     each taking only its captures; both return `results`.
struct ControlFlowAttrs {
  std::vector<int> subfunctions;
  std::vector<std::vector<int64_t>> captures;  // per sub-function: operand indices
  int64_t num_carried = 0;
  int64_t max_trip_count = -1;
  std::vector<shapes::Shape> results;  // the tuple's element shapes
  friend bool operator==(const ControlFlowAttrs&, const ControlFlowAttrs&) = default;
};

/// Sort: the operands (arrays of one shape) are permuted together along
/// `axis`. With comparator < 0, the order is lexicographic over the operands
/// listed in `keys`, each ascending or descending (descending[i]) in the total
/// order -Inf < ... < -0 = +0 < ... < +Inf < NaN for floats (descending is
/// its exact reverse, NaN first); Bool false < true. With comparator >= 0 it
/// is sub-function `comparator`, which takes (lhs_0, rhs_0, lhs_1, rhs_1,
/// ...) as scalars and returns a Bool scalar: whether lhs goes before rhs (a
/// strict weak order). Equal elements keep their order when `stable`.
struct SortAttrs {
  int64_t axis = 0;
  bool stable = true;
  std::vector<int64_t> keys;
  std::vector<bool> descending;  // per key
  int comparator = -1;
  friend bool operator==(const SortAttrs&, const SortAttrs&) = default;
};

/// The linear-algebra ops, on matrices in the last two axes of their operands
/// (leading axes are a batch). Each op reads the flags it has:
///   Cholesky(a): the lower (lower) or upper factor; only that triangle of a
///     is read. A matrix that is not positive definite gives NaN.
///   TriangularSolve(a, b): solves op(a) x = b (left_side) or x op(a) = b,
///     op(a) = a or its transpose (transpose_a); only the lower (lower) or
///     upper triangle of a is read, its diagonal taken as ones when
///     unit_diagonal. A zero on a's diagonal gives NaN.
///   Lu(a) -> (lu, pivots, permutation): partial pivoting, a[permutation] =
///     L U with L unit lower (below lu's diagonal) and U upper (lu's upper
///     triangle); pivots and permutation are Int32, 0-based.
///   Qr(a) -> (q, r): q [m, k] and r [k, n], k = min(m, n), or q [m, m] and
///     r [m, n] with full_matrices.
///   Eigh(a) -> (eigenvalues, eigenvectors): of a symmetric matrix, reading its
///     lower (lower) or upper triangle; eigenvalues ascending, eigenvectors in
///     columns.
///   Svd(a) -> (u, s, vt), a = u diag(s) vt, s descending (reduced unless
///     full_matrices), or (s) alone without compute_uv.
/// A matrix holding a NaN or an infinity gives NaN results.
struct LinalgAttrs {
  bool lower = true;
  bool left_side = true;
  bool transpose_a = false;
  bool unit_diagonal = false;
  bool full_matrices = false;
  bool compute_uv = true;
  friend bool operator==(const LinalgAttrs&, const LinalgAttrs&) = default;
};

/// Attention(q, k, v[, mask]): softmax(scale q kᵀ, masked) v per head, with
/// q [batch, heads, q_len, head_dim] and k, v [batch, kv_heads, kv_len,
/// head_dim] (query head h reads kv head h / (heads / kv_heads)). A score is
/// replaced by masked_value where the optional Bool mask [batch or 1, heads
/// or 1, q_len, kv_len] is false, and, when causal, where the key is after
/// the query (query i sits at position kv_len - q_len + i). Output [batch,
/// heads, q_len, head_dim]. Backends that implement it may never hold the
/// whole score matrix (the CPU runs blocks of rows with a running softmax).
///
/// AttentionGrad(q, k, v, out, d_out[, mask]), with the same attributes: the
/// tuple (dq, dk, dv) of Attention's gradients for the output's cotangent
/// d_out. `out` must be Attention(q, k, v[, mask]) with these attributes (it
/// gives each row's rowsum(d_out * out) without another pass over the keys;
/// another value gives wrong gradients, and AttentionGrad's own gradient
/// assumes it). Backends that implement it recompute the weights block by
/// block, in memory linear in the lengths. Emitted by Attention's VJP where
/// the backend implements it.
struct AttentionAttrs {
  double scale = 1;
  bool causal = false;
  double masked_value = 0;
  friend bool operator==(const AttentionAttrs&, const AttentionAttrs&) = default;
};

/// Fft(x): the discrete Fourier transform over the last lengths.size() (1 to
/// 3) axes, as StableHLO's fft. kFft: complex -> complex, X[k] = sum_n x[n]
/// e^{-2 pi i k n / N}. kIfft: its inverse, with the 1/N factor (N the
/// product of lengths). kRfft: real -> complex, the last axis keeps its
/// first n/2 + 1 outputs (the others are their conjugates). kIrfft: complex
/// -> real, the inverse of kRfft: the input's last axis has lengths.back()/2
/// + 1 elements, read as the non-redundant half of a Hermitian spectrum (the
/// imaginary parts of its zero and, for even lengths, Nyquist terms are
/// ignored). `lengths` are the transformed axes' sizes in the time domain.
enum class FftType : uint8_t { kFft, kIfft, kRfft, kIrfft };
/// "FFT", "IFFT", "RFFT", "IRFFT".
std::string_view FftTypeName(FftType type);
struct FftAttrs {
  FftType type = FftType::kFft;
  std::vector<int64_t> lengths;
  friend bool operator==(const FftAttrs&, const FftAttrs&) = default;
};

/// Collective(x): a communication among the processes of a distributed job
/// (see kiln/distributed/distributed.h), every process running the same
/// graph. kAllReduce: every process gets the elementwise reduction of all
/// processes' x (same shape). kAllGather: the processes' x concatenated along
/// axis 0, in rank order (dim 0 times the world size). kReduceScatter: the
/// reduction, of which process r keeps the r-th of world-size equal slices
/// along axis 0. kBroadcast: process `root`'s x. kMean is kSum divided by the
/// world size. `world_size` is fixed when the graph is traced (1 outside a
/// distributed job, where every collective is the identity).
enum class CollectiveKind : uint8_t { kAllReduce, kAllGather, kReduceScatter, kBroadcast };
/// The reductions of AllReduce and ReduceScatter.
enum class ReduceOp : uint8_t { kSum, kMean, kMax, kMin };
/// "AllReduce", "AllGather", "ReduceScatter", "Broadcast".
std::string_view CollectiveKindName(CollectiveKind kind);
/// "sum", "mean", "max", "min".
std::string_view ReduceOpName(ReduceOp op);
struct CollectiveAttrs {
  CollectiveKind kind = CollectiveKind::kAllReduce;
  ReduceOp reduce = ReduceOp::kSum;
  int root = 0;
  int world_size = 1;
  friend bool operator==(const CollectiveAttrs&, const CollectiveAttrs&) = default;
};

/// GetTupleElement: which element of its operand's tuple it reads.
struct TupleIndexAttrs {
  int64_t index = 0;
  friend bool operator==(const TupleIndexAttrs&, const TupleIndexAttrs&) = default;
};

/// Attributes of an instruction; which alternative is used depends on the op.
using Attributes = std::variant<NoAttrs, ParameterAttrs, ConstantAttrs, AxesAttrs, SliceAttrs, PadAttrs,
                                DynamicSliceAttrs, ArgMinMaxAttrs, DotGeneralAttrs, ConvAttrs, WindowAttrs,
                                GatherAttrs, ScatterAttrs, ControlFlowAttrs, SortAttrs, TupleIndexAttrs, LinalgAttrs,
                                AttentionAttrs, FftAttrs, CollectiveAttrs>;

/// The shape of a tuple-producing instruction (ProducesTuple): an empty Bool
/// vector, so code that sizes every instruction's value sees zero bytes.
inline shapes::Shape TupleShape() { return shapes::Shape(dtypes::Bool, {0}); }

/// One operation producing one value.
struct Instruction {
  OpType op = OpType::kParameter;
  std::vector<int> operands;  // ids of earlier instructions
  shapes::Shape shape;        // the output shape
  Attributes attrs;
  std::string location;  // the user's file:line that created it, for messages
};

/// A function of the op set, the unit a backend compiles.
struct Function {
  std::string name;
  std::vector<Instruction> instructions;  // topological order; id = index
  std::vector<int> parameters;            // instruction ids, in argument order
  std::vector<int> outputs;               // instruction ids (may repeat, may be parameters)
  std::vector<std::shared_ptr<const Function>> subfunctions;

  /// A readable listing, one instruction per line, for debugging:
  ///   %3 = Add(%1, %2) : Float32[2, 3]        # model.cc:12
  std::string ToString() const;
  /// Checks structural invariants (operand ids in range and earlier,
  /// parameters and outputs valid, control-flow instructions consistent with
  /// their sub-functions, recursively); throws kiln::Error if broken.
  void Validate() const;

 private:
  void ValidateTupleUse(int id) const;
  void ValidateSort(int id) const;
  void ValidateFactorization(int id) const;
  void ValidateAttentionGrad(int id) const;
};

/// Typed access to attributes: Attr<SliceAttrs>(instr).
template <typename T>
const T& Attr(const Instruction& instr) {
  return std::get<T>(instr.attrs);
}

/// The element shapes of tuple instruction `in` of `fn`: a While's or If's
/// results, a Sort's operands' shapes, a factorization's results,
/// AttentionGrad's (q's, k's, v's shapes). Empty for other instructions.
std::vector<shapes::Shape> TupleElementShapes(const Function& fn, const Instruction& in);

/// The results of factorization `op` (Lu, Qr, Eigh, Svd; see LinalgAttrs) of
/// a matrix or batch of matrices `a` (rank >= 2, checked by the caller).
std::vector<shapes::Shape> FactorizationResults(OpType op, const shapes::Shape& a, const LinalgAttrs& attrs);

}  // namespace kiln::ir
