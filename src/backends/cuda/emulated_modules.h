// Copyright 2026 The Kiln Authors.
// The emulator's kernels (emulator.h): the CUDA backend's modules compiled
// by the host's C++ compiler with a shim (blockIdx and threadIdx as
// variables, __shared__ as static, atomics as plain updates, __syncthreads
// as a switch between fibers, one per CUDA thread) and ThreadSanitizer's
// instrumentation feeding the race check (emulated_racecheck.h), loaded
// with dlopen, cached on disk, and launched on the host one block after
// the other.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "src/backends/cuda/emulated_racecheck.h"

namespace kiln::backends::cuda {

/// A kernel of a compiled module: one thread of it, run with its arguments
/// (cudaLaunchKernel's array of pointers to them); whether its threads meet
/// at barriers; how many parameters (pointers, all of them) it takes; a
/// number naming it (from its module's image and its name), which seeds the
/// order of its launches' blocks and threads; its name; where its module's
/// __shared__ variables lie, and their names (for the race check).
struct EmulatedKernel {
  void (*run)(void** args, void* state) = nullptr;
  bool syncs = false;
  int arity = 0;
  uint64_t id = 0;
  std::string name;
  uintptr_t shared_begin = 0, shared_end = 0;
  const std::vector<StaticVariable>* variables = nullptr;  // the module's, which lives as long as the process
};

/// RuntimeApi::compile_modules for the emulator: `sources` compiled (or
/// found in the in-process and disk caches) as one host module, with
/// $KILN_CUDA_EMULATOR_CXX, else the compiler that built Kiln. Module i's
/// image names that host module and i. Throws kiln::Error with the
/// compiler's output where it fails.
std::vector<std::string> CompileEmulatedModules(const std::vector<std::string>& sources, const std::string& arch);

/// The file CompileEmulatedModules caches the host module of `sources` in
/// (KernelCacheDir()/emulator/<hash>.so), or "" where the disk cache is off.
std::string EmulatedModuleFile(const std::vector<std::string>& sources);

/// Whether `image` is one CompileEmulatedModules returned.
bool IsEmulatedImage(const std::string& image);

/// Kernel `name` of the module `image` names, or false where that module
/// does not define it.
bool FindEmulatedKernel(const std::string& image, const std::string& name, EmulatedKernel* kernel);

/// Runs `blocks` blocks of `threads` threads of `k` on the calling thread,
/// one launch at a time in the process (the modules' __shared__ arrays are
/// static): the blocks one after the other, and the threads of a block in
/// turn (on fibers, switching at each barrier). `shuffled`: in an order
/// drawn afresh for each block of each launch, seeded by k.id and how many
/// launches of k came before (see EmulatedLaunchesShuffled), else
/// ascending. With `race_check` (the device memory the parameters point
/// into), every access to those buffers and to the block's shared
/// variables is checked for data races (emulated_racecheck.h), and the
/// first one throws kiln::Error naming the kernel, the threads and the
/// address, once the launch has run; a kernel's first 256 launches are
/// checked, then one in 64.
void RunEmulatedKernel(const EmulatedKernel& k, void** args, unsigned blocks, unsigned threads, bool shuffled,
                       const std::vector<LaunchBuffer>* race_check = nullptr);

/// Whether launches are race-checked, as $KILN_CUDA_EMU_RACECHECK says: "1"
/// (the default, also where unset or empty) or "0". Throws kiln::Error for
/// another value.
bool EmulatedRaceCheck();

/// Whether launches take their blocks and threads in shuffled order, as
/// $KILN_CUDA_EMU_ORDER says: "shuffled" (the default, also where unset or
/// empty) or "ascending". A GPU runs them in no set order, so a kernel
/// that is right only in ascending order (one thread reading what another
/// writes, without a barrier or an atomic between) is a bug the shuffle
/// shows; "ascending" tells such a bug from others. Throws kiln::Error for
/// another value.
bool EmulatedLaunchesShuffled();

/// The architectures CompileEmulatedModules also compiles every module for
/// with NVRTC (through its caches; an NVRTC error throws): those
/// $KILN_CUDA_EMU_NVRTC lists ("sm_80,sm_90"), none where it is unset or
/// empty. Throws kiln::Error naming the variable where an entry is not sm_NN.
std::vector<std::string> NvrtcCheckArchitectures();

/// The host compiler the modules are compiled with.
std::string EmulatorCompiler();

}  // namespace kiln::backends::cuda
