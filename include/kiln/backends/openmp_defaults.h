// Copyright 2026 The Kiln Authors.
// ApplyOpenMpDefaults: OpenMP wait settings for programs that use Kiln's CPU
// backend.
//
// The CPU backend and oneDNN share one OpenMP (libgomp) thread pool. By
// default libgomp's idle workers busy-wait about 300,000 spins before
// sleeping, so where another process wants a core, workers spin on it
// between parallel regions and every barrier waits for a descheduled
// thread: measured on 2 cores with one kept busy, an MLP train step went
// from 3.7 ms to 59 ms. Passive waiting (OMP_WAIT_POLICY=passive) avoids
// that but makes each small parallel op pay a futex wake-up (a 128^3 GEMM:
// 14 -> 73 us). GOMP_SPINCOUNT=10000 spins briefly: no measurable cost on an
// idle machine, and the contended MLP step takes 11 ms instead of 59 ms.
//
// libgomp reads its environment once, while the program loads, before any
// of Kiln's code runs, so the setting must be in the environment the
// program starts with: export it, or call ApplyOpenMpDefaults first thing
// in main (Kiln's examples, tools and benchmarks do).
#pragma once

namespace kiln::backends {

/// If neither GOMP_SPINCOUNT nor OMP_WAIT_POLICY is set, sets
/// GOMP_SPINCOUNT=10000 and re-executes the program (/proc/self/exe) with
/// the same arguments, so that libgomp starts with it; otherwise (or if the
/// re-execution fails) returns and the program goes on as it is. Call it
/// first in main, before any threads or side effects.
void ApplyOpenMpDefaults(char** argv);

namespace internal {
/// Sets GOMP_SPINCOUNT=10000 unless the user chose a wait policy; returns
/// whether it did (the process must then restart for libgomp to see it).
bool SetOpenMpDefaultsInEnvironment();
}  // namespace internal

}  // namespace kiln::backends
