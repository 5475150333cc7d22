// Copyright 2026 The Kiln Authors.
// The seed's snippets in C++: adding two Float32[4], a reduction of a scaled
// input, and printing a shape.
#include <iostream>
#include <vector>

#include "kiln/backends/openmp_defaults.h"
#include "kiln/kiln.h"

using namespace kiln;  // NOLINT(build/namespaces): an example reads better this way.

int main(int, char** argv) {
  kiln::backends::ApplyOpenMpDefaults(argv);  // short OpenMP spin-waits (see the header)
  auto backend = backends::New();
  std::cout << "Backend: " << backend->Name() << " - " << backend->Description() << "\n";

  // Adding two Float32[4].
  auto shape = shapes::Make(dtypes::Float32, 4);
  auto add = graph::Compile(backend, [&](graph::Graph* g) {
    // Parameters are numbered in declaration order: declare them in statements
    // of their own (C++ leaves the order of evaluation of operands open).
    graph::Node a = graph::Parameter(g, "a", shape);
    graph::Node b = graph::Parameter(g, "b", shape);
    return a + b;
  });
  tensors::Tensor sum = add.Call(std::vector<float>{1, 2, 3, 4}, std::vector<float>{10, 20, 30, 40});
  std::cout << "a + b = " << sum << "\n";

  // ReduceSum(Mul(x, Const(g, 2.0f)), 0) over a matrix, traced per input shape.
  auto reduce = graph::NewExec(backend, [](graph::Node x) {
    return graph::ReduceSum(graph::Mul(x, graph::Const(x.Graph(), 2.0f)), 0);
  });
  tensors::Tensor r = reduce.Call(std::vector<std::vector<float>>{{1, 2, 3}, {4, 5, 6}});
  std::cout << "ReduceSum(x * 2, 0) = " << r << "\n";
  std::cout << "graph:\n" << reduce.GraphText();

  // Printing a shape.
  std::cout << shapes::Make(dtypes::Float32, 32, 224, 224, 3) << "\n";
  return 0;
}
