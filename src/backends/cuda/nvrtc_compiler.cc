// Copyright 2026 The Kiln Authors.
// NVRTC compilation with memory and disk caches (see nvrtc_compiler.h).
#include "src/backends/cuda/nvrtc_compiler.h"

#include <dlfcn.h>
#include <nvrtc.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <functional>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "kiln/core/error.h"
#include "src/backends/cuda/kernel_cache.h"

namespace kiln::backends::cuda {

namespace {

struct Cache {
  std::mutex mu;
  std::unordered_map<std::string, std::string> cubins;  // key -> cubin
  CompileStats stats;
};

Cache& GetCache() {
  static Cache* c = new Cache();  // never destroyed: usable during exit
  return *c;
}

void CheckNvrtc(nvrtcResult r, const char* what) {
  if (r != NVRTC_SUCCESS) Throw(std::string("cuda: NVRTC ") + what + " failed: " + nvrtcGetErrorString(r));
}

// 64-bit FNV-1a.
uint64_t Fnv1a(const std::string& s, uint64_t h = 1469598103934665603ull) {
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

// A 128-bit key: two independent hashes of everything the cubin depends on.
std::string KeyOf(const std::string& source, const std::string& arch) {
  return HashKey(arch + "\n" + NvrtcVersion() + "\n" + source);
}

// NVRTC opens its built-in headers (libnvrtc-builtins.so.<major>.<minor>) by
// name, where the loader looks: not in the folder libnvrtc came from when
// libkiln found it through its RUNPATH (a toolkit outside ld.so.conf), and
// possibly a different toolkit's copy. Loading the copy beside libnvrtc first
// makes NVRTC's own dlopen find it by its soname. Loaded once, never unloaded.
void LoadBuiltinsBesideNvrtc() {
  static const bool once = [] {
    Dl_info info{};
    int major = 0, minor = 0;
    if (dladdr(reinterpret_cast<void*>(&nvrtcCompileProgram), &info) == 0 || info.dli_fname == nullptr ||
        nvrtcVersion(&major, &minor) != NVRTC_SUCCESS) {
      return false;
    }
    const std::filesystem::path beside = std::filesystem::path(info.dli_fname).parent_path() /
                                         ("libnvrtc-builtins.so." + std::to_string(major) + "." + std::to_string(minor));
    // Absent (NVRTC linked statically, an unusual layout): NVRTC searches as usual.
    return std::filesystem::exists(beside) && dlopen(beside.c_str(), RTLD_NOW | RTLD_GLOBAL) != nullptr;
  }();
  (void)once;
}

// The cubin of `source` for a real architecture (sm_90), or its PTX for a
// virtual one (compute_90).
std::string Compile(const std::string& source, const std::string& arch, bool ptx = false) {
  LoadBuiltinsBesideNvrtc();
  nvrtcProgram prog;
  CheckNvrtc(nvrtcCreateProgram(&prog, source.c_str(), "kiln_kernels.cu", 0, nullptr, nullptr), "create");
  const std::string arch_opt = "--gpu-architecture=" + arch;
  // -w: generated code declares index variables some ops leave unused.
  const char* opts[] = {arch_opt.c_str(), "--std=c++17", "-w"};
  const nvrtcResult r = nvrtcCompileProgram(prog, 3, opts);
  if (r != NVRTC_SUCCESS) {
    size_t log_size = 0;
    nvrtcGetProgramLogSize(prog, &log_size);
    std::string log(log_size, '\0');
    if (log_size > 0) nvrtcGetProgramLog(prog, log.data());
    nvrtcDestroyProgram(&prog);
    if (log.size() > 4000) log = log.substr(0, 4000) + "...";
    if (log.find("libnvrtc-builtins") != std::string::npos) {
      Throw("cuda: NVRTC cannot load its built-in headers library, which the CUDA toolkit installs beside "
            "libnvrtc: " + log);
    }
    Throw("cuda: NVRTC could not compile a generated kernel for " + arch + " (a Kiln bug; please report it): " + log);
  }
  size_t size = 0;
  std::string out;
  if (ptx) {
    CheckNvrtc(nvrtcGetPTXSize(prog, &size), "get PTX size");
    out.resize(size);
    CheckNvrtc(nvrtcGetPTX(prog, out.data()), "get PTX");
    out.resize(size > 0 ? size - 1 : 0);  // the size counts the terminating NUL
  } else {
    CheckNvrtc(nvrtcGetCUBINSize(prog, &size), "get cubin size");
    out.resize(size);
    CheckNvrtc(nvrtcGetCUBIN(prog, out.data()), "get cubin");
  }
  nvrtcDestroyProgram(&prog);
  return out;
}

}  // namespace

std::string HashKey(const std::string& text) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "%016llx%016llx", static_cast<unsigned long long>(Fnv1a(text)),
                static_cast<unsigned long long>(Fnv1a(text, 0x84222325cbf29ce4ull) ^ (text.size() * 0x9E3779B97F4A7C15ull)));
  return buf;
}

