// Copyright 2026 The Kiln Authors.
// The precision of Float32 dots (ir::DotPrecision): where a traced dot takes
// it from (the process default, DotPrecisionScope), that its gradient's dots
// keep it, that the IR dump and the CPU passes carry it, and that a Float32
// dot at BFloat16 precision computes the product of the rounded operands on
// the backends that take it (the CPU with AVX512-BF16, CUDA's cuBLASLt).
#include <algorithm>
#include <cstdlib>
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
                    "ir::ParseDotPrecision: unknown dot precision \"medium\": expected \"highest\" or \"bfloat16\"");
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
// precision (it computes in Float32 elsewhere, as the precision allows), and
// oneDNN is not told to use less (DNNL_MAX_CPU_ISA / ONEDNN_MAX_CPU_ISA).
bool CpuHasBf16() {
  if (std::getenv("DNNL_MAX_CPU_ISA") != nullptr || std::getenv("ONEDNN_MAX_CPU_ISA") != nullptr) return false;
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

// A batch of [m, k] x [k, n] in double; the lhs is laid out [k, m] if
// lhs_t, the rhs [n, k] if rhs_t (each matrix of the batch contiguous).
std::vector<double> Matmul(const std::vector<double>& a, const std::vector<double>& b, int64_t batch, int64_t m,
                           int64_t k, int64_t n, bool lhs_t, bool rhs_t) {
  std::vector<double> out(static_cast<size_t>(batch * m * n), 0.0);
  for (int64_t e = 0; e < batch; ++e) {
    const double* x = a.data() + e * m * k;
    const double* y = b.data() + e * k * n;
    for (int64_t i = 0; i < m; ++i) {
      for (int64_t j = 0; j < n; ++j) {
        double sum = 0;
        for (int64_t p = 0; p < k; ++p) sum += x[lhs_t ? p * m + i : i * k + p] * y[rhs_t ? j * k + p : p * n + j];
        out[static_cast<size_t>((e * m + i) * n + j)] = sum;
      }
    }
  }
  return out;
}

double MaxAbsDiff(const std::vector<double>& a, const std::vector<double>& b) {
  double d = 0;
  for (size_t i = 0; i < a.size(); ++i) d = std::max(d, std::abs(a[i] - b[i]));
  return d;
}

// What a Float32 dot computes on each test backend, at the default
// precision and at BFloat16 precision.
enum class Expect { kExact, kRounded, kEither };

class DotPrecisionOnBackends : public ::testing::TestWithParam<std::string> {};

// At the default precision every backend computes the exact product (to
// Float32 summation error). At BFloat16 precision a backend that takes it
// computes the exact product of the operands rounded to BFloat16: the CPU
// where it has AVX512-BF16, in the products it has a bf16 kernel for (not a
// transposed lhs, nor 4 rows); the CUDA emulator always (its cuBLASLt rounds
// the operands of CUBLAS_COMPUTE_32F_FAST_16BF as bf16 tensor cores do); a
// GPU's cuBLASLt as its heuristics choose, so either product is right there.
TEST_P(DotPrecisionOnBackends, BFloat16PrecisionRoundsTheOperandsWhereTaken) {
  const std::string name = GetParam();
  testing::ScopedEnv exact_fp32("KILN_CUDA_TF32", nullptr);  // the default precision is exact FP32 on CUDA
  auto backend = testing::NewTestBackend(name);
  testing::Rng rng(5);
  struct Case {
    int64_t batch, m;
    bool lhs_t, rhs_t, cpu_rounds;
  };
  const int64_t k = 300, n = 70;
  const bool bf16 = CpuHasBf16();
  for (const DotPrecision precision : {DotPrecision::kHighest, DotPrecision::kBFloat16}) {
    for (const Case& c : {Case{1, 130, false, false, bf16}, Case{1, 130, false, true, bf16},
                          Case{3, 100, false, true, bf16}, Case{1, 130, true, false, false},
                          Case{1, 4, false, false, false}}) {
      SCOPED_TRACE(::testing::Message() << ir::DotPrecisionName(precision) << ": " << c.batch << " x " << c.m
                                        << " rows" << (c.lhs_t ? ", transposed lhs" : "")
                                        << (c.rhs_t ? ", transposed rhs" : ""));
      Expect expect = Expect::kEither;
      if (precision == DotPrecision::kHighest) {
        expect = Expect::kExact;
      } else if (name == "cpu") {
        expect = c.cpu_rounds ? Expect::kRounded : Expect::kExact;
      } else if (name == "cuda-emu") {
        expect = Expect::kRounded;
      }
      const int64_t m = c.m;
      std::vector<int64_t> ld = c.lhs_t ? std::vector<int64_t>{k, m} : std::vector<int64_t>{m, k};
      std::vector<int64_t> rd = c.rhs_t ? std::vector<int64_t>{n, k} : std::vector<int64_t>{k, n};
      if (c.batch > 1) {
        ld.insert(ld.begin(), c.batch);
        rd.insert(rd.begin(), c.batch);
      }
      const shapes::Shape ls(dtypes::Float32, ld), rs(dtypes::Float32, rd);
      tensors::Tensor a = testing::Random(ls, rng);
      tensors::Tensor b = testing::Random(rs, rng);
      auto exec = graph::Compile(backend, [&](graph::Graph* g) {
        graph::DotPrecisionScope scope(precision);
        Node x = graph::Parameter(g, "a", ls);
        Node y = graph::Parameter(g, "b", rs);
        const int batch_axes = c.batch > 1 ? 1 : 0;
        std::vector<int> batch = batch_axes ? std::vector<int>{0} : std::vector<int>{};
        return graph::DotGeneral(x, {(c.lhs_t ? 0 : 1) + batch_axes}, batch, y, {(c.rhs_t ? 1 : 0) + batch_axes},
                                 batch);
      });
      const std::vector<double> got = testing::ToDoubles(exec.Call(a, b));
      const std::vector<double> exact =
          Matmul(testing::ToDoubles(a), testing::ToDoubles(b), c.batch, m, k, n, c.lhs_t, c.rhs_t);
      const std::vector<double> rounded = Matmul(RoundedToBf16(testing::ToDoubles(a)),
                                                 RoundedToBf16(testing::ToDoubles(b)), c.batch, m, k, n, c.lhs_t,
                                                 c.rhs_t);
      const double f32_error = 1e-3;  // 300 products of values in [-3, 3], summed in Float32
      const double to_exact = MaxAbsDiff(got, exact), to_rounded = MaxAbsDiff(got, rounded);
      ASSERT_GT(MaxAbsDiff(exact, rounded), 100 * f32_error);  // the two references are told apart
      switch (expect) {
        case Expect::kRounded:
          EXPECT_LT(to_rounded, f32_error) << "the bf16 path was not taken (" << to_exact << " from the exact product)";
          break;
        case Expect::kExact:
          EXPECT_LT(to_exact, f32_error) << to_rounded << " from the rounded product";
          break;
        case Expect::kEither:
          EXPECT_LT(std::min(to_exact, to_rounded), f32_error) << to_exact << " from the exact product, " << to_rounded
                                                               << " from the rounded product";
          break;
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Backends, DotPrecisionOnBackends, ::testing::ValuesIn(testing::BackendNames()),
                         testing::BackendParamName);

}  // namespace
}  // namespace kiln
