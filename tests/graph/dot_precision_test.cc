// Copyright 2026 The Kiln Authors.
// The precision of Float32 dots (ir::DotPrecision): where a traced dot takes
// it from (the process default, DotPrecisionScope), that its gradient's dots
// keep it, that the IR dump and the CPU passes carry it, and that a Float32
// dot at BFloat16 precision computes the product of the rounded operands.
#include <fstream>
#include <string>

#include "kiln/kiln.h"
#include "src/backends/cpu/passes.h"
#include "tests/testing/testing.h"

namespace kiln {
namespace {

using graph::Node;
using ir::DotPrecision;

// The precision of every DotGeneral of g, in instruction order.
std::vector<DotPrecision> DotPrecisions(graph::Graph* g) {
  std::vector<DotPrecision> out;
  for (const ir::Instruction& instr : g->Function().instructions) {
    if (instr.op == ir::OpType::kDotGeneral) out.push_back(ir::Attr<ir::DotGeneralAttrs>(instr).precision);
  }
  return out;
}

TEST(DotPrecision, ScopesNestAndOverrideTheProcessDefault) {
  EXPECT_EQ(graph::CurrentDotPrecision(), DotPrecision::kHighest);
  {
    graph::DotPrecisionScope outer(DotPrecision::kBFloat16);
    EXPECT_EQ(graph::CurrentDotPrecision(), DotPrecision::kBFloat16);
    {
      graph::DotPrecisionScope inner(DotPrecision::kHighest);
      EXPECT_EQ(graph::CurrentDotPrecision(), DotPrecision::kHighest);
    }
    EXPECT_EQ(graph::CurrentDotPrecision(), DotPrecision::kBFloat16);
  }
  EXPECT_EQ(graph::CurrentDotPrecision(), DotPrecision::kHighest);
  graph::SetDefaultDotPrecision(DotPrecision::kBFloat16);
  EXPECT_EQ(graph::CurrentDotPrecision(), DotPrecision::kBFloat16);
  {
    graph::DotPrecisionScope scope(DotPrecision::kHighest);  // a scope wins over the default
    EXPECT_EQ(graph::CurrentDotPrecision(), DotPrecision::kHighest);
  }
  graph::SetDefaultDotPrecision(DotPrecision::kHighest);
  EXPECT_EQ(graph::CurrentDotPrecision(), DotPrecision::kHighest);
}

TEST(DotPrecision, OnlyFloat32DotsTakeIt) {
  auto g = graph::NewGraph("dots");
  graph::DotPrecisionScope scope(DotPrecision::kBFloat16);
  Node f32 = graph::Parameter(g.get(), "a", shapes::Make(dtypes::Float32, 2, 3));
  Node f64 = graph::Parameter(g.get(), "b", shapes::Make(dtypes::Float64, 2, 3));
  Node bf16 = graph::Parameter(g.get(), "c", shapes::Make(dtypes::BFloat16, 2, 3));
  graph::DotGeneral(f32, {1}, {}, f32, {1}, {});
  graph::DotGeneral(f64, {1}, {}, f64, {1}, {});
  graph::DotGeneral(bf16, {1}, {}, bf16, {1}, {});
  EXPECT_EQ(DotPrecisions(g.get()),
            (std::vector<DotPrecision>{DotPrecision::kBFloat16, DotPrecision::kHighest, DotPrecision::kHighest}));
  const std::string text = g->ToString();
  EXPECT_NE(text.find("rhs_contracting=[1], precision=bfloat16) : Float32[2, 2]"), std::string::npos) << text;
  EXPECT_NE(text.find("rhs_contracting=[1]) : Float64[2, 2]"), std::string::npos) << text;
}

TEST(DotPrecision, GradientDotsKeepTheForwardDotsPrecision) {
  for (DotPrecision forward : {DotPrecision::kBFloat16, DotPrecision::kHighest}) {
    auto g = graph::NewGraph("grad");
    Node a = graph::Parameter(g.get(), "a", shapes::Make(dtypes::Float32, 4, 3));
    Node b = graph::Parameter(g.get(), "b", shapes::Make(dtypes::Float32, 3, 5));
    Node y;
    {
      graph::DotPrecisionScope scope(forward);
      y = graph::ReduceSum(graph::MatMul(a, b), {0, 1});
    }
    // The gradient is taken under the other precision: the dots follow the forward dot.
    graph::DotPrecisionScope other(forward == DotPrecision::kBFloat16 ? DotPrecision::kHighest
                                                                       : DotPrecision::kBFloat16);
    graph::Gradient(y, {a, b});
    const std::vector<DotPrecision> precisions = DotPrecisions(g.get());
    ASSERT_EQ(precisions.size(), 3u) << g->ToString();  // the dot and one per operand
    for (DotPrecision p : precisions) EXPECT_EQ(p, forward) << g->ToString();
  }
}

TEST(DotPrecision, NamesRoundTripAndAnUnknownNameIsAnError) {
  for (DotPrecision p : {DotPrecision::kHighest, DotPrecision::kBFloat16}) {
    EXPECT_EQ(ir::ParseDotPrecision(ir::DotPrecisionName(p)), p);
  }
  KILN_EXPECT_ERROR(ir::ParseDotPrecision("medium"),
                    "unknown dot precision \"medium\": expected \"highest\" or \"bfloat16\"");
}

TEST(DotPrecision, TheTransposeFoldingPassKeepsIt) {
  auto g = graph::NewGraph("fold");
  graph::DotPrecisionScope scope(DotPrecision::kBFloat16);
  Node a = graph::Parameter(g.get(), "a", shapes::Make(dtypes::Float32, 3, 5));
  Node b = graph::Parameter(g.get(), "b", shapes::Make(dtypes::Float32, 5, 4));
  Node t = graph::Transpose(graph::MatMul(a, b), {1, 0});  // becomes DotGeneral(b, a)
  auto fn = backends::cpu::OptimizeFunction(g->Finish({t}, graph::Loc::current()));
  const ir::Instruction& out = fn->instructions[static_cast<size_t>(fn->outputs[0])];
  ASSERT_EQ(out.op, ir::OpType::kDotGeneral) << fn->ToString();
  EXPECT_EQ(ir::Attr<ir::DotGeneralAttrs>(out).precision, DotPrecision::kBFloat16);
}

// Whether this CPU has AVX512-BF16, where the CPU backend takes the
// precision (it computes in Float32 elsewhere, as the precision allows).
bool CpuHasBf16() {
  std::ifstream cpuinfo("/proc/cpuinfo");
  std::string line;
  while (std::getline(cpuinfo, line)) {
    if (line.rfind("flags", 0) == 0) return line.find(" avx512_bf16") != std::string::npos;
  }
  return false;
}

// x with each element rounded to BFloat16 and back.
std::vector<double> RoundedToBf16(const std::vector<double>& x) {
  std::vector<double> out;
  for (double v : x) out.push_back(static_cast<double>(static_cast<float>(bfloat16(static_cast<float>(v)))));
  return out;
}

// [m, k] x [k, n] in double; the lhs is given transposed ([k, m]) if lhs_t.
std::vector<double> Matmul(const std::vector<double>& a, const std::vector<double>& b, int64_t m, int64_t k,
                           int64_t n, bool lhs_t) {
  std::vector<double> out(static_cast<size_t>(m * n), 0.0);
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = 0; j < n; ++j) {
      double sum = 0;
      for (int64_t p = 0; p < k; ++p) sum += a[static_cast<size_t>(lhs_t ? p * m + i : i * k + p)] * b[p * n + j];
      out[static_cast<size_t>(i * n + j)] = sum;
    }
  }
  return out;
}

