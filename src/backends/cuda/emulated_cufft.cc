// Copyright 2026 The Kiln Authors.
// The emulator's stand-in for cuFFT (see emulated_library.h): plans made by
// cufftPlanMany in its basic layout (items packed; strides and distances
// ignored) or its advanced one (embeddings, strides, distances), run
// through FFTW with the same layout under the CPU backend's planner lock;
// a plan runs only through its own type's exec function.
#include <cstdint>
#include <limits>
#include <map>
#include <mutex>
#include <utility>
#include <vector>

#include "kiln/core/error.h"
#include "src/backends/cpu/fftw.h"
#include "src/backends/cuda/emulated_library.h"

namespace kiln::backends::cuda {

namespace {

// A plan: cufftPlanMany's arguments.
struct FakeFftPlan {
  std::vector<int> n, inembed, onembed;  // the embeddings empty: the basic layout
  int istride = 1, idist = 0, ostride = 1, odist = 0;
  cufftType type = CUFFT_C2C;
  int batch = 1;
  cudaStream_t stream = nullptr;  // cufftSetStream's
};

struct FftPlans {
  std::mutex mu;
  std::map<cufftHandle, FakeFftPlan> plans;
  cufftHandle next = 1;
};
FftPlans& Plans() {
  static FftPlans p;
  return p;
}

bool RealInput(cufftType t) { return t == CUFFT_R2C || t == CUFFT_D2Z; }
bool RealOutput(cufftType t) { return t == CUFFT_C2R || t == CUFFT_Z2D; }

cufftResult PlanMany(cufftHandle* plan, int rank, int* n, int* inembed, int istride, int idist, int* onembed,
                     int ostride, int odist, cufftType type, int batch) {
  if (plan == nullptr || n == nullptr) return CUFFT_INVALID_VALUE;
  if (rank < 1 || rank > 3 || batch < 1) return CUFFT_INVALID_SIZE;
  if (type != CUFFT_C2C && type != CUFFT_Z2Z && type != CUFFT_R2C && type != CUFFT_D2Z && type != CUFFT_C2R &&
      type != CUFFT_Z2D) {
    return CUFFT_INVALID_TYPE;
  }
  FakeFftPlan p;
  p.n.assign(n, n + rank);
  p.type = type;
  p.batch = batch;
  for (int v : p.n) {
    if (v < 1) return CUFFT_INVALID_SIZE;
  }
  // Either embedding null: the basic layout, whatever the strides and
  // distances say (cuFFT ignores them then).
  if (inembed != nullptr && onembed != nullptr) {
    if (istride < 1 || ostride < 1 || idist < 1 || odist < 1) return CUFFT_INVALID_VALUE;
    p.inembed.assign(inembed, inembed + rank);
    p.onembed.assign(onembed, onembed + rank);
    // Each embedding holds its transform (the complex side of a real
    // transform has n / 2 + 1 elements on its last axis).
    for (int i = 1; i < rank; ++i) {
      const bool last = i == rank - 1;
      const int in = last && RealOutput(type) ? p.n[static_cast<size_t>(i)] / 2 + 1 : p.n[static_cast<size_t>(i)];
      const int out = last && RealInput(type) ? p.n[static_cast<size_t>(i)] / 2 + 1 : p.n[static_cast<size_t>(i)];
      if (p.inembed[static_cast<size_t>(i)] < in || p.onembed[static_cast<size_t>(i)] < out) return CUFFT_INVALID_VALUE;
    }
    p.istride = istride, p.idist = idist, p.ostride = ostride, p.odist = odist;
  }
  FftPlans& all = Plans();
  std::lock_guard lock(all.mu);
  *plan = all.next++;
  all.plans.emplace(*plan, std::move(p));
  return CUFFT_SUCCESS;
}

cufftResult FftSetStream(cufftHandle plan, cudaStream_t stream) {
  FftPlans& all = Plans();
  std::lock_guard lock(all.mu);
  const auto it = all.plans.find(plan);
  if (it == all.plans.end()) return CUFFT_INVALID_PLAN;
  it->second.stream = stream;
  return CUFFT_SUCCESS;
}

cufftResult FftDestroy(cufftHandle plan) {
  FftPlans& all = Plans();
  std::lock_guard lock(all.mu);
  return all.plans.erase(plan) != 0 ? CUFFT_SUCCESS : CUFFT_INVALID_PLAN;
}

// Runs `plan`, which must be of type `type`, on its stream through FFTW with the plan's
// layout: in the basic layout, items packed one after the other.
template <typename R>
cufftResult Exec(cufftHandle plan, cufftType type, void* in, void* out, int direction) {
  FakeFftPlan p;
  {
    FftPlans& all = Plans();
    std::lock_guard lock(all.mu);
    const auto it = all.plans.find(plan);
    if (it == all.plans.end()) return CUFFT_INVALID_PLAN;
    p = it->second;
  }
  if (p.type != type) return CUFFT_INVALID_TYPE;
  if (in == nullptr || out == nullptr) return CUFFT_INVALID_VALUE;
  const bool complex = type == CUFFT_C2C || type == CUFFT_Z2Z;
  if (complex && direction != CUFFT_FORWARD && direction != CUFFT_INVERSE) return CUFFT_INVALID_VALUE;
  using F = cpu::Fftw<R>;
  const int rank = static_cast<int>(p.n.size());
  int64_t points64 = 1;
  for (int v : p.n) points64 *= v;
  if (points64 > std::numeric_limits<int>::max()) return CUFFT_INVALID_SIZE;  // FFTW's distances are ints
  const int points = static_cast<int>(points64);
  const int half = points / p.n.back() * (p.n.back() / 2 + 1);
  const bool basic = p.inembed.empty();
  const int idist = basic ? (RealOutput(type) ? half : points) : p.idist;
  const int odist = basic ? (RealInput(type) ? half : points) : p.odist;
  EmulatedStreamWork(p.stream, [=]() mutable {
  int* inembed = basic ? nullptr : p.inembed.data();
  int* onembed = basic ? nullptr : p.onembed.data();
  constexpr unsigned kFlags = FFTW_ESTIMATE | FFTW_UNALIGNED;
  typename F::Plan f = nullptr;
  std::lock_guard lock(cpu::FftwPlannerLock());
  if (complex) {
    // cuFFT's CUFFT_FORWARD (-1) and CUFFT_INVERSE (+1) are FFTW's signs.
    f = F::kManyDft(rank, p.n.data(), p.batch, static_cast<typename F::Cx*>(in), inembed, p.istride, idist,
                    static_cast<typename F::Cx*>(out), onembed, p.ostride, odist, direction, kFlags);
  } else if (RealInput(type)) {
    f = F::kManyR2c(rank, p.n.data(), p.batch, static_cast<R*>(in), inembed, p.istride, idist,
                    static_cast<typename F::Cx*>(out), onembed, p.ostride, odist, kFlags);
  } else {
    f = F::kManyC2r(rank, p.n.data(), p.batch, static_cast<typename F::Cx*>(in), inembed, p.istride, idist,
                    static_cast<R*>(out), onembed, p.ostride, odist, kFlags);
  }
  if (f == nullptr) Throw("cuda-emu: FFTW could not plan a transform cuFFT's plan accepted");
  F::kExecute(f);
  F::kDestroy(f);
  });
  return CUFFT_SUCCESS;
}

cufftResult ExecC2C(cufftHandle plan, cufftComplex* in, cufftComplex* out, int direction) {
  return Exec<float>(plan, CUFFT_C2C, in, out, direction);
}
cufftResult ExecZ2Z(cufftHandle plan, cufftDoubleComplex* in, cufftDoubleComplex* out, int direction) {
  return Exec<double>(plan, CUFFT_Z2Z, in, out, direction);
}
cufftResult ExecR2C(cufftHandle plan, cufftReal* in, cufftComplex* out) {
  return Exec<float>(plan, CUFFT_R2C, in, out, 0);
}
cufftResult ExecD2Z(cufftHandle plan, cufftDoubleReal* in, cufftDoubleComplex* out) {
  return Exec<double>(plan, CUFFT_D2Z, in, out, 0);
}
cufftResult ExecC2R(cufftHandle plan, cufftComplex* in, cufftReal* out) {
  return Exec<float>(plan, CUFFT_C2R, in, out, 0);
}
cufftResult ExecZ2D(cufftHandle plan, cufftDoubleComplex* in, cufftDoubleReal* out) {
  return Exec<double>(plan, CUFFT_Z2D, in, out, 0);
}

}  // namespace

void FillEmulatedCufft(LibraryApi* api) {
  api->cufftPlanMany = PlanMany;
  api->cufftSetStream = FftSetStream;
  api->cufftExecC2C = ExecC2C;
  api->cufftExecZ2Z = ExecZ2Z;
  api->cufftExecR2C = ExecR2C;
  api->cufftExecD2Z = ExecD2Z;
  api->cufftExecC2R = ExecC2R;
  api->cufftExecZ2D = ExecZ2D;
  api->cufftDestroy = FftDestroy;
}

}  // namespace kiln::backends::cuda
