// Copyright 2026 The Kiln Authors.
// The CUDA code generator (see generator.h): linear algebra as LibraryCall
// library calls (cuSOLVER, cuBLAS) with generated kernels around them, and
// the factorizations' tuple elements.
#include "src/backends/cuda/generator.h"

#include <algorithm>
#include <utility>

namespace kiln::backends::cuda::gen {

int Generator::AddLibraryCall(const LibraryCall& s) {
  p_.library_calls.push_back(s);
  return static_cast<int>(p_.library_calls.size()) - 1;
}

// Row-major L (A = L Lᵀ) is the column-major reading of U (A = UᵀU): the
// library factors the opposite triangle of the same bytes.
void Generator::Cholesky(int id) {
  const ir::Instruction& in = I(id);
  const auto& d = in.shape.Dims();
  if (d.size() < 2 || d.back() != d[d.size() - 2] || in.shape != I(in.operands[0]).shape) {
    Unsupported(in, "has inconsistent shapes " + I(in.operands[0]).shape.ToString() + " -> " + in.shape.ToString());
  }
  RequireSolverDType(in, in.shape);
  LibraryCall s = Spec(LibraryCall::Kind::kPotrf, in.shape.DType(), in.shape.Size() / (d.back() * d.back()), d.back(),
                       d.back());
  s.lower = !ir::Attr<ir::LinalgAttrs>(in).lower;
  s.batched = s.batch > 1 && s.rows <= kBatchedOrder;
  p_.steps.push_back({StepKind::kKernel, id, Add(CopyOperand(id))});
  s.outputs = {AddScratch(shapes::Shape(dtypes::Int32, {s.batch}))};
  if (s.batched) s.inputs = {PointerArray(id, s.batch, s.rows * s.cols)};
  p_.steps.push_back({StepKind::kLibrary, id, AddLibraryCall(s)});
  p_.steps.push_back({StepKind::kUpdate, id, Add(CholeskyFinish(id, s))});
}

// NaN where potrf failed (not positive definite) or the factor is not
// finite (the triangle read held NaN or Inf); zeros in the other triangle.
KernelSpec Generator::CholeskyFinish(int id, const LibraryCall& s) {
  const std::string T = ComputeType(s.dtype), N = Str(s.rows), NN = Str(s.rows * s.rows);
  // The row-major triangle kept (the opposite of the column-major one).
  const std::string keep = s.lower ? "c >= r" : "c <= r";
  KernelBuilder b(fn_, p_.materialized);
  const std::string info = b.Input(s.outputs[0]);
  std::string body = "    __shared__ int bad;\n";
  body += "    const i64 base = mat * " + NN + ";\n";
  body += "    if (threadIdx.x == 0) bad = " + info + "[mat] != 0;\n";
  body += "    __syncthreads();\n";
  body += "    for (i64 e = threadIdx.x; e < " + NN + "; e += blockDim.x) {\n";
  body += "      const i64 r = e / " + N + ", c = e % " + N + ";\n";
  body += "      if (" + keep + " && !(out[base + e] - out[base + e] == (" + T + ")0)) bad = 1;\n";
  body += "    }\n    __syncthreads();\n";
  body += "    const int failed = bad;\n";
  body += "    for (i64 e = threadIdx.x; e < " + NN + "; e += blockDim.x) {\n";
  body += "      const i64 r = e / " + N + ", c = e % " + N + ";\n";
  body += "      if (failed) out[base + e] = " + NaNLiteral(s.dtype) + ";\n";
  body += "      else if (!(" + keep + ")) out[base + e] = (" + T + ")0;\n";
  body += "    }\n    __syncthreads();\n";  // all have read `bad` before the next matrix resets it
  KernelSpec k = Finish(b, id, "cholesky_finish", BlockLoop("mat", s.batch, body), s.batch, true);
  std::fill(k.elementwise_input.begin(), k.elementwise_input.end(), false);
  return k;
}

// Row-major B (m x n) read column-major is Bᵀ: op(A) X = B is
// Xᵀ op(A)ᵀ = Bᵀ, a right-side solve of the column-major reading by the
// column-major reading of A (Aᵀ, the opposite triangle), with the same
// transpose flag; X op(A) = B is likewise a left-side solve.
void Generator::TriangularSolve(int id) {
  const ir::Instruction& in = I(id);
  const shapes::Shape& as = I(in.operands[0]).shape;
  const shapes::Shape& bs = I(in.operands[1]).shape;
  const auto& attrs = ir::Attr<ir::LinalgAttrs>(in);
  if (as.Rank() < 2 || as.Rank() != bs.Rank() || in.shape != bs || as.DType() != bs.DType() ||
      !std::equal(as.Dims().begin(), as.Dims().end() - 2, bs.Dims().begin()) ||
      as.Dims()[as.Rank() - 2] != as.Dims().back() ||
      as.Dims().back() != bs.Dims()[static_cast<size_t>(attrs.left_side ? bs.Rank() - 2 : bs.Rank() - 1)]) {
    Unsupported(in, "has inconsistent shapes " + as.ToString() + " and " + bs.ToString() + " -> " + in.shape.ToString());
  }
  RequireSolverDType(in, in.shape);
  const int64_t rows = bs.Dims().back(), cols = bs.Dims()[bs.Rank() - 2];
  LibraryCall s = Spec(LibraryCall::Kind::kTrsm, in.shape.DType(), bs.Size() / (rows * cols), rows, cols);
  s.lower = !attrs.lower;
  s.left_side = !attrs.left_side;
  s.transpose = attrs.transpose_a;
  s.unit_diagonal = attrs.unit_diagonal;
  s.inputs = {in.operands[0]};
  // Batched trsm is written for small matrices (and fails on very many
  // right-hand sides); larger ones are solved one at a time.
  s.batched = s.batch > 1 && std::max(s.rows, s.cols) <= kBatchedOrder;
  p_.steps.push_back({StepKind::kKernel, id, Add(CopyOperand(id, 1))});
  if (s.batched) {
    const int64_t k = s.left_side ? s.rows : s.cols;
    s.inputs.push_back(PointerArray(s.inputs[0], s.batch, k * k));
    s.inputs.push_back(PointerArray(id, s.batch, s.rows * s.cols));
  }
  p_.steps.push_back({StepKind::kLibrary, id, AddLibraryCall(s)});
  if (!s.unit_diagonal) p_.steps.push_back({StepKind::kUpdate, id, Add(TriangularSolveFinish(id, s))});
}

// NaN solutions where A has a zero on its diagonal (LAPACK's trtrs
// reports it; trsm divides by it).
KernelSpec Generator::TriangularSolveFinish(int id, const LibraryCall& s) {
  const int64_t k = s.left_side ? s.rows : s.cols;
  KernelBuilder b(fn_, p_.materialized);
  const std::string a = b.Input(s.inputs[0]);
  std::string body = "    __shared__ int bad;\n";
  body += "    if (threadIdx.x == 0) bad = 0;\n";
  body += "    __syncthreads();\n";
  body += "    for (i64 i = threadIdx.x; i < " + Str(k) + "; i += blockDim.x) {\n";
  body += "      if (" + a + "[mat * " + Str(k * k) + " + i * " + Str(k + 1) + "] == (" + ComputeType(s.dtype) + ")0) bad = 1;\n";
  body += "    }\n    __syncthreads();\n";
  body += "    const int failed = bad;\n";
  body += "    for (i64 e = threadIdx.x; failed && e < " + Str(s.rows * s.cols) + "; e += blockDim.x) out[mat * " +
          Str(s.rows * s.cols) + " + e] = " + NaNLiteral(s.dtype) + ";\n";
  body += "    __syncthreads();\n";
  KernelSpec spec = Finish(b, id, "trsm_finish", BlockLoop("mat", s.batch, body), s.batch, true);
  std::fill(spec.elementwise_input.begin(), spec.elementwise_input.end(), false);
  return spec;
}

// ------------------------------------------------------ Factorizations.
//
// Lu, Qr, Eigh and Svd produce tuples: the instruction's value is one
// element (its shape changed to that element's), the others are scratch
// values, and their GetTupleElements alias them (elements_). The library
// works on a column-major scratch copy; kernels then write each element
// from it, NaN for a matrix that was not finite or that the library
// reports failing, as on the CPU.

// The element values of factorization `id` ([0] its own), from `results`.
std::vector<int> Generator::FactorizationElements(int id, const std::vector<shapes::Shape>& results, size_t own) {
  p_.function.instructions[static_cast<size_t>(id)].shape = results[own];
  std::vector<int> e;
  for (size_t i = 0; i < results.size(); ++i) e.push_back(i == own ? id : AddScratch(results[i]));
  elements_[id] = e;
  return e;
}

// A scratch [batch, n, m]: the m x n matrices of `operand` in column-major
// order (transposed), or its bytes as they are (`transpose` false).
int Generator::ColumnMajorCopy(int operand, int64_t batch, int64_t m, int64_t n, bool transpose) {
  const int col = AddScratch(shapes::Shape(I(operand).shape.DType(), {batch, n, m}));
  KernelBuilder b(fn_, p_.materialized);
  std::string v, body;
  if (transpose) {  // col[mat, c, r] = a[mat, r, c]
    v = b.Value(operand, LinearIdx("src"));
    body = "    const i64 mat = i / " + Str(m * n) + ", rem = i % " + Str(m * n) + ", c = rem / " + Str(m) +
           ", r = rem % " + Str(m) + ";\n    const i64 src = mat * " + Str(m * n) + " + r * " + Str(n) + " + c;\n";
  } else {
    v = b.Value(operand, LinearIdx("i"), true);
  }
  body += b.Body() + "    out[i] = " + v + ";\n";
  p_.steps.push_back({StepKind::kKernel, col, Add(FinishScratch(b, col, "to_col", ThreadLoop("i", batch * m * n, body), batch * m * n))});
  return col;
}

// Element `out_id` ([batch, rows, cols]) from `src`: element (r, c) of its
// column-major rows x cols matrices (`column_major`) or the same bytes;
// NaN for the matrices where any of the Int32 [batch] `failed` flags is
// set.
void Generator::Result(int out_id, int src, const std::vector<int>& failed, int64_t rows, int64_t cols, bool column_major) {
  const shapes::Shape& shape = I(out_id).shape;
  if (shape.Size() == 0) {
    p_.steps.push_back({StepKind::kKernel, out_id, Add(EmptyKernel(out_id))});
    return;
  }
  KernelBuilder b(fn_, p_.materialized);
  const std::string S = b.Input(src);
  std::string cond;
  for (int f : failed) cond += (cond.empty() ? "" : " || ") + b.Input(f) + "[mat] != 0";
  std::string body = "    const i64 mat = i / " + Str(rows * cols) + ";\n";
  std::string v = S + "[i]";
  if (column_major) {
    body += "    const i64 r = i % " + Str(rows * cols) + " / " + Str(cols) + ", c = i % " + Str(cols) + ";\n";
    v = S + "[mat * " + Str(rows * cols) + " + c * " + Str(rows) + " + r]";
  }
  if (!cond.empty()) v = "(" + cond + ") ? " + NaNLiteral(shape.DType()) + " : " + v;
  body += "    out[i] = " + v + ";\n";
  KernelSpec spec = Finish(b, out_id, "result", ThreadLoop("i", shape.Size(), body), shape.Size(), false);
  std::fill(spec.elementwise_input.begin(), spec.elementwise_input.end(), false);
  p_.steps.push_back({StepKind::kKernel, out_id, Add(std::move(spec))});
}

// Element `out_id`: identity matrices (`identity`) or zeros; for the
// results of empty factorizations.
void Generator::Constant(int out_id, bool identity) {
  const shapes::Shape& shape = I(out_id).shape;
  if (shape.Size() == 0) {
    p_.steps.push_back({StepKind::kKernel, out_id, Add(EmptyKernel(out_id))});
    return;
  }
  const int64_t n = shape.Dims().back();
  KernelBuilder b(fn_, p_.materialized);
  const std::string zero = NumberLiteral(shape.DType(), 0);
  const std::string v = identity ? "(i % " + Str(n * n) + " / " + Str(n) + " == i % " + Str(n) + ") ? " +
                                       NumberLiteral(shape.DType(), 1) + " : " + zero
                                 : zero;
  p_.steps.push_back({StepKind::kKernel, out_id, Add(Finish(b, out_id, "fill", ThreadLoop("i", shape.Size(), "    out[i] = " + v + ";\n"), shape.Size(), false))});
}

// Lu: getrf on the transposed matrix (LU of the column-major reading
// would be that of Aᵀ), transposed back; kernels turn LAPACK's 1-based
// row swaps into the pivots and the permutation (identities where not
// finite).
void Generator::Lu(int id) {
  const ir::Instruction& in = I(id);
  const int operand = in.operands[0];
  const shapes::Shape as = I(operand).shape;
  RequireSolverDType(in, as);
  const std::vector<shapes::Shape> results = ir::FactorizationResults(in.op, as, ir::Attr<ir::LinalgAttrs>(in));
  const int64_t m = as.Dims()[as.Rank() - 2], n = as.Dims().back(), k = std::min(m, n);
  const int64_t batch = m == 0 ? 0 : results[2].Size() / m;
  const std::vector<int> e = FactorizationElements(id, results, 0);
  if (results[0].Size() == 0) {
    p_.steps.push_back({StepKind::kKernel, id, Add(EmptyKernel(id))});
    p_.steps.push_back({StepKind::kKernel, e[1], Add(EmptyKernel(e[1]))});
    p_.steps.push_back({StepKind::kKernel, e[2], Add(LuPermutation(e[2], -1, -1, batch, m, k))});
    return;
  }
  LibraryCall s = Spec(LibraryCall::Kind::kGetrf, as.DType(), batch, m, n);
  s.batched = batch > 1 && m == n && m <= kBatchedOrder;
  const int col = ColumnMajorCopy(operand, batch, m, n, true);
  s.outputs = {AddScratch(shapes::Shape(s.batched ? dtypes::Int32 : dtypes::Int64, {batch, k})), Flags(batch)};
  // Whether each input is finite (the factor of a singular matrix may
  // hold Inf where the library divides by a zero pivot).
  const int bad = Flags(batch);
  p_.steps.push_back({StepKind::kKernel, bad, Add(NotFinite(col, bad, batch, m, n, Triangle::kAll))});
  if (s.batched) s.inputs = {PointerArray(col, batch, m * n)};
  p_.steps.push_back({StepKind::kLibrary, col, AddLibraryCall(s)});
  p_.steps.push_back({StepKind::kUpdate, bad, Add(CheckPivots(bad, s.outputs[0], batch, m, k))});
  Result(id, col, {bad}, m, n, true);
  {  // 0-based pivots (the identity where not finite)
    KernelBuilder b(fn_, p_.materialized);
    const std::string P = b.Input(s.outputs[0]), B = b.Input(bad);
    const std::string body = "    out[i] = " + B + "[i / " + Str(k) + "] ? (int)(i % " + Str(k) + ") : (int)" + P +
                             "[i] - 1;\n";
    p_.steps.push_back({StepKind::kKernel, e[1], Add(FinishScratch(b, e[1], "lu_pivots", ThreadLoop("i", batch * k, body), batch * k))});
  }
  p_.steps.push_back({StepKind::kKernel, e[2], Add(LuPermutation(e[2], s.outputs[0], bad, batch, m, k))});
}

// Qr: geqrf on the transposed matrix; R from its upper triangle, Q by
// orgqr from the reflectors copied into a column-major m x (m or k)
// scratch, transposed back.
void Generator::Qr(int id) {
  const ir::Instruction& in = I(id);
  const int operand = in.operands[0];
  const shapes::Shape as = I(operand).shape;
  RequireSolverDType(in, as);
  const bool full = ir::Attr<ir::LinalgAttrs>(in).full_matrices;
  const std::vector<shapes::Shape> results = ir::FactorizationResults(in.op, as, ir::Attr<ir::LinalgAttrs>(in));
  const int64_t m = as.Dims()[as.Rank() - 2], n = as.Dims().back(), k = std::min(m, n);
  const int64_t qcols = full ? m : k, rrows = full ? m : k;
  const int64_t batch = BatchOf(as);
  const std::vector<int> e = FactorizationElements(id, results, 0);
  if (k == 0 || batch == 0) {
    Constant(id, true);
    Constant(e[1], false);
    return;
  }
  LibraryCall s = Spec(LibraryCall::Kind::kGeqrf, as.DType(), batch, m, n);
  const int col = ColumnMajorCopy(operand, batch, m, n, true);
  const int tau = AddScratch(shapes::Shape(as.DType(), {batch, k}));
  s.outputs = {tau, Flags(batch)};
  const int bad = Flags(batch);
  p_.steps.push_back({StepKind::kKernel, bad, Add(NotFinite(col, bad, batch, m, n, Triangle::kAll))});
  p_.steps.push_back({StepKind::kLibrary, col, AddLibraryCall(s)});
  {  // r[mat, i, j] = the upper triangle of the first rrows rows
    KernelBuilder b(fn_, p_.materialized);
    const std::string C = b.Input(col), B = b.Input(bad);
    const std::string T = ComputeType(as.DType());
    std::string body = "    const i64 mat = i / " + Str(rrows * n) + ", r = i % " + Str(rrows * n) + " / " + Str(n) +
                       ", c = i % " + Str(n) + ";\n";
    body += "    out[i] = " + B + "[mat] ? " + NaNLiteral(as.DType()) + " : c >= r ? " + C +
            "[mat * " + Str(m * n) + " + c * " + Str(m) + " + r] : (" + T + ")0;\n";
    KernelSpec spec = FinishScratch(b, e[1], "qr_r", ThreadLoop("i", batch * rrows * n, body), batch * rrows * n);
    p_.steps.push_back({StepKind::kKernel, e[1], Add(std::move(spec))});
  }
  const int q = AddScratch(shapes::Shape(as.DType(), {batch, qcols, m}));
  {  // the reflectors (the first k columns), zeros after them
    KernelBuilder b(fn_, p_.materialized);
    const std::string C = b.Input(col);
    const std::string body = "    const i64 mat = i / " + Str(m * qcols) + ", j = i % " + Str(m * qcols) + ";\n" +
                             "    out[i] = j < " + Str(m * k) + " ? " + C + "[mat * " + Str(m * n) + " + j] : (" +
                             ComputeType(as.DType()) + ")0;\n";
    p_.steps.push_back({StepKind::kKernel, q, Add(FinishScratch(b, q, "qr_reflectors", ThreadLoop("i", batch * m * qcols, body), batch * m * qcols))});
  }
  LibraryCall g = Spec(LibraryCall::Kind::kOrgqr, as.DType(), batch, m, qcols);
  g.reflectors = k;
  g.inputs = {tau};
  g.outputs = {Flags(batch)};
  p_.steps.push_back({StepKind::kLibrary, q, AddLibraryCall(g)});
  Result(id, q, {bad, g.outputs[0]}, m, qcols, true);
}

// Eigh: syevd on a copy of the bytes (symmetric: the column-major reading
// is the same matrix; the row-major triangle read is the opposite
// column-major one); the eigenvectors (columns, column-major) transposed
// into row-major columns.
void Generator::Eigh(int id) {
  const ir::Instruction& in = I(id);
  const int operand = in.operands[0];
  const shapes::Shape as = I(operand).shape;
  RequireSolverDType(in, as);
  const bool lower = ir::Attr<ir::LinalgAttrs>(in).lower;
  const std::vector<shapes::Shape> results = ir::FactorizationResults(in.op, as, ir::Attr<ir::LinalgAttrs>(in));
  const int64_t n = as.Dims().back();
  const std::vector<int> e = FactorizationElements(id, results, 1);
  if (as.Size() == 0) {
    Constant(id, false);
    Constant(e[0], false);
    return;
  }
  const int64_t batch = as.Size() / (n * n);
  LibraryCall s = Spec(LibraryCall::Kind::kSyevd, as.DType(), batch, n, n);
  s.lower = !lower;
  const int work = ColumnMajorCopy(operand, batch, n, n, false);
  const int w = AddScratch(shapes::Shape(as.DType(), {batch, n}));
  s.outputs = {w, Flags(batch)};
  const int bad = Flags(batch);
  p_.steps.push_back({StepKind::kKernel, bad, Add(NotFinite(work, bad, batch, n, n, lower ? Triangle::kLower : Triangle::kUpper))});
  p_.steps.push_back({StepKind::kLibrary, work, AddLibraryCall(s)});
  Result(e[0], w, {bad, s.outputs[1]}, 1, n, false);
  Result(id, work, {bad, s.outputs[1]}, n, n, true);
}

// Svd: gesvd needs rows >= cols. A tall matrix (m >= n) is transposed
// into column-major order and its U and Vᵀ transposed back. A wide one's
// bytes read column-major are Aᵀ (n x m, tall): Aᵀ = U' S V'ᵀ gives
// A = V' S U'ᵀ, and the column-major V'ᵀ and U' are, byte for byte, the
// row-major u and vt.
void Generator::Svd(int id) {
  const ir::Instruction& in = I(id);
  const int operand = in.operands[0];
  const shapes::Shape as = I(operand).shape;
  RequireSolverDType(in, as);
  const auto attrs = ir::Attr<ir::LinalgAttrs>(in);
  const std::vector<shapes::Shape> results = ir::FactorizationResults(in.op, as, attrs);
  const int64_t m = as.Dims()[as.Rank() - 2], n = as.Dims().back(), k = std::min(m, n);
  const bool uv = attrs.compute_uv, full = attrs.full_matrices;
  const std::vector<int> e = FactorizationElements(id, results, uv ? 1 : 0);
  const int s_out = uv ? e[1] : e[0];
  const int64_t batch = k == 0 ? 0 : results[uv ? 1 : 0].Size() / k;
  if (batch == 0) {
    Constant(s_out, false);
    if (uv) Constant(e[0], true), Constant(e[2], true);
    return;
  }
  const bool tall = m >= n;
  const int64_t rows = tall ? m : n, cols = tall ? n : m;  // the library's (column-major) matrix
  LibraryCall s = Spec(LibraryCall::Kind::kGesvd, as.DType(), batch, rows, cols);
  s.full_matrices = full;
  s.compute_uv = uv;
  const int work = ColumnMajorCopy(operand, batch, m, n, tall);
  const int sv = AddScratch(shapes::Shape(as.DType(), {batch, k}));
  s.outputs = {sv};
  // U: rows x (rows or k); Vᵀ: (cols or k) x cols, column-major.
  const int64_t ucols = full ? rows : k, vtrows = full ? cols : k;
  int u = -1, vt = -1;
  if (uv) {
    u = AddScratch(shapes::Shape(as.DType(), {batch, ucols, rows}));
    vt = AddScratch(shapes::Shape(as.DType(), {batch, cols, vtrows}));
    s.outputs.push_back(u);
    s.outputs.push_back(vt);
  }
  s.outputs.push_back(Flags(batch));
  const int bad = Flags(batch);
  p_.steps.push_back({StepKind::kKernel, bad, Add(NotFinite(work, bad, batch, m, n, Triangle::kAll))});
  p_.steps.push_back({StepKind::kLibrary, work, AddLibraryCall(s)});
  const std::vector<int> failed = {bad, s.outputs.back()};
  Result(s_out, sv, failed, 1, k, false);
  if (!uv) return;
  if (tall) {
    Result(e[0], u, failed, m, ucols, true);
    Result(e[2], vt, failed, vtrows, n, true);
  } else {
    Result(e[0], vt, failed, m, vtrows, false);
    Result(e[2], u, failed, ucols, n, false);
  }
}

LibraryCall Generator::Spec(LibraryCall::Kind kind, dtypes::DType dtype, int64_t batch, int64_t rows, int64_t cols) {
  LibraryCall s;
  s.kind = kind;
  s.dtype = dtype;
  s.batch = batch;
  s.rows = rows;
  s.cols = cols;
  return s;
}

int64_t Generator::BatchOf(const shapes::Shape& a) {
  int64_t b = 1;
  for (size_t d = 0; d + 2 < a.Dims().size(); ++d) b *= a.Dims()[d];
  return b;
}

// The row permutation of each matrix: the identity with LAPACK's swaps
// (1-based, in `pivots`; none without) applied in order, one thread per
// matrix; the identity where `bad`.
KernelSpec Generator::LuPermutation(int perm, int pivots, int bad, int64_t batch, int64_t m, int64_t k) {
  KernelBuilder b(fn_, p_.materialized);
  std::string body = "    int* p = out + mat * " + Str(m) + ";\n";
  body += "    for (i64 j = 0; j < " + Str(m) + "; ++j) p[j] = (int)j;\n";
  if (pivots >= 0) {
    const std::string P = b.Input(pivots), B = b.Input(bad);
    body += "    if (!" + B + "[mat]) {\n";
    body += "      for (i64 r = 0; r < " + Str(k) + "; ++r) {\n";
    body += "        const i64 t = (i64)" + P + "[mat * " + Str(k) + " + r] - 1;\n";
    body += "        const int x = p[r]; p[r] = p[t]; p[t] = x;\n";
    body += "      }\n    }\n";
  }
  return FinishScratch(b, perm, "lu_perm", ThreadLoop("mat", batch, body), batch);
}

// A Uint64 [batch] scratch of device pointers to each matrix (`size`
// elements apart) of value `x`, for a batched library call: written by a
// kernel, so the call needs no upload from the host (nor its implicit
// synchronization).
int Generator::PointerArray(int x, int64_t batch, int64_t size) {
  const int ptrs = AddScratch(shapes::Shape(dtypes::Uint64, {batch}));
  KernelBuilder b(fn_, p_.materialized);
  const std::string X = b.Input(x);
  const std::string body = "    out[i] = (u64)(" + X + " + i * " + Str(size) + ");\n";
  p_.steps.push_back({StepKind::kKernel, ptrs, Add(FinishScratch(b, ptrs, "pointers", ThreadLoop("i", batch, body), batch))});
  return ptrs;
}

// Marks `bad` the matrices whose pivots the library returned out of range
// (row r swapped with a row above it or past the end): their results are
// NaN rather than a permutation written out of bounds. The CPU backend
// throws there; a kernel cannot.
KernelSpec Generator::CheckPivots(int bad, int pivots, int64_t batch, int64_t m, int64_t k) {
  KernelBuilder b(fn_, p_.materialized);
  const std::string P = b.Input(pivots);
  std::string body = "    for (i64 r = 0; r < " + Str(k) + "; ++r) {\n";
  body += "      const i64 t = (i64)" + P + "[mat * " + Str(k) + " + r] - 1;\n";
  body += "      if (t < r || t >= " + Str(m) + ") out[mat] = 1;\n";
  body += "    }\n";
  return FinishScratch(b, bad, "lu_check", ThreadLoop("mat", batch, body), batch);
}

// bad[mat] = whether the rows x cols matrix `mat` of `x` holds NaN or Inf
// (in the given row-major triangle).
KernelSpec Generator::NotFinite(int x, int bad, int64_t batch, int64_t rows, int64_t cols, Triangle triangle) {
  KernelBuilder b(fn_, p_.materialized);
  const std::string X = b.Input(x);
  const std::string T = ComputeType(I(x).shape.DType());
  const int64_t size = rows * cols;
  std::string body = "    __shared__ int any;\n";
  body += "    if (threadIdx.x == 0) any = 0;\n";
  body += "    __syncthreads();\n";
  body += "    for (i64 e = threadIdx.x; e < " + Str(size) + "; e += blockDim.x) {\n";
  if (triangle != Triangle::kAll) {
    body += "      const i64 r = e / " + Str(cols) + ", c = e % " + Str(cols) + ";\n";
    body += std::string("      if (") + (triangle == Triangle::kLower ? "c > r" : "c < r") + ") continue;\n";
  }
  body += "      const " + T + " v = " + X + "[mat * " + Str(size) + " + e];\n";
  body += "      if (!(v - v == (" + T + ")0)) any = 1;\n";
  body += "    }\n    __syncthreads();\n";
  body += "    if (threadIdx.x == 0) out[mat] = any;\n";
  body += "    __syncthreads();\n";
  KernelSpec spec = Finish(b, bad, "not_finite", BlockLoop("mat", batch, body), batch, true);
  std::fill(spec.elementwise_input.begin(), spec.elementwise_input.end(), false);
  return spec;
}

void Generator::RequireSolverDType(const ir::Instruction& in, const shapes::Shape& a) {
  if (a.DType() != dtypes::Float32 && a.DType() != dtypes::Float64) {
    Unsupported(in, "of " + a.ToString() + " is not supported (Float32 and Float64 only)");
  }
}

}  // namespace kiln::backends::cuda::gen
