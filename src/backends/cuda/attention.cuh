// Copyright 2026 The Kiln Authors.
// The CUDA backend's fused Attention and AttentionGrad (see
// kiln/graph/attention.h), FlashAttention's forward and backward passes on
// the SIMT cores, with the CPU kernel's semantics (kernels_attention.cc):
// masked scores take masked_value, NaN reaches only the rows that see it,
// causal key blocks that weigh exactly 0 for every row are skipped, a row
// without keys gives zeros.
//
// A block of 256 threads owns BR rows (TPR = 256 / BR threads per row) and
// walks the other side in tiles of BC: the scores of a tile go to shared
// memory, each thread computes the tile's columns lane, lane + TPR, ... of
// its row and accumulates the output columns lane, lane + TPR, ... of its
// row in registers. Rows and tiles are staged in shared memory (rows padded
// to D + 1 elements, so the threads of a warp hit distinct banks) unless
// the head is too long for it (STAGE false: read from global memory).
//   kAttentionForward: rows are queries, tiles keys; the online softmax
//     (running maximum m, sum l, output rescaled when m grows).
//   kAttentionStats (backward, first): per query row m, 1 / l and
//     D = rowsum(d_out * out), as [batch, heads, q_len, 3].
//   kAttentionGradQ: rows are queries, tiles keys: dq += scale dS k.
//   kAttentionGradKV: rows are keys, tiles the queries of each head of the
//     kv head's group: dv += Pᵀ d_out, or (DK) dk += scale dSᵀ q.
// with P = exp(S - m) / l, dP = d_out vᵀ, dS = P (dP - D), 0 at hidden
// scores. Every output element is written by one thread: no atomics, the
// same bits on every run.
//
// The code is the argument of KILN_CUDA_SOURCE, which prelude.cc defines to
// turn it into a string for the generated modules (see complex_math.cuh):
// no `#` directives, no unbalanced parentheses. It needs the prelude (i64,
// kMin) and the C math functions exp and expf.
KILN_CUDA_SOURCE(

struct KatPlan {
  i64 batch, heads, kv_heads, q_len, kv_len;
  double scale, masked;
  bool causal;
  i64 mask_batch, mask_head;  // the mask's strides; 0 where it broadcasts
};

__device__ __forceinline__ float katExp(float x) { return expf(x); }
__device__ __forceinline__ double katExp(double x) { return exp(x); }
template <class T> __device__ __forceinline__ T katNegInf() {
  return (T)__longlong_as_double((long long)0xfff0000000000000ULL);
}

// Whether query i of head h of batch b sees key j.
__device__ __forceinline__ bool katSeen(const KatPlan& p, const unsigned char* mask, i64 b, i64 h, i64 i, i64 j) {
  if (p.causal && j > p.kv_len - p.q_len + i) return false;
  return mask == 0 || mask[b * p.mask_batch + h * p.mask_head + i * p.kv_len + j] != 0;
}

// R rows from r0 of a [n, D] matrix g: staged in shared memory s ([R][D +
// 1], zeros past n) or read where they are.
template <class T, int D, int R, bool STAGE>
struct KatRows {
  T* s;
  const T* g;
  i64 r0, n;
  __device__ __forceinline__ const T* Row(int r) const { return STAGE ? s + r * (D + 1) : g + (r0 + r) * D; }
  __device__ __forceinline__ void Load(i64 first) {
    r0 = first;
    if (!STAGE) return;
    for (int e = threadIdx.x; e < R * D; e += blockDim.x) {
      const int r = e / D, x = e % D;
      s[r * (D + 1) + x] = r0 + r < n ? g[(r0 + r) * D + x] : (T)0;
    }
  }
};

// Four partial sums: independent chains for the pipeline, and a rounding
// error that grows more slowly with D than one running sum's.
template <class T, int D> __device__ __forceinline__ T katDot(const T* a, const T* b) {
  T s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  int x = 0;
  for (; x + 4 <= D; x += 4) {
    s0 += a[x] * b[x];
    s1 += a[x + 1] * b[x + 1];
    s2 += a[x + 2] * b[x + 2];
    s3 += a[x + 3] * b[x + 3];
  }
  for (; x < D; ++x) s0 += a[x] * b[x];
  return (s0 + s1) + (s2 + s3);
}

// Whether every thread's `skip` holds, agreed through the shared `flag`
// (every thread of the block calls it).
__device__ __forceinline__ bool katAll(bool skip, int* flag) {
  if (threadIdx.x == 0) *flag = 1;
  __syncthreads();
  if (!skip) *flag = 0;
  __syncthreads();
  const bool all = *flag != 0;
  __syncthreads();
  return all;
}

// Whether key tile j0 and every later one weigh exactly 0 for each of the
// `rows` query rows from q0: causal, past every row's last visible key, and
// exp(masked - m) == 0 next to each row's maximum m (read from the row's
// `leader` thread). Every thread of the block calls it.
template <class T>
__device__ __forceinline__ bool katPastKeys(const KatPlan& p, i64 j0, i64 q0, i64 rows, bool leader, T m, int* flag) {
  return p.causal && j0 > p.kv_len - p.q_len + q0 + rows - 1 &&
         katAll(!leader || katExp((T)p.masked - m) == (T)0, flag);
}

// A row's output columns x = lane, lane + TPR, ... (acc[j] for column
// lane + j TPR) get the tile's `cols` rows of X weighted by w:
// acc[j] = acc[j] rescale + weight sum_c w[c] X[c][x] (rescale 1: kept).
template <class T, int D, int TPR, int ND, class Rows>
__device__ __forceinline__ void katAccumulate(T* acc, const T* w, int cols, const Rows& X, T rescale, T weight,
                                              int lane) {
  for (int j = 0; j < ND; ++j) {
    const int x = lane + j * TPR;
    if (x >= D) break;
    T a = 0;
    for (int c = 0; c < cols; ++c) a += w[c] * X.Row(c)[x];
    acc[j] = (rescale == (T)1 ? acc[j] : acc[j] * rescale) + weight * a;
  }
}

// Writes a row's output columns: out_row[x] = acc[j] factor.
template <class T, int D, int TPR, int ND>
__device__ __forceinline__ void katStore(T* out_row, const T* acc, T factor, int lane) {
  for (int j = 0; j < ND; ++j) {
    const int x = lane + j * TPR;
    if (x < D) out_row[x] = acc[j] * factor;
  }
}

// The query-row walks: the forward pass (out: [batch, heads, q_len, D]) or,
// STATS, the backward pass's row statistics (out: [batch, heads, q_len, 3]).
template <class T, int D, int BR, int BC, bool STAGE, bool STATS>
__device__ __forceinline__ void katQueryWalk(const T* q, const T* k, const T* v, const unsigned char* mask,
                                             const T* o, const T* d_out, T* out, const KatPlan p) {
  constexpr int TPR = 256 / BR, NC = (BC + TPR - 1) / TPR, ND = (D + TPR - 1) / TPR, SP = BC + 1;
  __shared__ T qs[STAGE ? BR * (D + 1) : 1];
  __shared__ T ks[STAGE ? BC * (D + 1) : 1];
  __shared__ T vs[STAGE && !STATS ? BC * (D + 1) : 1];
  __shared__ T s[BR * SP];
  __shared__ int flag;
  const int r = threadIdx.x / TPR, lane = threadIdx.x % TPR;
  const i64 row_blocks = (p.q_len + BR - 1) / BR, group = p.heads / p.kv_heads;
  const T scale = (T)p.scale, masked = (T)p.masked;
  for (i64 blk = blockIdx.x; blk < p.batch * p.heads * row_blocks; blk += gridDim.x) {
    const i64 bh = blk / row_blocks, b = bh / p.heads, h = bh % p.heads, q0 = blk % row_blocks * BR;
    const i64 rows = kMin((i64)BR, p.q_len - q0), kv = (b * p.kv_heads + h / group) * p.kv_len * D;
    const bool live = r < rows;
    KatRows<T, D, BR, STAGE> Q = {qs, q + bh * p.q_len * D, 0, p.q_len};
    KatRows<T, D, BC, STAGE> K = {ks, k + kv, 0, p.kv_len}, V = {vs, v + kv, 0, p.kv_len};
    Q.Load(q0);
    T m = katNegInf<T>(), l = 0, acc[ND];
    for (int j = 0; j < ND; ++j) acc[j] = 0;
    for (i64 j0 = 0; j0 < p.kv_len; j0 += BC) {
      if (katPastKeys(p, j0, q0, rows, live && lane == 0, m, &flag)) break;
      const int cols = (int)kMin((i64)BC, p.kv_len - j0);
      K.Load(j0);
      if (!STATS) V.Load(j0);
      __syncthreads();
      for (int j = 0; j < NC; ++j) {
        const int c = lane + j * TPR;
        if (live && c < cols) {
          const T score = katDot<T, D>(Q.Row(r), K.Row(c)) * scale;
          s[r * SP + c] = katSeen(p, mask, b, h, q0 + r, j0 + c) ? score : masked;
        }
      }
      __syncthreads();
      T top = m;  // NaN scores are left out of the maximum (they make l NaN)
      for (int c = 0; live && c < cols; ++c) top = s[r * SP + c] > top ? s[r * SP + c] : top;
      const T correction = m == katNegInf<T>() ? (T)0 : katExp(m - top);
      __syncthreads();  // every row's maximum read before the weights replace the scores
      for (int j = 0; j < NC; ++j) {
        const int c = lane + j * TPR;
        if (live && c < cols) s[r * SP + c] = katExp(s[r * SP + c] - top);
      }
      __syncthreads();
      if (live) {
        T sum = 0;
        for (int c = 0; c < cols; ++c) sum += s[r * SP + c];
        l = l * correction + sum;
        m = top;
        if (!STATS) katAccumulate<T, D, TPR, ND>(acc, s + r * SP, cols, V, correction, (T)1, lane);
      }
      __syncthreads();  // before the next tile replaces ks, vs and s
    }
    const T inv = l == (T)0 ? (T)0 : (T)1 / l;  // 0 only without keys (kv_len 0)
    const i64 row = bh * p.q_len + q0 + r;
    if (live && STATS && lane == 0) {
      T delta = 0;
      for (int x = 0; x < D; ++x) delta += d_out[row * D + x] * o[row * D + x];
      out[row * 3] = m;
      out[row * 3 + 1] = inv;
      out[row * 3 + 2] = delta;
    }
    if (live && !STATS) katStore<T, D, TPR, ND>(out + row * D, acc, inv, lane);
    __syncthreads();  // before the next block replaces qs
  }
}

template <class T, int D, int BR, int BC, bool STAGE>
__device__ __forceinline__ void kAttentionForward(const T* q, const T* k, const T* v, const unsigned char* mask,
                                                  T* out, const KatPlan p) {
  katQueryWalk<T, D, BR, BC, STAGE, false>(q, k, v, mask, (const T*)0, (const T*)0, out, p);
}

template <class T, int D, int BR, int BC, bool STAGE>
__device__ __forceinline__ void kAttentionStats(const T* q, const T* k, const T* o, const T* d_out,
                                                const unsigned char* mask, T* stats, const KatPlan p) {
  katQueryWalk<T, D, BR, BC, STAGE, true>(q, k, k, mask, o, d_out, stats, p);  // v unread
}

// dq: per block of query rows, the key tiles again with the statistics.
template <class T, int D, int BR, int BC, bool STAGE>
__device__ __forceinline__ void kAttentionGradQ(const T* q, const T* k, const T* v, const T* d_out,
                                                const unsigned char* mask, const T* stats, T* dq, const KatPlan p) {
  constexpr int TPR = 256 / BR, NC = (BC + TPR - 1) / TPR, ND = (D + TPR - 1) / TPR, SP = BC + 1;
  __shared__ T qs[STAGE ? BR * (D + 1) : 1];
  __shared__ T dos[STAGE ? BR * (D + 1) : 1];
  __shared__ T ks[STAGE ? BC * (D + 1) : 1];
  __shared__ T vs[STAGE ? BC * (D + 1) : 1];
  __shared__ T s[BR * SP];
  __shared__ int flag;
  const int r = threadIdx.x / TPR, lane = threadIdx.x % TPR;
  const i64 row_blocks = (p.q_len + BR - 1) / BR, group = p.heads / p.kv_heads;
  const T scale = (T)p.scale;
  for (i64 blk = blockIdx.x; blk < p.batch * p.heads * row_blocks; blk += gridDim.x) {
    const i64 bh = blk / row_blocks, b = bh / p.heads, h = bh % p.heads, q0 = blk % row_blocks * BR;
    const i64 rows = kMin((i64)BR, p.q_len - q0), kv = (b * p.kv_heads + h / group) * p.kv_len * D;
    const bool live = r < rows;
    const i64 row = bh * p.q_len + q0 + r;
    KatRows<T, D, BR, STAGE> Q = {qs, q + bh * p.q_len * D, 0, p.q_len}, DO = {dos, d_out + bh * p.q_len * D, 0, p.q_len};
    KatRows<T, D, BC, STAGE> K = {ks, k + kv, 0, p.kv_len}, V = {vs, v + kv, 0, p.kv_len};
    Q.Load(q0);
    DO.Load(q0);
    const T m = live ? stats[row * 3] : (T)0, inv = live ? stats[row * 3 + 1] : (T)0;
    const T delta = live ? stats[row * 3 + 2] : (T)0;
    T acc[ND];
    for (int j = 0; j < ND; ++j) acc[j] = 0;
    for (i64 j0 = 0; j0 < p.kv_len; j0 += BC) {
      if (katPastKeys(p, j0, q0, rows, live && lane == 0, m, &flag)) break;
      const int cols = (int)kMin((i64)BC, p.kv_len - j0);
      K.Load(j0);
      V.Load(j0);
      __syncthreads();
      for (int j = 0; j < NC; ++j) {
        const int c = lane + j * TPR;
        if (live && c < cols) {
          const bool seen = katSeen(p, mask, b, h, q0 + r, j0 + c);
          if (!seen) {
            s[r * SP + c] = 0;  // a hidden score is a constant
          } else {
            const T w = katExp(katDot<T, D>(Q.Row(r), K.Row(c)) * scale - m) * inv;
            s[r * SP + c] = w * (katDot<T, D>(DO.Row(r), V.Row(c)) - delta);
          }
        }
      }
      __syncthreads();
      if (live) katAccumulate<T, D, TPR, ND>(acc, s + r * SP, cols, K, (T)1, scale, lane);
      __syncthreads();
    }
    if (live) katStore<T, D, TPR, ND>(dq + row * D, acc, (T)1, lane);
    __syncthreads();
  }
}

// dv (DK false) or dk (DK true): per block of BR keys of a kv head, the
// query tiles of each head of its group.
template <class T, int D, int BR, int BC, bool STAGE, bool DK>
__device__ __forceinline__ void kAttentionGradKV(const T* q, const T* k, const T* v, const T* d_out,
                                                 const unsigned char* mask, const T* stats, T* out, const KatPlan p) {
  constexpr int TPR = 256 / BR, NC = (BC + TPR - 1) / TPR, ND = (D + TPR - 1) / TPR, SP = BC + 1;
  __shared__ T ks[STAGE ? BR * (D + 1) : 1];
  __shared__ T vs[STAGE && DK ? BR * (D + 1) : 1];
  __shared__ T qs[STAGE ? BC * (D + 1) : 1];
  __shared__ T dos[STAGE ? BC * (D + 1) : 1];
  __shared__ T st[BC * 3];
  __shared__ T s[BR * SP];
  __shared__ int flag;
  const int r = threadIdx.x / TPR, lane = threadIdx.x % TPR;
  const i64 key_blocks = (p.kv_len + BR - 1) / BR, group = p.heads / p.kv_heads;
  const T scale = (T)p.scale, masked = (T)p.masked;
  for (i64 blk = blockIdx.x; blk < p.batch * p.kv_heads * key_blocks; blk += gridDim.x) {
    const i64 bn = blk / key_blocks, b = bn / p.kv_heads, n = bn % p.kv_heads, j0 = blk % key_blocks * BR;
    const i64 rows = kMin((i64)BR, p.kv_len - j0), kv = bn * p.kv_len * D;
    const bool live = r < rows;
    KatRows<T, D, BR, STAGE> K = {ks, k + kv, 0, p.kv_len}, V = {vs, v + kv, 0, p.kv_len};
    K.Load(j0);
    if (DK) V.Load(j0);
    T acc[ND];
    for (int j = 0; j < ND; ++j) acc[j] = 0;
    for (i64 h = n * group; h < (n + 1) * group; ++h) {
      const i64 bh = b * p.heads + h;
      KatRows<T, D, BC, STAGE> Q = {qs, q + bh * p.q_len * D, 0, p.q_len};
      KatRows<T, D, BC, STAGE> DO = {dos, d_out + bh * p.q_len * D, 0, p.q_len};
      for (i64 i0 = 0; i0 < p.q_len; i0 += BC) {
        const int cols = (int)kMin((i64)BC, p.q_len - i0);
        for (int e = threadIdx.x; e < cols * 3; e += blockDim.x) st[e] = stats[(bh * p.q_len + i0) * 3 + e];
        __syncthreads();
        // Every key of the block hidden from every query of the tile, with
        // weight exp(masked - m) exactly 0: nothing to add.
        if (p.causal && j0 > p.kv_len - p.q_len + i0 + cols - 1) {
          bool zero = true;
          for (int c = 0; c < cols; ++c) zero = zero && katExp(masked - st[c * 3]) == (T)0;
          if (katAll(zero, &flag)) continue;
        }
        Q.Load(i0);
        DO.Load(i0);
        __syncthreads();
        for (int j = 0; j < NC; ++j) {
          const int c = lane + j * TPR;
          if (live && c < cols) {
            const bool seen = katSeen(p, mask, b, h, i0 + c, j0 + r);
            const T score = seen ? katDot<T, D>(K.Row(r), Q.Row(c)) * scale : masked;
            const T w = katExp(score - st[c * 3]) * st[c * 3 + 1];
            if (!DK) {
              s[r * SP + c] = w;
            } else {
              s[r * SP + c] = seen ? w * (katDot<T, D>(V.Row(r), DO.Row(c)) - st[c * 3 + 2]) : (T)0;
            }
          }
        }
        __syncthreads();
        if (live) katAccumulate<T, D, TPR, ND>(acc, s + r * SP, cols, DK ? Q : DO, (T)1, DK ? scale : (T)1, lane);
        __syncthreads();  // before the next tile replaces st, qs, dos and s
      }
    }
    if (live) katStore<T, D, TPR, ND>(out + (bn * p.kv_len + j0 + r) * D, acc, (T)1, lane);
    __syncthreads();
  }
}

)
