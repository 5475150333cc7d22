// Copyright 2026 The Kiln Authors.
// Subnormal floats on the CPU backend: flushed to zero (x86 FTZ and DAZ).
//
// Arithmetic that produces or reads a subnormal float takes a microcode
// assist on x86 (on the order of 100 cycles). Training makes such values
// routinely: Adam's moments of a weight whose gradient is always 0 (a
// Fashion-MNIST border pixel's input weights) decay by 0.9 per step into the
// subnormals, and the MLP's Adam update then took 3-4x as long, so an epoch
// went from 1.2 s to 2.3 s after a few epochs. Like XLA's CPU backend and
// TensorFlow, Kiln therefore runs its kernels with subnormal inputs read as
// 0 and subnormal results written as 0: on the calling thread for the
// duration of each execution and of constant folding (its previous mode is
// restored afterwards), and permanently on the OpenMP worker threads. Those
// workers are libgomp's, shared with oneDNN and with any OpenMP code of the
// program, which therefore also runs its parallel regions with subnormals
// flushed once Kiln has executed something (setting and restoring the mode
// in each parallel region would cost every kernel a region of its own).
#pragma once

namespace kiln::backends::cpu {

/// Sets flush-to-zero and denormals-are-zero on this thread; restores the
/// previous mode when destroyed. A no-op off x86.
class ScopedFlushDenormals {
 public:
  ScopedFlushDenormals();
  ~ScopedFlushDenormals();
  ScopedFlushDenormals(const ScopedFlushDenormals&) = delete;
  ScopedFlushDenormals& operator=(const ScopedFlushDenormals&) = delete;

 private:
  unsigned saved_ = 0;
};

/// Sets flush-to-zero and denormals-are-zero on the worker threads of this
/// thread's OpenMP pool (not on this thread). Cheap after the first call:
/// it only runs again when the pool may have grown.
void FlushDenormalsOnWorkerThreads();

}  // namespace kiln::backends::cpu
