// Copyright 2026 The Kiln Authors.
// The emulator's stand-in for cuDNN's convolution API (see cudnn_api.h), so
// that CudnnConv (cudnn_conv.cc) runs in the emulator as it does on a GPU:
// its descriptors, heuristics pick, workspace queries and the operands'
// roles in each call. The stand-in reads its arguments as cuDNN documents
// them (tensors as [n, c, spatial...] dims with element strides, the filter
// as [k, c, spatial...] in its format, cross-correlation, the three calls'
// parameter orders) and rejects what cuDNN rejects (extents that break the
// forward formula, channels that do not divide into the groups, mixed
// types, a workspace smaller than asked, a math type other than the one the
// heuristics listed with the algorithm); then it computes the call on host
// memory through reference_conv.cc. Its heuristics list, in this order, an
// unsupported algorithm, one with a math type Kiln must not take (TF32
// tensor cores for exact FP32, else CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION),
// a nondeterministic one with a workspace (with TF32 tensor cores where the
// descriptor allows them: a math type to set on the descriptor) and a
// deterministic one without; so CudnnConv's pick, and its setting of the
// chosen math type, are exercised.
#include "src/backends/cuda/emulator.h"

#include <atomic>

#if KILN_HAVE_CUDNN

#include <algorithm>
#include <cstdint>
#include <map>
#include <vector>

#include "src/backends/cuda/cudnn_api.h"
#include "src/backends/cuda/emulated_library.h"
#include "src/backends/cuda/reference_conv.h"