std::string NvrtcVersion() {
  int major = 0, minor = 0;
  CheckNvrtc(nvrtcVersion(&major, &minor), "version");
  return std::to_string(major) + "." + std::to_string(minor);
}

std::string CompileToPtx(const std::string& source, const std::string& arch) { return Compile(source, arch, true); }

std::string CompileToCubin(const std::string& source, const std::string& arch) {
  Cache& cache = GetCache();
  const std::string key = KeyOf(source, arch);
  {
    std::lock_guard lock(cache.mu);
    if (auto it = cache.cubins.find(key); it != cache.cubins.end()) {
      ++cache.stats.memory_hits;
      return it->second;
    }
  }
  const std::string dir = KernelCacheDir();
  const std::filesystem::path file = dir.empty() ? std::filesystem::path() : std::filesystem::path(dir) / (key + ".cubin");
  std::string cubin;
  bool from_disk = false;
  if (!dir.empty()) {
    cubin = ReadCacheEntry(file);
    // A cubin is an ELF file: anything else (truncated, foreign) is recompiled.
    from_disk = cubin.size() > 4 && cubin.compare(0, 4, "\x7f" "ELF") == 0;
  }
  double seconds = 0;
  if (!from_disk) {
    const auto start = std::chrono::steady_clock::now();
    cubin = Compile(source, arch);
    seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (!dir.empty()) WriteCacheEntry(dir, file, cubin);
  }
  std::lock_guard lock(cache.mu);
  if (from_disk) {
    ++cache.stats.disk_hits;
  } else {
    ++cache.stats.compiles;
    cache.stats.compile_seconds += seconds;
  }
  cache.cubins.emplace(key, cubin);
  return cubin;
}

std::vector<std::string> CompileToCubins(const std::vector<std::string>& sources, const std::string& arch) {
  std::vector<std::string> cubins(sources.size());
  std::vector<std::exception_ptr> errors(sources.size());
  std::atomic<size_t> next{0};
  auto work = [&] {
    for (size_t i = next++; i < sources.size(); i = next++) {
      try {
        cubins[i] = CompileToCubin(sources[i], arch);
      } catch (...) {
        errors[i] = std::current_exception();
      }
    }
  };
  const size_t threads = std::min<size_t>(sources.size(), std::max(1u, std::thread::hardware_concurrency()));
  std::vector<std::thread> pool;
  for (size_t t = 1; t < threads; ++t) pool.emplace_back(work);
  work();
  for (std::thread& t : pool) t.join();
  for (const std::exception_ptr& e : errors) {
    if (e) std::rethrow_exception(e);
  }
  return cubins;
}

CompileStats GetCompileStats() {
  Cache& cache = GetCache();
  std::lock_guard lock(cache.mu);
  return cache.stats;
}

}  // namespace kiln::backends::cuda
