// Copyright 2026 The Kiln Authors.
// cuDNN for the CUDA backend (see cudnn_conv.h): the library loaded with
// dlopen, and ConvSpecs planned and run through cuDNN's convolution API
// (the descriptor-based one, which cuDNN 9 still ships; its graph API
// would add fusion, which Kiln's own kernels around the call do now).
#include "src/backends/cuda/cudnn_conv.h"

#include <dlfcn.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <limits>
#include <string>
#include <vector>

#include "kiln/core/error.h"

#include "src/backends/cuda/cudnn_api.h"

namespace kiln::backends::cuda {

namespace {
std::atomic<int64_t> planned_count{0}, refused_count{0};
}  // namespace

CudnnStats GetCudnnStats() { return {planned_count.load(), refused_count.load()}; }

void CountCudnn(int64_t CudnnStats::*counter, int64_t n) {
  (counter == &CudnnStats::planned ? planned_count : refused_count) += n;
}

#if KILN_HAVE_CUDNN

namespace {

CudnnApi Load() {
  CudnnApi api;
  std::vector<std::string> candidates;
  if (const char* path = std::getenv("KILN_CUDNN_LIBRARY"); path != nullptr && *path != '\0') {
    candidates.push_back(path);
  } else {
    candidates.push_back("libcudnn.so.9");
#ifdef KILN_CUDNN_LIBRARY_DIR
    candidates.push_back(std::string(KILN_CUDNN_LIBRARY_DIR) + "/libcudnn.so.9");
#endif
  }
  void* library = nullptr;
  std::string errors;
  for (const std::string& c : candidates) {
    library = dlopen(c.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (library != nullptr) break;
    const char* e = dlerror();
    errors += (errors.empty() ? "" : "; ") + std::string(e != nullptr ? e : c + ": not found");
  }
  if (library == nullptr) {
    api.reason = "cuDNN 9 could not be loaded (" + errors + ")";
    return api;
  }
#define KILN_CUDNN_LOOKUP(name)                                                                    \
  api.name = reinterpret_cast<decltype(api.name)>(dlsym(library, "cudnn" #name));                  \
  if (api.name == nullptr) {                                                                       \
    api.reason = "the loaded cuDNN has no cudnn" #name;                                            \
    return api;                                                                                    \
  }
  KILN_CUDNN_FUNCTIONS(KILN_CUDNN_LOOKUP)
#undef KILN_CUDNN_LOOKUP
  api.version = api.GetVersion();
  if (api.version / 10000 != CUDNN_MAJOR) {
    api.reason = "the loaded cuDNN is version " + std::to_string(api.version) + "; Kiln was built for cuDNN " +
                 std::to_string(CUDNN_MAJOR);
  }
  // cuDNN 9 is built once per CUDA major version under one soname; a build
  // for another CUDA than Kiln's runtime is not supported by NVIDIA.
  if (const size_t cudart = api.GetCudartVersion(); api.reason.empty() && cudart / 1000 != CUDART_VERSION / 1000) {
    api.reason = "the loaded cuDNN was built for CUDA " + std::to_string(cudart / 1000) + "; Kiln uses CUDA " +
                 std::to_string(CUDART_VERSION / 1000);
  }
  return api;
}

// Loaded once, on first use; never unloaded.
const CudnnApi& Cudnn() {
  static const CudnnApi api = Load();
  return api;
}

void Check(const CudnnApi& c, cudnnStatus_t s, const std::string& what) {
  if (s != CUDNN_STATUS_SUCCESS) {
    Throw("cuda: cuDNN " + what + " failed: " + c.GetErrorString(s) + " (status " +
          std::to_string(static_cast<int>(s)) + ")");
  }
}

cudnnDataType_t DataType(dtypes::DType dt) {
  switch (dt) {
    case dtypes::Float32: return CUDNN_DATA_FLOAT;
    case dtypes::Float16: return CUDNN_DATA_HALF;
    case dtypes::BFloat16: return CUDNN_DATA_BFLOAT16;
    default: Throw("cuda: no cuDNN convolution for " + std::string(dtypes::Name(dt)));
  }
}

std::vector<int> Ints(const std::vector<int64_t>& v) {
  std::vector<int> out;
  for (int64_t x : v) {
    if (x < 0 || x > std::numeric_limits<int>::max()) Throw("cuda: a cuDNN convolution extent is out of int range");
    out.push_back(static_cast<int>(x));
  }
  return out;
}

}  // namespace

const std::string& CudnnUnavailableReason() { return Cudnn().reason; }

bool HaveEmulatedCudnn() { return true; }

std::string CudnnVersion() {
  const CudnnApi& c = Cudnn();
  if (!c.reason.empty()) return "";
  return std::to_string(c.version / 10000) + "." + std::to_string(c.version / 100 % 100) + "." +
         std::to_string(c.version % 100);
}

CudnnHandle::CudnnHandle(CudnnImpl impl) {
  const CudnnApi& c = impl == CudnnImpl::kEmulated ? EmulatedCudnnApi() : Cudnn();
  if (!c.reason.empty()) Throw("cuda: " + c.reason);
  cudnnHandle_t h = nullptr;
  Check(c, c.Create(&h), "create");
  api_ = &c;
  handle_ = h;
}

CudnnHandle::~CudnnHandle() {
  if (handle_ != nullptr) static_cast<const CudnnApi*>(api_)->Destroy(static_cast<cudnnHandle_t>(handle_));
}

struct CudnnConv::Descriptors {
  explicit Descriptors(const CudnnApi& api) : c(api) {}
  const CudnnApi& c;
  ConvSpec::Kind kind = ConvSpec::Kind::kForward;
  cudnnTensorDescriptor_t x = nullptr, y = nullptr;
  cudnnFilterDescriptor_t w = nullptr;
  cudnnConvolutionDescriptor_t conv = nullptr;
  int algo = 0;  // of the kind's algorithm enum
  ~Descriptors() {
    if (conv != nullptr) c.DestroyConvolutionDescriptor(conv);
    if (w != nullptr) c.DestroyFilterDescriptor(w);
    if (y != nullptr) c.DestroyTensorDescriptor(y);
    if (x != nullptr) c.DestroyTensorDescriptor(x);
  }
};

CudnnConv::CudnnConv(const CudnnHandle& handle, const ConvSpec& s, size_t max_workspace, bool allow_tf32)
    : d_(std::make_unique<Descriptors>(*static_cast<const CudnnApi*>(handle.Api()))) {
  const CudnnApi& c = d_->c;
  auto h = static_cast<cudnnHandle_t>(handle.Get());
  const cudnnDataType_t type = DataType(s.dtype);
  const auto rank = static_cast<int>(s.x_dims.size());
  d_->kind = s.kind;
  Check(c, c.CreateTensorDescriptor(&d_->x), "tensor descriptor");
  Check(c, c.SetTensorNdDescriptor(d_->x, type, rank, Ints(s.x_dims).data(), Ints(s.x_strides).data()), "image descriptor");
  Check(c, c.CreateTensorDescriptor(&d_->y), "tensor descriptor");
  Check(c, c.SetTensorNdDescriptor(d_->y, type, rank, Ints(s.y_dims).data(), Ints(s.y_strides).data()),
        "response descriptor");
  Check(c, c.CreateFilterDescriptor(&d_->w), "filter descriptor");
  Check(c, c.SetFilterNdDescriptor(d_->w, type, s.channels_last ? CUDNN_TENSOR_NHWC : CUDNN_TENSOR_NCHW, rank,
                                Ints(s.w_dims).data()),
        "filter descriptor");
  Check(c, c.CreateConvolutionDescriptor(&d_->conv), "convolution descriptor");
  // Float32 accumulation for every dtype (PSEUDO_HALF_CONFIG for halves).
  Check(c, c.SetConvolutionNdDescriptor(d_->conv, rank - 2, Ints(s.padding).data(), Ints(s.strides).data(),
                                     Ints(s.dilation).data(), CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT),
        "convolution descriptor");
  Check(c, c.SetConvolutionGroupCount(d_->conv, static_cast<int>(s.groups)), "group count");
  // Exact FP32 is FMA kernels only: cuDNN's default math allows TF32 on
  // Ampere and later.
  const bool exact = s.dtype == dtypes::Float32 && !allow_tf32;
  const cudnnMathType_t math =
      s.dtype != dtypes::Float32 ? CUDNN_TENSOR_OP_MATH : exact ? CUDNN_FMA_MATH : CUDNN_DEFAULT_MATH;
  Check(c, c.SetConvolutionMathType(d_->conv, math), "math type");
  // The heuristics' first algorithm that fits the workspace (and gives the
  // same bits every run when asked, and stays FMA for exact FP32). Its math
  // type goes on the descriptor: cuDNN picks kernels by both.
  bool found = false;
  cudnnMathType_t chosen_math = math;
  const auto pick = [&](const auto* perf, int count) {
    for (int i = 0; i < count && !found; ++i) {
      const auto& p = perf[i];
      if (p.status != CUDNN_STATUS_SUCCESS || p.memory > max_workspace) continue;
      if (s.deterministic && p.determinism != CUDNN_DETERMINISTIC) continue;
      if ((exact && p.mathType != CUDNN_FMA_MATH) || p.mathType == CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION) continue;
      found = true;
      d_->algo = static_cast<int>(p.algo);
      workspace_ = p.memory;
      chosen_math = p.mathType;
    }
  };
  // As many results as cuDNN may list (its MaxCount; at least the enum's
  // count), so no usable algorithm is cut off the end of the list.
  int count = 0, listed = 0;
  size_t queried = 0;  // the chosen algorithm's workspace, asked again with its math type set
  switch (s.kind) {
    case ConvSpec::Kind::kForward: {
      Check(c, c.GetConvolutionForwardAlgorithmMaxCount(h, &listed), "forward algorithm count");
      std::vector<cudnnConvolutionFwdAlgoPerf_t> perf(std::max(listed, int{CUDNN_CONVOLUTION_FWD_ALGO_COUNT}));
      Check(c, c.GetConvolutionForwardAlgorithm_v7(h, d_->x, d_->w, d_->conv, d_->y, static_cast<int>(perf.size()),
                                                &count, perf.data()),
            "forward algorithm heuristics");
      pick(perf.data(), count);
      if (!found) break;
      Check(c, c.SetConvolutionMathType(d_->conv, chosen_math), "math type");
      Check(c, c.GetConvolutionForwardWorkspaceSize(h, d_->x, d_->w, d_->conv, d_->y,
                                                 static_cast<cudnnConvolutionFwdAlgo_t>(d_->algo), &queried),
            "forward workspace size");
      break;
    }
    case ConvSpec::Kind::kBackwardData: {
      Check(c, c.GetConvolutionBackwardDataAlgorithmMaxCount(h, &listed), "backward-data algorithm count");
      std::vector<cudnnConvolutionBwdDataAlgoPerf_t> perf(
          std::max(listed, int{CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT}));
      Check(c, c.GetConvolutionBackwardDataAlgorithm_v7(h, d_->w, d_->y, d_->conv, d_->x, static_cast<int>(perf.size()),
                                                     &count, perf.data()),
            "backward-data algorithm heuristics");
      pick(perf.data(), count);
      if (!found) break;
      Check(c, c.SetConvolutionMathType(d_->conv, chosen_math), "math type");
      Check(c, c.GetConvolutionBackwardDataWorkspaceSize(h, d_->w, d_->y, d_->conv, d_->x,
                                                      static_cast<cudnnConvolutionBwdDataAlgo_t>(d_->algo), &queried),
            "backward-data workspace size");
      break;
    }
    case ConvSpec::Kind::kBackwardFilter: {
      Check(c, c.GetConvolutionBackwardFilterAlgorithmMaxCount(h, &listed), "backward-filter algorithm count");
      std::vector<cudnnConvolutionBwdFilterAlgoPerf_t> perf(
          std::max(listed, int{CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT}));
      Check(c, c.GetConvolutionBackwardFilterAlgorithm_v7(h, d_->x, d_->y, d_->conv, d_->w, static_cast<int>(perf.size()),
                                                       &count, perf.data()),
            "backward-filter algorithm heuristics");
      pick(perf.data(), count);
      if (!found) break;
      Check(c, c.SetConvolutionMathType(d_->conv, chosen_math), "math type");
      Check(c, c.GetConvolutionBackwardFilterWorkspaceSize(
                h, d_->x, d_->y, d_->conv, d_->w, static_cast<cudnnConvolutionBwdFilterAlgo_t>(d_->algo), &queried),
            "backward-filter workspace size");
      break;
    }
  }
  if (!found) {
    Throw("cuda: cuDNN has no algorithm for this convolution within " + std::to_string(max_workspace >> 20) +
          " MiB of workspace" + (s.deterministic ? " that is deterministic" : "") + (exact ? " in exact FP32" : ""));
  }
  // The heuristics' estimate and the size asked for the final descriptor:
  // the larger, so the call at run time never finds too little (a failure
  // there has no fallback).
  workspace_ = std::max(workspace_, queried);
  if (workspace_ > max_workspace) {
    Throw("cuda: cuDNN's algorithm for this convolution needs " + std::to_string(workspace_ >> 20) +
          " MiB of workspace, more than " + std::to_string(max_workspace >> 20) + " MiB");
  }
}

CudnnConv::~CudnnConv() = default;

void CudnnConv::Run(const CudnnHandle& handle, void* stream, const void* a, const void* b, void* out,
                    void* workspace) const {
  const CudnnApi& c = d_->c;
  auto h = static_cast<cudnnHandle_t>(handle.Get());
  Check(c, c.SetStream(h, static_cast<cudaStream_t>(stream)), "set stream");
  const float one = 1, zero = 0;  // the scaling factors are floats for these dtypes
  const Descriptors& d = *d_;
  switch (d.kind) {
    case ConvSpec::Kind::kForward:
      Check(c, c.ConvolutionForward(h, &one, d.x, a, d.w, b, d.conv, static_cast<cudnnConvolutionFwdAlgo_t>(d.algo),
                                 workspace, workspace_, &zero, d.y, out),
            "forward convolution");
      break;
    case ConvSpec::Kind::kBackwardData:
      Check(c, c.ConvolutionBackwardData(h, &one, d.w, b, d.y, a, d.conv,
                                      static_cast<cudnnConvolutionBwdDataAlgo_t>(d.algo), workspace, workspace_,
                                      &zero, d.x, out),
            "backward-data convolution");
      break;
    case ConvSpec::Kind::kBackwardFilter:
      Check(c, c.ConvolutionBackwardFilter(h, &one, d.x, a, d.y, b, d.conv,
                                        static_cast<cudnnConvolutionBwdFilterAlgo_t>(d.algo), workspace, workspace_,
                                        &zero, d.w, out),
            "backward-filter convolution");
      break;
  }
}

#else  // Built without cuDNN's headers: the backend never plans kConv steps.

const std::string& CudnnUnavailableReason() {
  static const std::string reason = "Kiln was built without cuDNN's headers (cudnn.h)";
  return reason;
}

std::string CudnnVersion() { return ""; }

bool HaveEmulatedCudnn() { return false; }

CudnnHandle::CudnnHandle(CudnnImpl) { Throw("cuda: " + CudnnUnavailableReason()); }
CudnnHandle::~CudnnHandle() = default;

struct CudnnConv::Descriptors {};

CudnnConv::CudnnConv(const CudnnHandle&, const ConvSpec&, size_t, bool) { Throw("cuda: " + CudnnUnavailableReason()); }
CudnnConv::~CudnnConv() = default;

void CudnnConv::Run(const CudnnHandle&, void*, const void*, const void*, void*, void*) const {
  Throw("cuda: " + CudnnUnavailableReason());
}

#endif

}  // namespace kiln::backends::cuda
