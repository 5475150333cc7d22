// Copyright 2026 The Kiln Authors.
// FFTW 3's single- and double-precision APIs under one name, for the CPU
// backend's Fft kernel (kernels_fft.cc) and the CUDA emulator's stand-in for
// cuFFT (src/backends/cuda/emulated_cufft.cc).
#pragma once

#include <fftw3.h>

#include <mutex>

namespace kiln::backends::cpu {

/// FFTW's API for real type R (float: fftwf_*, double: fftw_*), so FFT code
/// is written once for both.
template <typename R>
struct Fftw;

template <>
struct Fftw<float> {
  using Plan = fftwf_plan;
  using Cx = fftwf_complex;
  static constexpr auto kManyDft = fftwf_plan_many_dft;
  static constexpr auto kManyR2c = fftwf_plan_many_dft_r2c;
  static constexpr auto kManyC2r = fftwf_plan_many_dft_c2r;
  static constexpr auto kExecute = fftwf_execute;
  static constexpr auto kExecDft = fftwf_execute_dft;
  static constexpr auto kExecR2c = fftwf_execute_dft_r2c;
  static constexpr auto kExecC2r = fftwf_execute_dft_c2r;
  static constexpr auto kDestroy = fftwf_destroy_plan;
  static constexpr auto kMalloc = fftwf_malloc;
  static constexpr auto kFree = fftwf_free;
  static constexpr auto kInitThreads = fftwf_init_threads;
  static constexpr auto kPlanWithNthreads = fftwf_plan_with_nthreads;
};

template <>
struct Fftw<double> {
  using Plan = fftw_plan;
  using Cx = fftw_complex;
  static constexpr auto kManyDft = fftw_plan_many_dft;
  static constexpr auto kManyR2c = fftw_plan_many_dft_r2c;
  static constexpr auto kManyC2r = fftw_plan_many_dft_c2r;
  static constexpr auto kExecute = fftw_execute;
  static constexpr auto kExecDft = fftw_execute_dft;
  static constexpr auto kExecR2c = fftw_execute_dft_r2c;
  static constexpr auto kExecC2r = fftw_execute_dft_c2r;
  static constexpr auto kDestroy = fftw_destroy_plan;
  static constexpr auto kMalloc = fftw_malloc;
  static constexpr auto kFree = fftw_free;
  static constexpr auto kInitThreads = fftw_init_threads;
  static constexpr auto kPlanWithNthreads = fftw_plan_with_nthreads;
};

/// The lock every FFTW planner call (and plan destruction) takes: FFTW's
/// planner is not thread-safe (kernels_fft.cc).
std::mutex& FftwPlannerLock();

}  // namespace kiln::backends::cpu
