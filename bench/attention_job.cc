// Copyright 2026 The Kiln Authors.
// kiln_attention_job: one side of kiln_compare's attention case, in its own
// process so its peak resident memory is its own. Causal self-attention of
// Float32 [1, 8 heads, length, 64], either the fused Attention op (the CPU's
// row-block kernel) or the composed form (score products, masked softmax,
// weighted sum), as layers::DotProductAttention builds it below the
// backend's threshold. With --grad=1, the forward pass and the gradients of
// q, k and v for an output cotangent (the fused form's through the
// AttentionGrad op, the composed form's through its ops' VJPs), as a
// training step runs them. Prints "result <median seconds> <peak KB> 0".
//
//   kiln_attention_job --length=4096 --fused=1 [--grad=1] [--reps=5]
#include <sys/resource.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#include "bench/workloads.h"
#include "kiln/backends/openmp_defaults.h"
#include "kiln/graph/attention.h"
#include "kiln/graph/autodiff.h"

int main(int argc, char** argv) {
  kiln::backends::ApplyOpenMpDefaults(argv);
  using namespace kiln;  // NOLINT(build/namespaces)
  using graph::Node;
  int64_t length = 1024, reps = 5;
  bool fused = true, grad = false;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg.rfind("--length=", 0) == 0) length = std::atoll(argv[i] + 9);
    else if (arg.rfind("--fused=", 0) == 0) fused = std::atoi(argv[i] + 8) != 0;
    else if (arg.rfind("--grad=", 0) == 0) grad = std::atoi(argv[i] + 7) != 0;
    else if (arg.rfind("--reps=", 0) == 0) reps = std::max(1, std::atoi(argv[i] + 7));
    else {
      std::cerr << "usage: kiln_attention_job --length=N --fused=0|1 [--grad=0|1] [--reps=N]\n";
      return 2;
    }
  }
  try {
    constexpr int64_t kHeads = 8, kDim = 64;
    const double scale = 1 / std::sqrt(static_cast<double>(kDim));
    const shapes::Shape shape = shapes::Make(dtypes::Float32, 1, kHeads, length, kDim);
    auto attention = [&](Node q, Node k, Node v) {
      if (fused) return graph::Attention(q, k, v, {}, {.scale = scale, .causal = true});
      Node s = graph::Einsum("bhqd,bhkd->bhqk", q * scale, k);
      const shapes::Shape is = shapes::Make(dtypes::Int64, length, length);
      Node visible = graph::LessOrEqual(graph::Iota(q.Graph(), is, 1), graph::Iota(q.Graph(), is, 0));
      s = graph::Where(visible, s, graph::ScalarLike(s, -1e9));
      return graph::Einsum("bhqk,bhkd->bhqd", graph::Softmax(s, -1), v);
    };
    auto exec = graph::Compile(backends::New(), [&](graph::Graph* g) {
      Node q = graph::Parameter(g, "q", shape), k = graph::Parameter(g, "k", shape), v = graph::Parameter(g, "v", shape);
      Node out = attention(q, k, v);
      if (!grad) return std::vector<Node>{out};
      std::vector<Node> grads = graph::VJP({out}, {graph::Parameter(g, "d_out", shape)}, {q, k, v});
      grads.insert(grads.begin(), out);
      return grads;
    });
    const auto q = bench::RandomFloats({1, kHeads, length, kDim}, -1, 1, 1);
    const auto k = bench::RandomFloats({1, kHeads, length, kDim}, -1, 1, 2);
    const auto v = bench::RandomFloats({1, kHeads, length, kDim}, -1, 1, 3);
    std::vector<tensors::Tensor> args = {q, k, v};
    if (grad) args.push_back(bench::RandomFloats({1, kHeads, length, kDim}, -1, 1, 4));
    exec.CallVector(args);  // compile and warm up
    std::vector<double> times;
    for (int64_t r = 0; r < reps; ++r) times.push_back(bench::SecondsOf([&] { exec.CallVector(args); }));
    std::sort(times.begin(), times.end());
    rusage usage{};
    getrusage(RUSAGE_SELF, &usage);
    std::printf("result %.9f %ld 0\n", times[times.size() / 2], usage.ru_maxrss);
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "kiln_attention_job: " << e.what() << "\n";
    return 1;
  }
}
