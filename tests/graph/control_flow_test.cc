// Copyright 2026 The Kiln Authors.
// While, If, ForLoop and Scan on every backend that implements control flow:
// results against plain C++ loops (closures over outer values, nesting,
// zero-trip loops, data-dependent exits), gradients against finite
// differences in float64 and against derivatives worked out by hand (second
// order too), memory over 10,000 iterations, the IR dump and the error
// messages.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "kiln/graph/control_flow.h"
#include "kiln/graph/sort.h"
#include "src/backends/cpu/passes.h"
#include "tests/testing/gradcheck.h"
#include "tests/testing/testing.h"

namespace kiln {
namespace {

using graph::Node;
using tensors::Tensor;

class ControlFlowTest : public ::testing::TestWithParam<std::string> {
 protected:
  std::shared_ptr<backends::Backend> Backend() const { return backends::NewWithName(GetParam()); }
};

INSTANTIATE_TEST_SUITE_P(Backends, ControlFlowTest,
                         ::testing::ValuesIn(testing::BackendsSupporting(ir::OpType::kWhile)));
// Empty where no backend tested has the op (a backend registered without While).
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(ControlFlowTest);

Tensor F64(std::vector<int64_t> dims, const std::vector<double>& values) {
  return testing::FromDoubles(shapes::Shape(dtypes::Float64, std::move(dims)), values);
}
Tensor I32(int32_t v) { return tensors::FromValue(v); }

std::vector<Node> Vec(std::initializer_list<Node> nodes) { return nodes; }

// s = sum of 2.5 * i for i < n, with i counted up to n: n comes from a
// parameter the condition captures, so the trip count is decided at run time.
TEST_P(ControlFlowTest, WhileRunsUntilItsConditionFails) {
  for (int32_t n : {0, 1, 7}) {
    auto out = testing::Run(
        Backend(),
        [](const std::vector<Node>& p) {
          Node n = p[0];
          return graph::While([&](const std::vector<Node>& c) { return graph::LessThan(c[0], n); },
                              [](const std::vector<Node>& c) {
                                return Vec({c[0] + 1, c[1] + graph::ConvertDType(c[0], dtypes::Float64) * 2.5});
                              },
                              {graph::ScalarLike(n, 0), graph::Scalar(n.Graph(), dtypes::Float64, 0)});
        },
        {I32(n)});
    EXPECT_EQ(out[0].Flat<int32_t>()[0], n);
    EXPECT_EQ(out[1].Flat<double>()[0], 2.5 * n * (n - 1) / 2) << "n = " << n;
  }
}

// A loop inside a loop: the inner body uses the outer body's carry (j), a
// value of the top-level graph (x) and a constant, so captures pass through
// two levels.
TEST_P(ControlFlowTest, NestedLoopsCaptureValuesOfEveryEnclosingGraph) {
  auto out = testing::Run1(
      Backend(),
      [](const std::vector<Node>& p) {
        Node x = p[0];
        auto outer = graph::ForLoop(
            4,
            [&](Node j, const std::vector<Node>& c) {
              // acc += x * (j + 1), j + 1 times.
              auto inner = graph::While(
                  [&](const std::vector<Node>& d) { return graph::LessOrEqual(d[0], j); },
                  [&](const std::vector<Node>& d) {
                    Node scale = graph::ConvertDType(j + 1, dtypes::Float64);
                    return Vec({d[0] + 1, d[1] + x * scale});
                  },
                  {graph::ScalarLike(j, 0), c[0]});
              return Vec({inner[1]});
            },
            {graph::ZerosLike(x)});
        return outer[0];
      },
      {F64({3}, {1, -2, 0.5})});
  // sum over j < 4 of (j + 1)^2 = 1 + 4 + 9 + 16 = 30.
  EXPECT_TRUE(testing::AllClose(out, shapes::Make(dtypes::Float64, 3), {30, -60, 15}, 0, 0));
}

TEST_P(ControlFlowTest, IfRunsTheChosenBranchWithItsOperandsAndClosures) {
  for (double first : {2.0, -2.0}) {
    auto out = testing::Run(
        Backend(),
        [](const std::vector<Node>& p) {
          Node x = p[0], w = p[1];
          Node pred = graph::GreaterThan(graph::Slice(x, {0}, {1}, {1}) * 1.0, graph::ZerosLike(graph::Slice(x, {0}, {1}, {1})));
          pred = graph::Reshape(pred, {});
          return graph::If(
              pred,
              [&](const std::vector<Node>& v) { return Vec({v[0] * 2.0 + w, graph::ConvertDType(v[0], dtypes::Int32)}); },
              [&](const std::vector<Node>& v) { return Vec({v[0] - w, graph::ConvertDType(v[0] * 10.0, dtypes::Int32)}); },
              {x});
        },
        {F64({2}, {first, 3}), F64({2}, {0.5, 0.25})});
    if (first > 0) {
      EXPECT_TRUE(testing::AllClose(out[0], shapes::Make(dtypes::Float64, 2), {4.5, 6.25}, 0, 0));
      EXPECT_EQ(out[1].Flat<int32_t>()[1], 3);
    } else {
      EXPECT_TRUE(testing::AllClose(out[0], shapes::Make(dtypes::Float64, 2), {-2.5, 2.75}, 0, 0));
      EXPECT_EQ(out[1].Flat<int32_t>()[1], 30);
    }
  }
}

TEST_P(ControlFlowTest, ForLoopOfZeroTripsReturnsItsInit) {
  auto out = testing::Run1(
      Backend(),
      [](const std::vector<Node>& p) {
        return graph::ForLoop(0, [](Node, const std::vector<Node>& c) { return Vec({c[0] * 100.0}); }, {p[0]})[0];
      },
      {F64({2}, {1, 2})});
  EXPECT_TRUE(testing::AllClose(out, shapes::Make(dtypes::Float64, 2), {1, 2}, 0, 0));
}

// Scan as a running sum: the carry is the sum, the stacked output twice it.
TEST_P(ControlFlowTest, ScanCarriesAndStacksForwardAndReversed) {
  for (bool reverse : {false, true}) {
    auto out = testing::Run(
        Backend(),
        [reverse](const std::vector<Node>& p) {
          auto r = graph::Scan(
              [](const std::vector<Node>& c, const std::vector<Node>& x) {
                Node next = c[0] + x[0];
                return Vec({next, next * 2.0});
              },
              {graph::ZerosLike(graph::Slice(p[0], {0, 0}, {1, 2}, {1, 1}))}, {graph::Reshape(p[0], {3, 1, 2})}, -1,
              graph::ScanOptions{.reverse = reverse});
          return Vec({r.carry[0], r.stacked[0]});
        },
        {F64({3, 2}, {1, 2, 3, 4, 5, 6})});
    EXPECT_TRUE(testing::AllClose(out[0], shapes::Make(dtypes::Float64, 1, 2), {9, 12}, 0, 0));
    const std::vector<double> want = reverse ? std::vector<double>{18, 24, 16, 20, 10, 12}
                                             : std::vector<double>{2, 4, 8, 12, 18, 24};
    EXPECT_TRUE(testing::AllClose(out[1], shapes::Make(dtypes::Float64, 3, 1, 2), want, 0, 0)) << reverse;
  }
}

// d/dx of x^5 built by a ForLoop is 5 x^4; the second derivative 20 x^3.
TEST_P(ControlFlowTest, ForLoopGradientsOfFirstAndSecondOrder) {
  auto out = testing::Run(
      Backend(),
      [](const std::vector<Node>& p) {
        Node x = p[0];
        Node y = graph::ForLoop(5, [&](Node, const std::vector<Node>& c) { return Vec({c[0] * x}); },
                                {graph::OnesLike(x)})[0];
        Node dy = graph::Gradient(graph::ReduceSum(y, {}), {x})[0];
        Node d2y = graph::Gradient(graph::ReduceSum(dy, {}), {x})[0];
        return Vec({y, dy, d2y});
      },
      {F64({2}, {1.5, -0.5})});
  EXPECT_TRUE(testing::AllClose(out[0], shapes::Make(dtypes::Float64, 2), {std::pow(1.5, 5), std::pow(-0.5, 5)}, 1e-14, 0));
  EXPECT_TRUE(testing::AllClose(out[1], shapes::Make(dtypes::Float64, 2), {5 * std::pow(1.5, 4), 5 * std::pow(-0.5, 4)},
                                1e-14, 0));
  EXPECT_TRUE(testing::AllClose(out[2], shapes::Make(dtypes::Float64, 2),
                                {20 * std::pow(1.5, 3), 20 * std::pow(-0.5, 3)}, 1e-14, 0));
}

// x <- 1.5 x until x >= 10: from x = 1 that is 6 trips, so dx_final/dx = 1.5^6.
TEST_P(ControlFlowTest, WhileGradientFollowsTheTripsTaken) {
  auto out = testing::Run(
      Backend(),
      [](const std::vector<Node>& p) {
        Node y = graph::While([](const std::vector<Node>& c) { return graph::LessThan(c[0], graph::ScalarLike(c[0], 10)); },
                              [](const std::vector<Node>& c) { return Vec({c[0] * 1.5}); }, {p[0]},
                              graph::WhileOptions{.max_trip_count = 100})[0];
        return Vec({y, graph::Gradient(y, {p[0]})[0]});
      },
      {F64({}, {1})});
  EXPECT_DOUBLE_EQ(out[0].Flat<double>()[0], std::pow(1.5, 6));
  EXPECT_DOUBLE_EQ(out[1].Flat<double>()[0], std::pow(1.5, 6));
}

// An Elman RNN over 4 steps, h = tanh(W h + x_t + b), through Scan: the
// gradients of the stacked states and the final carry with respect to W, the
// inputs, b and h0 match central finite differences.
TEST_P(ControlFlowTest, ScanGradientsMatchFiniteDifferences) {
  testing::Rng rng(7);
  const auto f64 = [&](std::vector<int64_t> dims) {
    return testing::Random(shapes::Shape(dtypes::Float64, std::move(dims)), rng, -0.8, 0.8);
  };
  EXPECT_TRUE(testing::CheckGradients(
      Backend(),
      [](const std::vector<Node>& p) {
        Node w = p[0], xs = p[1], b = p[2], h0 = p[3];
        auto r = graph::Scan(
            [&](const std::vector<Node>& c, const std::vector<Node>& x) {
              Node h = graph::Tanh(graph::MatMul(c[0], w) + x[0] + b);
              return Vec({h, h * h});
            },
            {h0}, {xs});
        return graph::ReduceSum(r.stacked[0], {0}) + r.carry[0] * 3.0;
      },
      {f64({3, 3}), f64({4, 2, 3}), f64({3}), f64({2, 3})}));
}

// The same loop nested in an If inside a ForLoop: gradients flow through
// every level.
TEST_P(ControlFlowTest, NestedControlFlowGradientsMatchFiniteDifferences) {
  testing::Rng rng(8);
  const auto f64 = [&](std::vector<int64_t> dims) {
    return testing::Random(shapes::Shape(dtypes::Float64, std::move(dims)), rng, -1, 1);
  };
  EXPECT_TRUE(testing::CheckGradients(
      Backend(),
      [](const std::vector<Node>& p) {
        Node x = p[0], w = p[1];
        return graph::ForLoop(
            3,
            [&](Node i, const std::vector<Node>& c) {
              Node even = graph::Equal(graph::Rem(i, graph::ScalarLike(i, 2)), graph::ScalarLike(i, 0));
              return graph::If(
                  even,
                  [&](const std::vector<Node>& v) {
                    return graph::ForLoop(2, [&](Node, const std::vector<Node>& d) { return Vec({graph::Sin(d[0] * w)}); },
                                          {v[0]});
                  },
                  [&](const std::vector<Node>& v) { return Vec({v[0] * v[0] + w}); }, {c[0]});
            },
            {x})[0];
      },
      {f64({2, 3}), f64({3})}));
}

// A checkpointed block gives the same values and gradients as the plain one,
// and its gradient recomputes it inside an If instead of keeping its values.
TEST_P(ControlFlowTest, CheckpointKeepsValuesAndGradients) {
  auto block = [](const std::vector<Node>& v) { return Vec({graph::Tanh(graph::MatMul(v[0], v[1])) * v[0]}); };
  auto plain = [&](const std::vector<Node>& p) {
    Node y = block(p)[0];
    auto g = graph::Gradient(graph::ReduceSum(y * y, {}), {p[0], p[1]});
    return Vec({y, g[0], g[1]});
  };
  auto checkpointed = [&](const std::vector<Node>& p) {
    Node y = graph::Checkpoint(block, {p[0], p[1]})[0];
    auto g = graph::Gradient(graph::ReduceSum(y * y, {}), {p[0], p[1]});
    return Vec({y, g[0], g[1]});
  };
  testing::Rng rng(9);
  const std::vector<Tensor> args = {testing::Random(shapes::Make(dtypes::Float64, 3, 3), rng, -1, 1),
                                    testing::Random(shapes::Make(dtypes::Float64, 3, 3), rng, -1, 1)};
  auto want = testing::Run(Backend(), plain, args);
  auto got = testing::Run(Backend(), checkpointed, args);
  for (size_t i = 0; i < want.size(); ++i) EXPECT_TRUE(testing::AllClose(got[i], want[i], 1e-14, 0)) << i;
  auto g = graph::NewGraph();
  Node x = graph::Parameter(g.get(), "x", shapes::Make(dtypes::Float64, 3, 3));
  Node y = graph::Checkpoint(block, {x, x})[0];
  graph::Gradient(graph::ReduceSum(y, {}), {x});
  int ifs = 0;
  for (const auto& in : g->Function().instructions) ifs += in.op == ir::OpType::kIf;
  EXPECT_EQ(ifs, 2);  // the forward pass and the recomputing backward pass
}

// Gradients replay bodies in new graphs: Relu's custom gradient, a
// comparator sort and a nested If must survive the replay.
TEST_P(ControlFlowTest, ReplayedBodiesKeepCustomGradientsAndComparators) {
  testing::Rng rng(10);
  const auto f64 = [&](std::vector<int64_t> dims) {
    return testing::Random(shapes::Shape(dtypes::Float64, std::move(dims)), rng, 0.2, 1);
  };
  EXPECT_TRUE(testing::CheckGradients(
      Backend(),
      [](const std::vector<Node>& p) {
        Node w = p[1];
        return graph::ForLoop(2, [&](Node, const std::vector<Node>& c) {
          Node h = graph::Relu(graph::MatMul(c[0], w) - 0.5);
          Node sorted = graph::SortWithComparator({h}, 1, [](const std::vector<Node>& l, const std::vector<Node>& r) {
            return graph::GreaterThan(l[0], r[0]);
          })[0];
          return Vec({sorted + c[0]});
        }, {p[0]})[0];
      },
      {f64({2, 3}), f64({3, 3})}));
}

// Scan's stacked outputs are written, not read, by its body: the gradient
// records the carry only, never a [length, length, ...] tape.
TEST(ControlFlowIr, ScanGradientsDoNotRecordTheStackedOutputs) {
  auto g = graph::NewGraph();
  Node xs = graph::Parameter(g.get(), "xs", shapes::Make(dtypes::Float32, 50, 3));
  Node h0 = graph::Parameter(g.get(), "h0", shapes::Make(dtypes::Float32, 3));
  auto r = graph::Scan([](const std::vector<Node>& c, const std::vector<Node>& x) {
    Node h = graph::Tanh(c[0] + x[0]);
    return Vec({h, h});
  }, {h0}, {xs});
  graph::Gradient(graph::ReduceSum(r.stacked[0], {}), {xs, h0});
  auto fn = g->Finish({r.stacked[0]}, graph::Loc::current());
  std::function<int(const ir::Function&)> count_square = [&](const ir::Function& f) {
    int found = 0;
    for (const auto& in : f.instructions) {
      const auto& d = in.shape.Dims();
      found += d.size() >= 2 && d[0] == 50 && d[1] == 50;
    }
    for (const auto& sub : f.subfunctions) found += count_square(*sub);
    return found;
  };
  EXPECT_EQ(count_square(*fn), 0);
}

// The Whiles of a finished function (its own, not its sub-functions').
int CountWhiles(const ir::Function& fn) {
  int whiles = 0;
  for (const auto& in : fn.instructions) whiles += in.op == ir::OpType::kWhile;
  return whiles;
}

// The gradient of a While replays the loop to record its carries; the
// finished function reads the forward results from that replay, so the loop
// runs forward once: two Whiles (forward with the tape, backward), not three.
TEST(ControlFlowIr, ADifferentiatedWhileRunsForwardOnce) {
  auto g = graph::NewGraph();
  Node x = graph::Parameter(g.get(), "x", shapes::Make(dtypes::Float64, 3));
  Node w = graph::Parameter(g.get(), "w", shapes::Make(dtypes::Float64, 3));
  auto loop = graph::While(
      [](const std::vector<Node>& c) { return graph::LessThan(c[1], graph::ScalarLike(c[1], 100)); },
      [&](const std::vector<Node>& c) { return Vec({graph::Sin(c[0] * w), c[1] + graph::ReduceSum(c[0], {}) + 1.0}); },
      {x, graph::Scalar(g.get(), dtypes::Float64, 0)}, graph::WhileOptions{.max_trip_count = 200});
  const std::vector<Node> grads = graph::Gradient(graph::ReduceSum(loop[0], {}), {x, w});
  auto fn = g->Finish({loop[0], loop[1], grads[0], grads[1]}, graph::Loc::current());
  EXPECT_EQ(CountWhiles(*fn), 2) << fn->ToString();
  EXPECT_NO_THROW(fn->Validate());
  // Scan (a While whose stacked outputs are write-only carries) too.
  auto g2 = graph::NewGraph();
  Node xs = graph::Parameter(g2.get(), "xs", shapes::Make(dtypes::Float32, 5, 3));
  auto r = graph::Scan([](const std::vector<Node>& c, const std::vector<Node>& xt) {
    Node h = graph::Tanh(c[0] + xt[0]);
    return Vec({h, h * 2.0f});
  }, {graph::Zeros(g2.get(), shapes::Make(dtypes::Float32, 3))}, {xs});
  Node dxs = graph::Gradient(graph::ReduceSum(r.stacked[0], {}) + graph::ReduceSum(r.carry[0], {}), {xs})[0];
  auto fn2 = g2->Finish({r.carry[0], r.stacked[0], dxs}, graph::Loc::current());
  EXPECT_EQ(CountWhiles(*fn2), 2) << fn2->ToString();
  // Without the gradient among the outputs, the value comes from the plain
  // loop (one result), not from the replay and its tape (counter, carry and
  // tape: more results), which dead-code elimination then drops.
  const auto results_of_loop_behind = [](const ir::Function& f, int output) {
    const ir::Instruction& gte = f.instructions[static_cast<size_t>(f.outputs[static_cast<size_t>(output)])];
    return ir::Attr<ir::ControlFlowAttrs>(f.instructions[static_cast<size_t>(gte.operands[0])]).results.size();
  };
  EXPECT_EQ(results_of_loop_behind(*g->Finish({loop[0]}, graph::Loc::current()), 0), 2u);
  EXPECT_GT(results_of_loop_behind(*g->Finish({loop[0], grads[1]}, graph::Loc::current()), 0), 3u);
}

// Two Gradient calls through one loop share its replay: three Whiles (the
// replay, which also gives the forward results, and two backward loops), not
// four; and each gradient is the one computed alone.
TEST_P(ControlFlowTest, ALoopDifferentiatedTwiceReplaysOnce) {
  // which: 1 the gradient in x of sum(y), 2 the gradient in w of sum(y²), 3 both.
  auto build = [](const std::vector<Node>& p, int which) {
    const Node x = p[0], w = p[1];
    auto loop = graph::While(
        [](const std::vector<Node>& c) { return graph::LessThan(c[1], graph::ScalarLike(c[1], 20)); },
        [&](const std::vector<Node>& c) { return Vec({graph::Sin(c[0] * w), c[1] + graph::ReduceSum(c[0], {}) + 1.0}); },
        {x, graph::Scalar(x.Graph(), dtypes::Float64, 0)}, graph::WhileOptions{.max_trip_count = 50});
    std::vector<Node> outs = {loop[0]};
    if (which & 1) outs.push_back(graph::Gradient(graph::ReduceSum(loop[0], {}), {x})[0]);
    if (which & 2) outs.push_back(graph::Gradient(graph::ReduceSum(graph::Square(loop[0]), {}), {w})[0]);
    return outs;
  };
  auto g = graph::NewGraph();
  const std::vector<Node> params = {graph::Parameter(g.get(), "x", shapes::Make(dtypes::Float64, 3)),
                                    graph::Parameter(g.get(), "w", shapes::Make(dtypes::Float64, 3))};
  auto fn = g->Finish(build(params, 3), graph::Loc::current());
  EXPECT_EQ(CountWhiles(*fn), 3) << fn->ToString();
  EXPECT_NO_THROW(fn->Validate());
  auto backend = Backend();
  const std::vector<Tensor> args = {testing::FromDoubles(shapes::Make(dtypes::Float64, 3), {0.3, -0.2, 0.5}),
                                    testing::FromDoubles(shapes::Make(dtypes::Float64, 3), {1.1, 0.9, -0.7})};
  const auto both = testing::Run(backend, [&](const std::vector<Node>& p) { return build(p, 3); }, args);
  const auto dx = testing::Run(backend, [&](const std::vector<Node>& p) { return build(p, 1); }, args);
  const auto dw = testing::Run(backend, [&](const std::vector<Node>& p) { return build(p, 2); }, args);
  EXPECT_TRUE(testing::AllClose(both[0], dx[0], 1e-12, 1e-12));
  EXPECT_TRUE(testing::AllClose(both[1], dx[1], 1e-12, 1e-12));
  EXPECT_TRUE(testing::AllClose(both[2], dw[1], 1e-12, 1e-12));
}

// The backward loop of a Scan handles one step's slice per iteration: once
// optimized as the CPU backend compiles it, no instruction of its body has
// the size of the whole sequence except the carried buffers written in place
// (a DynamicUpdateSlice of a carry that reads it last). Adding a
// whole-sequence gradient per step, or copying a carry to update it, would
// make the gradient quadratic in the length.
TEST(ControlFlowIr, ScanGradientBodiesWorkOnOneStep) {
  constexpr int64_t kSteps = 50;
  auto g = graph::NewGraph();
  Node xs = graph::Parameter(g.get(), "xs", shapes::Make(dtypes::Float32, kSteps, 4, 3));
  Node w = graph::Parameter(g.get(), "w", shapes::Make(dtypes::Float32, 3, 3));
  auto r = graph::Scan([&](const std::vector<Node>& c, const std::vector<Node>& x) {
    Node h = graph::Tanh(graph::MatMul(c[0], w) + x[0]);
    return Vec({h, h});
  }, {graph::Zeros(g.get(), shapes::Make(dtypes::Float32, 4, 3))}, {xs});
  const auto grads = graph::Gradient(graph::ReduceSum(graph::Square(r.stacked[0]), {}), {xs, w});
  auto fn = g->Finish({grads[0], grads[1]}, graph::Loc::current());
  int bodies = 0;
  for (const ir::Instruction& loop : fn->instructions) {
    if (loop.op != ir::OpType::kWhile) continue;
    ++bodies;
    const auto body = static_cast<size_t>(ir::Attr<ir::ControlFlowAttrs>(loop).subfunctions[1]);
    const auto sub = backends::cpu::OptimizeFunction(fn->subfunctions[body]);
    std::vector<int> last_reader(sub->instructions.size(), -1);
    for (size_t id = 0; id < sub->instructions.size(); ++id) {
      for (int o : sub->instructions[id].operands) last_reader[static_cast<size_t>(o)] = static_cast<int>(id);
    }
    for (size_t id = 0; id < sub->instructions.size(); ++id) {
      const ir::Instruction& in = sub->instructions[id];
      if (in.shape.Rank() == 0 || in.shape.Dims()[0] != kSteps) continue;
      const bool param = in.op == ir::OpType::kParameter;
      const bool in_place = in.op == ir::OpType::kDynamicUpdateSlice &&
                            sub->instructions[static_cast<size_t>(in.operands[0])].op == ir::OpType::kParameter &&
                            last_reader[static_cast<size_t>(in.operands[0])] == static_cast<int>(id);
      EXPECT_TRUE(param || in_place) << "instruction %" << id << " of " << sub->name << " works on the whole sequence:\n"
                                     << sub->ToString();
    }
  }
  EXPECT_EQ(bodies, 2);  // the forward loop with its tape, the backward loop
}

// The merged loop gives the forward results, first and second derivatives
// of a loop whose trip count depends on the data, and its run-time error
// still names the user's While.
TEST_P(ControlFlowTest, MergedForwardLoopGivesTheValuesAndItsErrors) {
  const int while_line = __LINE__ + 3;
  auto exec = graph::Compile(Backend(), [](graph::Graph* g) {
    Node x = graph::Parameter(g, "x", shapes::Make(dtypes::Float64));
    Node y = graph::While([](const std::vector<Node>& c) { return graph::LessThan(c[0], graph::ScalarLike(c[0], 10)); },
                          [](const std::vector<Node>& c) { return Vec({c[0] * c[0] * 0.5 + 1.0}); }, {x},
                          graph::WhileOptions{.max_trip_count = 4})[0];
    Node dy = graph::Gradient(y, {x})[0];
    return Vec({y, dy, graph::Gradient(dy, {x})[0]});
  });
  // From x = 3: 5.5, 16.125 (2 trips). With u = x^2/2 + 1, y = u^2/2 + 1,
  // so y' = u x and y'' = x^2 + u.
  const std::vector<Tensor> out = exec.Call(3.0);
  EXPECT_EQ(out[0].Flat<double>()[0], 16.125);
  EXPECT_EQ(out[1].Flat<double>()[0], 16.5);
  EXPECT_EQ(out[2].Flat<double>()[0], 14.5);
  // From x = 1 the loop needs 5 trips (1.5, 2.125, 3.26, 6.3, 20.8).
  KILN_EXPECT_ERROR(exec.Call(1.0), "max_trip_count of 4 iterations");
  KILN_EXPECT_ERROR(exec.Call(1.0), "control_flow_test.cc:" + std::to_string(while_line));
}

TEST_P(ControlFlowTest, ExceedingMaxTripCountIsARunTimeError) {
  auto exec = graph::Compile(Backend(), [](graph::Graph* g) {
    Node x = graph::Parameter(g, "x", shapes::Make(dtypes::Float32));
    return graph::While([](const std::vector<Node>& c) { return graph::LessThan(c[0], graph::ScalarLike(c[0], 100)); },
                        [](const std::vector<Node>& c) { return Vec({c[0] + 1}); }, {x},
                        graph::WhileOptions{.max_trip_count = 3})[0];
  });
  EXPECT_EQ(exec.Call(tensors::FromValue(98.0f)).Flat<float>()[0], 100.0f);  // 2 trips: fine
  KILN_EXPECT_ERROR(exec.Call(tensors::FromValue(0.0f)), "did not end within its max_trip_count of 3 iterations");
  KILN_EXPECT_ERROR(exec.Call(tensors::FromValue(0.0f)), "control_flow_test.cc:");
}

TEST_P(ControlFlowTest, UnboundedWhileOnAGradientPathIsAnError) {
  auto g = graph::NewGraph();
  Node x = graph::Parameter(g.get(), "x", shapes::Make(dtypes::Float64));
  Node y = graph::While([](const std::vector<Node>& c) { return graph::LessThan(c[0], graph::ScalarLike(c[0], 10)); },
                        [](const std::vector<Node>& c) { return Vec({c[0] * 2.0}); }, {x})[0];
  KILN_EXPECT_ERROR(graph::Gradient(y, {x}), "has no max_trip_count; reverse-mode differentiation of a loop needs");
}

// 10,000 iterations over a 256 KiB carry: each iteration's buffers are
// released (or updated in place), so memory stays flat.
TEST_P(ControlFlowTest, MemoryStaysFlatOver10000Iterations) {
  if (testing::kUnderSanitizer) GTEST_SKIP() << "resident memory is not meaningful under a sanitizer";
  constexpr int64_t kN = 65536;
  auto exec = graph::Compile(Backend(), [](graph::Graph* g) {
    Node x = graph::Parameter(g, "x", shapes::Make(dtypes::Float32, kN));
    return graph::ForLoop(10000, [](Node, const std::vector<Node>& c) { return Vec({c[0] * 0.5f + 1.0f}); }, {x})[0];
  });
  const Tensor x = tensors::FromFlat(shapes::Make(dtypes::Float32, kN), std::vector<float>(kN, 5.0f));
  (void)exec.Call(x);
  const int64_t before = testing::ResidentBytes();
  const Tensor y = exec.Call(x);
  const int64_t grown = testing::ResidentBytes() - before;
  EXPECT_EQ(y.Flat<float>()[kN - 1], 2.0f);  // the fixed point of x / 2 + 1
  EXPECT_LT(grown, int64_t{16} << 20) << "resident memory grew by " << (grown >> 20) << " MiB";
}

TEST(ControlFlowIr, TheDumpShowsSubfunctionsAndPassesRunInsideThem) {
  auto g = graph::NewGraph("main");
  Node x = graph::Parameter(g.get(), "x", shapes::Make(dtypes::Float32, 2));
  Node y = graph::ForLoop(3, [&](Node, const std::vector<Node>& c) { return Vec({c[0] * x + 0.0f}); }, {x})[0];
  auto fn = g->Finish({y}, graph::Loc::current());
  const std::string text = fn->ToString();
  EXPECT_NE(text.find("While("), std::string::npos) << text;
  EXPECT_NE(text.find("GetTupleElement("), std::string::npos) << text;
  EXPECT_NE(text.find("subfunction #0 of main"), std::string::npos) << text;
  EXPECT_NE(text.find("subfunction #1 of main"), std::string::npos) << text;
  EXPECT_NE(text.find("max_trip_count=3"), std::string::npos) << text;
  EXPECT_NO_THROW(fn->Validate());
}

// Error messages name the op, both shapes and the caller's line.
using ControlFlowErrors = testing::GraphErrorTest;

TEST_F(ControlFlowErrors, ACarryThatChangesShapeOrDTypeIsRejected) {
  Node x = Param(shapes::Make(dtypes::Float32, 2));
  KILN_EXPECT_ERROR(graph::While([](const std::vector<Node>& c) { return graph::LessThan(graph::ReduceSum(c[0], {}), graph::ScalarLike(c[0], 1)); },
                                 [](const std::vector<Node>& c) { return Vec({graph::Concatenate({c[0], c[0]}, 0)}); }, {x}),
                    "carried value #0 is Float32[2] on entry, but the body returns Float32[4]");
  KILN_EXPECT_ERROR(graph::While([](const std::vector<Node>& c) { return graph::LessThan(graph::ReduceSum(c[0], {}), graph::ScalarLike(c[0], 1)); },
                                 [](const std::vector<Node>& c) { return Vec({graph::ConvertDType(c[0], dtypes::Float64)}); }, {x}),
                    "control_flow_test.cc:");
  KILN_EXPECT_ERROR(graph::While([](const std::vector<Node>& c) { return graph::LessThan(graph::ReduceSum(c[0], {}), graph::ScalarLike(c[0], 1)); },
                                 [](const std::vector<Node>& c) { return Vec({c[0], c[0]}); }, {x}),
                    "the body returned 2 values for a carry of 1");
  KILN_EXPECT_ERROR(graph::While([](const std::vector<Node>& c) { return c[0]; },
                                 [](const std::vector<Node>& c) { return c; }, {x}),
                    "the condition must return one Bool scalar, got Float32[2]");
  KILN_EXPECT_ERROR(graph::ForLoop(2, [](Node, const std::vector<Node>& c) { return Vec({graph::Reshape(c[0], {1, 2})}); }, {x}),
                    "ForLoop: carried value #0 is Float32[2] on entry, but the body returns Float32[1, 2]");
  KILN_EXPECT_ERROR(graph::ForLoop(-1, [](Node, const std::vector<Node>& c) { return c; }, {x}),
                    "trip_count must be >= 0, got -1");
  KILN_EXPECT_ERROR(graph::While([](const std::vector<Node>& c) { return graph::LessThan(graph::ReduceSum(c[0], {}), graph::ScalarLike(c[0], 1)); },
                                 [](const std::vector<Node>& c) { return c; }, {x}, graph::WhileOptions{.max_trip_count = -2}),
                    "max_trip_count must be -1 (unbounded) or >= 0, got -2");
  KILN_EXPECT_ERROR(graph::Checkpoint([](const std::vector<Node>& v) { return v; }, {}), "Checkpoint: needs at least one input");
}

TEST_F(ControlFlowErrors, BranchesMustAgree) {
  Node x = Param(shapes::Make(dtypes::Float32, 2));
  Node pred = Param(shapes::Make(dtypes::Bool));
  KILN_EXPECT_ERROR(graph::If(pred, [&](const std::vector<Node>&) { return Vec({x}); },
                              [&](const std::vector<Node>&) { return Vec({graph::Concatenate({x, x}, 0)}); }),
                    "If: value #0 is Float32[2] in the then branch but Float32[4] in the else branch");
  KILN_EXPECT_ERROR(graph::If(pred, [&](const std::vector<Node>&) { return Vec({x}); },
                              [&](const std::vector<Node>&) { return Vec({x, x}); }),
                    "the then branch returns 1 values but the else branch returns 2");
  KILN_EXPECT_ERROR(graph::If(x, [&](const std::vector<Node>&) { return Vec({x}); },
                              [&](const std::vector<Node>&) { return Vec({x}); }),
                    "the predicate must be a Bool scalar, got Float32[2]");
  KILN_EXPECT_ERROR(graph::If(pred, [&](const std::vector<Node>&) { return std::vector<Node>{}; },
                              [&](const std::vector<Node>&) { return Vec({x}); }),
                    "the if_then function returned no values");
}

TEST_F(ControlFlowErrors, ABodysValuesCannotEscapeIt) {
  Node x = Param(shapes::Make(dtypes::Float32, 2));
  Node leaked;
  graph::ForLoop(2, [&](Node, const std::vector<Node>& c) {
    leaked = c[0] * 2.0f;
    return c;
  }, {x});
  KILN_EXPECT_ERROR(x + leaked, "was traced as the body of a control-flow op; its values cannot be used outside it");
  KILN_EXPECT_ERROR(graph::Exp(leaked), "its values cannot be used outside it");
}

TEST_F(ControlFlowErrors, GradientsInABodyAreWithRespectToItsOwnValues) {
  Node w = Param(shapes::Make(dtypes::Float32, 2));
  KILN_EXPECT_ERROR(graph::ForLoop(1, [&](Node, const std::vector<Node>& c) {
    Node loss = graph::ReduceSum(graph::Exp(w) * c[0], {});
    return Vec({c[0] - graph::Gradient(loss, {w})[0]});
  }, {w}), "differentiate with respect to values of the body");
  // With respect to the carry it works.
  EXPECT_NO_THROW(graph::ForLoop(1, [&](Node, const std::vector<Node>& c) {
    Node loss = graph::ReduceSum(graph::Exp(w) * c[0] * c[0], {});
    return Vec({c[0] - graph::Gradient(loss, {c[0]})[0]});
  }, {w}));
}

TEST_F(ControlFlowErrors, ScanChecksItsInputs) {
  Node a = Param(shapes::Make(dtypes::Float32, 3, 2));
  Node b = Param(shapes::Make(dtypes::Float32, 4));
  Node s = Param(shapes::Make(dtypes::Float32));
  auto fn = [](const std::vector<Node>& c, const std::vector<Node>&) { return c; };
  KILN_EXPECT_ERROR(graph::Scan(fn, {s}, {a, b}), "scanned input #1 Float32[4] has leading dimension 4, expected 3");
  KILN_EXPECT_ERROR(graph::Scan(fn, {s}, {s}), "scanned input #0 is a scalar Float32; it needs a leading axis");
  KILN_EXPECT_ERROR(graph::Scan(fn, {s}, {}), "needs scanned inputs or an explicit length");
  KILN_EXPECT_ERROR(graph::Scan([](const std::vector<Node>&, const std::vector<Node>&) { return std::vector<Node>{}; },
                                {s}, {a}),
                    "Scan: the function returned 0 values for a carry of 1");
}

}  // namespace
}  // namespace kiln
