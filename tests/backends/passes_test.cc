// Copyright 2026 The Kiln Authors.
// The CPU backend's graph passes (src/backends/cpu/passes.h): each pass on
// hand-built functions and graphs (instruction counts and ops after it), and
// the optimized functions executed against the unoptimized ones
// (KILN_CPU_OPTIMIZE=0) and against naive expected values, including -0.0
// and NaN for the algebraic rules. Ends with a real MLP train step.
#include "src/backends/cpu/passes.h"

#include <cmath>
#include <cstdlib>
#include <limits>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "kiln/ml/layers/layers.h"
#include "kiln/ml/losses/losses.h"
#include "kiln/ml/optimizers/optimizers.h"
#include "kiln/ml/train/trainer.h"
#include "tests/testing/testing.h"

namespace kiln {
namespace {

using backends::cpu::EliminateCommonSubexpressions;
using backends::cpu::EliminateDeadCode;
using backends::cpu::FoldConstants;
using backends::cpu::OptimizeFunction;
using backends::cpu::SimplifyAlgebra;
using graph::Node;
using ir::OpType;

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();

// ------------------------------------------------------------------ Helpers.

// Builds an ir::Function by hand; instruction i gets location "t.cc:i".
class FnBuilder {
 public:
  int Param(const shapes::Shape& shape) {
    const int index = static_cast<int>(fn_->parameters.size());
    std::string name = "p";
    name += std::to_string(index);  // (not "p" + ...: GCC 12 warns falsely, -Wrestrict)
    const int id = Add(OpType::kParameter, {}, shape, ir::ParameterAttrs{index, name});
    fn_->parameters.push_back(id);
    return id;
  }
  int Const(const tensors::Tensor& t) {
    const auto* begin = static_cast<const std::byte*>(t.HostData());
    auto bytes = std::make_shared<const std::vector<std::byte>>(begin, begin + t.Shape().ByteSize());
    return Add(OpType::kConstant, {}, t.Shape(), ir::ConstantAttrs{bytes});
  }
  int Add(OpType op, std::vector<int> operands, const shapes::Shape& shape, ir::Attributes attrs = ir::NoAttrs{}) {
    const int id = static_cast<int>(fn_->instructions.size());
    fn_->instructions.push_back({op, std::move(operands), shape, std::move(attrs), "t.cc:" + std::to_string(id)});
    return id;
  }
  std::shared_ptr<const ir::Function> Finish(std::vector<int> outputs) {
    fn_->outputs = std::move(outputs);
    fn_->Validate();
    return fn_;
  }

