// Copyright 2026 The Kiln Authors.
// CPU kernel of Attention (see ir::AttentionAttrs): FlashAttention's forward
// pass. Each task is a block of query rows of one head; it walks the keys in
// blocks, keeping per row the running maximum m, the running sum l of
// exp(score - m) and the running output acc (rescaled by exp(m_old - m_new)
// when the maximum grows), so the memory is one block of scores per thread
// instead of the [q_len, kv_len] matrix per head. Float32 products run on
// oneDNN's sgemm (single-threaded inside the task loop), Float64 on loops.
// Masked scores take the op's masked_value, as the composed form does, so
// results agree with it up to rounding (the online softmax sums in another
// order); causal key blocks past every row's last visible key are skipped
// once their weights exp(masked - m) are exactly 0 for every row (a row
// whose maximum is far enough above masked_value). AttentionGrad's kernel
// (the backward pass, below) walks the same blocks, with one task per kv head
// of a batch element.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "src/backends/cpu/dnnl_util.h"
#include "src/backends/cpu/elementwise_math.h"
#include "src/backends/cpu/kernels.h"

namespace kiln::backends::cpu {

namespace {

constexpr int64_t kRowBlock = 64;   // query rows per task
constexpr int64_t kKeyBlock = 256;  // keys per block of scores
// Keys per block in the backward pass: smaller blocks skip more of a causal
// triangle but make smaller products (measured, causal 8 heads x 64, fused
// forward and backward: 128 beats 256 by 10% at 128 and 512 keys, equal at
// 2048; 64 loses at 2048).
constexpr int64_t kGradKeyBlock = 128;

struct Plan {
  int64_t batch, heads, kv_heads, q_len, kv_len, head_dim;
  bool causal, has_mask;
  double scale, masked;
  int64_t mask_batch_stride, mask_head_stride;  // 0 where the mask broadcasts
};

// c[rows, cols] = alpha op(a) op(b) + beta c, row-major, with op(a)
// [rows, depth] (a stored [depth, rows] when transpose_a) and op(b) [depth,
// cols] (b stored [cols, depth] when transpose_b); leading dimensions given.
void Gemm(bool transpose_a, bool transpose_b, int64_t rows, int64_t cols, int64_t depth, float alpha, const float* a,
          int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  const dnnl_status_t status = dnnl_sgemm(transpose_a ? 'T' : 'N', transpose_b ? 'T' : 'N', rows, cols, depth, alpha,
                                          a, lda, b, ldb, beta, c, ldc);
  if (status != dnnl_success) std::abort();  // only bad arguments fail, and these are checked at compile time
}
void Gemm(bool transpose_a, bool transpose_b, int64_t rows, int64_t cols, int64_t depth, double alpha,
          const double* a, int64_t lda, const double* b, int64_t ldb, double beta, double* c, int64_t ldc) {
  for (int64_t i = 0; i < rows; ++i) {
    double* ci = c + i * ldc;
    // As BLAS: with beta 0, c is not read (it may hold a previous task's NaN).
    for (int64_t j = 0; j < cols; ++j) ci[j] = beta == 0 ? 0 : ci[j] * beta;
    for (int64_t p = 0; p < depth; ++p) {
      const double aip = alpha * (transpose_a ? a[p * lda + i] : a[i * lda + p]);
      if (transpose_b) {
        for (int64_t j = 0; j < cols; ++j) ci[j] += aip * b[j * ldb + p];
      } else {
        const double* bp = b + p * ldb;
        for (int64_t j = 0; j < cols; ++j) ci[j] += aip * bp[j];
      }
    }
  }
}

// The vectorized row maximum (NaN if the row has one) and exp of the
// elementwise kernels.
float RowMax(const float* x, int64_t n) { return RowExtremumF32(x, n, false); }
double RowMax(const double* x, int64_t n) { return RowExtremumF64(x, n, false); }
void Exp(float* x, int64_t n) { MathF32(MathOp::kExp, x, x, n); }
void Exp(double* x, int64_t n) { MathF64(MathOp::kExp, x, x, n); }

// Sets the hidden entries of a [rows, cols] block (leading dimension ld) of
// query rows from q0 and keys from j0 to `value`: where the mask (its rows
// at mb, or nullptr) is false and, when causal, after row r's last visible
// key first_key + r. The forward and backward passes hide scores with it
// (masked_value), the backward pass the scores' gradients (0).
template <typename T>
void Hide(const Plan& p, const bool* mb, int64_t first_key, int64_t j0, int64_t rows, int64_t cols, T* x, int64_t ld,
          T value) {
  for (int64_t r = 0; r < rows; ++r) {
    T* xr = x + r * ld;
    if (mb != nullptr) {
      const bool* mr = mb + r * p.kv_len + j0;
      for (int64_t c = 0; c < cols; ++c) xr[c] = mr[c] ? xr[c] : value;
    }
    if (p.causal) {
      for (int64_t c = std::max<int64_t>(0, first_key + r + 1 - j0); c < cols; ++c) xr[c] = value;
    }
  }
}

// Whether the key block at j0 and every later one are hidden from each of
// `rows` rows (causal) and weigh exactly 0 next to the rows' maxima m.
template <typename T>
bool PastEveryRow(const Plan& p, int64_t j0, int64_t first_key, int64_t rows, const T* m) {
  const T masked = static_cast<T>(p.masked);
  return p.causal && j0 > first_key + rows - 1 &&
         std::all_of(m, m + rows, [&](T x) { return std::exp(masked - x) == T(0); });
}

// One block of the online softmax for a row: s (cols scores) becomes
// exp(s - m_new), with m the running maximum and l the running sum of
// exp(score - m), both updated. Returns the factor exp(m_old - m_new) that
// rescales what was accumulated with the old maximum.
template <typename T>
T OnlineSoftmaxStep(T* s, int64_t cols, T& m, T& l) {
  const T m_new = std::max(m, RowMax(s, cols));
  const T correction = m == -std::numeric_limits<T>::infinity() ? T(0) : std::exp(m - m_new);
  for (int64_t c = 0; c < cols; ++c) s[c] -= m_new;
  Exp(s, cols);
  T sum = 0;
  for (int64_t c = 0; c < cols; ++c) sum += s[c];
  l = l * correction + sum;
  m = m_new;
  return correction;
}

template <typename T>
void RunAttention(const Plan& p, const T* q, const T* k, const T* v, const bool* mask, T* out) {
  const int64_t group = p.heads / p.kv_heads, d = p.head_dim;
  const int64_t row_blocks = (p.q_len + kRowBlock - 1) / kRowBlock;
  const int64_t tasks = p.batch * p.heads * row_blocks;
  const T masked = static_cast<T>(p.masked);
  constexpr T kNegInf = -std::numeric_limits<T>::infinity();
#pragma omp parallel if (tasks > 1)
  {
    std::vector<T> scores(static_cast<size_t>(kRowBlock * kKeyBlock)), acc(static_cast<size_t>(kRowBlock * d));
    std::vector<T> m(kRowBlock), l(kRowBlock);
#pragma omp for schedule(dynamic)
    for (int64_t task = 0; task < tasks; ++task) {
      const int64_t bh = task / row_blocks, b = bh / p.heads, h = bh % p.heads;
      const int64_t q0 = (task % row_blocks) * kRowBlock, rows = std::min(kRowBlock, p.q_len - q0);
      const int64_t n = h / group;
      const T* qb = q + ((b * p.heads + h) * p.q_len + q0) * d;
      const T* kb = k + (b * p.kv_heads + n) * p.kv_len * d;
      const T* vb = v + (b * p.kv_heads + n) * p.kv_len * d;
      const bool* mb = p.has_mask ? mask + b * p.mask_batch_stride + h * p.mask_head_stride + q0 * p.kv_len : nullptr;
      std::fill(m.begin(), m.end(), kNegInf);
      std::fill(l.begin(), l.end(), T(0));
      std::fill(acc.begin(), acc.end(), T(0));
      // Row r (query q0 + r) sees keys <= first_key + r when causal.
      const int64_t first_key = p.kv_len - p.q_len + q0;
      // Every later key is hidden from every row, and weighs exactly 0.
      for (int64_t j0 = 0; j0 < p.kv_len && !PastEveryRow(p, j0, first_key, rows, m.data()); j0 += kKeyBlock) {
        const int64_t cols = std::min(kKeyBlock, p.kv_len - j0);
        Gemm(false, true, rows, cols, d, static_cast<T>(p.scale), qb, d, kb + j0 * d, d, T(0), scores.data(), kKeyBlock);
        Hide(p, mb, first_key, j0, rows, cols, scores.data(), kKeyBlock, masked);
        for (int64_t r = 0; r < rows; ++r) {
          const T correction = OnlineSoftmaxStep(scores.data() + r * kKeyBlock, cols, m[r], l[r]);
          if (correction != T(1)) {
            T* a = acc.data() + r * d;
            for (int64_t c = 0; c < d; ++c) a[c] *= correction;
          }
        }
        Gemm(false, false, rows, d, cols, T(1), scores.data(), kKeyBlock, vb + j0 * d, d, T(1), acc.data(), d);
      }
      T* ob = out + ((b * p.heads + h) * p.q_len + q0) * d;
      for (int64_t r = 0; r < rows; ++r) {
        const T inv = l[r] == T(0) ? T(0) : T(1) / l[r];  // 0 only without keys (kv_len 0): zeros
        for (int64_t c = 0; c < d; ++c) ob[r * d + c] = acc[static_cast<size_t>(r * d + c)] * inv;
      }
    }
  }
}

// The backward pass of RunAttention (FlashAttention's, recomputing the
// weights block by block): each task is one kv head of one batch element,
// so it owns dk and dv of that head and dq of its query heads (no two tasks
// write the same output). Per block of query rows: a first walk over the
// keys gives each row's maximum score m and sum l of exp(score - m) (as the
// forward pass), and D = rowsum(d_out * out); a second walk computes per key
// block
//   P = exp(S - m) / l, dv += Pᵀ d_out, dP = d_out vᵀ, dS = P (dP - D) (0
//   where the score is hidden), dq += scale dS k, dk += scale dSᵀ q.
// (m and l stay apart: log-sum-exp m + log l would lose log l next to a
// large masked_value in a row with every key hidden.) Memory: two blocks of
// scores per thread. Key blocks past the causal limit are skipped where
// their weights exp(masked - m) are exactly 0 for every row, as in the
// forward pass.
template <typename T>
void RunAttentionGrad(const Plan& p, const T* q, const T* k, const T* v, const T* out, const T* d_out,
                      const bool* mask, T* dq, T* dk, T* dv) {
  const int64_t group = p.heads / p.kv_heads, d = p.head_dim;
  const int64_t tasks = p.batch * p.kv_heads;
  const T masked = static_cast<T>(p.masked), scale = static_cast<T>(p.scale);
  constexpr T kNegInf = -std::numeric_limits<T>::infinity();
#pragma omp parallel if (tasks > 1)
  {
    std::vector<T> scores(static_cast<size_t>(kRowBlock * kGradKeyBlock)), d_scores(scores.size());
    std::vector<T> m(kRowBlock), l(kRowBlock), delta(kRowBlock);
#pragma omp for schedule(dynamic)
    for (int64_t task = 0; task < tasks; ++task) {
      const int64_t b = task / p.kv_heads, n = task % p.kv_heads;
      const T* kb = k + (b * p.kv_heads + n) * p.kv_len * d;
      const T* vb = v + (b * p.kv_heads + n) * p.kv_len * d;
      T* dkb = dk + (b * p.kv_heads + n) * p.kv_len * d;
      T* dvb = dv + (b * p.kv_heads + n) * p.kv_len * d;
      std::fill(dkb, dkb + p.kv_len * d, T(0));
      std::fill(dvb, dvb + p.kv_len * d, T(0));
      for (int64_t h = n * group; h < (n + 1) * group; ++h) {
        const int64_t head_offset = (b * p.heads + h) * p.q_len * d;
        std::fill(dq + head_offset, dq + head_offset + p.q_len * d, T(0));
        for (int64_t q0 = 0; q0 < p.q_len; q0 += kRowBlock) {
          const int64_t rows = std::min(kRowBlock, p.q_len - q0), offset = head_offset + q0 * d;
          const T *qb = q + offset, *ob = out + offset, *dob = d_out + offset;
          T* dqb = dq + offset;
          const bool* mb = p.has_mask ? mask + b * p.mask_batch_stride + h * p.mask_head_stride + q0 * p.kv_len : nullptr;
          const int64_t first_key = p.kv_len - p.q_len + q0;  // row r sees keys <= first_key + r when causal
          // The scores of key block j0 (cols keys), hidden ones set to masked.
          auto scores_of = [&](int64_t j0, int64_t cols) {
            Gemm(false, true, rows, cols, d, scale, qb, d, kb + j0 * d, d, T(0), scores.data(), kGradKeyBlock);
            Hide(p, mb, first_key, j0, rows, cols, scores.data(), kGradKeyBlock, masked);
          };
          // The running maximum m and sum l of exp(score - m) per row.
          std::fill(m.begin(), m.begin() + rows, kNegInf);
          std::fill(l.begin(), l.begin() + rows, T(0));
          for (int64_t j0 = 0; j0 < p.kv_len && !PastEveryRow(p, j0, first_key, rows, m.data()); j0 += kGradKeyBlock) {
            const int64_t cols = std::min(kGradKeyBlock, p.kv_len - j0);
            scores_of(j0, cols);
            for (int64_t r = 0; r < rows; ++r) OnlineSoftmaxStep(scores.data() + r * kGradKeyBlock, cols, m[r], l[r]);
          }
          for (int64_t r = 0; r < rows; ++r) l[r] = l[r] == T(0) ? T(0) : T(1) / l[r];  // 0 only without keys
          for (int64_t r = 0; r < rows; ++r) {
            T sum = 0;
            for (int64_t c = 0; c < d; ++c) sum += dob[r * d + c] * ob[r * d + c];
            delta[r] = sum;
          }
          for (int64_t j0 = 0; j0 < p.kv_len && !PastEveryRow(p, j0, first_key, rows, m.data()); j0 += kGradKeyBlock) {
            const int64_t cols = std::min(kGradKeyBlock, p.kv_len - j0);
            scores_of(j0, cols);
            for (int64_t r = 0; r < rows; ++r) {  // the weights P (l holds 1 / l)
              T* sr = scores.data() + r * kGradKeyBlock;
              for (int64_t c = 0; c < cols; ++c) sr[c] -= m[r];
              Exp(sr, cols);
              for (int64_t c = 0; c < cols; ++c) sr[c] *= l[r];
            }
            Gemm(true, false, cols, d, rows, T(1), scores.data(), kGradKeyBlock, dob, d, T(1), dvb + j0 * d, d);
            Gemm(false, true, rows, cols, d, T(1), dob, d, vb + j0 * d, d, T(0), d_scores.data(), kGradKeyBlock);
            for (int64_t r = 0; r < rows; ++r) {  // dS, in place of dP
              const T* pr = scores.data() + r * kGradKeyBlock;
              T* dsr = d_scores.data() + r * kGradKeyBlock;
              for (int64_t c = 0; c < cols; ++c) dsr[c] = pr[c] * (dsr[c] - delta[r]);
            }
            Hide(p, mb, first_key, j0, rows, cols, d_scores.data(), kGradKeyBlock, T(0));  // hidden scores are constants
            Gemm(false, false, rows, d, cols, scale, d_scores.data(), kGradKeyBlock, kb + j0 * d, d, T(1), dqb, d);
            Gemm(true, false, cols, d, rows, scale, d_scores.data(), kGradKeyBlock, qb, d, T(1), dkb + j0 * d, d);
          }
        }
      }
    }
  }
}

// The plan of Attention or AttentionGrad `in`, its operands checked again
// (for IR built by hand); the mask is operand `mask_index` if present.
Plan PlanOf(const ir::Function& fn, const ir::Instruction& in, size_t mask_index) {
  const shapes::Shape& qs = OperandShape(fn, in, 0);
  const shapes::Shape& ks = OperandShape(fn, in, 1);
  const auto& a = ir::Attr<ir::AttentionAttrs>(in);
  const bool has_mask = in.operands.size() == mask_index + 1;
  const std::string_view name = ir::OpName(in.op);
  if (qs.Rank() != 4 || ks.Rank() != 4 || OperandShape(fn, in, 2) != ks || ks.DType() != qs.DType() || ks.Dim(1) < 1 ||
      qs.Dim(1) % ks.Dim(1) != 0 || ks.Dim(0) != qs.Dim(0) || ks.Dim(3) != qs.Dim(3) ||
      (qs.DType() != dtypes::Float32 && qs.DType() != dtypes::Float64) || (a.causal && qs.Dim(2) > ks.Dim(2))) {
    Throw("cpu: " + std::string(name) + " of q " + qs.ToString() + ", k " + ks.ToString() + ": inconsistent shapes");
  }
  Plan p{qs.Dim(0), qs.Dim(1), ks.Dim(1), qs.Dim(2), ks.Dim(2), qs.Dim(3), a.causal, has_mask, a.scale,
         a.masked_value, 0, 0};
  if (has_mask) {
    const shapes::Shape& ms = OperandShape(fn, in, mask_index);
    if (ms.Rank() != 4 || ms.DType() != dtypes::Bool || ms.Dim(2) != p.q_len || ms.Dim(3) != p.kv_len ||
        (ms.Dim(0) != 1 && ms.Dim(0) != p.batch) || (ms.Dim(1) != 1 && ms.Dim(1) != p.heads)) {
      Throw("cpu: " + std::string(name) + " mask " + ms.ToString() + " does not broadcast to the scores of q " +
            qs.ToString());
    }
    p.mask_head_stride = ms.Dim(1) == 1 ? 0 : p.q_len * p.kv_len;
    p.mask_batch_stride = ms.Dim(0) == 1 ? 0 : ms.Dim(1) * p.q_len * p.kv_len;
  }
  return p;
}

Kernel MakeAttention(const ir::Function& fn, const ir::Instruction& in) {
  const Plan p = PlanOf(fn, in, 3);
  const shapes::Shape& qs = OperandShape(fn, in, 0);
  if (in.shape != qs) {
    Throw("cpu: Attention of q " + qs.ToString() + " cannot give " + in.shape.ToString());
  }
  if (qs.Size() == 0) return [](const void* const*, void*) {};
  const bool has_mask = p.has_mask;
  auto run = [p, has_mask]<typename T>(const void* const* inputs, void* output, T*) {
    RunAttention<T>(p, static_cast<const T*>(inputs[0]), static_cast<const T*>(inputs[1]),
                    static_cast<const T*>(inputs[2]), has_mask ? static_cast<const bool*>(inputs[3]) : nullptr,
                    static_cast<T*>(output));
  };
  if (qs.DType() == dtypes::Float32) {
    return [run](const void* const* inputs, void* output) { run(inputs, output, static_cast<float*>(nullptr)); };
  }
  return [run](const void* const* inputs, void* output) { run(inputs, output, static_cast<double*>(nullptr)); };
}

}  // namespace

MultiOutputKernel MakeAttentionGradKernel(const ir::Function& fn, const ir::Instruction& in) {
  if (in.operands.size() != 5 && in.operands.size() != 6) {
    Throw("cpu: AttentionGrad needs operands q, k, v, out, d_out[, mask], got " +
          std::to_string(in.operands.size()));
  }
  const Plan p = PlanOf(fn, in, 5);
  const shapes::Shape& qs = OperandShape(fn, in, 0);
  if (OperandShape(fn, in, 3) != qs || OperandShape(fn, in, 4) != qs) {
    Throw("cpu: AttentionGrad of q " + qs.ToString() + ": out " + OperandShape(fn, in, 3).ToString() +
          " and d_out " + OperandShape(fn, in, 4).ToString() + " must have q's shape");
  }
  // head_dim 0: every output is empty (and sgemm rejects a depth of 0).
  if (p.head_dim == 0) return [](const void* const*, void* const*) {};
  auto run = [p]<typename T>(const void* const* in, void* const* out, T*) {
    RunAttentionGrad<T>(p, static_cast<const T*>(in[0]), static_cast<const T*>(in[1]), static_cast<const T*>(in[2]),
                        static_cast<const T*>(in[3]), static_cast<const T*>(in[4]),
                        p.has_mask ? static_cast<const bool*>(in[5]) : nullptr, static_cast<T*>(out[0]),
                        static_cast<T*>(out[1]), static_cast<T*>(out[2]));
  };
  if (qs.DType() == dtypes::Float32) {
    return [run](const void* const* in, void* const* out) { run(in, out, static_cast<float*>(nullptr)); };
  }
  return [run](const void* const* in, void* const* out) { run(in, out, static_cast<double*>(nullptr)); };
}

void RegisterAttentionKernels(KernelTable& table) {
  table[static_cast<size_t>(ir::OpType::kAttention)] = MakeAttention;
}

}  // namespace kiln::backends::cpu
