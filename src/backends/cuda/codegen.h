// Copyright 2026 The Kiln Authors.
// Kernel generation for the CUDA backend: turns a function of the op set into
// a program of steps (generated kernels, cuBLASLt products, buffer aliases).
//
// Pure host code with no CUDA dependency, so it is unit-tested (and every
// kernel it writes is compiled by NVRTC for sm_80 and sm_90) on machines
// without a GPU.
//
// Fusion: every op whose output element is a function of its output index
// (elementwise ops, layout ops, Iota, Pad, Concatenate, the dynamic slices)
// is computed inside the kernel of its consumer when it has one consumer,
// as XLA's loop fusion does; reductions fuse their producers the same way.
// Values with several consumers, outputs and the operands of ops that need
// buffers (DotGeneral, ConvGeneral, windows, Gather/Scatter) are written to
// memory.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "kiln/backends/backend.h"
#include "kiln/ir/function.h"

namespace kiln::backends::cuda {

/// Threads per block of every generated kernel.
inline constexpr int kBlockSize = 256;

/// One generated kernel. Its parameters are the `inputs` buffers (in order)
/// and then the output buffer.
struct KernelSpec {
  std::string name;             // the __global__ entry point
  std::string source;           // CUDA C++ of the __global__ function (ModuleSource adds the prelude)
  std::vector<int> inputs;      // instruction ids of the buffers read
  int64_t work_items = 0;       // grid-stride loop trip count (threads or blocks)
  bool block_per_item = false;  // one block of kBlockSize threads per work item
  bool vectorized = false;      // four elements per thread, vector loads (codegen_vector.cc)
  /// Per input: read only at the output's own linear index, so the output
  /// may overwrite it in place when it is donated or dies here.
  std::vector<bool> elementwise_input;
};

/// A matrix product [batch, m, k] x [batch, k, n] -> [batch, m, n] (row-major)
/// for cuBLASLt; `transpose_lhs` means the lhs is stored [batch, k, m],
/// `transpose_rhs` that the rhs is stored [batch, n, k].
struct MatmulSpec {
  int lhs = 0, rhs = 0;
  int64_t batch = 1, m = 0, n = 0, k = 0;
  bool transpose_lhs = false, transpose_rhs = false;
  dtypes::DType dtype = dtypes::Float32;  // of the operands and the result
  /// Float32 operands may be rounded to BFloat16 for the products (the
  /// DotGeneral's DotPrecision::kBFloat16): cuBLASLt's
  /// CUBLAS_COMPUTE_32F_FAST_16BF, on bf16 tensor cores with Float32 sums.
  bool bf16_products = false;
  /// Instruction id of a [n] vector (of `dtype`) added to every row of the
  /// product, cuBLASLt's bias epilogue (a Dense layer's x W + b as one
  /// call); -1: none.
  int bias = -1;
};

/// A convolution on cuDNN (its convolution API), in cuDNN's terms and axis
/// order: the image x [n, c, spatial...], the filter w [k, c / groups,
/// spatial...] and the response y [n, k, spatial...], related by
///   y[n, k, o] = sum over c of its group and r of x[n, c, o * stride - padding + r * dilation] * w[k, c, r]
/// (cross-correlation, zero outside x), where y's spatial extents are
/// cuDNN's forward formula (x + 2 padding - dilation (w - 1) - 1) / stride + 1.
/// x and y are views of Kiln values, each packed NCHW or NHWC (the strides
/// name it); w is packed KCRS or, `channels_last`, KRSC. A convolution with
/// one spatial axis gets a leading unit axis (cuDNN takes 2 or 3).
struct ConvSpec {
  enum class Kind : uint8_t {
    kForward,         // y from x and w
    kBackwardData,    // x from y and w: the transposed convolution
    kBackwardFilter,  // w from x and y: summed over the batch
  };
  Kind kind = Kind::kForward;
  dtypes::DType dtype = dtypes::Float32;  // Float32, Float16 or BFloat16 (Float32 accumulation)
  std::vector<int64_t> x_dims, x_strides, y_dims, y_strides, w_dims;  // in elements, cuDNN's order
  bool channels_last = false;                                         // w's format: KRSC (else KCRS)
  std::vector<int64_t> padding, strides, dilation;                    // per spatial axis
  int64_t groups = 1;
  /// The values read, by instruction id: kForward {x, w}, kBackwardData
  /// {y, w}, kBackwardFilter {x, y}. The step's value is the third.
  int a = 0, b = 0;
  /// Only algorithms that give the same bits on every run.
  bool deterministic = false;
  /// The ConvGeneral instruction this call computes (its id in the
  /// program's function), which ProgramOptions::cudnn_refused names.
  int id = -1;
  /// The strides (elements) of w's packed format, in cuDNN's axis order.
  std::vector<int64_t> FilterStrides() const;
};

/// The strides (elements) of `dims`, in cuDNN's axis order [n, c,
/// spatial...], packed NCHW, or NHWC when `channels_last` (for filters:
/// KCRS or KRSC).
std::vector<int64_t> CudnnPackedStrides(const std::vector<int64_t>& dims, bool channels_last);

/// Whether `s`'s extents, padding, strides, dilation and groups are ones
/// cuDNN accepts: 2 or 3 spatial axes, y's extents those of the forward
/// formula, nonnegative padding.
bool ConvSpecIsConsistent(const ConvSpec& s);

/// A library call (cuSOLVER, cuBLAS, cuFFT) that writes the buffer of its
/// step's value, which an earlier step allocated (and for most kinds
/// filled: they work in place). The dense linear algebra is column-major: a
/// row-major matrix's bytes read column-major are its transpose, and the
/// fields below are in the libraries' (column-major) terms, which the
/// generator derives from the op's row-major attributes. The emulator runs
/// the same fields through LAPACK, FFTW and a reference loop.
struct LibraryCall {
  enum class Kind : uint8_t {
    kPotrf,  // Cholesky factor of each n x n matrix (its `lower` triangle); outputs {info}
    kTrsm,   // op(A) X = B (left_side) or X op(A) = B for each rows x cols B, A triangular; no outputs
    kGetrf,  // LU with partial pivoting; outputs {pivots (1-based), info}
    kGeqrf,  // QR's Householder reflectors (below the diagonal) and R; outputs {tau [batch, min], info}
    kOrgqr,  // Q's first `cols` columns from `reflectors` reflectors; inputs {tau}; outputs {info}
    kSyevd,  // eigenvectors (over the matrix; its `lower` triangle read) of each n x n; outputs {w [batch, n], info}
    kGesvd,  // SVD of each rows x cols matrix (rows >= cols); outputs {s [batch, cols], u, vt, info}, or
             // {s, info} without compute_uv; u is rows x rows (full_matrices) or rows x cols, vt cols x cols
    // Fourier transforms (cuFFT), unnormalized, over `lengths` (1-3 axes) of
    // `batch` contiguous items; dtype is the real part's:
    kFft,         // complex to complex in place (inverse: the + sign)
    kRfft,        // real inputs[0] to the half spectrum (last axis n / 2 + 1) in x
    kIrfftLead,   // IRFFT's first stage: the inverse complex transform over `lengths` (the leading transformed
                  // axes) of each of the `cols` columns of each item, in place
    kIrfft,       // the half spectrum inputs[0] (overwritten) to real x over lengths = {n}
    // The distributed engine (src/distributed/, Gloo) on host copies of the
    // buffers: AllReduce and Broadcast in place on x, AllGather and
    // ReduceScatter from inputs[0] into x.
    kCollective,
  };
  Kind kind = Kind::kPotrf;
  dtypes::DType dtype = dtypes::Float32;  // Float32 or Float64 (kCollective: any)
  /// Matrices, stored one after the other, each rows x cols with leading
  /// dimension rows (potrf, syevd: n = rows = cols).
  int64_t batch = 1;
  int64_t rows = 0, cols = 0;
  bool lower = false;                     // potrf, trsm, syevd: the triangle read (and written)
  bool left_side = true, transpose = false, unit_diagonal = false;  // trsm (op(A) = Aᵀ when transpose)
  int64_t reflectors = 0;                 // orgqr
  bool full_matrices = false, compute_uv = true;  // gesvd: u all rows columns and vt all cols rows, or min(...)
  std::vector<int64_t> lengths;           // the FFTs
  bool inverse = false;                   // kFft
  ir::CollectiveAttrs collective;         // kCollective, of `dtype` (any)
  int64_t in_count = 0, out_count = 0;    // kCollective: elements of its operand and of x
  /// One batched library call for all the matrices (pointer arrays; 32-bit
  /// sizes and pivots) rather than the 64-bit entry point per matrix.
  bool batched = false;
  /// Values the call reads besides the matrices it works on in place: trsm
  /// {a} (the triangular matrices), orgqr {tau}; a batched call then adds
  /// the arrays of device pointers to each matrix (Uint64 [batch], written
  /// by a generated kernel): trsm's to a's and to x's, the others' to x's.
  std::vector<int> inputs;
  /// Scratch values the step allocates and the library writes, per matrix
  /// [batch, ...]: info is Int32, getrf's pivots Int32 when batched, else Int64.
  std::vector<int> outputs;
};

/// What a step does.
enum class StepKind : uint8_t {
  kParameter,  // the value is argument `index` of Execute
  kConstant,   // uploaded once at compile time
  kAlias,      // same bytes as operand 0 (Reshape, Bitcast)
  kKernel,     // kernels[index] writes a new buffer
  kUpdate,     // kernels[index] writes into the buffer the previous step wrote (Scatter's second pass)
  kMatmul,     // matmuls[index]
  kConv,       // convs[index] (cuDNN)
  kLibrary,     // library_calls[index], on the value's buffer an earlier step allocated (most fill it first)
  kWhile,      // runs the While's cond and body sub-functions (their own programs) until cond is false
  kIf,         // runs the If's chosen branch (its own program)
  kTupleElement,  // element `index` of the While or If that is operand 0 (its buffer, shared)
};

/// One step of a program; steps run in order, one value each (kUpdate
/// revisits the value of the step before it).
struct Step {
  StepKind kind = StepKind::kKernel;
  int value = 0;  // the instruction id the step produces
  int index = 0;  // into Program::kernels, matmuls or library_calls, the parameter position, or the tuple element
  /// kTupleElement: the last reader of its element, which takes the buffer
  /// over (so it can be updated in place) instead of sharing it.
  bool take = false;
};

/// A compiled function: the (canonicalized) function it runs and its steps.
/// A Sort's value is its permutation (Int32, the operands' shape: at each
/// position along the axis, the position its element comes from); its
/// GetTupleElements gather the operands by it inside their consumers.
/// While and If run sub-functions, each compiled to a program of its own by
/// the executable; their results are handed out by kTupleElement steps.
struct Program {
  ir::Function function;  // with DotGeneral operands transposed to [batch, free, contracting] layouts
  std::vector<Step> steps;
  std::vector<KernelSpec> kernels;
  std::vector<MatmulSpec> matmuls;
  std::vector<ConvSpec> convs;
  std::vector<LibraryCall> library_calls;
  /// Per instruction id: whether the value has a buffer (false: it is
  /// computed inside its consumers' kernels).
  std::vector<bool> materialized;
  /// Scratch values the generator appended to `function` (im2col patches,
  /// a factorization's work areas and results), each with the instruction
  /// whose steps made it.
  std::map<int, int> scratch_owner;
};

/// Which dtypes DotGeneral runs on cuBLASLt (the others use a generated kernel).
bool MatmulDType(dtypes::DType dtype);

/// The ops and dtypes GenerateProgram handles: the CUDA backend's and its
/// emulator's capabilities.
Capabilities ProgramCapabilities();

/// Below this many elements an elementwise kernel is launch-bound, and its
/// vector form would only cost NVRTC time: ProgramOptions's default.
inline constexpr int64_t kVectorizeMinElements = int64_t{1} << 20;

/// Choices that change the generated code.
struct ProgramOptions {
  /// Scatters that combine (sum, max, min) apply their updates in order on
  /// one thread instead of atomically in parallel, so the results are the
  /// same on every run (float sums in the CPU's order); slower on large
  /// scatters. The CUDA backend sets it from KILN_CUDA_DETERMINISTIC=1.
  bool deterministic = false;
  /// Products followed by the addition of a row vector (x W + b) add it in
  /// cuBLASLt's bias epilogue instead of a kernel. The CUDA backend turns it
  /// off for a program where cuBLASLt has no algorithm with the epilogue.
  bool epilogues = true;
  /// Convolutions cuDNN can run (Float32, Float16, BFloat16; 1-3 spatial
  /// axes; packed NCHW or NHWC images) are kConv steps; the others, and all
  /// when false, are im2col and a cuBLASLt product, or a direct kernel. The
  /// CUDA backend turns it off where cuDNN is missing, or for a program
  /// where cuDNN has no algorithm for one of them.
  bool cudnn = false;
  /// ConvGeneral instructions (ConvSpec::id) that stay off cuDNN, as if it
  /// were off for them alone: the CUDA backend adds a convolution here when
  /// cuDNN has no algorithm for it, so the others keep cuDNN.
  std::vector<int> cudnn_refused;
  /// Elementwise kernels of at least this many elements read their
  /// same-shape inputs and write their output four elements per thread with
  /// vector loads and stores (16 bytes for Float32) where every buffer is
  /// aligned for them, so more bytes are in flight per thread
  /// (codegen_vector.cc); 0 turns it off.
  int64_t vectorize_min_elements = kVectorizeMinElements;
};

/// The options the environment asks for: KILN_CUDA_DETERMINISTIC=1,
/// KILN_CUDA_CUDNN=0 (no cuDNN; `cudnn` is true otherwise), and
/// KILN_CUDA_VECTORIZE=0 (no vector loads) or =all (from four elements;
/// kVectorizeMinElements otherwise).
ProgramOptions ProgramOptionsFromEnvironment();

/// Plans and generates the kernels of `fn`. Throws kiln::Error naming the op
/// and its location for anything the backend cannot run.
Program GenerateProgram(const ir::Function& fn, const ProgramOptions& options = {});

/// The CUDA C++ of all of a program's kernels, with the prelude (and the
/// complex math where the program has complex values) in one module (the
/// emulator compiles it; tests compile it with NVRTC).
std::string ModuleSource(const Program& program);

/// A program's kernels as the modules an executable compiles. NVRTC
/// compiles a module on one thread, at about 28 ms of fixed cost plus
/// 10-80 ms per kernel, so a program's kernels are dealt into several
/// modules that compile in parallel. Kernels identical up to their names
/// (an Adam update per same-shaped variable, say) are compiled once.
struct KernelModules {
  std::vector<std::string> sources;  // each: the prelude (and the extras the program uses), then its kernels
  std::vector<int> module_of;        // per kernel of the program: the module holding its code
  std::vector<std::string> entry;    // per kernel: its code's entry point there (an identical kernel's name)
};

/// Kernels per module in SplitModules: few enough for parallelism, enough
/// to keep the fixed cost a fraction.
inline constexpr int kKernelsPerModule = 4;

/// Splits `program`'s kernels into modules of up to `per_module` distinct
/// kernels, in program order (deterministic, so the disk cache's keys do
/// not depend on the machine).
KernelModules SplitModules(const Program& program, int per_module = kKernelsPerModule);

/// Whether a program has complex values (its module then includes
/// complex_math.cuh).
bool UsesComplex(const Program& program);

/// Whether a program has Attention or AttentionGrad (its module then
/// includes attention.cuh).
bool UsesAttention(const Program& program);

/// Whether a program has vectorized kernels (its modules then include
/// VectorSource's KVec4).
bool UsesVectors(const Program& program);

/// The CUDA C++ type a dtype is stored as ("float", "unsigned short" for
/// Float16, ...).
std::string StorageType(dtypes::DType dtype);

}  // namespace kiln::backends::cuda
