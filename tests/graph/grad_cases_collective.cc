// Copyright 2026 The Kiln Authors.
// Gradient cases of the collectives in a world of one process (each is the
// identity there, and so is its rule); the rules across processes are checked
// by tests/distributed (worker.cc's "collectives" scenario).
#include "kiln/graph/collective.h"
#include "tests/graph/grad_cases.h"

namespace kiln::testing {

std::vector<GradCase> CollectiveGradCases() {
  std::vector<GradCase> c;
  using Args = const std::vector<graph::Node>&;
  using ir::ReduceOp;
  c.push_back({ir::OpType::kCollective, "AllReduce sum, mean and max",
               [](Args p) {
                 return graph::AllReduce(p[0]) * graph::AllReduce(p[0], ReduceOp::kMean) +
                        graph::AllReduce(p[0], ReduceOp::kMax);
               },
               {Uniform({2, 3}, -1, 1, 41)}});
  c.push_back({ir::OpType::kCollective, "AllGather, ReduceScatter and Broadcast",
               [](Args p) {
                 return graph::Broadcast(graph::ReduceScatter(graph::AllGather(p[0]), ReduceOp::kMin)) * p[0];
               },
               {Uniform({3, 2}, -1, 1, 42)}});
  return c;
}

}  // namespace kiln::testing
