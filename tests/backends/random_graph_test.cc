// Copyright 2026 The Kiln Authors.
// Random graphs on every non-CPU backend (CUDA on a GPU; the CUDA emulator
// under KILN_TEST_BACKENDS=cuda-emu) against the CPU backend: DAGs mixing
// elementwise ops (which the CUDA backend fuses into kernels), reductions
// broadcast back, layout ops (transposes, slices, pads, concatenations,
// reversals), products, cumulative sums and softmax, with intermediate values
// returned too, so every fusion boundary the generator happens to draw is
// checked (x W + b included: the bias epilogue on CUDA). Some graphs are called twice on the same arguments (the second
// call replays a recorded CUDA graph where the policy records).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "kiln/graph/cumulative.h"
#include "tests/testing/testing.h"

namespace kiln {
namespace {

using graph::Node;
using tensors::Tensor;

std::vector<std::string> OtherBackends() {
  std::vector<std::string> names;
  for (const std::string& n : testing::BackendNames()) {
    if (n != "cpu") names.push_back(n);
  }
  return names;
}

// A random graph over three [rows, cols] parameters and a [cols, cols]
// weight; `choices` drives every decision, so both backends trace the same
// graph. Returns its outputs: a few intermediates and the last value.
std::vector<Node> RandomGraph(const std::vector<Node>& p, int64_t rows, int64_t cols, int num_ops,
                              const std::vector<uint64_t>& choices) {
  std::vector<Node> values(p.begin(), p.begin() + 3);
  std::vector<Node> outputs;
  size_t c = 0;
  const auto next = [&]() { return choices[c++ % choices.size()]; };
  const auto pick = [&]() { return values[next() % values.size()]; };
  const Node w = p[3];
  for (int k = 0; k < num_ops; ++k) {
    Node a = pick(), b = pick();
    Node v;
    switch (next() % 21) {
      case 0: v = a + b; break;
      case 1: v = a * b * 0.5; break;
      case 2: v = graph::Max(a, b) - graph::Min(a, b * 0.5); break;
      case 3: v = graph::Tanh(a); break;
      case 4: v = graph::Where(graph::LessThan(a, b), a, b * 0.25); break;
      case 5: v = graph::Logistic(a) * b; break;
      case 6: v = graph::Exp(graph::Neg(graph::Abs(a))); break;
      case 7: v = graph::Sqrt(graph::Abs(a)) / (b * b + 1.0); break;
      case 8: v = graph::Sin(a) + graph::Log1p(graph::Abs(b)); break;
      // Reductions broadcast back (rows, then columns).
      case 9: v = a - graph::BroadcastInDim(graph::ReduceSum(b, 1), {rows, cols}, {0}) / static_cast<double>(cols); break;
      case 10: v = a * graph::BroadcastInDim(graph::Tanh(graph::ReduceMax(b, 0)), {rows, cols}, {1}); break;
      // Layout: a transposed value used transposed back, a reversal, a
      // slice padded back to the shape, halves of two values side by side.
      case 11: v = graph::Transpose(graph::Transpose(a, {1, 0}) * 2.0 + 1.0, {1, 0}); break;
      case 12: v = graph::Reverse(a, {static_cast<int>(next() % 2)}) + b; break;
      case 13: {
        const int64_t cut = std::min<int64_t>(1, rows - 1);
        Node s = graph::Slice(a, {cut, 0}, {rows, cols});
        v = graph::Pad(s, graph::ScalarLike(s, 0.5), {0, 0}, {cut, 0});
        break;
      }
      case 14: {
        const int64_t half = cols / 2;
        if (half == 0) {
          v = a - b;
          break;
        }
        v = graph::Concatenate({graph::Slice(a, {0, 0}, {rows, half}), graph::Slice(b, {0, half}, {rows, cols})}, 1);
        break;
      }
      // A product (cuBLASLt on CUDA), a scan, a softmax.
      case 15: v = graph::MatMul(a, w); break;
      case 16: v = graph::CumSum(a, static_cast<int>(next() % 2)) * (1.0 / static_cast<double>(rows + cols)); break;
      case 17: v = graph::Softmax(a, static_cast<int>(next() % 2)) * b; break;
      case 18: v = graph::ConvertDType(graph::ConvertDType(a, dtypes::BFloat16), a.Shape().DType()) - b; break;
      case 19: {  // x W + b (cuBLASLt's bias epilogue on CUDA), b computed
        Node bias = graph::ReduceSum(b, 0) * (1.0 / static_cast<double>(rows));
        v = graph::MatMul(a, w) + graph::BroadcastInDim(bias, {rows, cols}, {1});
        break;
      }
      default:
        outputs.push_back(a);  // an intermediate returned
        v = b + 1.0;
        break;
    }
    values.push_back(v);
  }
  outputs.push_back(values.back());
  return outputs;
}

// Float32 and Float64 graphs of 5-40 ops on shapes from [1, 1] to [24, 70]:
// each output as on the CPU, within a tolerance for the different orders of
// summation and the different math libraries, relative to the output's size.
TEST(RandomGraphTest, OtherBackendsMatchTheCpu) {
  const std::vector<std::string> others = OtherBackends();
  if (others.empty()) GTEST_SKIP() << "only the CPU backend is available (KILN_TEST_BACKENDS=cuda-emu runs the emulator)";
  auto cpu = backends::NewWithName("cpu");
  for (const std::string& name : others) {
    SCOPED_TRACE(name);
    auto other = testing::NewTestBackend(name);
    testing::Rng rng(21);
    int outputs_checked = 0;
    for (int trial = 0; trial < 30; ++trial) {
      const dtypes::DType dtype = trial % 3 == 2 ? dtypes::Float64 : dtypes::Float32;
      const int64_t rows = 1 + static_cast<int64_t>(rng() % 24), cols = 1 + static_cast<int64_t>(rng() % 70);
      const int num_ops = 5 + static_cast<int>(rng() % 36);
      std::vector<uint64_t> choices(4 * static_cast<size_t>(num_ops));
      for (uint64_t& x : choices) x = rng();
      std::vector<Tensor> args;
      for (int i = 0; i < 3; ++i) args.push_back(testing::Random(shapes::Make(dtype, rows, cols), rng, -2, 2));
      args.push_back(testing::Random(shapes::Make(dtype, cols, cols), rng, -1.0 / std::sqrt(cols), 1.0 / std::sqrt(cols)));
      auto fn = [&](const std::vector<Node>& p) { return RandomGraph(p, rows, cols, num_ops, choices); };
      SCOPED_TRACE("trial " + std::to_string(trial) + ": " + std::string(dtypes::Name(dtype)) + "[" +
                   std::to_string(rows) + ", " + std::to_string(cols) + "], " + std::to_string(num_ops) + " ops");
      const std::vector<Tensor> want = testing::Run(cpu, fn, args);
      auto exec = graph::NewExec(other, fn);
      for (int call = 0; call < (trial % 4 == 0 ? 2 : 1); ++call) {
        const std::vector<Tensor> got = exec.CallVector(args);
        ASSERT_EQ(got.size(), want.size());
        for (size_t o = 0; o < want.size(); ++o) {
          double scale = 0;
          for (double x : testing::ToDoubles(want[o])) scale = std::max(scale, std::isfinite(x) ? std::abs(x) : 0.0);
          const double tol = dtype == dtypes::Float64 ? 1e-9 : 2e-4;
          EXPECT_TRUE(testing::AllClose(got[o], want[o], tol, tol * (1 + scale))) << "output " << o << ", call " << call;
          ++outputs_checked;
        }
      }
    }
    EXPECT_GT(outputs_checked, 60);
  }
}

}  // namespace
}  // namespace kiln
