// Copyright 2026 The Kiln Authors.
// Uses the installed headers and library: compiles a graph and checks it, and checks that the library's
// version is the headers' one. With a directory argument, also saves a checkpoint there (for the
// installed kiln_checkpoint to list).
#include <kiln/kiln.h>

#include <cstring>
#include <iostream>

int main(int argc, char** argv) {
  using namespace kiln;  // NOLINT(build/namespaces)
  std::cout << "consumer: Kiln " << Version() << " (headers " << KILN_VERSION_STRING << ")\n";
  if (std::strcmp(Version(), KILN_VERSION_STRING) != 0) {
    std::cerr << "consumer: the library's version is not the headers'\n";
    return 1;
  }
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
  if (argc > 1) {
    auto ctx = context::New();
    ctx.In("consumer").VariableWithValue("sum", tensors::FromValue(sum));
    context::checkpoints::Build(ctx).Dir(argv[1]).Done()->Save();
  }
  std::cout << "consumer: ok\n";
  return 0;
}
