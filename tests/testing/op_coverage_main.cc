// Copyright 2026 The Kiln Authors.
// Prints the op-coverage table (op x dtype) of a backend as Markdown:
//   op_coverage [backend]   ("cpu" by default; "cuda-emu" is the CUDA backend's)
// "✓" runs, "—" rejected by the graph layer (not meaningful for that dtype),
// "·" not implemented by the backend (its Capabilities say so), "✗" accepted
// but failing on the backend (a bug; op_coverage_test catches it).
#include <iostream>

#include "tests/testing/op_cases.h"
#include "tests/testing/testing.h"

int main(int argc, char** argv) {
  using namespace kiln;  // NOLINT(build/namespaces)
  auto backend = kiln::testing::NewTestBackend(argc > 1 ? argv[1] : "cpu");
  const backends::Capabilities& caps = backend->GetCapabilities();
  std::cout << "| Op |";
  for (dtypes::DType dt : dtypes::kAll) std::cout << " " << dtypes::Name(dt) << " |";
  std::cout << "\n|---|";
  for (size_t i = 0; i < std::size(dtypes::kAll); ++i) std::cout << ":-:|";
  std::cout << "\n";
  int failures = 0;
  for (const auto& c : kiln::testing::OpCases()) {
    std::cout << "| " << ir::OpName(c.op) << " |";
    for (dtypes::DType dt : dtypes::kAll) {
      if (!caps.SupportsOp(c.op) || !caps.SupportsDType(dt)) {
        // "—" still where the graph layer refuses the dtype.
        bool builds = true;
        try {
          auto g = kiln::graph::NewGraph("probe");
          c.build(g.get(), dt);
        } catch (const kiln::Error&) {
          builds = false;
        }
        std::cout << (builds ? " · |" : " — |");
        continue;
      }
      switch (kiln::testing::TryCase(c, dt, backend, nullptr)) {
        case kiln::testing::Coverage::kRuns: std::cout << " ✓ |"; break;
        case kiln::testing::Coverage::kRejectedByGraph: std::cout << " — |"; break;
        case kiln::testing::Coverage::kFails: std::cout << " ✗ |"; ++failures; break;
      }
    }
    std::cout << "\n";
  }
  return failures == 0 ? 0 : 1;
}