 private:
  std::shared_ptr<ir::Function> fn_ = std::make_shared<ir::Function>(ir::Function{.name = "hand_built"});
};

int Count(const ir::Function& fn, OpType op) {
  int n = 0;
  for (const auto& instr : fn.instructions) n += instr.op == op;
  return n;
}

const ir::Instruction& Def(const ir::Function& fn, int id) { return fn.instructions[static_cast<size_t>(id)]; }


// Compiles `fn` on the CPU backend, with or without the passes, and runs it.
std::vector<tensors::Tensor> Execute(const std::shared_ptr<const ir::Function>& fn,
                                     const std::vector<tensors::Tensor>& args, bool optimize,
                                     size_t* compiled_size = nullptr) {
  auto backend = backends::NewWithName("cpu");
  std::unique_ptr<backends::Executable> exec;
  {
    testing::ScopedEnv env("KILN_CPU_OPTIMIZE", optimize ? "1" : "0");
    exec = backend->Compile(fn);
  }
  if (compiled_size) *compiled_size = exec->Function().instructions.size();
  std::vector<backends::BufferPtr> buffers;
  for (const auto& a : args) buffers.push_back(a.BufferFor(*backend));
  std::vector<tensors::Tensor> results;
  for (auto& b : exec->Execute(std::move(buffers), {})) results.push_back(tensors::Tensor::FromBuffer(b));
  return results;
}

// Same shape and the same values, where NaN matches NaN and zeros must have
// the same sign (the algebraic rules must preserve -0.0).
::testing::AssertionResult Identical(const tensors::Tensor& got, const tensors::Tensor& want) {
  if (got.Shape() != want.Shape()) {
    return ::testing::AssertionFailure() << "shape " << got.Shape() << " != " << want.Shape();
  }
  const std::vector<double> g = testing::ToDoubles(got), w = testing::ToDoubles(want);
  for (size_t i = 0; i < g.size(); ++i) {
    const bool same = (std::isnan(g[i]) && std::isnan(w[i])) || (g[i] == w[i] && std::signbit(g[i]) == std::signbit(w[i]));
    if (!same) return ::testing::AssertionFailure() << "element " << i << ": " << g[i] << " != " << w[i];
  }
  return ::testing::AssertionSuccess();
}

// Runs `fn` optimized and unoptimized and expects identical results; returns
// the optimized results.
std::vector<tensors::Tensor> ExpectSameAsUnoptimized(const std::shared_ptr<const ir::Function>& fn,
                                                     const std::vector<tensors::Tensor>& args) {
  const auto optimized = Execute(fn, args, true), plain = Execute(fn, args, false);
  EXPECT_EQ(optimized.size(), plain.size());
  for (size_t i = 0; i < optimized.size() && i < plain.size(); ++i) {
    EXPECT_TRUE(Identical(optimized[i], plain[i])) << "output " << i;
  }
  return optimized;
}

// Special float values, then ordinary ones, `n` in all.
std::vector<double> SpecialValues(size_t n) {
  std::vector<double> v = {-0.0, 0.0, kNaN, -kNaN, kInf, -kInf, 1.5, -2.25, 1e-3, 3};
  v.resize(n, 0.5);
  return v;
}

std::shared_ptr<const ir::Function> Finish(graph::Graph* g, const std::vector<Node>& outputs) {
  return g->Finish(outputs, graph::Loc::current());
}

// ------------------------------------------------------------ Dead code.

TEST(DeadCode, RemovesUnusedInstructionsAndKeepsEveryParameter) {
  const auto f3 = shapes::Make(dtypes::Float32, 3);
  FnBuilder b;
  const int x = b.Param(f3);
  b.Param(f3);  // unused, but part of the signature
  const int e = b.Add(OpType::kExp, {x}, f3);
  b.Add(OpType::kSin, {e}, f3);  // dead chain
  const int sum = b.Add(OpType::kAdd, {x, x}, f3);
  b.Add(OpType::kNeg, {sum}, f3);  // dead
  auto fn = b.Finish({sum, x, sum});

  ir::Function out = *fn;
  EXPECT_TRUE(EliminateDeadCode(out));
  out.Validate();
  ASSERT_EQ(out.instructions.size(), 3u);
  EXPECT_EQ(out.parameters, (std::vector<int>{0, 1}));
  EXPECT_EQ(out.outputs, (std::vector<int>{2, 0, 2}));
  EXPECT_EQ(Def(out, 2).op, OpType::kAdd);
  EXPECT_EQ(Def(out, 2).operands, (std::vector<int>{0, 0}));
  EXPECT_EQ(Def(out, 2).location, "t.cc:4");  // survivors keep their location
  EXPECT_FALSE(EliminateDeadCode(out));         // a fixpoint

  testing::Rng rng(1);
  const auto a = testing::Random(f3, rng), c = testing::Random(f3, rng);
  const auto results = ExpectSameAsUnoptimized(fn, {a, c});
  EXPECT_TRUE(Identical(results[1], a));
}

TEST(DeadCode, KeepsSubfunctionsAndAFunctionWithoutDeadCode) {
  const auto f2 = shapes::Make(dtypes::Float32, 2);
  FnBuilder b;
  const int x = b.Param(f2);
  auto fn = std::const_pointer_cast<ir::Function>(b.Finish({b.Add(OpType::kExp, {x}, f2)}));
  fn->subfunctions.push_back(std::make_shared<const ir::Function>(ir::Function{.name = "body"}));
  ir::Function out = *fn;
  EXPECT_FALSE(EliminateDeadCode(out));
  EXPECT_EQ(out.instructions.size(), 2u);
  ASSERT_EQ(out.subfunctions.size(), 1u);
  EXPECT_EQ(out.subfunctions[0], fn->subfunctions[0]);
  // Nothing to do at all: OptimizeFunction hands back the same function.
  EXPECT_EQ(OptimizeFunction(fn), fn);
}

// ------------------------------------------------------------------- CSE.

TEST(Cse, MergesEqualComputations) {
  auto g = graph::NewGraph("cse");
  const auto f23 = shapes::Make(dtypes::Float32, 2, 3);
  Node x = graph::Parameter(g.get(), "x", f23), y = graph::Parameter(g.get(), "y", f23);
  Node a = graph::Exp(x) + y;
  Node b = graph::Exp(x) + y;
  Node t1 = graph::Transpose(a, {1, 0}), t2 = graph::Transpose(b, {1, 0});
  auto fn = Finish(g.get(), {t1 * t2, a});
  ASSERT_EQ(Count(*fn, OpType::kExp), 2);

  ir::Function out = *fn;
  EXPECT_TRUE(EliminateCommonSubexpressions(out));
  EliminateDeadCode(out);
  out.Validate();
  EXPECT_EQ(Count(out, OpType::kExp), 1);
  EXPECT_EQ(Count(out, OpType::kAdd), 1);
  EXPECT_EQ(Count(out, OpType::kTranspose), 1);
  const ir::Instruction& mul = Def(out, out.outputs[0]);
  ASSERT_EQ(mul.op, OpType::kMul);
  EXPECT_EQ(mul.operands[0], mul.operands[1]);
  EXPECT_EQ(Def(out, mul.operands[0]).location, fn->instructions[static_cast<size_t>(t1.Id())].location);

  testing::Rng rng(2);
  ExpectSameAsUnoptimized(fn, {testing::Random(f23, rng), testing::Random(f23, rng)});
}

TEST(Cse, KeepsDifferentAttributesShapesAndConstantBytes) {
  const auto f4 = shapes::Make(dtypes::Float32, 4), f2 = shapes::Make(dtypes::Float32, 2);
  FnBuilder b;
  const int x = b.Param(f4);
  const int s1 = b.Add(OpType::kSlice, {x}, f2, ir::SliceAttrs{{0}, {2}, {1}});
  const int s2 = b.Add(OpType::kSlice, {x}, f2, ir::SliceAttrs{{2}, {4}, {1}});
  const int s3 = b.Add(OpType::kSlice, {x}, f2, ir::SliceAttrs{{0}, {2}, {1}});  // same as s1
  const int zero = b.Const(tensors::FromValue(0.0f));
  const int neg_zero = b.Const(tensors::FromValue(-0.0f));
  const int int_zero = b.Const(tensors::FromValue(int32_t{0}));  // same bytes as 0.0f, other dtype
  const int zero_again = b.Const(tensors::FromValue(0.0f));
  auto fn = b.Finish({s1, s2, s3, zero, neg_zero, int_zero, zero_again});

  ir::Function out = *fn;
  EXPECT_TRUE(EliminateCommonSubexpressions(out));
  EliminateDeadCode(out);
  EXPECT_EQ(Count(out, OpType::kSlice), 2);
  EXPECT_EQ(Count(out, OpType::kConstant), 3);
  EXPECT_EQ(out.outputs[0], out.outputs[2]);
  EXPECT_NE(out.outputs[0], out.outputs[1]);
  EXPECT_EQ(out.outputs[3], out.outputs[6]);
  EXPECT_NE(out.outputs[3], out.outputs[4]);  // -0.0 is not 0.0
  EXPECT_NE(out.outputs[3], out.outputs[5]);

  const auto results = ExpectSameAsUnoptimized(fn, {tensors::FromValue(std::vector<float>{1, 2, 3, 4})});
  EXPECT_TRUE(std::signbit(results[4].Value<float>()));
}

// RNGBitGenerator is pure: the same state gives the same bits, so identical
// draws merge, and draws from different states must not.
TEST(Cse, MergesRngDrawsOnlyFromTheSameState) {
  auto g = graph::NewGraph("rng");
  Node state = graph::Parameter(g.get(), "state", shapes::Make(dtypes::Uint64, 3));
  const auto bits_shape = shapes::Make(dtypes::Uint32, 16);
  auto [next1, bits1] = graph::RNGBitGenerator(state, bits_shape);
  auto [next2, bits2] = graph::RNGBitGenerator(state, bits_shape);
  auto [next3, bits3] = graph::RNGBitGenerator(next1, bits_shape);
  auto fn = Finish(g.get(), {bits1, bits2, bits3, next3});
  ASSERT_EQ(Count(*fn, OpType::kRNGBitGenerator), 3);

  auto optimized = OptimizeFunction(fn);
  EXPECT_EQ(Count(*optimized, OpType::kRNGBitGenerator), 2);
  EXPECT_EQ(optimized->outputs[0], optimized->outputs[1]);
  EXPECT_NE(optimized->outputs[0], optimized->outputs[2]);

  const auto results = ExpectSameAsUnoptimized(fn, {tensors::FromValue(std::vector<uint64_t>{7, 0, 0})});
  EXPECT_EQ(testing::ToDoubles(results[0]), testing::ToDoubles(results[1]));
  EXPECT_NE(testing::ToDoubles(results[0]), testing::ToDoubles(results[2]));
}

// --------------------------------------------------------- Constant folding.

TEST(Fold, FoldsConstantSubgraphsWithTheBackendsKernels) {
  auto g = graph::NewGraph("fold");
  const auto f3 = shapes::Make(dtypes::Float32, 3);
  Node x = graph::Parameter(g.get(), "x", f3);
  Node c = graph::Const(g.get(), std::vector<float>{0.5f, -1.25f, 3});
  Node d = graph::Exp(c) * 2.0 + graph::Const(g.get(), std::vector<float>{1, 2, 3});
  auto fn = Finish(g.get(), {x + d, d});

  ir::Function out = *fn;
  EXPECT_TRUE(FoldConstants(out));
  EliminateDeadCode(out);
  out.Validate();
  // x, the folded constant, the Add.
  ASSERT_EQ(out.instructions.size(), 3u);
  const ir::Instruction& folded = Def(out, out.outputs[1]);
  ASSERT_EQ(folded.op, OpType::kConstant);
  EXPECT_EQ(folded.shape, f3);
  EXPECT_EQ(folded.location, fn->instructions[static_cast<size_t>(d.Id())].location);

  const tensors::Tensor arg = tensors::FromValue(std::vector<float>{1, 2, 3});
  const auto results = ExpectSameAsUnoptimized(fn, {arg});
  const std::vector<double> want = {std::exp(0.5) * 2 + 1, std::exp(-1.25) * 2 + 2, std::exp(3.0) * 2 + 3};
  EXPECT_TRUE(testing::AllClose(results[1], f3, want, 1e-6, 0));
}

TEST(Fold, EveryDTypeGivesTheKernelsBits) {
  testing::Rng rng(3);
  const auto shape = shapes::Make(dtypes::Float32, 5);
  for (dtypes::DType dtype : dtypes::kAll) {
    if (dtype == dtypes::Bool || dtypes::IsComplex(dtype)) continue;  // (Max is not defined on complex numbers)
    SCOPED_TRACE(dtypes::Name(dtype));
    auto g = graph::NewGraph("fold_dtypes");
    Node x = graph::Parameter(g.get(), "x", shape.WithDType(dtype));
    Node a = graph::Const(g.get(), testing::Random(shape.WithDType(dtype), rng, 1, 4));
    Node c = graph::Const(g.get(), testing::Random(shape.WithDType(dtype), rng, 1, 4));
    Node folded = graph::Max(a * c, a - c);
    auto fn = Finish(g.get(), {x + folded, folded});
    auto optimized = OptimizeFunction(fn);
    EXPECT_EQ(Def(*optimized, optimized->outputs[1]).op, OpType::kConstant);
    ExpectSameAsUnoptimized(fn, {testing::Random(shape.WithDType(dtype), rng)});
  }
}

TEST(Fold, BroadcastOfAScalarFoldsOnlyUpToTheSizeLimit) {
  for (int64_t rows : {64, 65}) {  // 64 x 64 = kMaxFoldedElements
    auto g = graph::NewGraph("broadcast");
    const auto shape = shapes::Make(dtypes::Float32, rows, 64);
    Node x = graph::Parameter(g.get(), "x", shape);
    auto fn = Finish(g.get(), {x + 0.5});
    auto optimized = OptimizeFunction(fn);
    EXPECT_EQ(Count(*optimized, OpType::kBroadcastInDim), rows == 64 ? 0 : 1) << rows;
    testing::Rng rng(4);
    ExpectSameAsUnoptimized(fn, {testing::Random(shape, rng)});
  }
}

TEST(Fold, FoldsSmallIotasButNeverRandomBits) {
  auto g = graph::NewGraph("iota_rng");
  Node iota = graph::Iota(g.get(), shapes::Make(dtypes::Int32, 4), 0);
  Node state = graph::Const(g.get(), std::vector<uint64_t>{1, 2, 3});
  auto [next, bits] = graph::RNGBitGenerator(state, shapes::Make(dtypes::Uint32, 8));
  auto fn = Finish(g.get(), {iota * 3, bits, next});
  auto optimized = OptimizeFunction(fn);
  EXPECT_EQ(Count(*optimized, OpType::kIota), 0);
  EXPECT_EQ(Count(*optimized, OpType::kMul), 0);
  EXPECT_EQ(Count(*optimized, OpType::kRNGBitGenerator), 1);
  EXPECT_EQ(Def(*optimized, optimized->outputs[2]).op, OpType::kConstant);  // the state update folds
  const auto results = ExpectSameAsUnoptimized(fn, {});
  EXPECT_EQ(testing::ToDoubles(results[0]), (std::vector<double>{0, 3, 6, 9}));
}

TEST(Fold, ReshapeOfAConstantSharesItsBytes) {
  FnBuilder b;
  const int c = b.Const(tensors::FromValue(std::vector<float>{1, 2, 3, 4, 5, 6}));
  const int r = b.Add(OpType::kReshape, {c}, shapes::Make(dtypes::Float32, 2, 3));
  auto fn = b.Finish({r});
  ir::Function out = *fn;
  EXPECT_TRUE(FoldConstants(out));
  const ir::Instruction& folded = Def(out, out.outputs[0]);
  ASSERT_EQ(folded.op, OpType::kConstant);
  EXPECT_EQ(ir::Attr<ir::ConstantAttrs>(folded).data, ir::Attr<ir::ConstantAttrs>(Def(*fn, c)).data);
  const auto results = ExpectSameAsUnoptimized(fn, {});
  EXPECT_EQ(testing::ToDoubles(results[0]), (std::vector<double>{1, 2, 3, 4, 5, 6}));
}

// An instruction the kernels reject stays, so the executable reports the
// same error as without the passes.
TEST(Fold, LeavesUnsupportedInstructionsForTheExecutableToReport) {
  const auto i3 = shapes::Make(dtypes::Int32, 3);
  FnBuilder b;
  const int c = b.Const(tensors::FromValue(std::vector<int32_t>{1, 2, 3}));
  auto fn = b.Finish({b.Add(OpType::kExp, {c}, i3)});
  ir::Function out = *fn;
  EXPECT_FALSE(FoldConstants(out));
  KILN_EXPECT_ERROR(backends::NewWithName("cpu")->Compile(fn), "cpu Exp: unsupported dtype Int32 (t.cc:1)");
}

// -------------------------------------------------- Algebraic simplification.

const dtypes::DType kFloatTypes[] = {dtypes::Float16, dtypes::BFloat16, dtypes::Float32, dtypes::Float64};

TEST(Simplify, ExactFloatIdentitiesReturnTheOperand) {
  for (dtypes::DType dtype : kFloatTypes) {
    SCOPED_TRACE(dtypes::Name(dtype));
    auto g = graph::NewGraph("float_identities");
    const auto shape = shapes::Make(dtype, 12);
    Node x = graph::Parameter(g.get(), "x", shape);
    auto fn = Finish(g.get(), {x * 1.0, 1.0 * x, x / 1.0, x + (-0.0), (-0.0) + x, x - 0.0, -(-x)});
    auto optimized = OptimizeFunction(fn);
    EXPECT_EQ(optimized->instructions.size(), 1u) << optimized->ToString();
    for (int o : optimized->outputs) EXPECT_EQ(o, optimized->parameters[0]);

    const tensors::Tensor arg = testing::FromDoubles(shape, SpecialValues(12));
    const auto results = ExpectSameAsUnoptimized(fn, {arg});
    for (const auto& r : results) EXPECT_TRUE(Identical(r, arg));
  }
}

// x + (+0.0) maps -0.0 to +0.0, and x - (-0.0) is x + (+0.0): neither is x.
TEST(Simplify, PlusZeroIsKeptForFloats) {
  for (dtypes::DType dtype : kFloatTypes) {
    SCOPED_TRACE(dtypes::Name(dtype));
    auto g = graph::NewGraph("plus_zero");
    const auto shape = shapes::Make(dtype, 12);
    Node x = graph::Parameter(g.get(), "x", shape);
    auto fn = Finish(g.get(), {x + 0.0, 0.0 + x, x - (-0.0)});
    auto optimized = OptimizeFunction(fn);
    EXPECT_EQ(Count(*optimized, OpType::kAdd), 2);
    EXPECT_EQ(Count(*optimized, OpType::kSub), 1);

    const auto results = ExpectSameAsUnoptimized(fn, {testing::FromDoubles(shape, SpecialValues(12))});
    for (const auto& r : results) {
      const std::vector<double> v = testing::ToDoubles(r);
      EXPECT_EQ(v[0], 0.0);
      EXPECT_FALSE(std::signbit(v[0]));  // -0.0 + 0.0 == +0.0
      EXPECT_TRUE(std::isnan(v[2]));
    }
  }
}

TEST(Simplify, IntegerZeroAndOneIdentities) {
  testing::Rng rng(5);
  for (dtypes::DType dtype : {dtypes::Int8, dtypes::Int32, dtypes::Int64, dtypes::Uint8, dtypes::Uint64}) {
    SCOPED_TRACE(dtypes::Name(dtype));
    auto g = graph::NewGraph("int_identities");
    const auto shape = shapes::Make(dtype, 3, 5);
    Node x = graph::Parameter(g.get(), "x", shape);
    auto fn = Finish(g.get(), {x + 0.0, 0.0 + x, x - 0.0, x * 1.0, 1.0 * x, x / 1.0});
    auto optimized = OptimizeFunction(fn);
    EXPECT_EQ(optimized->instructions.size(), 1u) << optimized->ToString();
    const tensors::Tensor arg = testing::Random(shape, rng, -100, 100);
    for (const auto& r : ExpectSameAsUnoptimized(fn, {arg})) EXPECT_TRUE(Identical(r, arg));
  }
}

TEST(Simplify, OnlyUniformConstantsAreIdentities) {
  const auto f2 = shapes::Make(dtypes::Float32, 2);
  FnBuilder b;
  const int x = b.Param(f2);
  const int ones = b.Const(tensors::FromValue(std::vector<float>{1, 1}));
  const int mixed = b.Const(tensors::FromValue(std::vector<float>{1, 2}));
  const int zeros = b.Const(tensors::FromValue(std::vector<float>{-0.0f, 0.0f}));  // not uniform bytes
  auto fn = b.Finish({b.Add(OpType::kMul, {x, ones}, f2), b.Add(OpType::kMul, {x, mixed}, f2),
                      b.Add(OpType::kAdd, {x, zeros}, f2)});
  ir::Function out = *fn;
  EXPECT_TRUE(SimplifyAlgebra(out));
  EXPECT_EQ(out.outputs[0], x);
  EXPECT_EQ(Def(out, out.outputs[1]).op, OpType::kMul);
  EXPECT_EQ(Def(out, out.outputs[2]).op, OpType::kAdd);
  const auto results = ExpectSameAsUnoptimized(fn, {tensors::FromValue(std::vector<float>{-0.0f, -0.0f})});
  EXPECT_TRUE(std::signbit(results[0].Flat<float>()[1]));
  EXPECT_TRUE(std::signbit(results[2].Flat<float>()[0]));   // -0.0 + -0.0
  EXPECT_FALSE(std::signbit(results[2].Flat<float>()[1]));  // -0.0 + +0.0
}

TEST(Simplify, NegNegCancels) {
  auto g = graph::NewGraph("negneg");
  const auto shape = shapes::Make(dtypes::Float32, 12);
  Node x = graph::Parameter(g.get(), "x", shape);
  Node i = graph::Parameter(g.get(), "i", shapes::Make(dtypes::Int32, 2));
  auto fn = Finish(g.get(), {-(-x), -(-(-x)), -(-i)});
  auto optimized = OptimizeFunction(fn);
  EXPECT_EQ(optimized->outputs[0], optimized->parameters[0]);
  EXPECT_EQ(Count(*optimized, OpType::kNeg), 1);
  EXPECT_EQ(optimized->outputs[2], optimized->parameters[1]);
  const tensors::Tensor arg = testing::FromDoubles(shape, SpecialValues(12));
  const tensors::Tensor ints = tensors::FromValue(std::vector<int32_t>{std::numeric_limits<int32_t>::min(), -7});
  const auto results = ExpectSameAsUnoptimized(fn, {arg, ints});
  EXPECT_TRUE(Identical(results[0], arg));
  EXPECT_TRUE(Identical(results[2], ints));
  const std::vector<double> negated = testing::ToDoubles(results[1]);
  EXPECT_FALSE(std::signbit(negated[0]));  // -(-0.0)
  EXPECT_TRUE(std::signbit(negated[1]));   // -(+0.0)
}

TEST(Simplify, ReshapeChainsCollapse) {
  auto g = graph::NewGraph("reshape");
  const auto shape = shapes::Make(dtypes::Float32, 2, 3);
  Node x = graph::Parameter(g.get(), "x", shape);
  Node flat = graph::Reshape(x, {6});
  auto fn = Finish(g.get(), {graph::Reshape(flat, {3, 2}), graph::Reshape(flat, {2, 3})});
  auto optimized = OptimizeFunction(fn);
  EXPECT_EQ(Count(*optimized, OpType::kReshape), 1);
  const ir::Instruction& r = Def(*optimized, optimized->outputs[0]);
  EXPECT_EQ(r.op, OpType::kReshape);
  EXPECT_EQ(r.operands[0], optimized->parameters[0]);
  EXPECT_EQ(optimized->outputs[1], optimized->parameters[0]);
  testing::Rng rng(6);
  const tensors::Tensor arg = testing::Random(shape, rng);
  const auto results = ExpectSameAsUnoptimized(fn, {arg});
  EXPECT_EQ(testing::ToDoubles(results[0]), testing::ToDoubles(arg));
}

TEST(Simplify, SameShapeReshapeAndConvertAreRemoved) {
  const auto shape = shapes::Make(dtypes::Float32, 2, 2);
  FnBuilder b;
  const int x = b.Param(shape);
  const int r = b.Add(OpType::kReshape, {x}, shape);
  const int c = b.Add(OpType::kConvertDType, {r}, shape);
  const int other = b.Add(OpType::kConvertDType, {x}, shape.WithDType(dtypes::Float64));
  auto fn = b.Finish({c, other});
  auto optimized = OptimizeFunction(fn);
  EXPECT_EQ(optimized->outputs[0], optimized->parameters[0]);
  EXPECT_EQ(Count(*optimized, OpType::kReshape), 0);
  EXPECT_EQ(Count(*optimized, OpType::kConvertDType), 1);
  ExpectSameAsUnoptimized(fn, {tensors::FromValue(std::vector<std::vector<float>>{{1, -0.0f}, {kNaN, 4}})});
}

TEST(Simplify, TransposeChainsCompose) {
  auto g = graph::NewGraph("transpose");
  const auto shape = shapes::Make(dtypes::Float32, 2, 3, 4);
  Node x = graph::Parameter(g.get(), "x", shape);
  Node t = graph::Transpose(x, {1, 2, 0});  // [3, 4, 2]
  Node back = graph::Transpose(t, {2, 0, 1});
  Node swapped = graph::Transpose(t, {1, 0, 2});  // x's axes {2, 1, 0}
  auto fn = Finish(g.get(), {back, swapped});
  auto optimized = OptimizeFunction(fn);
  EXPECT_EQ(optimized->outputs[0], optimized->parameters[0]);
  const ir::Instruction& composed = Def(*optimized, optimized->outputs[1]);
  ASSERT_EQ(composed.op, OpType::kTranspose);
  EXPECT_EQ(composed.operands[0], optimized->parameters[0]);
  EXPECT_EQ(ir::Attr<ir::AxesAttrs>(composed).axes, (std::vector<int64_t>{2, 1, 0}));
  EXPECT_EQ(Count(*optimized, OpType::kTranspose), 1);

  testing::Rng rng(7);
  const tensors::Tensor arg = testing::Random(shape, rng);
  const auto results = ExpectSameAsUnoptimized(fn, {arg});
  const std::vector<double> in = testing::ToDoubles(arg), out = testing::ToDoubles(results[1]);
  for (int64_t i = 0; i < 4; ++i) {  // out[i][j][k] = x[k][j][i]
    for (int64_t j = 0; j < 3; ++j) {
      for (int64_t k = 0; k < 2; ++k) EXPECT_EQ(out[(i * 3 + j) * 2 + k], in[(k * 3 + j) * 4 + i]);
    }
  }
}

// A Transpose that moves only axes of size 1 becomes a Reshape (an alias);
// one that also reorders two larger axes stays a Transpose.
TEST(Simplify, TransposeOfUnitAxesBecomesAReshape) {
  auto g = graph::NewGraph("unit_transpose");
  const auto shape = shapes::Make(dtypes::Float32, 2, 3, 1, 4);
  Node x = graph::Parameter(g.get(), "x", shape);
  Node unit_moved = graph::Transpose(x, {0, 2, 1, 3});   // [2, 1, 3, 4]
  Node unit_first = graph::Transpose(x, {2, 0, 1, 3});   // [1, 2, 3, 4]
  Node reordered = graph::Transpose(x, {0, 2, 3, 1});    // [2, 1, 4, 3]: 3 and 4 swap
  Node of_ones = graph::Transpose(graph::Reshape(x, {2, 3, 4, 1, 1}), {0, 4, 1, 3, 2});  // [2, 1, 3, 1, 4]
  auto fn = Finish(g.get(), {unit_moved, unit_first, reordered, of_ones});
  auto optimized = OptimizeFunction(fn);
  for (int i : {0, 1, 3}) {
    const ir::Instruction& r = Def(*optimized, optimized->outputs[static_cast<size_t>(i)]);
    EXPECT_EQ(r.op, OpType::kReshape) << "output " << i;
    EXPECT_EQ(r.shape, fn->instructions[static_cast<size_t>(fn->outputs[static_cast<size_t>(i)])].shape);
  }
  EXPECT_EQ(Def(*optimized, optimized->outputs[2]).op, OpType::kTranspose);
  EXPECT_EQ(Count(*optimized, OpType::kTranspose), 1);
  testing::Rng rng(9);
  const tensors::Tensor arg = testing::Random(shape, rng);
  const auto results = ExpectSameAsUnoptimized(fn, {arg});
  EXPECT_EQ(testing::ToDoubles(results[0]), testing::ToDoubles(arg));  // same elements in the same order
  const std::vector<double> in = testing::ToDoubles(arg), out = testing::ToDoubles(results[2]);
  for (int64_t i = 0; i < 2; ++i) {  // out[i][0][k][j] = x[i][j][0][k]
    for (int64_t j = 0; j < 3; ++j) {
      for (int64_t k = 0; k < 4; ++k) EXPECT_EQ(out[(i * 4 + k) * 3 + j], in[(i * 3 + j) * 4 + k]);
    }
  }
}

// Transpose(DotGeneral(a, b)) swapping the free axes is DotGeneral(b, a);
// not when the dot has another user, nor for other permutations.
TEST(Simplify, TransposeOfADotBecomesTheSwappedDot) {
  auto g = graph::NewGraph("dot_transpose");
  Node a = graph::Parameter(g.get(), "a", shapes::Make(dtypes::Float64, 2, 3, 5));
  Node b = graph::Parameter(g.get(), "b", shapes::Make(dtypes::Float64, 2, 5, 4));
  Node c = graph::Parameter(g.get(), "c", shapes::Make(dtypes::Float64, 5, 3));
  Node batched = graph::DotGeneral(a, {2}, {0}, b, {1}, {0});                 // [2, 3, 4]
  Node folded = graph::Transpose(batched, {0, 2, 1});                          // [2, 4, 3]
  Node plain = graph::Transpose(graph::DotGeneral(c, {0}, {}, c, {0}, {}), {1, 0});  // c^T c, transposed
  Node shared = graph::DotGeneral(c, {1}, {}, c, {1}, {});                    // c c^T, also an output
  Node shared_t = graph::Transpose(shared, {1, 0});
  Node moved_batch = graph::Transpose(graph::DotGeneral(b, {1}, {0}, a, {2}, {0}), {2, 1, 0});
  auto fn = Finish(g.get(), {folded, plain, shared, shared_t, moved_batch});
  auto optimized = OptimizeFunction(fn);
  const ir::Instruction& f = Def(*optimized, optimized->outputs[0]);
  ASSERT_EQ(f.op, OpType::kDotGeneral);
  EXPECT_EQ(f.operands, (std::vector<int>{optimized->parameters[1], optimized->parameters[0]}));
  EXPECT_EQ(ir::Attr<ir::DotGeneralAttrs>(f), (ir::DotGeneralAttrs{{0}, {1}, {0}, {2}}));
  EXPECT_EQ(Def(*optimized, optimized->outputs[1]).op, OpType::kDotGeneral);
  EXPECT_EQ(Def(*optimized, optimized->outputs[3]).op, OpType::kTranspose);  // its dot is also an output
  EXPECT_EQ(Def(*optimized, optimized->outputs[4]).op, OpType::kTranspose);  // moves the batch axis
  // Float64 products sum in the same order either way: bit-identical.
  testing::Rng rng(8);
  ExpectSameAsUnoptimized(fn, {testing::Random(shapes::Make(dtypes::Float64, 2, 3, 5), rng),
                               testing::Random(shapes::Make(dtypes::Float64, 2, 5, 4), rng),
                               testing::Random(shapes::Make(dtypes::Float64, 5, 3), rng)});
}

TEST(Simplify, BroadcastChainsCompose) {
  auto g = graph::NewGraph("broadcast");
  Node x = graph::Parameter(g.get(), "x", shapes::Make(dtypes::Float32, 3));
  Node b1 = graph::BroadcastInDim(x, {4, 3}, {1});
  Node b2 = graph::BroadcastInDim(b1, {2, 4, 3}, {1, 2});
  auto fn = Finish(g.get(), {b2});
  auto optimized = OptimizeFunction(fn);
  ASSERT_EQ(Count(*optimized, OpType::kBroadcastInDim), 1);
  const ir::Instruction& composed = Def(*optimized, optimized->outputs[0]);
  EXPECT_EQ(composed.operands[0], optimized->parameters[0]);
  EXPECT_EQ(ir::Attr<ir::AxesAttrs>(composed).axes, (std::vector<int64_t>{2}));
  const auto results = ExpectSameAsUnoptimized(fn, {tensors::FromValue(std::vector<float>{1, -0.0f, kNaN})});
  const std::vector<double> out = testing::ToDoubles(results[0]);
  ASSERT_EQ(out.size(), 24u);
  for (size_t i = 0; i < 24; i += 3) {
    EXPECT_EQ(out[i], 1);
    EXPECT_TRUE(std::signbit(out[i + 1]));
    EXPECT_TRUE(std::isnan(out[i + 2]));
  }
}

// ------------------------------------------------------------- The pipeline.

TEST(Optimize, NullAndInvalidFunctionsAreErrors) {
  KILN_EXPECT_ERROR(OptimizeFunction(nullptr), "cpu: OptimizeFunction of a null function");
  auto bad = std::make_shared<ir::Function>(ir::Function{.name = "bad"});
  bad->outputs = {3};
  KILN_EXPECT_ERROR(OptimizeFunction(bad), "output %3 does not exist");
}

// All passes together on a graph full of redundancy, through Compile.
TEST(Optimize, RedundantGraphShrinksThroughCompile) {
  auto g = graph::NewGraph("redundant");
  const auto shape = shapes::Make(dtypes::Float32, 8, 16);
  Node x = graph::Parameter(g.get(), "x", shape);
  graph::Parameter(g.get(), "unused", shapes::Make(dtypes::Int32));  // stays: part of the signature
  Node scale = graph::Exp(graph::Const(g.get(), std::vector<float>{0.0f})) * 2.0;  // folds to [2]
  Node y = (x * 1.0) * graph::BroadcastInDim(scale, {8, 16}, {1}) + (-0.0);
  Node z = graph::Tanh(y) + graph::Tanh(y);  // CSE
  graph::Sqrt(z);                            // dead
  Node w = graph::Transpose(graph::Transpose(z, {1, 0}), {1, 0});
  auto fn = Finish(g.get(), {w, graph::Reshape(graph::Reshape(x, {128}), {16, 8})});

  testing::Rng rng(8);
  const tensors::Tensor arg = testing::Random(shape, rng);
  size_t optimized_size = 0, plain_size = 0;
  const auto optimized = Execute(fn, {arg, tensors::FromValue(int32_t{1})}, true, &optimized_size);
  const auto plain = Execute(fn, {arg, tensors::FromValue(int32_t{1})}, false, &plain_size);
  EXPECT_EQ(plain_size, fn->instructions.size());
  // x, unused, the scale broadcast to [8, 16] folded into one constant (128
  // elements, under the limit), Mul, Tanh, Add, Reshape.
  EXPECT_EQ(optimized_size, 7u) << OptimizeFunction(fn)->ToString();
  for (size_t i = 0; i < 2; ++i) EXPECT_TRUE(Identical(optimized[i], plain[i]));
  const std::vector<double> in = testing::ToDoubles(arg), out = testing::ToDoubles(optimized[0]);
  for (size_t i = 0; i < in.size(); ++i) EXPECT_NEAR(out[i], 2 * std::tanh(2 * in[i]), 1e-5);
}

// A backend that records the functions it compiles, then compiles them on the CPU.
class RecordingBackend : public backends::Backend {
 public:
  std::string Name() const override { return "recording"; }
  std::string Description() const override { return "records compiled functions"; }
  const backends::Capabilities& GetCapabilities() const override { return cpu_->GetCapabilities(); }
  backends::BufferPtr BufferFromHost(const shapes::Shape& s, const void* d) override { return cpu_->BufferFromHost(s, d); }
  std::unique_ptr<backends::Executable> Compile(std::shared_ptr<const ir::Function> fn) override {
    std::lock_guard lock(mu_);
    compiled_.push_back(fn);
    return cpu_->Compile(std::move(fn));
  }
  // The largest function compiled so far (the train step).
  std::shared_ptr<const ir::Function> Largest() {
    std::lock_guard lock(mu_);
    std::shared_ptr<const ir::Function> largest;
    for (const auto& fn : compiled_) {
      if (!largest || fn->instructions.size() > largest->instructions.size()) largest = fn;
    }
    return largest;
  }

