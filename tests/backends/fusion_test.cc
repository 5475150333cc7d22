// Copyright 2026 The Kiln Authors.
// Tests of the CPU backend's fusion of elementwise chains (src/backends/cpu/
// fusion.h): the plan (which instructions fuse, what stays materialized, what
// is never computed) and the fused results, against references computed in
// double and against the same function compiled with fusion off
// (KILN_CPU_FUSION=0), which runs the per-op kernels. Fused groups run the
// per-op tile loops over tiles whose bounds are multiples of the vector width,
// so fused and unfused results must be bit-identical.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "kiln/graph/cumulative.h"
#include "src/backends/cpu/fusion.h"
#include "tests/testing/testing.h"

namespace kiln {
namespace {

using backends::cpu::FusionGroup;
using backends::cpu::FusionPlan;
using backends::cpu::PlanFusion;
using dtypes::DType;
using graph::Node;
using tensors::Tensor;

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();


using Builder = std::function<std::vector<Node>(graph::Graph* g, const std::vector<Node>& params)>;

// The function `build` traces over one parameter per shape.
std::shared_ptr<const ir::Function> Trace(const std::vector<shapes::Shape>& shapes, const Builder& build) {
  auto g = graph::NewGraph("fusion_test");
  std::vector<Node> params;
  for (size_t i = 0; i < shapes.size(); ++i) {
    std::string name = "p";  // (not "p" + ...: GCC 12 warns falsely about that)
    name += std::to_string(i);
    params.push_back(graph::Parameter(g.get(), name, shapes[i]));
  }
  return g->Finish(build(g.get(), params), graph::Loc::current());
}

std::shared_ptr<backends::Backend> Cpu() {
  static const auto backend = backends::NewWithName("cpu");
  return backend;
}

// Compiles `fn` on the CPU backend with fusion on or off (graph passes off,
// so the executor sees `fn` as traced).
std::unique_ptr<backends::Executable> Compile(const std::shared_ptr<const ir::Function>& fn, bool fuse) {
  testing::ScopedEnv fusion("KILN_CPU_FUSION", fuse ? "1" : "0");
  testing::ScopedEnv passes("KILN_CPU_OPTIMIZE", "0");
  return Cpu()->Compile(fn);
}

std::vector<Tensor> Execute(backends::Executable& exe, const std::vector<Tensor>& args) {
  std::vector<backends::BufferPtr> buffers;
  for (const Tensor& t : args) buffers.push_back(t.BufferFor(*Cpu()));
  std::vector<Tensor> outs;
  for (auto& b : exe.Execute(std::move(buffers), {})) outs.push_back(Tensor::FromBuffer(b));
  return outs;
}

// Runs `fn` with fusion on and off; expects bit-identical outputs and
// returns the fused ones.
std::vector<Tensor> RunBoth(const std::shared_ptr<const ir::Function>& fn, const std::vector<Tensor>& args) {
  const std::vector<Tensor> fused = Execute(*Compile(fn, true), args);
  const std::vector<Tensor> unfused = Execute(*Compile(fn, false), args);
  EXPECT_EQ(fused.size(), unfused.size());
  for (size_t i = 0; i < fused.size() && i < unfused.size(); ++i) {
    EXPECT_EQ(fused[i].Shape(), unfused[i].Shape()) << "output " << i;
    const auto bytes = static_cast<size_t>(fused[i].Shape().ByteSize());
    EXPECT_TRUE(bytes == 0 || std::memcmp(fused[i].HostData(), unfused[i].HostData(), bytes) == 0)
        << "output " << i << " differs between fused and unfused execution";
  }
  return fused;
}

// Random values of `shape` in [-3, 3] with NaN, +Inf and -Inf planted (floats).
Tensor RandomWithSpecials(const shapes::Shape& shape, testing::Rng& rng) {
  Tensor t = testing::Random(shape, rng);
  if (!dtypes::IsFloat(shape.DType()) || shape.Size() < 4) return t;
  std::vector<double> v = testing::ToDoubles(t);
  v[0] = kNaN;
  v[v.size() / 3] = kInf;
  v[v.size() / 2] = -kInf;
  v.back() = kNaN;
  return testing::FromDoubles(shape, v);
}

bool Scheduled(const FusionPlan& plan, int id) {
  for (const auto& e : plan.schedule) {
    if (!e.is_group && e.index == id) return true;
  }
  return false;
}

double Sigmoid(double x) { return 1 / (1 + std::exp(-x)); }

// Rounds a double to `dtype`, as each op stores its result.
double RoundTo(DType dtype, double v) {
  return testing::ToDoubles(testing::FromDoubles(shapes::Make(dtype), {v}))[0];
}

// ------------------------------------------------------------------ Plans.

Builder TargetChain() {
  return [](graph::Graph*, const std::vector<Node>& p) {
    return std::vector<Node>{graph::Tanh(p[0] * 2.0 + 1.0) * graph::Logistic(p[0])};
  };
}

TEST(FusionPlanTest, TheTargetChainIsOneGroupWithNoMaterializedBroadcast) {
  const auto fn = Trace({shapes::Make(dtypes::Float32, 1000)}, TargetChain());
  const FusionPlan plan = PlanFusion(*fn);
  ASSERT_EQ(plan.groups.size(), 1u) << fn->ToString();
  const auto& group = plan.groups[0];
  EXPECT_EQ(group.members.size(), 5u);  // Mul, Add, Tanh, Logistic, Mul
  EXPECT_EQ(group.size, 1000);
  EXPECT_EQ(group.outputs, fn->outputs);
  // The group reads x and the two scalar constants, not their broadcasts.
  for (int v : group.inputs) {
    const auto op = fn->instructions[static_cast<size_t>(v)].op;
    EXPECT_TRUE(op == ir::OpType::kParameter || op == ir::OpType::kConstant) << ir::OpName(op);
  }
  for (size_t id = 0; id < fn->instructions.size(); ++id) {
    if (fn->instructions[id].op == ir::OpType::kBroadcastInDim) {
      EXPECT_FALSE(Scheduled(plan, static_cast<int>(id))) << "broadcast %" << id << " is materialized";
    }
  }
  // Off: no groups, every instruction but the parameter scheduled.
  const FusionPlan off = PlanFusion(*fn, false);
  EXPECT_TRUE(off.groups.empty());
  EXPECT_EQ(off.schedule.size(), fn->instructions.size() - 1);
}

TEST(FusionPlanTest, EnvironmentVariableTurnsFusionOff) {
  {
    testing::ScopedEnv env("KILN_CPU_FUSION", "0");
    EXPECT_FALSE(backends::cpu::FusionEnabled());
  }
  testing::ScopedEnv env("KILN_CPU_FUSION", "1");
  EXPECT_TRUE(backends::cpu::FusionEnabled());
}

// A broadcast that belongs to a row group is read from memory by an
// elementwise group, not re-evaluated from its operand: that operand (the
// row reduction) may live only in the row group's tiles. Before the fix the
// elementwise group read the never-written reduction and crashed (found by
// CumLogSumExp: m + log(cumsum(exp(x - m)))).
TEST(FusionPlanTest, RowGroupBroadcastsAreNotInlinedElsewhere) {
  const auto fn = Trace({shapes::Make(dtypes::Float32, 3, 5)}, [](graph::Graph*, const std::vector<Node>& p) {
    Node m = graph::ReduceMax(p[0], std::vector<int>{1});
    Node mb = graph::BroadcastInDim(m, {3, 5}, {0});
    return std::vector<Node>{graph::CumSum(graph::Exp(p[0] - mb), 1) + mb};
  });
  const FusionPlan plan = PlanFusion(*fn);
  ASSERT_GE(plan.groups.size(), 1u) << fn->ToString();
  const FusionGroup& rows = plan.groups[0];
  ASSERT_GT(rows.row_len, 0);
  const int mb = rows.members[1];
  ASSERT_EQ(fn->instructions[static_cast<size_t>(mb)].op, ir::OpType::kBroadcastInDim);
  EXPECT_NE(std::find(rows.outputs.begin(), rows.outputs.end(), mb), rows.outputs.end());  // written for the Add
  for (size_t g = 1; g < plan.groups.size(); ++g) {
    EXPECT_TRUE(plan.groups[g].inlined_broadcasts.empty()) << "group " << g << " re-evaluates the row group's broadcast";
  }
  testing::Rng rng(9);
  const Tensor x = testing::Random(shapes::Make(dtypes::Float32, 3, 5), rng);
  const std::vector<Tensor> out = RunBoth(fn, {x});
  const std::vector<double> xs = testing::ToDoubles(x), got = testing::ToDoubles(out[0]);
  for (int r = 0; r < 3; ++r) {
    double m = -kInf, sum = 0;
    for (int c = 0; c < 5; ++c) m = std::max(m, xs[static_cast<size_t>(r * 5 + c)]);
    for (int c = 0; c < 5; ++c) {
      sum += std::exp(xs[static_cast<size_t>(r * 5 + c)] - m);
      EXPECT_NEAR(got[static_cast<size_t>(r * 5 + c)], sum + m, 1e-5 * (sum + std::abs(m))) << r << "," << c;
    }
  }
}

TEST(FusionPlanTest, ValuesUsedOutsideTheGroupAreItsOutputs) {
  // a = x * y feeds the group and a ReduceSum; b = a + 1 is returned; the
  // last Mul is returned too.
  const auto fn = Trace({shapes::Make(dtypes::Float32, 50), shapes::Make(dtypes::Float32, 50)},
                        [](graph::Graph*, const std::vector<Node>& p) {
                          Node a = p[0] * p[1];
                          Node b = a + 1.0;
                          Node c = graph::Exp(b) * a;
                          return std::vector<Node>{c, graph::ReduceSum(a, 0), b};
                        });
  const FusionPlan plan = PlanFusion(*fn);
  ASSERT_EQ(plan.groups.size(), 1u) << fn->ToString();
  const auto& outs = plan.groups[0].outputs;
  EXPECT_EQ(outs.size(), 3u);  // a (ReduceSum reads it), b and c (returned)
  EXPECT_EQ(plan.groups[0].members.size(), 4u);
}

TEST(FusionPlanTest, GroupsStayConvex) {
  // y = x + 1; s = sum(y); z = y * s: z cannot join y's group, since the
  // ReduceSum between them needs all of y first.
  const auto fn = Trace({shapes::Make(dtypes::Float32, 64)}, [](graph::Graph*, const std::vector<Node>& p) {
    Node y = graph::Exp(p[0] + 1.0);
    Node s = graph::ReduceSum(y, 0);
    return std::vector<Node>{graph::Tanh(y * s)};
  });
  const FusionPlan plan = PlanFusion(*fn);
  ASSERT_EQ(plan.groups.size(), 2u) << fn->ToString();
  for (const auto& g : plan.groups) {
    for (int m : g.members) {
      for (int o : fn->instructions[static_cast<size_t>(m)].operands) {
        EXPECT_NE(fn->instructions[static_cast<size_t>(o)].op, ir::OpType::kReduceSum) << "member %" << m;
      }
    }
  }
  // The first group's Exp is materialized for the ReduceSum and the second group.
  EXPECT_EQ(plan.groups[0].outputs.size(), 1u);
}

TEST(FusionPlanTest, LoneOpsStayUnfusedAndDeadCodeIsSkipped) {
  const auto fn = Trace({shapes::Make(dtypes::Float32, 8), shapes::Make(dtypes::Float32, 8)},
                        [](graph::Graph*, const std::vector<Node>& p) {
                          Node dead = graph::Exp(p[0]) * p[1];
                          (void)dead;
                          return std::vector<Node>{graph::ReduceSum(p[0] + p[1], 0)};
                        });
  const FusionPlan plan = PlanFusion(*fn);
  EXPECT_TRUE(plan.groups.empty()) << fn->ToString();
  EXPECT_EQ(plan.schedule.size(), 2u);  // the Add and the ReduceSum
}

// ------------------------------------------------------------ Float chains.

TEST(FusionTest, TargetChainMatchesDoubleReferenceInEveryFloatDType) {
  testing::Rng rng(1);
  for (DType dtype : {dtypes::Float32, dtypes::Float64, dtypes::Float16, dtypes::BFloat16}) {
    for (const shapes::Shape& shape :
         {shapes::Make(dtype), shapes::Make(dtype, 0), shapes::Make(dtype, 7), shapes::Make(dtype, 2049),
          shapes::Make(dtype, 3, 1000, 11), shapes::Make(dtype, 70001)}) {
      SCOPED_TRACE(shape.ToString());
      const Tensor x = RandomWithSpecials(shape, rng);
      const Tensor got = RunBoth(Trace({shape}, TargetChain()), {x})[0];
      std::vector<double> want;
      for (double v : testing::ToDoubles(x)) {
        // Each op rounds to the dtype, as the kernels store every result.
        const double t = RoundTo(dtype, std::tanh(RoundTo(dtype, RoundTo(dtype, v * 2) + 1)));
        want.push_back(t * RoundTo(dtype, Sigmoid(v)));
      }
      EXPECT_TRUE(testing::AllClose(got, shape, want, 4 * testing::Tolerance(dtype), 1e-6));
    }
  }
}

// Outputs of 32 MiB or more are written with streaming stores, fused or
// not (and the fused and per-op results agree bit for bit): an odd length,
// so the last chunk and tile are partial.
TEST(FusionTest, OutputsBeyondTheCachesAreStreamedExactly) {
  testing::Rng rng(3);
  const shapes::Shape shape = shapes::Make(dtypes::Float32, (int64_t{32} << 20) / 4 + 37);
  const Tensor x = testing::Random(shape, rng, -4, 4);
  const Tensor got = RunBoth(Trace({shape}, TargetChain()), {x})[0];
  const std::vector<double> in = testing::ToDoubles(x), out = testing::ToDoubles(got);
  int bad = 0;
  for (size_t i = 0; i < in.size(); ++i) {
    const double want = std::tanh(in[i] * 2 + 1) * Sigmoid(in[i]);
    if (!(std::abs(out[i] - want) <= 1e-6 + 4 * testing::Tolerance(dtypes::Float32) * std::abs(want)) && bad++ < 5) {
      ADD_FAILURE() << "element " << i << " of " << in.size() << ": got " << out[i] << ", want " << want;
    }
  }
  EXPECT_EQ(bad, 0);
}

// ------------------------------------------------------------ Row groups.

Builder SoftmaxOfP0() {
  return [](graph::Graph*, const std::vector<Node>& p) { return std::vector<Node>{graph::Softmax(p[0], -1)}; };
}

TEST(RowFusionTest, SoftmaxIsOneRowGroupUnlessTurnedOff) {
  const auto fn = Trace({shapes::Make(dtypes::Float32, 8, 33)}, SoftmaxOfP0());
  const FusionPlan plan = PlanFusion(*fn);
  ASSERT_EQ(plan.groups.size(), 1u) << fn->ToString();
  const FusionGroup& group = plan.groups[0];
  EXPECT_EQ(group.row_len, 33);
  EXPECT_EQ(group.size, 8 * 33);
  EXPECT_EQ(group.outputs, fn->outputs);
  int reductions = 0;
  for (int m : group.members) {
    const auto op = fn->instructions[static_cast<size_t>(m)].op;
    reductions += op == ir::OpType::kReduceMax || op == ir::OpType::kReduceSum;
  }
  EXPECT_EQ(reductions, 2);
  testing::ScopedEnv env("KILN_CPU_ROW_FUSION", "0");
  for (const FusionGroup& g : PlanFusion(*fn).groups) EXPECT_EQ(g.row_len, 0);
}

// Softmax, log-softmax, a normalization, row values returned too, and
// per-row and per-element inputs: fused (row groups) and unfused agree bit
// for bit, over row lengths below, at and above a block, with NaN and Inf.
TEST(RowFusionTest, MatchesUnfusedBitForBit) {
  const Builder cases[] = {
      SoftmaxOfP0(),
      [](graph::Graph*, const std::vector<Node>& p) { return std::vector<Node>{graph::LogSoftmax(p[0], -1)}; },
      [](graph::Graph*, const std::vector<Node>& p) {
        Node mean = graph::ReduceMean(p[0], -1);
        Node centered = p[0] - graph::ExpandAxes(mean, {-1});
        Node var = graph::ReduceMean(centered * centered, -1);
        return std::vector<Node>{centered * graph::ExpandAxes(graph::Rsqrt(var + 1e-5), {-1})};
      },
      [](graph::Graph*, const std::vector<Node>& p) {
        Node m = graph::ReduceMax(p[0], -1);
        Node e = graph::Exp(p[0] - graph::ExpandAxes(m, {-1}));
        return std::vector<Node>{m, e, graph::ReduceSum(e * 2.0, -1)};
      },
      [](graph::Graph*, const std::vector<Node>& p) {  // p[1]: one value per row, p[2]: per element
        Node s = graph::ReduceSum(p[0] * p[2], -1) + p[1];
        return std::vector<Node>{graph::ExpandAxes(graph::Tanh(s), {-1}) * p[2]};
      },
  };
  testing::Rng rng(5);
  for (DType dtype : {dtypes::Float32, dtypes::Float64}) {
    for (const std::vector<int64_t>& dims : std::vector<std::vector<int64_t>>{
             {2, 3}, {7, 33}, {3, 5, 129}, {1000, 7}, {5, 4097}}) {
      std::vector<int64_t> rows(dims.begin(), dims.end() - 1);
      const shapes::Shape x = shapes::Make(dtype, dims), per_row = shapes::Make(dtype, rows);
      for (size_t c = 0; c < std::size(cases); ++c) {
        SCOPED_TRACE(::testing::Message() << "case " << c << " " << x);
        const auto fn = Trace({x, per_row, x}, cases[c]);
        bool row_group = false;
        for (const FusionGroup& g : PlanFusion(*fn).groups) row_group |= g.row_len > 0;
        EXPECT_TRUE(row_group) << fn->ToString();
        RunBoth(fn, {RandomWithSpecials(x, rng), testing::Random(per_row, rng), testing::Random(x, rng)});
      }
    }
  }
}

TEST(RowFusionTest, SoftmaxMatchesADoubleReference) {
  testing::Rng rng(6);
  const shapes::Shape shape = shapes::Make(dtypes::Float64, 9, 130);
  const Tensor x = testing::Random(shape, rng, -20, 20);
  const Tensor got = RunBoth(Trace({shape}, SoftmaxOfP0()), {x})[0];
  const std::vector<double> in = testing::ToDoubles(x);
  std::vector<double> want(in.size());
  for (int64_t r = 0; r < 9; ++r) {
    double m = -kInf, sum = 0;
    for (int64_t c = 0; c < 130; ++c) m = std::max(m, in[r * 130 + c]);
    for (int64_t c = 0; c < 130; ++c) sum += std::exp(in[r * 130 + c] - m);
    for (int64_t c = 0; c < 130; ++c) want[r * 130 + c] = std::exp(in[r * 130 + c] - m) / sum;
  }
  EXPECT_TRUE(testing::AllClose(got, shape, want, 1e-12, 1e-300));
}

// An operand computed outside the group from one of its values cannot join
// (it would need the group's result before the group ends); the plan still
// schedules, and results match.
TEST(RowFusionTest, OperandsThatDependOnTheGroupStayOutside) {
  const auto fn = Trace({shapes::Make(dtypes::Float32, 6, 40)}, [](graph::Graph*, const std::vector<Node>& p) {
    Node m = graph::ReduceMax(p[0], -1);
    Node total = graph::ReduceSum(m, {});       // all of m: outside any row group
    Node y = graph::Exp(p[0] - total);          // depends on the group through total
    return std::vector<Node>{graph::ReduceSum(y * graph::ExpandAxes(m, {-1}), -1)};
  });
  const FusionPlan plan = PlanFusion(*fn);
  ASSERT_FALSE(plan.schedule.empty());
  for (const FusionGroup& g : plan.groups) {
    if (g.row_len == 0) continue;
    for (int m : g.members) {
      EXPECT_NE(fn->instructions[static_cast<size_t>(m)].op, ir::OpType::kExp) << "Exp reads total, which reads the group";
    }
  }
  testing::Rng rng(7);
  RunBoth(fn, {testing::Random(shapes::Make(dtypes::Float32, 6, 40), rng)});
}

TEST(FusionTest, WhereClampAndConversionsInOneChain) {
  testing::Rng rng(2);
  for (int64_t n : {1, 5, 2048, 4099, 100000}) {
    SCOPED_TRACE(n);
    const auto f32 = shapes::Make(dtypes::Float32, n);
    const auto fn = Trace({f32, f32}, [](graph::Graph* g, const std::vector<Node>& p) {
      Node half = graph::ConvertDType(p[0] * 3.0, dtypes::Float16);        // rounds to half
      Node back = graph::ConvertDType(half, dtypes::Float64) - 0.5;         // widens
      Node lo = graph::BroadcastTo(graph::Scalar(g, dtypes::Float64, -1), {back.Shape().Dim(0)});
      Node clamped = graph::Clamp(lo, back, graph::Sqrt(graph::Abs(back)));
      Node chosen = graph::Where(graph::LessThan(p[0], p[1]), graph::ConvertDType(clamped, dtypes::Float32), p[1]);
      return std::vector<Node>{chosen, graph::ConvertDType(chosen, dtypes::Int32)};
    });
    ASSERT_EQ(PlanFusion(*fn).groups.size(), 1u) << fn->ToString();
    const Tensor a = RandomWithSpecials(f32, rng), b = testing::Random(f32, rng);
    const auto got = RunBoth(fn, {a, b});
    const auto av = testing::ToDoubles(a), bv = testing::ToDoubles(b);
    std::vector<double> want, want_int;
    for (size_t i = 0; i < av.size(); ++i) {
      const double back = RoundTo(dtypes::Float16, RoundTo(dtypes::Float32, av[i] * 3)) - 0.5;
      const double hi = std::sqrt(std::abs(back));
      // Clamp propagates NaN (min(max(x, lo), hi) with NaN-propagating max/min).
      const double clamped = std::isnan(back) ? back : std::min(std::max(back, -1.0), hi);
      const double chosen = av[i] < bv[i] ? RoundTo(dtypes::Float32, clamped) : bv[i];
      want.push_back(chosen);
      want_int.push_back(std::isnan(chosen) ? 0 : std::trunc(chosen));
    }
    EXPECT_TRUE(testing::AllClose(got[0], f32, want, 1e-6, 1e-6));
    EXPECT_TRUE(testing::AllClose(got[1], shapes::Make(dtypes::Int32, n), want_int, 0, 0));
  }
}

// --------------------------------------------------- Integer and Bool chains.

TEST(FusionTest, IntegerAndBoolChainsAreExact) {
  testing::Rng rng(3);
  for (DType dtype : {dtypes::Int32, dtypes::Int64, dtypes::Uint8, dtypes::Int16}) {
    for (int64_t n : {0, 1, 33, 5000, 70000}) {
      SCOPED_TRACE(std::string(dtypes::Name(dtype)) + " " + std::to_string(n));
      const auto shape = shapes::Make(dtype, n);
      const auto fn = Trace({shape, shape}, [](graph::Graph*, const std::vector<Node>& p) {
        Node sum = p[0] * 3.0 + p[1];
        Node neg = graph::LessThan(sum, p[1]);
        Node pick = graph::Where(graph::LogicalNot(neg), sum - p[0], graph::Max(p[0], p[1]));
        return std::vector<Node>{pick, graph::LogicalAnd(neg, graph::GreaterThan(p[0], p[1]))};
      });
      ASSERT_EQ(PlanFusion(*fn).groups.size(), 1u);
      const Tensor a = testing::Random(shape, rng, -50, 50), b = testing::Random(shape, rng, -50, 50);
      const auto got = RunBoth(fn, {a, b});
      const auto av = testing::ToDoubles(a), bv = testing::ToDoubles(b);
      std::vector<double> pick, both;
      const double modulus = std::ldexp(1, static_cast<int>(8 * dtypes::SizeOf(dtype)));
      const double lowest = dtypes::IsSignedInteger(dtype) ? -modulus / 2 : 0;
      const auto wrap = [&](double v) {  // to the dtype's range, two's complement
        if (v >= lowest && v < lowest + modulus) return v;  // (also exact for 64 bits)
        double w = std::fmod(v, modulus);
        if (w < 0) w += modulus;
        if (dtypes::IsSignedInteger(dtype) && w >= modulus / 2) w -= modulus;
        return w;
      };
      for (size_t i = 0; i < av.size(); ++i) {
        const double sum = wrap(wrap(av[i] * 3) + bv[i]);
        const bool neg = sum < bv[i];
        pick.push_back(!neg ? wrap(sum - av[i]) : std::max(av[i], bv[i]));
        both.push_back(neg && av[i] > bv[i]);
      }
      EXPECT_TRUE(testing::AllClose(got[0], shape, pick, 0, 0));
      EXPECT_TRUE(testing::AllClose(got[1], shapes::Make(dtypes::Bool, n), both, 0, 0));
    }
  }
}

// ------------------------------------------------------------- Broadcasts.

TEST(FusionTest, BroadcastsOfRowsColumnsAndScalarsAreEvaluatedInTheGroup) {
  testing::Rng rng(4);
  // Rows shorter and longer than a tile, and a 3-d case with a middle axis.
  for (const std::vector<int64_t>& dims : std::vector<std::vector<int64_t>>{
           {37, 129}, {3, 5000}, {1, 1}, {0, 7}, {300, 3}, {6, 4, 700}}) {
    SCOPED_TRACE(::testing::PrintToString(dims));
    const int64_t rows = dims.front(), cols = dims.back();
    const int64_t mid = dims.size() == 3 ? dims[1] : 1;
    const auto full = shapes::Make(dtypes::Float32, dims);
    const auto row = shapes::Make(dtypes::Float32, cols), col = shapes::Make(dtypes::Float32, rows);
    const auto scalar = shapes::Make(dtypes::Float32);
    const auto fn = Trace({full, row, col, scalar}, [&](graph::Graph*, const std::vector<Node>& p) {
      const int last = static_cast<int>(dims.size()) - 1;
      Node r = graph::BroadcastInDim(p[1], dims, {last});
      Node c = graph::BroadcastInDim(p[2], dims, {0});
      Node s = graph::BroadcastInDim(p[3], dims, {});
      return std::vector<Node>{(p[0] + r) * c - s};
    });
    const FusionPlan plan = PlanFusion(*fn);
    if (full.Size() > 1) {
      ASSERT_EQ(plan.groups.size(), 1u) << fn->ToString();
      EXPECT_EQ(plan.groups[0].inputs.size(), 4u);  // x, row, column and scalar: no broadcast materialized
    }
    const Tensor x = RandomWithSpecials(full, rng), rv = testing::Random(row, rng), cv = testing::Random(col, rng),
                 sv = testing::Random(scalar, rng);
    const Tensor got = RunBoth(fn, {x, rv, cv, sv})[0];
    const auto xd = testing::ToDoubles(x), rd = testing::ToDoubles(rv), cd = testing::ToDoubles(cv);
    const double sd = testing::ToDoubles(sv)[0];
    std::vector<double> want(xd.size());
    for (int64_t i = 0; i < rows; ++i) {
      for (int64_t m = 0; m < mid; ++m) {
        for (int64_t j = 0; j < cols; ++j) {
          const auto k = static_cast<size_t>((i * mid + m) * cols + j);
          want[k] = (xd[k] + rd[static_cast<size_t>(j)]) * cd[static_cast<size_t>(i)] - sd;
        }
      }
    }
    EXPECT_TRUE(testing::AllClose(got, full, want, 1e-5, 1e-5));
  }
}

TEST(FusionTest, BroadcastsIntoInnerAxesAreEvaluatedByIndexMapping) {
  // x[3, 5] repeated along a middle axis, y[4, 1] along the first and last:
  // the gathers restart rows in the middle of tiles of a [3, 4, 5] group.
  testing::Rng rng(5);
  const auto xs = shapes::Make(dtypes::Float64, 3, 5), ys = shapes::Make(dtypes::Float64, 4, 1);
  const auto zs = shapes::Make(dtypes::Float64, 3, 4, 5);
  const auto fn = Trace({xs, ys, zs}, [](graph::Graph*, const std::vector<Node>& p) {
    Node x = graph::BroadcastInDim(p[0], {3, 4, 5}, {0, 2});
    Node y = graph::BroadcastInDim(p[1], {3, 4, 5}, {1, 2});
    return std::vector<Node>{x * p[2] + y};
  });
  ASSERT_EQ(PlanFusion(*fn).groups.size(), 1u);
  const Tensor x = testing::Random(xs, rng), y = testing::Random(ys, rng), z = testing::Random(zs, rng);
  const Tensor got = RunBoth(fn, {x, y, z})[0];
  const auto xd = testing::ToDoubles(x), yd = testing::ToDoubles(y), zd = testing::ToDoubles(z);
  std::vector<double> want;
  for (size_t a = 0; a < 3; ++a) {
    for (size_t b = 0; b < 4; ++b) {
      for (size_t c = 0; c < 5; ++c) want.push_back(xd[a * 5 + c] * zd[want.size()] + yd[b]);
    }
  }
  EXPECT_TRUE(testing::AllClose(got, zs, want, 1e-12, 0));
}

// ------------------------------------------- Liveness, donation, in place.

TEST(FusionTest, SharedValuesAndOutputsInsideAGroup) {
  testing::Rng rng(6);
  const auto shape = shapes::Make(dtypes::Float32, 3001);
  const auto fn = Trace({shape, shape}, [](graph::Graph*, const std::vector<Node>& p) {
    Node a = p[0] * p[1];
    Node b = a + 1.0;
    Node c = graph::Exp(b) * a;
    Node d = graph::Transpose(graph::Reshape(a, {3001, 1}), {1, 0});  // a materialized for a layout op
    return std::vector<Node>{c, graph::ReduceSum(a, 0), b, d, a};
  });
  const Tensor x = testing::Random(shape, rng), y = testing::Random(shape, rng);
  const auto got = RunBoth(fn, {x, y});
  const auto xd = testing::ToDoubles(x), yd = testing::ToDoubles(y);
  std::vector<double> a, b, c;
  double sum = 0;
  for (size_t i = 0; i < xd.size(); ++i) {
    a.push_back(RoundTo(dtypes::Float32, xd[i] * yd[i]));
    b.push_back(RoundTo(dtypes::Float32, a.back() + 1));
    c.push_back(std::exp(b.back()) * a.back());
    sum += a.back();
  }
  EXPECT_TRUE(testing::AllClose(got[0], shape, c, 1e-5, 1e-6));
  EXPECT_TRUE(testing::AllClose(got[1], shapes::Make(dtypes::Float32), {sum}, 1e-4, 1e-3));
  EXPECT_TRUE(testing::AllClose(got[2], shape, b, 0, 0));
  EXPECT_TRUE(testing::AllClose(got[3], shapes::Make(dtypes::Float32, 1, 3001), a, 0, 0));
  EXPECT_TRUE(testing::AllClose(got[4], shape, a, 0, 0));
}

// Executes with every argument donated; returns the outputs and, per output,
// the index of the argument whose memory it reuses (-1 if none).
std::pair<std::vector<Tensor>, std::vector<int>> ExecuteDonated(backends::Executable& exe,
                                                               const std::vector<Tensor>& args) {
  std::vector<backends::BufferPtr> buffers;
  std::vector<const void*> data;
  for (const Tensor& t : args) {
    buffers.push_back(Cpu()->BufferFromHost(t.Shape(), t.HostData()));
    data.push_back(buffers.back()->SharedHostStorage()->Data());
  }
  const auto outs = exe.Execute(std::move(buffers), std::vector<bool>(args.size(), true));
  std::vector<Tensor> tensors;
  std::vector<int> reused;
  for (const auto& b : outs) {
    tensors.push_back(Tensor::FromBuffer(b));
    const auto it = std::find(data.begin(), data.end(), b->SharedHostStorage()->Data());
    reused.push_back(it == data.end() ? -1 : static_cast<int>(it - data.begin()));
  }
  return {tensors, reused};
}

TEST(FusionTest, DonatedArgumentsAreUpdatedInPlace) {
  // An Adam-like update of w, m, v: each new value overwrites its donated
  // argument, and every result is right.
  testing::Rng rng(7);
  const auto shape = shapes::Make(dtypes::Float32, 50000);
  const auto fn = Trace({shape, shape, shape, shape}, [](graph::Graph*, const std::vector<Node>& p) {
    Node w = p[0], m = p[1], v = p[2], g = p[3];
    Node m2 = 0.9 * m + 0.1 * g;
    Node v2 = 0.999 * v + 0.001 * g * g;
    Node w2 = w - 0.01 * m2 / (graph::Sqrt(v2) + 1e-7);
    return std::vector<Node>{w2, m2, v2};
  });
  ASSERT_EQ(PlanFusion(*fn).groups.size(), 1u);
  const Tensor w = testing::Random(shape, rng), m = testing::Random(shape, rng), v = testing::Random(shape, rng, 0, 1),
               g = testing::Random(shape, rng);
  const auto want = Execute(*Compile(fn, false), {w, m, v, g});
  const auto [got, reused] = ExecuteDonated(*Compile(fn, true), {w, m, v, g});
  for (size_t i = 0; i < 3; ++i) EXPECT_TRUE(testing::AllClose(got[i], want[i], 0, 0)) << "output " << i;
  EXPECT_EQ(reused[0], 0);  // w2 in w
  EXPECT_NE(reused[1], -1);  // m2 and v2 in two of the dying arguments
  EXPECT_NE(reused[2], -1);
  EXPECT_NE(reused[1], reused[2]);
}

TEST(FusionTest, NoOutputOverwritesAnInputThatIsReadLater) {
  // out1 = x * 2 is written before out2 = x + y reads x: out1 must not take
  // x's buffer even though x is donated and dies in the group.
  testing::Rng rng(8);
  const auto shape = shapes::Make(dtypes::Float32, 9000);
  const auto fn = Trace({shape, shape}, [](graph::Graph*, const std::vector<Node>& p) {
    Node out1 = p[0] * 2.0;
    Node out2 = graph::Exp(p[0] + p[1]) + out1;
    return std::vector<Node>{out1, out2};
  });
  ASSERT_EQ(PlanFusion(*fn).groups.size(), 1u);
  const Tensor x = testing::Random(shape, rng), y = testing::Random(shape, rng);
  const auto want = Execute(*Compile(fn, false), {x, y});
  const auto [got, reused] = ExecuteDonated(*Compile(fn, true), {x, y});
  EXPECT_TRUE(testing::AllClose(got[0], want[0], 0, 0));
  EXPECT_TRUE(testing::AllClose(got[1], want[1], 0, 0));
  EXPECT_NE(reused[0], 0);
  EXPECT_EQ(reused[1], 0);  // out2 may: nothing reads x after it
}

TEST(FusionTest, ConcurrentExecutionsOfOneExecutable) {
  // Execute is thread-safe: fused groups keep their tile buffers per thread.
  testing::Rng rng(10);
  const auto shape = shapes::Make(dtypes::Float32, 3, 40000);
  const auto fn = Trace({shape, shapes::Make(dtypes::Float32, 40000)}, [](graph::Graph*, const std::vector<Node>& p) {
    Node row = graph::BroadcastInDim(p[1], {3, 40000}, {1});
    return std::vector<Node>{graph::Tanh(p[0] * 2.0 + row) * graph::Logistic(p[0])};
  });
  const auto exe = Compile(fn, true);
  std::vector<Tensor> inputs[2], want[2];
  for (int t = 0; t < 2; ++t) {
    inputs[t] = {testing::Random(shape, rng), testing::Random(shapes::Make(dtypes::Float32, 40000), rng)};
    want[t] = Execute(*Compile(fn, false), inputs[t]);
  }
  std::vector<Tensor> got[2];
  std::vector<std::thread> threads;
  for (int t = 0; t < 2; ++t) {
    threads.emplace_back([&, t] {
      for (int rep = 0; rep < 20; ++rep) got[t] = Execute(*exe, inputs[t]);
    });
  }
  for (auto& th : threads) th.join();
  for (int t = 0; t < 2; ++t) EXPECT_TRUE(testing::AllClose(got[t][0], want[t][0], 0, 0)) << "thread " << t;
}

// ----------------------------------------------------- Random graphs.

// Random DAGs of elementwise ops over a few inputs, mixed with ops that do
// not fuse (reductions and their broadcasts back, transposes), some
// intermediate values returned: fused and unfused results must agree bit for bit.
TEST(FusionTest, RandomGraphsMatchUnfusedExecution) {
  testing::Rng rng(9);
  int fused_groups = 0;
  for (int trial = 0; trial < 40; ++trial) {
    const DType dtype = trial % 3 == 0 ? dtypes::Float64 : dtypes::Float32;
    const int64_t rows = 1 + static_cast<int64_t>(rng() % 60), cols = 1 + static_cast<int64_t>(rng() % 700);
    const auto shape = shapes::Make(dtype, rows, cols);
    const int num_ops = 5 + static_cast<int>(rng() % 30);
    std::vector<uint64_t> choices;
    for (int k = 0; k < 3 * num_ops; ++k) choices.push_back(rng());
    const auto fn = Trace({shape, shape, shape}, [&](graph::Graph*, const std::vector<Node>& p) {
      std::vector<Node> values = p;
      std::vector<Node> outputs;
      size_t c = 0;
      const auto pick = [&]() { return values[choices[c++] % values.size()]; };
      for (int k = 0; k < num_ops; ++k) {
        Node a = pick(), b = pick();
        Node v;
        switch (choices[c++] % 12) {
          case 0: v = a + b; break;
          case 1: v = a * b; break;
          case 2: v = a - 0.5; break;
          case 3: v = graph::Tanh(a); break;
          case 4: v = graph::Max(a, b); break;
          case 5: v = graph::Where(graph::LessThan(a, b), a, b * 0.25); break;
          case 6: v = graph::Logistic(a) * b; break;
          case 7: v = graph::Exp(graph::Neg(graph::Abs(a))); break;
          case 8: v = a + graph::BroadcastInDim(graph::ReduceSum(b, 1), {rows, cols}, {0}); break;  // not fusable
          case 9: v = graph::Sqrt(graph::Abs(a)) / (b * b + 1.0); break;
          case 10: v = graph::ConvertDType(graph::ConvertDType(a, dtypes::Float16), dtype); break;
          default: outputs.push_back(a); v = b + 1.0; break;  // an intermediate returned
        }
        values.push_back(v);
      }
      outputs.push_back(values.back());
      return outputs;
    });
    fused_groups += static_cast<int>(PlanFusion(*fn).groups.size());
    RunBoth(fn, {RandomWithSpecials(shape, rng), testing::Random(shape, rng), testing::Random(shape, rng)});
  }
  EXPECT_GT(fused_groups, 40);
}

// -------------------------------------------------------------- Errors.

TEST(FusionTest, UnsupportedDTypeInAGroupIsReportedAtCompile) {
  // Hand-built IR (the graph layer rejects it): Exp of Int32 in a chain.
  auto fn = std::make_shared<ir::Function>();
  fn->name = "bad";
  const auto shape = shapes::Make(dtypes::Int32, 4);
  fn->instructions.push_back({ir::OpType::kParameter, {}, shape, ir::ParameterAttrs{0, "x"}, "here:1"});
  fn->instructions.push_back({ir::OpType::kAdd, {0, 0}, shape, ir::NoAttrs{}, "here:2"});
  fn->instructions.push_back({ir::OpType::kExp, {1}, shape, ir::NoAttrs{}, "here:3"});
  fn->parameters = {0};
  fn->outputs = {2};
  ASSERT_EQ(PlanFusion(*fn).groups.size(), 1u);
  KILN_EXPECT_ERROR(Compile(fn, true), "cpu Exp: unsupported dtype Int32 (here:3)");
  KILN_EXPECT_ERROR(Compile(fn, false), "cpu Exp: unsupported dtype Int32 (here:3)");
}

}  // namespace
}  // namespace kiln