double MaxAbsDiff(const std::vector<double>& a, const std::vector<double>& b) {
  double d = 0;
  for (size_t i = 0; i < a.size(); ++i) d = std::max(d, std::abs(a[i] - b[i]));
  return d;
}

// The CPU backend at BFloat16 precision: the exact product of the rounded
// operands (to Float32 summation error) where it takes the precision, the
// exact product where it does not (a transposed lhs, a product of 4 rows,
// a CPU without bf16).
TEST(DotPrecision, CpuComputesTheProductOfTheRoundedOperands) {
  auto backend = backends::NewWithName("cpu");
  testing::Rng rng(5);
  struct Case {
    int64_t m;
    bool lhs_t, rounded;
  };
  const int64_t k = 300, n = 70;
  for (const Case& c : {Case{130, false, CpuHasBf16()}, Case{130, true, false}, Case{4, false, false}}) {
    SCOPED_TRACE(::testing::Message() << c.m << " rows" << (c.lhs_t ? ", transposed lhs" : ""));
    const int64_t m = c.m;
    const shapes::Shape ls = c.lhs_t ? shapes::Make(dtypes::Float32, k, m) : shapes::Make(dtypes::Float32, m, k);
    tensors::Tensor a = testing::Random(ls, rng);
    tensors::Tensor b = testing::Random(shapes::Make(dtypes::Float32, k, n), rng);
    auto exec = graph::Compile(backend, [&](graph::Graph* g) {
      graph::DotPrecisionScope scope(DotPrecision::kBFloat16);
      Node x = graph::Parameter(g, "a", ls);
      Node y = graph::Parameter(g, "b", b.Shape());
      return graph::DotGeneral(x, {c.lhs_t ? 0 : 1}, {}, y, {0}, {});
    });
    const std::vector<double> got = testing::ToDoubles(exec.Call(a, b));
    const std::vector<double> exact = Matmul(testing::ToDoubles(a), testing::ToDoubles(b), m, k, n, c.lhs_t);
    const std::vector<double> rounded =
        Matmul(RoundedToBf16(testing::ToDoubles(a)), RoundedToBf16(testing::ToDoubles(b)), m, k, n, c.lhs_t);
    const double f32_error = 1e-3;  // 300 products of values in [-3, 3], summed in Float32
    const double to_exact = MaxAbsDiff(got, exact), to_rounded = MaxAbsDiff(got, rounded);
    ASSERT_GT(MaxAbsDiff(exact, rounded), 100 * f32_error);  // the two references are told apart
    if (c.rounded) {
      EXPECT_LT(to_rounded, f32_error) << "the bf16 path was not taken (" << to_exact << " from the exact product)";
    } else {
      EXPECT_LT(to_exact, f32_error) << to_rounded << " from the rounded product";
    }
  }
}

}  // namespace
}  // namespace kiln
