// Copyright 2026 The Kiln Authors.
#include "src/backends/cpu/denormals.h"

#include <omp.h>

#if defined(__x86_64__) || defined(__i386__)
#include <xmmintrin.h>
#define KILN_HAVE_MXCSR 1
#endif

namespace kiln::backends::cpu {

namespace {

#if KILN_HAVE_MXCSR
constexpr unsigned kFlushToZero = 0x8000;       // MXCSR.FTZ: subnormal results become 0
constexpr unsigned kDenormalsAreZero = 0x0040;  // MXCSR.DAZ: subnormal inputs read as 0
#endif

}  // namespace

ScopedFlushDenormals::ScopedFlushDenormals() {
#if KILN_HAVE_MXCSR
  saved_ = _mm_getcsr();
  _mm_setcsr(saved_ | kFlushToZero | kDenormalsAreZero);
#endif
}

ScopedFlushDenormals::~ScopedFlushDenormals() {
#if KILN_HAVE_MXCSR
  _mm_setcsr(saved_);
#endif
}

void FlushDenormalsOnWorkerThreads() {
#if KILN_HAVE_MXCSR
  // Per calling thread: libgomp keeps one pool per thread that starts
  // parallel regions, and reuses its workers.
  thread_local int configured = 1;
  const int threads = omp_get_max_threads();
  if (threads <= configured) return;
#pragma omp parallel num_threads(threads)
  {
    if (omp_get_thread_num() != 0) _mm_setcsr(_mm_getcsr() | kFlushToZero | kDenormalsAreZero);
  }
  configured = threads;
#endif
}

}  // namespace kiln::backends::cpu
