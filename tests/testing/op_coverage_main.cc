// Copyright 2026 The Kiln Authors.
// Prints the op-coverage table (op x dtype) of a backend as Markdown:
//   op_coverage [backend]
// "✓" runs, "—" rejected by the graph layer (not meaningful for that dtype),
// "✗" accepted but failing on the backend (a bug; op_coverage_test catches it).
#include <iostream>

#include "tests/testing/op_cases.h"

int main(int argc, char** argv) {
  using namespace kiln;  // NOLINT(build/namespaces)
  auto backend = backends::NewWithName(argc > 1 ? argv[1] : "cpu");
  std::cout << "| Op |";
  for (dtypes::DType dt : dtypes::kAll) std::cout << " " << dtypes::Name(dt) << " |";
  std::cout << "\n|---|";
  for (size_t i = 0; i < std::size(dtypes::kAll); ++i) std::cout << ":-:|";
  std::cout << "\n";
  int failures = 0;
  for (const auto& c : testing::OpCases()) {
    std::cout << "| " << ir::OpName(c.op) << " |";
    for (dtypes::DType dt : dtypes::kAll) {
      switch (testing::TryCase(c, dt, backend, nullptr)) {
        case testing::Coverage::kRuns: std::cout << " ✓ |"; break;
        case testing::Coverage::kRejectedByGraph: std::cout << " — |"; break;
        case testing::Coverage::kFails: std::cout << " ✗ |"; ++failures; break;
      }
    }
    std::cout << "\n";
  }
  return failures == 0 ? 0 : 1;
}
