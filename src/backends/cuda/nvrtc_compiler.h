// Copyright 2026 The Kiln Authors.
// NVRTC compilation of generated kernels to cubins, with an in-memory cache
// and an on-disk cache shared by processes (kernel_cache.h; keyed by the
// source, the architecture and the NVRTC version), so a second process skips
// NVRTC.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace kiln::backends::cuda {

/// Compiles CUDA C++ `source` into a cubin for `arch` ("sm_90"). Throws
/// kiln::Error with NVRTC's log on a compile error. Needs no GPU.
std::string CompileToCubin(const std::string& source, const std::string& arch);

/// The PTX NVRTC makes of `source` for virtual architecture `arch`
/// ("compute_90"), not cached: what tests read to check the instructions a
/// kernel compiles to (vector loads, say). Throws as CompileToCubin.
std::string CompileToPtx(const std::string& source, const std::string& arch);

/// CompileToCubin of each of `sources`, in parallel on up to one thread per
/// core (NVRTC compiles a module on one thread). Throws the error of the
/// first module that fails.
std::vector<std::string> CompileToCubins(const std::vector<std::string>& sources, const std::string& arch);

/// 32 hex digits: two independent 64-bit hashes of `text`, for cache file names.
std::string HashKey(const std::string& text);

/// "13.0": the NVRTC library's version.
std::string NvrtcVersion();

/// Counters of CompileToCubin since the process started.
struct CompileStats {
  int64_t memory_hits = 0, disk_hits = 0, compiles = 0;
  double compile_seconds = 0;  // time spent in NVRTC, summed over threads
};
CompileStats GetCompileStats();

}  // namespace kiln::backends::cuda