 private:
  std::shared_ptr<backends::Backend> cpu_ = backends::NewWithName("cpu");
  std::mutex mu_;
  std::vector<std::shared_ptr<const ir::Function>> compiled_;
};

std::vector<Node> Mlp(context::Context ctx, const std::vector<Node>& inputs) {
  Node h = graph::Relu(ml::layers::Dense(ctx.In("hidden"), inputs[0], 32));
  return {ml::layers::Dense(ctx.In("out"), h, 4)};
}

// Trains a small MLP with Adam for a few steps; returns the loss of each.
std::vector<double> TrainMlp(const std::shared_ptr<backends::Backend>& backend, bool optimize) {
  testing::ScopedEnv env("KILN_CPU_OPTIMIZE", optimize ? "1" : "0");
  context::Context ctx = context::New();
  ctx.SetSeed(11);
  auto trainer = ml::train::NewTrainer(backend, ctx, Mlp, ml::losses::SparseCategoricalCrossEntropyLogits,
                                       ml::optimizers::Adam());
  testing::Rng rng(12);
  std::vector<double> losses;
  for (int step = 0; step < 4; ++step) {
    ml::datasets::Batch batch;
    batch.inputs = {testing::Random(shapes::Make(dtypes::Float32, 16, 10), rng)};
    batch.labels = {testing::Random(shapes::Make(dtypes::Int32, 16), rng, 0, 3)};
    losses.push_back(trainer->TrainStep(batch).at("loss"));
  }
  return losses;
}

TEST(Optimize, MlpTrainStepShrinksAndTrainsBitIdentically) {
  auto recording = std::make_shared<RecordingBackend>();
  const std::vector<double> optimized = TrainMlp(recording, true);
  const std::vector<double> plain = TrainMlp(backends::NewWithName("cpu"), false);
  EXPECT_EQ(optimized, plain);

  auto step = recording->Largest();
  ASSERT_TRUE(step);
  auto smaller = OptimizeFunction(step);
  EXPECT_LT(smaller->instructions.size(), step->instructions.size());
  EXPECT_EQ(smaller->parameters.size(), step->parameters.size());
  ASSERT_EQ(smaller->outputs.size(), step->outputs.size());
  for (size_t i = 0; i < step->outputs.size(); ++i) {
    EXPECT_EQ(Def(*smaller, smaller->outputs[i]).shape, Def(*step, step->outputs[i]).shape);
  }
  RecordProperty("train_step_instructions", static_cast<int>(step->instructions.size()));
  RecordProperty("optimized_instructions", static_cast<int>(smaller->instructions.size()));
  // Optimizing again finds nothing left to do.
  EXPECT_EQ(OptimizeFunction(smaller), smaller);
}

}  // namespace
}  // namespace kiln
