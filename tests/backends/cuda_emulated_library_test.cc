// Copyright 2026 The Kiln Authors.
// The emulator's stand-ins for cuBLAS, cuBLASLt, cuSOLVER and cuFFT
// (src/backends/cuda/emulated_library.h), and CudnnConv on the stand-in
// for cuDNN (emulated_cudnn.cc), against the libraries' documented
// contracts: what they compute from their column-major arguments, and what
// they reject. The CUDA backend's library code runs on them in the emulated
// suites (the *_cuda_emu ctest entries), so they must be as strict as the
// libraries: a stand-in that accepted a call the library rejects, or
// computed something else, would hide the bug the emulator is there to find.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <complex>
#include <limits>
#include <random>
#include <type_traits>
#include <vector>

#include "src/backends/cuda/codegen.h"
#include "src/backends/cuda/cudnn_conv.h"
#include "src/backends/cuda/library_calls.h"
#include "src/backends/cuda/library_api.h"
#include "src/backends/cuda/runtime_api.h"
#include "tests/testing/testing.h"

namespace kiln::backends::cuda {
namespace {

const LibraryApi& Api() { return EmulatedLibraryApi(); }

// The emulated runtime's stream the calls go on (the stand-ins refuse the
// legacy default stream, as its work would race with Kiln's streams on a
// GPU), and the wait after which their results are in memory.
cudaStream_t Stream() {
  static const cudaStream_t s = [] {
    cudaStream_t made = nullptr;
    EXPECT_EQ(EmulatedRuntimeApi().cudaStreamCreateWithFlags(&made, cudaStreamNonBlocking), cudaSuccess);
    return made;
  }();
  return s;
}
void Finish() { ASSERT_EQ(EmulatedRuntimeApi().cudaStreamSynchronize(Stream()), cudaSuccess); }

// Handles made by the stand-ins (on Stream()), one of each kind.
template <typename H>
H Handle() {
  static const H h = [] {
    H made = nullptr;
    if constexpr (std::is_same_v<H, cublasHandle_t>) {
      EXPECT_EQ(Api().cublasCreate_v2(&made), CUBLAS_STATUS_SUCCESS);
      EXPECT_EQ(Api().cublasSetStream_v2(made, Stream()), CUBLAS_STATUS_SUCCESS);
    } else if constexpr (std::is_same_v<H, cusolverDnHandle_t>) {
      EXPECT_EQ(Api().cusolverDnCreate(&made), CUSOLVER_STATUS_SUCCESS);
      EXPECT_EQ(Api().cusolverDnSetStream(made, Stream()), CUSOLVER_STATUS_SUCCESS);
    } else if constexpr (std::is_same_v<H, cusolverDnParams_t>) {
      EXPECT_EQ(Api().cusolverDnCreateParams(&made), CUSOLVER_STATUS_SUCCESS);
    } else {
      static_assert(std::is_same_v<H, cublasLtHandle_t>);
      EXPECT_EQ(Api().cublasLtCreate(&made), CUBLAS_STATUS_SUCCESS);
    }
    return made;
  }();
  return h;
}

std::vector<double> Random(size_t n, uint32_t seed) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<double> u(-1, 1);
  std::vector<double> v(n);
  for (double& x : v) x = u(gen);
  return v;
}

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// trsm, every side, triangle, transpose and diagonal, with leading
// dimensions above the extents and NaN in what the call must not read (the
// other triangle, the padding rows, a unit diagonal): op(A) X = 2 B, or
// X op(A) = 2 B, checked by multiplying back.
TEST(EmulatedLibraryTest, TrsmSolvesWithTheDocumentedArguments) {
  const int64_t m = 5, n = 3;
  for (const cublasSideMode_t side : {CUBLAS_SIDE_LEFT, CUBLAS_SIDE_RIGHT}) {
    for (const cublasFillMode_t uplo : {CUBLAS_FILL_MODE_LOWER, CUBLAS_FILL_MODE_UPPER}) {
      for (const cublasOperation_t trans : {CUBLAS_OP_N, CUBLAS_OP_T}) {
        for (const cublasDiagType_t diag : {CUBLAS_DIAG_NON_UNIT, CUBLAS_DIAG_UNIT}) {
          SCOPED_TRACE(::testing::Message() << "side " << side << " uplo " << uplo << " trans " << trans << " diag "
                                            << diag);
          const bool left = side == CUBLAS_SIDE_LEFT, lower = uplo == CUBLAS_FILL_MODE_LOWER;
          const int64_t k = left ? m : n, lda = k + 2, ldb = m + 1;
          std::vector<double> a = Random(static_cast<size_t>(lda * k), 1);
          // The triangle as stored, well conditioned; NaN elsewhere.
          const auto stored = [&](int64_t r, int64_t c) { return lower ? r >= c : r <= c; };
          for (int64_t c = 0; c < k; ++c) {
            for (int64_t r = 0; r < lda; ++r) {
              double& e = a[static_cast<size_t>(r + c * lda)];
              if (r >= k || !stored(r, c) || (r == c && diag == CUBLAS_DIAG_UNIT)) e = kNaN;
              else if (r == c) e = 3 + e;
            }
          }
          std::vector<double> b = Random(static_cast<size_t>(ldb * n), 2);
          for (int64_t c = 0; c < n; ++c) b[static_cast<size_t>(m + c * ldb)] = kNaN;  // padding row
          std::vector<double> x = b;
          const double alpha = 2;
          ASSERT_EQ(Api().cublasDtrsm_v2_64(Handle<cublasHandle_t>(), side, uplo, trans, diag, m, n, &alpha, a.data(),
                                            lda, x.data(), ldb),
                    CUBLAS_STATUS_SUCCESS);
          Finish();
          // op(A) as a dense matrix.
          const auto op = [&](int64_t i, int64_t j) {
            const int64_t r = trans == CUBLAS_OP_N ? i : j, c = trans == CUBLAS_OP_N ? j : i;
            if (r == c) return diag == CUBLAS_DIAG_UNIT ? 1.0 : a[static_cast<size_t>(r + c * lda)];
            return stored(r, c) ? a[static_cast<size_t>(r + c * lda)] : 0.0;
          };
          for (int64_t c = 0; c < n; ++c) {
            EXPECT_TRUE(std::isnan(x[static_cast<size_t>(m + c * ldb)])) << "the padding row was written";
            for (int64_t r = 0; r < m; ++r) {
              double back = 0;
              for (int64_t t = 0; t < k; ++t) {
                back += left ? op(r, t) * x[static_cast<size_t>(t + c * ldb)]
                             : x[static_cast<size_t>(r + t * ldb)] * op(t, c);
              }
              EXPECT_NEAR(back, alpha * b[static_cast<size_t>(r + c * ldb)], 1e-10) << r << ", " << c;
            }
          }
        }
      }
    }
  }
}

// The batched trsm solves each matrix its pointer arrays name.
TEST(EmulatedLibraryTest, BatchedTrsmSolvesEveryMatrix) {
  const int64_t k = 3, batch = 3;
  std::vector<float> a(static_cast<size_t>(k * k * batch), 0), b(static_cast<size_t>(k * batch), 1);
  std::vector<const float*> as;
  std::vector<float*> bs;
  for (int64_t i = 0; i < batch; ++i) {
    for (int64_t d = 0; d < k; ++d) a[static_cast<size_t>(i * k * k + d * (k + 1))] = static_cast<float>(i + 2);
    as.push_back(a.data() + i * k * k);
    bs.push_back(b.data() + i * k);
  }
  const float one = 1;
  ASSERT_EQ(Api().cublasStrsmBatched_64(Handle<cublasHandle_t>(), CUBLAS_SIDE_LEFT, CUBLAS_FILL_MODE_LOWER, CUBLAS_OP_N,
                                        CUBLAS_DIAG_NON_UNIT, k, 1, &one, as.data(), k, bs.data(), k, batch),
            CUBLAS_STATUS_SUCCESS);
  Finish();
  for (int64_t i = 0; i < batch; ++i) {
    for (int64_t r = 0; r < k; ++r) {
      EXPECT_FLOAT_EQ(b[static_cast<size_t>(i * k + r)], 1.0f / static_cast<float>(i + 2));
    }
  }
}

// Cholesky through the 64-bit API: the lower factor in place, info 0; a
// matrix that is not positive definite gives the failing minor in info.
TEST(EmulatedLibraryTest, PotrfFactorsAndReportsInInfo) {
  const auto solver = Handle<cusolverDnHandle_t>();
  const auto params = Handle<cusolverDnParams_t>();
  std::vector<double> a = {4, 2, kNaN, 2, 5, kNaN};  // [[4, 2], [2, 5]], lda 3 (column-major)
  size_t device = 0, host = 0;
  ASSERT_EQ(Api().cusolverDnXpotrf_bufferSize(solver, params, CUBLAS_FILL_MODE_LOWER, 2, CUDA_R_64F, a.data(), 3,
                                              CUDA_R_64F, &device, &host),
            CUSOLVER_STATUS_SUCCESS);
  ASSERT_GT(device, 0u);
  std::vector<char> work(device);
  int info = -1;
  ASSERT_EQ(Api().cusolverDnXpotrf(solver, params, CUBLAS_FILL_MODE_LOWER, 2, CUDA_R_64F, a.data(), 3, CUDA_R_64F,
                                   work.data(), device, nullptr, host, &info),
            CUSOLVER_STATUS_SUCCESS);
  Finish();
  EXPECT_EQ(info, 0);
  EXPECT_DOUBLE_EQ(a[0], 2);  // L = [[2, 0], [1, 2]]
  EXPECT_DOUBLE_EQ(a[1], 1);
  EXPECT_DOUBLE_EQ(a[4], 2);
  EXPECT_DOUBLE_EQ(a[3], 2);  // the upper triangle untouched
  std::vector<float> bad = {1, 2, 2, 1};  // eigenvalues 3 and -1
  float* ptr = bad.data();
  ASSERT_EQ(Api().cusolverDnSpotrfBatched(solver, CUBLAS_FILL_MODE_LOWER, 2, &ptr, 2, &info, 1),
            CUSOLVER_STATUS_SUCCESS);
  Finish();
  EXPECT_EQ(info, 2);
}

// What the libraries reject, the stand-ins reject with the same status.
TEST(EmulatedLibraryTest, RejectsWhatTheLibrariesReject) {
  const auto blas = Handle<cublasHandle_t>();
  const auto solver = Handle<cusolverDnHandle_t>();
  const auto params = Handle<cusolverDnParams_t>();
  std::vector<double> a(64, 1), b(64, 1);
  const double one = 1;
  // trsm: lda below the triangle's order; ldb below B's rows; no handle.
  EXPECT_EQ(Api().cublasDtrsm_v2_64(blas, CUBLAS_SIDE_LEFT, CUBLAS_FILL_MODE_LOWER, CUBLAS_OP_N, CUBLAS_DIAG_NON_UNIT,
                                    4, 2, &one, a.data(), 3, b.data(), 4),
            CUBLAS_STATUS_INVALID_VALUE);
  EXPECT_EQ(Api().cublasDtrsm_v2_64(blas, CUBLAS_SIDE_RIGHT, CUBLAS_FILL_MODE_LOWER, CUBLAS_OP_N, CUBLAS_DIAG_NON_UNIT,
                                    4, 2, &one, a.data(), 2, b.data(), 3),
            CUBLAS_STATUS_INVALID_VALUE);
  EXPECT_EQ(Api().cublasDtrsm_v2_64(nullptr, CUBLAS_SIDE_LEFT, CUBLAS_FILL_MODE_LOWER, CUBLAS_OP_N,
                                    CUBLAS_DIAG_NON_UNIT, 2, 2, &one, a.data(), 2, b.data(), 2),
            CUBLAS_STATUS_NOT_INITIALIZED);
  // potrf: less workspace than its query said; mixed types.
  size_t device = 0, host = 0;
  ASSERT_EQ(Api().cusolverDnXpotrf_bufferSize(solver, params, CUBLAS_FILL_MODE_LOWER, 4, CUDA_R_64F, a.data(), 4,
                                              CUDA_R_64F, &device, &host),
            CUSOLVER_STATUS_SUCCESS);
  std::vector<char> work(device);
  int info = 0;
  EXPECT_EQ(Api().cusolverDnXpotrf(solver, params, CUBLAS_FILL_MODE_LOWER, 4, CUDA_R_64F, a.data(), 4, CUDA_R_64F,
                                   work.data(), device - 1, nullptr, 0, &info),
            CUSOLVER_STATUS_INVALID_VALUE);
  EXPECT_EQ(Api().cusolverDnXpotrf(solver, params, CUBLAS_FILL_MODE_LOWER, 4, CUDA_R_64F, a.data(), 4, CUDA_R_64F,
                                   nullptr, device, nullptr, 0, &info),
            CUSOLVER_STATUS_INVALID_VALUE);
  EXPECT_EQ(Api().cusolverDnXpotrf_bufferSize(solver, params, CUBLAS_FILL_MODE_LOWER, 4, CUDA_R_64F, a.data(), 4,
                                              CUDA_R_32F, &device, &host),
            CUSOLVER_STATUS_NOT_SUPPORTED);
  // gesvd: wide matrices, and ldu below the rows even without U.
  EXPECT_EQ(Api().cusolverDnXgesvd_bufferSize(solver, params, 'N', 'N', 2, 3, CUDA_R_64F, a.data(), 2, CUDA_R_64F,
                                              b.data(), CUDA_R_64F, nullptr, 2, CUDA_R_64F, nullptr, 3, CUDA_R_64F,
                                              &device, &host),
            CUSOLVER_STATUS_INVALID_VALUE);
  EXPECT_EQ(Api().cusolverDnXgesvd_bufferSize(solver, params, 'N', 'N', 3, 2, CUDA_R_64F, a.data(), 3, CUDA_R_64F,
                                              b.data(), CUDA_R_64F, nullptr, 1, CUDA_R_64F, nullptr, 2, CUDA_R_64F,
                                              &device, &host),
            CUSOLVER_STATUS_INVALID_VALUE);
  // orgqr: less workspace than its query said (counted in elements).
  int lwork = 0;
  ASSERT_EQ(Api().cusolverDnDorgqr_bufferSize(solver, 4, 3, 3, a.data(), 4, b.data(), &lwork), CUSOLVER_STATUS_SUCCESS);
  std::vector<double> owork(static_cast<size_t>(lwork));
  EXPECT_EQ(Api().cusolverDnDorgqr(solver, 4, 3, 3, a.data(), 4, b.data(), owork.data(), lwork - 1, &info),
            CUSOLVER_STATUS_INVALID_VALUE);
}

// A handle or plan whose stream was never set puts its work on the legacy
// default stream, which on a GPU is not ordered with the backend's
// non-blocking streams: the stand-ins refuse it rather than run it at once.
TEST(EmulatedLibraryTest, TheLegacyDefaultStreamIsRefused) {
  cublasHandle_t blas = nullptr;
  ASSERT_EQ(Api().cublasCreate_v2(&blas), CUBLAS_STATUS_SUCCESS);
  std::vector<double> a = {2}, b = {4};
  const double one = 1;
  KILN_EXPECT_ERROR(Api().cublasDtrsm_v2_64(blas, CUBLAS_SIDE_LEFT, CUBLAS_FILL_MODE_LOWER, CUBLAS_OP_N,
                                            CUBLAS_DIAG_NON_UNIT, 1, 1, &one, a.data(), 1, b.data(), 1),
                    "cuda-emu: a library call on the legacy default stream");
  EXPECT_EQ(b[0], 4);
  ASSERT_EQ(Api().cublasSetStream_v2(blas, Stream()), CUBLAS_STATUS_SUCCESS);
  ASSERT_EQ(Api().cublasDtrsm_v2_64(blas, CUBLAS_SIDE_LEFT, CUBLAS_FILL_MODE_LOWER, CUBLAS_OP_N, CUBLAS_DIAG_NON_UNIT,
                                    1, 1, &one, a.data(), 1, b.data(), 1),
            CUBLAS_STATUS_SUCCESS);
  Finish();
  EXPECT_EQ(b[0], 2);
  EXPECT_EQ(Api().cublasDestroy_v2(blas), CUBLAS_STATUS_SUCCESS);
  int n = 4;
  cufftHandle plan = 0;
  ASSERT_EQ(Api().cufftPlanMany(&plan, 1, &n, nullptr, 1, 4, nullptr, 1, 4, CUFFT_Z2Z, 1), CUFFT_SUCCESS);
  std::vector<cufftDoubleComplex> x(4);
  KILN_EXPECT_ERROR(Api().cufftExecZ2Z(plan, x.data(), x.data(), CUFFT_FORWARD),
                    "cuda-emu: a library call on the legacy default stream");
  EXPECT_EQ(Api().cufftDestroy(plan), CUFFT_SUCCESS);
}

// cuBLASLt objects for a product D (rows x cols) = op(A) op(B) of Float32.
struct Lt {
  cublasLtMatmulDesc_t desc = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, d = nullptr;
  ~Lt() {
    for (cublasLtMatrixLayout_t l : {a, b, d}) {
      if (l != nullptr) Api().cublasLtMatrixLayoutDestroy(l);
    }
    if (desc != nullptr) Api().cublasLtMatmulDescDestroy(desc);
  }
};

cublasStatus_t Heuristic(const Lt& lt) {
  cublasLtMatmulPreference_t pref = nullptr;
  EXPECT_EQ(Api().cublasLtMatmulPreferenceCreate(&pref), CUBLAS_STATUS_SUCCESS);
  cublasLtMatmulHeuristicResult_t result{};
  int found = -1;
  const cublasStatus_t s = Api().cublasLtMatmulAlgoGetHeuristic(Handle<cublasLtHandle_t>(), lt.desc, lt.a, lt.b, lt.d,
                                                                lt.d, pref, 1, &result, &found);
  Api().cublasLtMatmulPreferenceDestroy(pref);
  EXPECT_EQ(found, s == CUBLAS_STATUS_SUCCESS ? 1 : 0);
  return s;
}

// How many cuBLASLt heuristic calls RefusingHeuristic refuses (finding no
// algorithm) before it passes them on to the emulator's.
int heuristic_refusals = 0;
cublasStatus_t RefusingHeuristic(cublasLtHandle_t handle, cublasLtMatmulDesc_t desc, cublasLtMatrixLayout_t a,
                                 cublasLtMatrixLayout_t b, cublasLtMatrixLayout_t c, cublasLtMatrixLayout_t d,
                                 cublasLtMatmulPreference_t pref, int requested, cublasLtMatmulHeuristicResult_t* results,
                                 int* found) {
  if (heuristic_refusals > 0) {
    --heuristic_refusals;
    *found = 0;
    return CUBLAS_STATUS_NOT_SUPPORTED;
  }
  return Api().cublasLtMatmulAlgoGetHeuristic(handle, desc, a, b, c, d, pref, requested, results, found);
}

// A Float32 product allowed BFloat16 products (MatmulSpec::bf16_products) is
// cuBLASLt's CUBLAS_COMPUTE_32F_FAST_16BF, whose operands the emulator
// rounds as bf16 tensor cores do. Where cuBLASLt has no algorithm for it,
// LtMatmul falls back to the exact product (the precision is a permission,
// not a demand); where it has none for that either, or for an exact product,
// the error names the product.
TEST(EmulatedLibraryTest, ReducedPrecisionProductsFallBackToExactFp32) {
  LibraryApi api = Api();
  api.cublasLtMatmulAlgoGetHeuristic = RefusingHeuristic;
  const LtContext c{&api, Handle<cublasLtHandle_t>(), nullptr, 0};
  MatmulSpec s;
  s.m = s.n = s.k = 2;
  const float x = 1 + 1.0f / 512;  // 1 in bfloat16 (8 significant bits, rounded to nearest even)
  const std::vector<float> lhs = {x, 0, 0, x}, rhs = {1, 0, 0, 1};
  const auto product = [&](bool bf16, int refusals) {
    s.bf16_products = bf16;
    heuristic_refusals = refusals;
    const LtMatmul matmul(c, s, /*tf32=*/false);
    std::vector<float> out(4, -1);
    matmul.Run(c, lhs.data(), rhs.data(), nullptr, out.data(), Stream());
    Finish();
    EXPECT_EQ(heuristic_refusals, 0);
    return out;
  };
  EXPECT_EQ(product(true, 0), (std::vector<float>{1, 0, 0, 1}));
  EXPECT_EQ(product(true, 1), lhs);  // FAST_16BF refused: exact
  EXPECT_EQ(product(false, 0), lhs);
  const std::string no_algorithm = "cuda: cuBLASLt has no algorithm for a Float32 product of [1, 2, 2] x [1, 2, 2]";
  s.bf16_products = true;
  heuristic_refusals = 2;
  KILN_EXPECT_ERROR(LtMatmul(c, s, false), no_algorithm);
  s.bf16_products = false;
  heuristic_refusals = 1;
  KILN_EXPECT_ERROR(LtMatmul(c, s, false), no_algorithm);
  EXPECT_EQ(heuristic_refusals, 0);  // an exact product is asked for once
  heuristic_refusals = 0;
}

// The bias epilogue adds its vector along D's rows (cuBLASLt's m), to every
// column; transposes and strided batches read the documented elements.
TEST(EmulatedLibraryTest, MatmulAddsTheBiasAlongTheRowsOfD) {
  Lt lt;
  ASSERT_EQ(Api().cublasLtMatmulDescCreate(&lt.desc, CUBLAS_COMPUTE_32F, CUDA_R_32F), CUBLAS_STATUS_SUCCESS);
  const cublasOperation_t t = CUBLAS_OP_T;
  ASSERT_EQ(Api().cublasLtMatmulDescSetAttribute(lt.desc, CUBLASLT_MATMUL_DESC_TRANSA, &t, sizeof t),
            CUBLAS_STATUS_SUCCESS);
  const cublasLtEpilogue_t bias = CUBLASLT_EPILOGUE_BIAS;
  ASSERT_EQ(Api().cublasLtMatmulDescSetAttribute(lt.desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &bias, sizeof bias),
            CUBLAS_STATUS_SUCCESS);
  // D: 2 x 3, two items; A stored 1 x 2 (op: transposed to 2 x 1); B 1 x 3.
  const int32_t batch = 2;
  const int64_t a_stride = 2, b_stride = 3, d_stride = 6;
  ASSERT_EQ(Api().cublasLtMatrixLayoutCreate(&lt.a, CUDA_R_32F, 1, 2, 1), CUBLAS_STATUS_SUCCESS);
  ASSERT_EQ(Api().cublasLtMatrixLayoutCreate(&lt.b, CUDA_R_32F, 1, 3, 1), CUBLAS_STATUS_SUCCESS);
  ASSERT_EQ(Api().cublasLtMatrixLayoutCreate(&lt.d, CUDA_R_32F, 2, 3, 2), CUBLAS_STATUS_SUCCESS);
  for (auto [l, stride] : {std::pair{lt.a, a_stride}, std::pair{lt.b, b_stride}, std::pair{lt.d, d_stride}}) {
    ASSERT_EQ(Api().cublasLtMatrixLayoutSetAttribute(l, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &batch, sizeof batch),
              CUBLAS_STATUS_SUCCESS);
    ASSERT_EQ(Api().cublasLtMatrixLayoutSetAttribute(l, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, &stride,
                                                     sizeof stride),
              CUBLAS_STATUS_SUCCESS);
  }
  ASSERT_EQ(Heuristic(lt), CUBLAS_STATUS_SUCCESS);
  const std::vector<float> a = {1, 2, 3, 4}, b = {1, 10, 100, 2, 20, 200}, v = {0.5f, 0.25f};
  std::vector<float> d(12, -1);
  const float alpha = 1, beta = 0;
  cublasLtMatmulAlgo_t algo{};
  // The epilogue without its vector is an error.
  EXPECT_EQ(Api().cublasLtMatmul(Handle<cublasLtHandle_t>(), lt.desc, &alpha, a.data(), lt.a, b.data(), lt.b, &beta,
                                 d.data(), lt.d, d.data(), lt.d, &algo, nullptr, 0, Stream()),
            CUBLAS_STATUS_INVALID_VALUE);
  const void* vp = v.data();
  ASSERT_EQ(Api().cublasLtMatmulDescSetAttribute(lt.desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &vp, sizeof vp),
            CUBLAS_STATUS_SUCCESS);
  ASSERT_EQ(Api().cublasLtMatmul(Handle<cublasLtHandle_t>(), lt.desc, &alpha, a.data(), lt.a, b.data(), lt.b, &beta,
                                 d.data(), lt.d, d.data(), lt.d, &algo, nullptr, 0, Stream()),
            CUBLAS_STATUS_SUCCESS);
  Finish();
  // Item i: D(r, c) = a[2 i + r] * b[3 i + c] + v[r], column-major.
  for (int i = 0; i < 2; ++i) {
    for (int c = 0; c < 3; ++c) {
      for (int r = 0; r < 2; ++r) {
        EXPECT_FLOAT_EQ(d[static_cast<size_t>(i * 6 + r + c * 2)], a[static_cast<size_t>(2 * i + r)] *
                                                                       b[static_cast<size_t>(3 * i + c)] +
                                                                   v[static_cast<size_t>(r)])
            << i << ", " << r << ", " << c;
      }
    }
  }
}

// Extents, batches, types and attributes that do not fit are refused, at
// the heuristics and at the call.
TEST(EmulatedLibraryTest, MatmulRejectsMismatchedOperands) {
  const auto make = [](Lt& lt, uint64_t a_cols, int32_t d_batch, cudaDataType d_type) {
    ASSERT_EQ(Api().cublasLtMatmulDescCreate(&lt.desc, CUBLAS_COMPUTE_32F, CUDA_R_32F), CUBLAS_STATUS_SUCCESS);
    ASSERT_EQ(Api().cublasLtMatrixLayoutCreate(&lt.a, CUDA_R_32F, 2, a_cols, 2), CUBLAS_STATUS_SUCCESS);
    ASSERT_EQ(Api().cublasLtMatrixLayoutCreate(&lt.b, CUDA_R_32F, 4, 3, 4), CUBLAS_STATUS_SUCCESS);
    ASSERT_EQ(Api().cublasLtMatrixLayoutCreate(&lt.d, d_type, 2, 3, 2), CUBLAS_STATUS_SUCCESS);
    ASSERT_EQ(
        Api().cublasLtMatrixLayoutSetAttribute(lt.d, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &d_batch, sizeof d_batch),
        CUBLAS_STATUS_SUCCESS);
  };
  {
    Lt ok;
    make(ok, 4, 1, CUDA_R_32F);
    EXPECT_EQ(Heuristic(ok), CUBLAS_STATUS_SUCCESS);
  }
  {
    Lt inner;  // op(A) 2 x 5 against op(B) 4 x 3
    make(inner, 5, 1, CUDA_R_32F);
    EXPECT_EQ(Heuristic(inner), CUBLAS_STATUS_INVALID_VALUE);
  }
  {
    Lt batch;
    make(batch, 4, 2, CUDA_R_32F);
    EXPECT_EQ(Heuristic(batch), CUBLAS_STATUS_INVALID_VALUE);
  }
  {
    Lt type;
    make(type, 4, 1, CUDA_R_64F);
    EXPECT_EQ(Heuristic(type), CUBLAS_STATUS_NOT_SUPPORTED);
  }
  cublasLtMatrixLayout_t l = nullptr;
  EXPECT_EQ(Api().cublasLtMatrixLayoutCreate(&l, CUDA_R_32F, 4, 2, 3), CUBLAS_STATUS_INVALID_VALUE);  // ld < rows
  Lt lt;
  ASSERT_EQ(Api().cublasLtMatmulDescCreate(&lt.desc, CUBLAS_COMPUTE_32F, CUDA_R_32F), CUBLAS_STATUS_SUCCESS);
  const cublasOperation_t t = CUBLAS_OP_T;
  EXPECT_EQ(Api().cublasLtMatmulDescSetAttribute(lt.desc, CUBLASLT_MATMUL_DESC_TRANSA, &t, 2),
            CUBLAS_STATUS_INVALID_VALUE);  // the wrong size
  const int32_t any = 0;
  EXPECT_EQ(Api().cublasLtMatmulDescSetAttribute(lt.desc, CUBLASLT_MATMUL_DESC_FILL_MODE, &any, sizeof any),
            CUBLAS_STATUS_NOT_SUPPORTED);  // an attribute the stand-in does not model
}

// cuFFT's advanced layout: two interleaved length-4 signals (stride 2,
// distance 1) transformed in place, each against its DFT; the basic layout
// ignores strides and distances; a plan runs only through its own type.
TEST(EmulatedLibraryTest, FftReadsCufftLayouts) {
  int n = 4, embed = 4;
  cufftHandle plan = 0;
  ASSERT_EQ(Api().cufftPlanMany(&plan, 1, &n, &embed, 2, 1, &embed, 2, 1, CUFFT_Z2Z, 2), CUFFT_SUCCESS);
  ASSERT_EQ(Api().cufftSetStream(plan, Stream()), CUFFT_SUCCESS);
  std::vector<std::complex<double>> x(8), want(8);
  for (int i = 0; i < 8; ++i) x[static_cast<size_t>(i)] = {std::sin(i + 1.0), std::cos(3.0 * i)};
  for (int signal = 0; signal < 2; ++signal) {
    for (int k = 0; k < 4; ++k) {
      std::complex<double> sum = 0;
      for (int t = 0; t < 4; ++t) {
        sum += x[static_cast<size_t>(signal + 2 * t)] * std::polar(1.0, -2 * M_PI * k * t / 4);
      }
      want[static_cast<size_t>(signal + 2 * k)] = sum;
    }
  }
  auto* data = reinterpret_cast<cufftDoubleComplex*>(x.data());
  ASSERT_EQ(Api().cufftExecZ2Z(plan, data, data, CUFFT_FORWARD), CUFFT_SUCCESS);
  Finish();
  for (size_t i = 0; i < 8; ++i) EXPECT_LT(std::abs(x[i] - want[i]), 1e-12) << i;
  EXPECT_EQ(Api().cufftExecC2C(plan, nullptr, nullptr, CUFFT_FORWARD), CUFFT_INVALID_TYPE);
  EXPECT_EQ(Api().cufftExecZ2Z(plan, data, data, 0), CUFFT_INVALID_VALUE);  // not a direction
  EXPECT_EQ(Api().cufftDestroy(plan), CUFFT_SUCCESS);
  EXPECT_EQ(Api().cufftExecZ2Z(plan, data, data, CUFFT_FORWARD), CUFFT_INVALID_PLAN);
  // Basic layout (null embeddings): items packed, whatever the strides say.
  std::vector<float> real = {1, 2, 3, 4, 5, 6, 7, 8};
  std::vector<std::complex<float>> half(6);
  ASSERT_EQ(Api().cufftPlanMany(&plan, 1, &n, nullptr, 7, 9, nullptr, 5, 3, CUFFT_R2C, 2), CUFFT_SUCCESS);
  ASSERT_EQ(Api().cufftSetStream(plan, Stream()), CUFFT_SUCCESS);
  ASSERT_EQ(Api().cufftExecR2C(plan, real.data(), reinterpret_cast<cufftComplex*>(half.data())), CUFFT_SUCCESS);
  Finish();
  EXPECT_EQ(half[0], std::complex<float>(10, 0));  // item 0's sum
  EXPECT_EQ(half[3], std::complex<float>(26, 0));  // item 1's, n / 2 + 1 = 3 bins on
  EXPECT_EQ(half[4], std::complex<float>(-2, 2));
  EXPECT_EQ(Api().cufftDestroy(plan), CUFFT_SUCCESS);
  EXPECT_EQ(Api().cufftPlanMany(&plan, 4, &n, nullptr, 1, 0, nullptr, 1, 0, CUFFT_C2C, 1), CUFFT_INVALID_SIZE);
}

// A 3x3 convolution of a [2, 3, 5, 5] NCHW image into [2, 4, 3, 3].
ConvSpec SmallForward() {
  ConvSpec s;
  s.kind = ConvSpec::Kind::kForward;
  s.dtype = dtypes::Float32;
  s.x_dims = {2, 3, 5, 5};
  s.y_dims = {2, 4, 3, 3};
  s.w_dims = {4, 3, 3, 3};
  s.x_strides = CudnnPackedStrides(s.x_dims, false);
  s.y_strides = CudnnPackedStrides(s.y_dims, false);
  s.padding = {0, 0};
  s.strides = {1, 1};
  s.dilation = {1, 1};
  return s;
}

// CudnnConv takes the heuristics' first usable algorithm (deterministic
// when asked, within the workspace limit, never one whose math type it
// must not use), sets that algorithm's math type on the descriptor, and
// sizes its workspace by the larger of the heuristics' figure and the query
// made then (the stand-in's query asks 256 bytes more, and its call refuses
// less, or a math type other than the algorithm's). Specs cuDNN rejects are
// errors naming the step.
TEST(EmulatedCudnnTest, CudnnConvPicksAnAlgorithmAndItsWorkspace) {
  if (!HaveEmulatedCudnn()) GTEST_SKIP() << "built without cuDNN's headers";
  const CudnnHandle handle(CudnnImpl::kEmulated);
  ConvSpec s = SmallForward();
  const CudnnConv fast(handle, s, size_t{1} << 20, false);
  EXPECT_EQ(fast.WorkspaceBytes(), (size_t{1} << 16) + 256);
  const CudnnConv tight(handle, s, 1000, false);  // the workspace algorithm does not fit
  EXPECT_EQ(tight.WorkspaceBytes(), 0u);
  s.deterministic = true;
  const CudnnConv deterministic(handle, s, size_t{1} << 20, false);
  EXPECT_EQ(deterministic.WorkspaceBytes(), 0u);
  // Ones convolved with ones: 27 taps.
  std::vector<float> x(2 * 3 * 5 * 5, 1), w(4 * 3 * 3 * 3, 1), y(2 * 4 * 3 * 3, 0);
  std::vector<std::byte> workspace(fast.WorkspaceBytes());
  fast.Run(handle, Stream(), x.data(), w.data(), y.data(), workspace.data());
  Finish();
  for (float v : y) EXPECT_EQ(v, 27.0f);
  // TF32 allowed: the listed algorithm runs on tensor cores, a math type
  // the descriptor must be given before the call.
  const CudnnConv tf32(handle, SmallForward(), size_t{1} << 20, true);
  EXPECT_EQ(tf32.WorkspaceBytes(), (size_t{1} << 16) + 256);
  std::fill(y.begin(), y.end(), 0.0f);
  tf32.Run(handle, Stream(), x.data(), w.data(), y.data(), workspace.data());
  Finish();
  EXPECT_EQ(y[0], 27.0f);
  // Half precision: past the algorithm listed with ALLOW_CONVERSION.
  ConvSpec half = SmallForward();
  half.dtype = dtypes::Float16;
  EXPECT_EQ(CudnnConv(handle, half, size_t{1} << 20, false).WorkspaceBytes(), (size_t{1} << 16) + 256);
  s.y_dims = {2, 4, 4, 4};  // not the forward formula's extents
  s.y_strides = CudnnPackedStrides(s.y_dims, false);
  KILN_EXPECT_ERROR(CudnnConv(handle, s, size_t{1} << 20, false), "forward algorithm heuristics failed");
}

}  // namespace
}  // namespace kiln::backends::cuda
