// Copyright 2026 The Kiln Authors.
// Uses the installed headers and library: compiles a graph and checks it.
#include <kiln/kiln.h>

#include <iostream>

int main() {
  using namespace kiln;  // NOLINT(build/namespaces)
  auto backend = backends::New();
  auto shape = shapes::Make(dtypes::Float32, 3);
  auto add = graph::Compile(backend, [&](graph::Graph* g) {
    graph::Node a = graph::Parameter(g, "a", shape);
    graph::Node b = graph::Parameter(g, "b", shape);
    return a + b;
  });
  auto sum = add.Call(std::vector<float>{1, 2, 3}, std::vector<float>{4, 5, 6}).Value<std::vector<float>>();
  if (sum != std::vector<float>{5, 7, 9}) {
    std::cerr << "consumer: wrong result\n";
    return 1;
  }
  std::cout << "consumer: ok\n";
  return 0;
}