namespace kiln::backends::cuda {

namespace {

std::atomic<int> refused_kind{-1};  // RefuseEmulatedConvolutions

struct FakeHandle {
  cudaStream_t stream = nullptr;  // cudnnSetStream's
};
struct FakeTensor {
  cudnnDataType_t type = CUDNN_DATA_FLOAT;
  std::vector<int64_t> dims, strides;
};
struct FakeFilter {
  cudnnDataType_t type = CUDNN_DATA_FLOAT;
  cudnnTensorFormat_t format = CUDNN_TENSOR_NCHW;
  std::vector<int64_t> dims;
};
struct FakeConvolution {
  std::vector<int64_t> padding, strides, dilation;
  cudnnConvolutionMode_t mode = CUDNN_CONVOLUTION;
  cudnnDataType_t compute = CUDNN_DATA_FLOAT;
  int groups = 1;
  cudnnMathType_t math = CUDNN_DEFAULT_MATH;
  std::map<int, cudnnMathType_t> listed;  // each algorithm's math type, as the last heuristics listed it
};

FakeTensor* Of(cudnnTensorDescriptor_t d) { return reinterpret_cast<FakeTensor*>(d); }
FakeFilter* Of(cudnnFilterDescriptor_t d) { return reinterpret_cast<FakeFilter*>(d); }
FakeConvolution* Of(cudnnConvolutionDescriptor_t d) { return reinterpret_cast<FakeConvolution*>(d); }

size_t GetVersion() { return CUDNN_VERSION; }
size_t GetCudartVersion() { return CUDART_VERSION; }
const char* GetErrorString(cudnnStatus_t s) {
  switch (s) {
    case CUDNN_STATUS_SUCCESS: return "CUDNN_STATUS_SUCCESS (emulated)";
    case CUDNN_STATUS_BAD_PARAM: return "CUDNN_STATUS_BAD_PARAM (emulated)";
    case CUDNN_STATUS_NOT_SUPPORTED: return "CUDNN_STATUS_NOT_SUPPORTED (emulated)";
    default: return "a cuDNN error (emulated)";
  }
}

cudnnStatus_t Create(cudnnHandle_t* h) {
  if (h == nullptr) return CUDNN_STATUS_BAD_PARAM;
  *h = reinterpret_cast<cudnnHandle_t>(new FakeHandle);
  return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t Destroy(cudnnHandle_t h) {
  delete reinterpret_cast<FakeHandle*>(h);
  return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t SetStream(cudnnHandle_t h, cudaStream_t stream) {
  if (h == nullptr) return CUDNN_STATUS_BAD_PARAM;
  reinterpret_cast<FakeHandle*>(h)->stream = stream;
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t CreateTensorDescriptor(cudnnTensorDescriptor_t* d) {
  if (d == nullptr) return CUDNN_STATUS_BAD_PARAM;
  *d = reinterpret_cast<cudnnTensorDescriptor_t>(new FakeTensor);
  return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t SetTensorNdDescriptor(cudnnTensorDescriptor_t d, cudnnDataType_t type, int rank, const int dims[],
                                    const int strides[]) {
  if (d == nullptr || rank < 3 || rank > CUDNN_DIM_MAX || dims == nullptr || strides == nullptr) {
    return CUDNN_STATUS_BAD_PARAM;
  }
  FakeTensor& t = *Of(d);
  t.type = type;
  t.dims.assign(dims, dims + rank);
  t.strides.assign(strides, strides + rank);
  for (int i = 0; i < rank; ++i) {
    if (dims[i] <= 0 || strides[i] < 0) return CUDNN_STATUS_BAD_PARAM;
  }
  return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t DestroyTensorDescriptor(cudnnTensorDescriptor_t d) {
  delete Of(d);
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t CreateFilterDescriptor(cudnnFilterDescriptor_t* d) {
  if (d == nullptr) return CUDNN_STATUS_BAD_PARAM;
  *d = reinterpret_cast<cudnnFilterDescriptor_t>(new FakeFilter);
  return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t SetFilterNdDescriptor(cudnnFilterDescriptor_t d, cudnnDataType_t type, cudnnTensorFormat_t format,
                                    int rank, const int dims[]) {
  if (d == nullptr || rank < 3 || rank > CUDNN_DIM_MAX || dims == nullptr) return CUDNN_STATUS_BAD_PARAM;
  if (format != CUDNN_TENSOR_NCHW && format != CUDNN_TENSOR_NHWC) return CUDNN_STATUS_BAD_PARAM;
  FakeFilter& f = *Of(d);
  f.type = type;
  f.format = format;
  f.dims.assign(dims, dims + rank);
  for (int i = 0; i < rank; ++i) {
    if (dims[i] <= 0) return CUDNN_STATUS_BAD_PARAM;
  }
  return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t DestroyFilterDescriptor(cudnnFilterDescriptor_t d) {
  delete Of(d);
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t CreateConvolutionDescriptor(cudnnConvolutionDescriptor_t* d) {
  if (d == nullptr) return CUDNN_STATUS_BAD_PARAM;
  *d = reinterpret_cast<cudnnConvolutionDescriptor_t>(new FakeConvolution);
  return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t SetConvolutionNdDescriptor(cudnnConvolutionDescriptor_t d, int n, const int padding[],
                                         const int strides[], const int dilation[], cudnnConvolutionMode_t mode,
                                         cudnnDataType_t compute) {
  if (d == nullptr || n < 1 || n > CUDNN_DIM_MAX - 2 || padding == nullptr || strides == nullptr ||
      dilation == nullptr) {
    return CUDNN_STATUS_BAD_PARAM;
  }
  for (int i = 0; i < n; ++i) {
    if (padding[i] < 0 || strides[i] < 1 || dilation[i] < 1) return CUDNN_STATUS_BAD_PARAM;
  }
  FakeConvolution& c = *Of(d);
  c.padding.assign(padding, padding + n);
  c.strides.assign(strides, strides + n);
  c.dilation.assign(dilation, dilation + n);
  c.mode = mode;
  c.compute = compute;
  return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t SetConvolutionGroupCount(cudnnConvolutionDescriptor_t d, int groups) {
  if (d == nullptr || groups < 1) return CUDNN_STATUS_BAD_PARAM;
  Of(d)->groups = groups;
  return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t SetConvolutionMathType(cudnnConvolutionDescriptor_t d, cudnnMathType_t math) {
  if (d == nullptr) return CUDNN_STATUS_BAD_PARAM;
  Of(d)->math = math;
  return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t DestroyConvolutionDescriptor(cudnnConvolutionDescriptor_t d) {
  delete Of(d);
  return CUDNN_STATUS_SUCCESS;
}

// The problem the descriptors describe, as a ConvSpec, or why cuDNN would
// refuse it.
cudnnStatus_t Problem(ConvSpec::Kind kind, cudnnTensorDescriptor_t x_d, cudnnFilterDescriptor_t w_d,
                      cudnnConvolutionDescriptor_t c_d, cudnnTensorDescriptor_t y_d, ConvSpec* spec) {
  if (x_d == nullptr || w_d == nullptr || c_d == nullptr || y_d == nullptr) return CUDNN_STATUS_BAD_PARAM;
  const FakeTensor &x = *Of(x_d), &y = *Of(y_d);
  const FakeFilter& w = *Of(w_d);
  const FakeConvolution& c = *Of(c_d);
  const size_t rank = x.dims.size();
  if (y.dims.size() != rank || w.dims.size() != rank || c.padding.size() + 2 != rank) return CUDNN_STATUS_BAD_PARAM;
  if (rank != 4 && rank != 5) return CUDNN_STATUS_NOT_SUPPORTED;  // 2-d and 3-d convolutions
  if (x.type != y.type || x.type != w.type) return CUDNN_STATUS_BAD_PARAM;
  ConvSpec& s = *spec;
  switch (x.type) {
    case CUDNN_DATA_FLOAT: s.dtype = dtypes::Float32; break;
    case CUDNN_DATA_HALF: s.dtype = dtypes::Float16; break;
    case CUDNN_DATA_BFLOAT16: s.dtype = dtypes::BFloat16; break;
    default: return CUDNN_STATUS_NOT_SUPPORTED;
  }
  // Float32 accumulation (PSEUDO_HALF_CONFIG and its bfloat16 twin for the halves).
  if (c.compute != CUDNN_DATA_FLOAT) return CUDNN_STATUS_NOT_SUPPORTED;
  // Only cross-correlation: a true convolution would flip the filter.
  if (c.mode != CUDNN_CROSS_CORRELATION) return CUDNN_STATUS_NOT_SUPPORTED;
  if (c.math == CUDNN_FMA_MATH && x.type != CUDNN_DATA_FLOAT) return CUDNN_STATUS_NOT_SUPPORTED;
  s.kind = kind;
  s.x_dims = x.dims;
  s.y_dims = y.dims;
  s.w_dims = w.dims;
  s.channels_last = w.format == CUDNN_TENSOR_NHWC;
  s.padding = c.padding;
  s.strides = c.strides;
  s.dilation = c.dilation;
  s.groups = c.groups;
  // Channels and groups, and the forward formula for y's extents.
  if (!ConvSpecIsConsistent(s)) return CUDNN_STATUS_BAD_PARAM;
  // The stand-in reads images packed in the filter's format (cuDNN reads
  // any strides; Kiln passes only these).
  const std::vector<int64_t> xp = CudnnPackedStrides(x.dims, s.channels_last),
                             yp = CudnnPackedStrides(y.dims, s.channels_last);
  for (size_t i = 0; i < rank; ++i) {
    if ((x.dims[i] != 1 && x.strides[i] != xp[i]) || (y.dims[i] != 1 && y.strides[i] != yp[i])) {
      return CUDNN_STATUS_NOT_SUPPORTED;
    }
  }
  s.x_strides = xp;
  s.y_strides = yp;
  return CUDNN_STATUS_SUCCESS;
}

// The stand-in's algorithms, the same four per call, listed in this order:
// 0 is never supported; 3 has a math type Kiln must skip (its call fails);
// 1 is nondeterministic with a workspace (asked for again it wants a little
// more than the heuristics said); 2 is deterministic without.
constexpr int kAlgorithms = 4;
constexpr int kListOrder[kAlgorithms] = {0, 3, 1, 2};
constexpr int kForbiddenAlgorithm = 3;
constexpr size_t kListedWorkspace = size_t{1} << 16, kQueriedWorkspace = kListedWorkspace + 256;

size_t WorkspaceOf(int algo) { return algo == 1 ? kQueriedWorkspace : 0; }

// The math type algorithm `algo` is listed with under a descriptor of math type `math`.
cudnnMathType_t ListedMath(int algo, cudnnMathType_t math) {
  if (algo == kForbiddenAlgorithm) {
    return math == CUDNN_FMA_MATH ? CUDNN_TENSOR_OP_MATH : CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION;
  }
  if (algo == 1 && math == CUDNN_DEFAULT_MATH) return CUDNN_TENSOR_OP_MATH;  // TF32, allowed by the default
  return math;
}

template <typename Perf, typename Algo>
cudnnStatus_t Heuristics(cudnnHandle_t h, ConvSpec::Kind kind, cudnnTensorDescriptor_t x, cudnnFilterDescriptor_t w,
                         cudnnConvolutionDescriptor_t c, cudnnTensorDescriptor_t y, int requested, int* returned,
                         Perf* perf) {
  if (h == nullptr || returned == nullptr || perf == nullptr || requested < 1) return CUDNN_STATUS_BAD_PARAM;
  ConvSpec s;
  if (const cudnnStatus_t st = Problem(kind, x, w, c, y, &s); st != CUDNN_STATUS_SUCCESS) return st;
  FakeConvolution& conv = *Of(c);
  const int n = std::min(requested, kAlgorithms);
  for (int i = 0; i < n; ++i) {
    const int algo = kListOrder[i];
    Perf p{};
    p.algo = static_cast<Algo>(algo);
    const bool refused = refused_kind.load() == static_cast<int>(kind);
    p.status = algo == 0 || refused ? CUDNN_STATUS_NOT_SUPPORTED : CUDNN_STATUS_SUCCESS;
    p.time = -1;  // the heuristics do not time
    p.memory = algo == 1 ? kListedWorkspace : 0;
    p.determinism = algo == 1 ? CUDNN_NON_DETERMINISTIC : CUDNN_DETERMINISTIC;
    p.mathType = ListedMath(algo, conv.math);
    conv.listed[algo] = p.mathType;
    perf[i] = p;
  }
  *returned = n;
  return CUDNN_STATUS_SUCCESS;
}

// An algorithm the heuristics listed, with the descriptor now set to the
// math type it was listed with (cuDNN picks kernels by both), and not the
// one Kiln must skip.
cudnnStatus_t UsableAlgorithm(const FakeConvolution& c, int algo) {
  if (algo < 1 || algo >= kAlgorithms || algo == kForbiddenAlgorithm) return CUDNN_STATUS_NOT_SUPPORTED;
  const auto it = c.listed.find(algo);
  if (it == c.listed.end() || it->second != c.math) return CUDNN_STATUS_BAD_PARAM;
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t MaxCount(cudnnHandle_t h, int* count) {
  if (h == nullptr || count == nullptr) return CUDNN_STATUS_BAD_PARAM;
  *count = kAlgorithms;
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t WorkspaceSize(cudnnHandle_t h, ConvSpec::Kind kind, cudnnTensorDescriptor_t x,
                            cudnnFilterDescriptor_t w, cudnnConvolutionDescriptor_t c, cudnnTensorDescriptor_t y,
                            int algo, size_t* bytes) {
  if (h == nullptr || bytes == nullptr) return CUDNN_STATUS_BAD_PARAM;
  ConvSpec s;
  if (const cudnnStatus_t st = Problem(kind, x, w, c, y, &s); st != CUDNN_STATUS_SUCCESS) return st;
  if (const cudnnStatus_t st = UsableAlgorithm(*Of(c), algo); st != CUDNN_STATUS_SUCCESS) return st;
  *bytes = WorkspaceOf(algo);
  return CUDNN_STATUS_SUCCESS;
}

// One of the three calls: out = a (*) b by the spec, alpha 1 and beta 0
// (the only scaling Kiln asks for), the workspace at least what the
// algorithm asked; computed on the handle's stream.
cudnnStatus_t Call(cudnnHandle_t h, ConvSpec::Kind kind, const void* alpha, cudnnTensorDescriptor_t x,
                   cudnnFilterDescriptor_t w, cudnnConvolutionDescriptor_t c, cudnnTensorDescriptor_t y, int algo,
                   void* workspace, size_t workspace_bytes, const void* beta, const void* a, const void* b, void* out) {
  if (h == nullptr || alpha == nullptr || beta == nullptr || a == nullptr || b == nullptr || out == nullptr) {
    return CUDNN_STATUS_BAD_PARAM;
  }
  ConvSpec s;
  if (const cudnnStatus_t st = Problem(kind, x, w, c, y, &s); st != CUDNN_STATUS_SUCCESS) return st;
  if (const cudnnStatus_t st = UsableAlgorithm(*Of(c), algo); st != CUDNN_STATUS_SUCCESS) return st;
  if (workspace_bytes < WorkspaceOf(algo) || (WorkspaceOf(algo) > 0 && workspace == nullptr)) {
    return CUDNN_STATUS_BAD_PARAM;
  }
  // Float scaling factors for these types.
  if (*static_cast<const float*>(alpha) != 1 || *static_cast<const float*>(beta) != 0) {
    return CUDNN_STATUS_NOT_SUPPORTED;
  }
  EmulatedStreamWork(reinterpret_cast<FakeHandle*>(h)->stream, [s, a, b, out] { RunReferenceConv(s, a, b, out); });
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t ForwardMaxCount(cudnnHandle_t h, int* count) { return MaxCount(h, count); }
cudnnStatus_t BackwardDataMaxCount(cudnnHandle_t h, int* count) { return MaxCount(h, count); }
cudnnStatus_t BackwardFilterMaxCount(cudnnHandle_t h, int* count) { return MaxCount(h, count); }

cudnnStatus_t ForwardHeuristics(cudnnHandle_t h, cudnnTensorDescriptor_t x, cudnnFilterDescriptor_t w,
                                cudnnConvolutionDescriptor_t c, cudnnTensorDescriptor_t y, int requested,
                                int* returned, cudnnConvolutionFwdAlgoPerf_t* perf) {
  return Heuristics<cudnnConvolutionFwdAlgoPerf_t, cudnnConvolutionFwdAlgo_t>(h, ConvSpec::Kind::kForward, x, w, c, y,
                                                                              requested, returned, perf);
}
cudnnStatus_t BackwardDataHeuristics(cudnnHandle_t h, cudnnFilterDescriptor_t w, cudnnTensorDescriptor_t dy,
                                     cudnnConvolutionDescriptor_t c, cudnnTensorDescriptor_t dx, int requested,
                                     int* returned, cudnnConvolutionBwdDataAlgoPerf_t* perf) {
  return Heuristics<cudnnConvolutionBwdDataAlgoPerf_t, cudnnConvolutionBwdDataAlgo_t>(
      h, ConvSpec::Kind::kBackwardData, dx, w, c, dy, requested, returned, perf);
}
cudnnStatus_t BackwardFilterHeuristics(cudnnHandle_t h, cudnnTensorDescriptor_t x, cudnnTensorDescriptor_t dy,
                                       cudnnConvolutionDescriptor_t c, cudnnFilterDescriptor_t dw, int requested,
                                       int* returned, cudnnConvolutionBwdFilterAlgoPerf_t* perf) {
  return Heuristics<cudnnConvolutionBwdFilterAlgoPerf_t, cudnnConvolutionBwdFilterAlgo_t>(
      h, ConvSpec::Kind::kBackwardFilter, x, dw, c, dy, requested, returned, perf);
}

cudnnStatus_t ForwardWorkspace(cudnnHandle_t h, cudnnTensorDescriptor_t x, cudnnFilterDescriptor_t w,
                               cudnnConvolutionDescriptor_t c, cudnnTensorDescriptor_t y,
                               cudnnConvolutionFwdAlgo_t algo, size_t* bytes) {
  return WorkspaceSize(h, ConvSpec::Kind::kForward, x, w, c, y, static_cast<int>(algo), bytes);
}
cudnnStatus_t BackwardDataWorkspace(cudnnHandle_t h, cudnnFilterDescriptor_t w, cudnnTensorDescriptor_t dy,
                                    cudnnConvolutionDescriptor_t c, cudnnTensorDescriptor_t dx,
                                    cudnnConvolutionBwdDataAlgo_t algo, size_t* bytes) {
  return WorkspaceSize(h, ConvSpec::Kind::kBackwardData, dx, w, c, dy, static_cast<int>(algo), bytes);
}
cudnnStatus_t BackwardFilterWorkspace(cudnnHandle_t h, cudnnTensorDescriptor_t x, cudnnTensorDescriptor_t dy,
                                      cudnnConvolutionDescriptor_t c, cudnnFilterDescriptor_t dw,
                                      cudnnConvolutionBwdFilterAlgo_t algo, size_t* bytes) {
  return WorkspaceSize(h, ConvSpec::Kind::kBackwardFilter, x, dw, c, dy, static_cast<int>(algo), bytes);
}

// y = x (*) w.
cudnnStatus_t Forward(cudnnHandle_t h, const void* alpha, cudnnTensorDescriptor_t x_d, const void* x,
                      cudnnFilterDescriptor_t w_d, const void* w, cudnnConvolutionDescriptor_t c,
                      cudnnConvolutionFwdAlgo_t algo, void* ws, size_t ws_bytes, const void* beta,
                      cudnnTensorDescriptor_t y_d, void* y) {
  return Call(h, ConvSpec::Kind::kForward, alpha, x_d, w_d, c, y_d, static_cast<int>(algo), ws, ws_bytes, beta, x, w,
              y);
}
// dx from dy and w (ConvSpec's a is dy, b is w).
cudnnStatus_t BackwardData(cudnnHandle_t h, const void* alpha, cudnnFilterDescriptor_t w_d, const void* w,
                           cudnnTensorDescriptor_t dy_d, const void* dy, cudnnConvolutionDescriptor_t c,
                           cudnnConvolutionBwdDataAlgo_t algo, void* ws, size_t ws_bytes, const void* beta,
                           cudnnTensorDescriptor_t dx_d, void* dx) {
  return Call(h, ConvSpec::Kind::kBackwardData, alpha, dx_d, w_d, c, dy_d, static_cast<int>(algo), ws, ws_bytes, beta,
              dy, w, dx);
}
// dw from x and dy (ConvSpec's a is x, b is dy).
cudnnStatus_t BackwardFilter(cudnnHandle_t h, const void* alpha, cudnnTensorDescriptor_t x_d, const void* x,
                             cudnnTensorDescriptor_t dy_d, const void* dy, cudnnConvolutionDescriptor_t c,
                             cudnnConvolutionBwdFilterAlgo_t algo, void* ws, size_t ws_bytes, const void* beta,
                             cudnnFilterDescriptor_t dw_d, void* dw) {
  return Call(h, ConvSpec::Kind::kBackwardFilter, alpha, x_d, dw_d, c, dy_d, static_cast<int>(algo), ws, ws_bytes,
              beta, x, dy, dw);
}

}  // namespace

const CudnnApi& EmulatedCudnnApi() {
  static const CudnnApi api = [] {
    CudnnApi a;
    a.version = CUDNN_VERSION;
    a.GetVersion = GetVersion;
    a.GetCudartVersion = GetCudartVersion;
    a.GetErrorString = GetErrorString;
    a.Create = Create;
    a.Destroy = Destroy;
    a.SetStream = SetStream;
    a.CreateTensorDescriptor = CreateTensorDescriptor;
    a.SetTensorNdDescriptor = SetTensorNdDescriptor;
    a.DestroyTensorDescriptor = DestroyTensorDescriptor;
    a.CreateFilterDescriptor = CreateFilterDescriptor;
    a.SetFilterNdDescriptor = SetFilterNdDescriptor;
    a.DestroyFilterDescriptor = DestroyFilterDescriptor;
    a.CreateConvolutionDescriptor = CreateConvolutionDescriptor;
    a.SetConvolutionNdDescriptor = SetConvolutionNdDescriptor;
    a.SetConvolutionGroupCount = SetConvolutionGroupCount;
    a.SetConvolutionMathType = SetConvolutionMathType;
    a.DestroyConvolutionDescriptor = DestroyConvolutionDescriptor;
    a.GetConvolutionForwardAlgorithmMaxCount = ForwardMaxCount;
    a.GetConvolutionBackwardDataAlgorithmMaxCount = BackwardDataMaxCount;
    a.GetConvolutionBackwardFilterAlgorithmMaxCount = BackwardFilterMaxCount;
    a.GetConvolutionForwardAlgorithm_v7 = ForwardHeuristics;
    a.GetConvolutionBackwardDataAlgorithm_v7 = BackwardDataHeuristics;
    a.GetConvolutionBackwardFilterAlgorithm_v7 = BackwardFilterHeuristics;
    a.GetConvolutionForwardWorkspaceSize = ForwardWorkspace;
    a.GetConvolutionBackwardDataWorkspaceSize = BackwardDataWorkspace;
    a.GetConvolutionBackwardFilterWorkspaceSize = BackwardFilterWorkspace;
    a.ConvolutionForward = Forward;
    a.ConvolutionBackwardData = BackwardData;
    a.ConvolutionBackwardFilter = BackwardFilter;
    return a;
  }();
  return api;
}

void RefuseEmulatedConvolutions(int kind) { refused_kind.store(kind); }

int EmulatedConvolutionRefusal() { return refused_kind.load(); }

}  // namespace kiln::backends::cuda

#else  // Without cuDNN's headers the emulator plans no convolution on cuDNN.

namespace kiln::backends::cuda {
void RefuseEmulatedConvolutions(int) {}
int EmulatedConvolutionRefusal() { return -1; }
}  // namespace kiln::backends::cuda

#endif  // KILN_HAVE_CUDNN
