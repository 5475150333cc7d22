// Copyright 2026 The Kiln Authors.
// The CUDA emulator's Fourier transforms (see reference_library.h): cuFFT's
// layouts through FFTW.
#include "src/backends/cuda/reference_library.h"

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "kiln/core/error.h"
#include "src/backends/cpu/fftw.h"

namespace kiln::backends::cuda {

namespace {

// cuFFT's transforms through FFTW (unnormalized, the same layouts).
// FFTW's planner is not thread-safe (the CPU backend's kernels_fft.cc plans
// under its own lock, at compile time; the emulator plans here, per call,
// while a test runs one backend at a time).
template <typename R>
void ReferenceFft(const LibraryCall& s, void* x, void* const* inputs) {
  using F = cpu::Fftw<R>;
  std::vector<int> n;
  int64_t points = 1;
  for (int64_t l : s.lengths) n.push_back(static_cast<int>(l)), points *= l;
  const int rank = static_cast<int>(n.size()), batch = static_cast<int>(s.batch);
  constexpr unsigned kFlags = FFTW_ESTIMATE | FFTW_UNALIGNED;
  auto* cx = static_cast<typename F::Cx*>(x);
  typename F::Plan plan = nullptr;
  switch (s.kind) {
    case LibraryCall::Kind::kFft:
      plan = F::kManyDft(rank, n.data(), batch, cx, nullptr, 1, static_cast<int>(points), cx, nullptr, 1,
                         static_cast<int>(points), s.inverse ? FFTW_BACKWARD : FFTW_FORWARD, kFlags);
      break;
    case LibraryCall::Kind::kRfft: {
      const int half = static_cast<int>(points / n.back() * (n.back() / 2 + 1));
      plan = F::kManyR2c(rank, n.data(), batch, static_cast<R*>(inputs[0]), nullptr, 1, static_cast<int>(points), cx,
                         nullptr, 1, half, kFlags);
      break;
    }
    case LibraryCall::Kind::kIrfft: {
      const int half = n.back() / 2 + 1;
      plan = F::kManyC2r(rank, n.data(), batch, static_cast<typename F::Cx*>(inputs[0]), nullptr, 1, half,
                         static_cast<R*>(x), nullptr, 1, static_cast<int>(points), kFlags);
      break;
    }
    case LibraryCall::Kind::kIrfftLead: {
      const int cols = static_cast<int>(s.cols);
      for (int64_t b = 0; b < s.batch; ++b) {
        typename F::Cx* item = cx + b * points * s.cols;
        auto p = F::kManyDft(rank, n.data(), cols, item, n.data(), cols, 1, item, n.data(), cols, 1, FFTW_BACKWARD,
                             kFlags);
        if (p == nullptr) Throw("cuda-emu: FFTW could not plan an IRFFT stage");
        F::kExecute(p);
        F::kDestroy(p);
      }
      return;
    }
    default: Throw("cuda-emu: not a Fourier transform");
  }
  if (plan == nullptr) Throw("cuda-emu: FFTW could not plan a transform");
  F::kExecute(plan);
  F::kDestroy(plan);
}

template <typename T>
void Run(const LibraryCall& s, void* x, void* const* inputs) {
  switch (s.kind) {
    case LibraryCall::Kind::kFft:
    case LibraryCall::Kind::kRfft:
    case LibraryCall::Kind::kIrfftLead:
    case LibraryCall::Kind::kIrfft: ReferenceFft<T>(s, x, inputs); return;
    default: Throw("cuda-emu: not a Fourier transform (the other library calls run on emulated_library.cc)");
  }
}

}  // namespace

void RunReferenceLibraryCall(const LibraryCall& s, void* x, void* const* inputs) {
  if (s.dtype == dtypes::Float32) return Run<float>(s, x, inputs);
  if (s.dtype == dtypes::Float64) return Run<double>(s, x, inputs);
  Throw("cuda-emu: no library call for " + std::string(dtypes::Name(s.dtype)));
}

}  // namespace kiln::backends::cuda
