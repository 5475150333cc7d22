// Copyright 2026 The Kiln Authors.
// kiln_cuda_compile_bench: the CUDA backend's cold compile of a train step,
// measured without a GPU (NVRTC needs none). The step is the MLP
// 784-512-512-10 of bench/workloads.h with Adam's update, traced for the
// CUDA backend's capabilities; its program is generated as the backend does
// and its kernels compiled for sm_90 (or --arch=sm_XX) with the disk cache
// off (the environment's options, KILN_CUDA_VECTORIZE included), in
// interleaved rounds:
//   one_module      every kernel in one NVRTC compilation (before SplitModules)
//   split_parallel  SplitModules' modules compiled in parallel (what the backend does)
//   longest_module  the slowest of those modules alone: the wall time with a core per module
//   generate        trace + optimize + GenerateProgram (host side)
// Prints `BENCH <name> <median seconds>` lines and the machine's core count.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "kiln/graph/autodiff.h"
#include "kiln/kiln.h"
#include "src/backends/cpu/passes.h"
#include "src/backends/cuda/codegen.h"
#include "src/backends/cuda/nvrtc_compiler.h"

namespace kiln::bench {
namespace {

using graph::Node;

double Seconds(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// The MLP's Adam train step: dense layers with biases and ReLU, softmax
// cross-entropy, gradients, and per variable the moments and the update.
std::shared_ptr<const ir::Function> MlpAdamStep(const backends::Capabilities& caps) {
  auto g = graph::NewGraph("mlp_adam_step");
  g->SetTarget(&caps);
  const dtypes::DType f32 = dtypes::Float32;
  Node x = graph::Parameter(g.get(), "x", shapes::Make(f32, 256, 784));
  Node y = graph::Parameter(g.get(), "y", shapes::Make(dtypes::Int32, 256));
  const std::vector<int64_t> dims = {784, 512, 512, 10};
  std::vector<Node> vars, m, v;
  for (size_t i = 0; i + 1 < dims.size(); ++i) {
    for (const shapes::Shape& s : {shapes::Make(f32, dims[i], dims[i + 1]), shapes::Make(f32, dims[i + 1])}) {
      const std::string k = std::to_string(vars.size());
      vars.push_back(graph::Parameter(g.get(), std::string("w").append(k), s));
      m.push_back(graph::Parameter(g.get(), std::string("m").append(k), s));
      v.push_back(graph::Parameter(g.get(), std::string("v").append(k), s));
    }
  }
  Node h = x;
  for (size_t i = 0; i < 3; ++i) {
    h = graph::MatMul(h, vars[2 * i]) + vars[2 * i + 1];
    if (i < 2) h = graph::Relu(h);
  }
  Node loss = -graph::ReduceAllMean(graph::ReduceSum(graph::LogSoftmax(h) * graph::OneHot(y, 10, f32), {1}));
  const std::vector<Node> grads = graph::Gradient(loss, vars);
  std::vector<Node> outs = {loss};
  for (size_t i = 0; i < vars.size(); ++i) {
    Node m1 = m[i] * 0.9f + grads[i] * 0.1f;
    Node v1 = v[i] * 0.999f + grads[i] * grads[i] * 0.001f;
    outs.push_back(vars[i] - m1 * 0.001f / (graph::Sqrt(v1) + 1e-7f));
    outs.push_back(m1);
    outs.push_back(v1);
  }
  return g->Finish(outs, graph::Loc::current());
}

int Run(int argc, char** argv) {
  std::string arch = "sm_90";
  int rounds = 5;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a.rfind("--arch=", 0) == 0) arch = a.substr(7);
    if (a.rfind("--rounds=", 0) == 0) rounds = std::max(1, std::atoi(a.c_str() + 9));
  }
  setenv("KILN_CUDA_CACHE_DIR", "off", 1);  // every compile cold
  const backends::Capabilities caps = backends::cuda::ProgramCapabilities();
  std::printf("CUDA_COMPILE arch=%s nvrtc=%s cores=%u rounds=%d\n", arch.c_str(),
              backends::cuda::NvrtcVersion().c_str(), std::thread::hardware_concurrency(), rounds);
  std::vector<double> generate, one, split, longest;
  size_t kernels = 0, modules = 0, vectorized = 0;
  for (int r = 0; r < rounds; ++r) {
    auto start = std::chrono::steady_clock::now();
    const backends::cuda::Program p =
        backends::cuda::GenerateProgram(*backends::cpu::OptimizeFunction(MlpAdamStep(caps)),
                                        backends::cuda::ProgramOptionsFromEnvironment());
    generate.push_back(Seconds(start));
    // A comment naming the round keeps the in-memory cache from answering.
    const std::string tag = "\n// round " + std::to_string(r) + "\n";
    kernels = p.kernels.size();
    vectorized = static_cast<size_t>(std::count_if(p.kernels.begin(), p.kernels.end(),
                                                   [](const backends::cuda::KernelSpec& k) { return k.vectorized; }));
    start = std::chrono::steady_clock::now();
    backends::cuda::CompileToCubin(backends::cuda::ModuleSource(p) + tag, arch);
    one.push_back(Seconds(start));
    backends::cuda::KernelModules split_modules = backends::cuda::SplitModules(p);
    modules = split_modules.sources.size();
    for (std::string& s : split_modules.sources) s += tag;
    start = std::chrono::steady_clock::now();
    backends::cuda::CompileToCubins(split_modules.sources, arch);
    split.push_back(Seconds(start));
    double slowest = 0;
    for (const std::string& s : split_modules.sources) {
      start = std::chrono::steady_clock::now();
      backends::cuda::CompileToCubin(s + "// alone\n", arch);
      slowest = std::max(slowest, Seconds(start));
    }
    longest.push_back(slowest);
  }
  std::printf("BENCH generate %.6f kernels=%zu\n", Median(generate), kernels);
  std::printf("BENCH one_module %.6f kernels=%zu vectorized=%zu\n", Median(one), kernels, vectorized);
  std::printf("BENCH split_parallel %.6f modules=%zu\n", Median(split), modules);
  std::printf("BENCH longest_module %.6f\n", Median(longest));
  return 0;
}

}  // namespace
}  // namespace kiln::bench

int main(int argc, char** argv) {
  try {
    return kiln::bench::Run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "kiln_cuda_compile_bench: %s\n", e.what());
    return 1;
  }
}
