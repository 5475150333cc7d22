// Copyright 2026 The Kiln Authors.
#include "tests/testing/op_cases.h"

#include "kiln/graph/attention.h"
#include "kiln/graph/autodiff.h"
#include "kiln/graph/collective.h"
#include "kiln/graph/control_flow.h"
#include "kiln/graph/fft.h"
#include "kiln/graph/linalg.h"
#include "kiln/graph/sort.h"
#include "tests/testing/testing.h"

namespace kiln::testing {

namespace {

using graph::Graph;
using graph::Node;
using ir::OpType;

// A constant of `dims` and `dtype` with small random values (deterministic).
Node Input(Graph* g, dtypes::DType dtype, std::vector<int64_t> dims, double lo = 1, double hi = 3) {
  Rng rng(7);
  return graph::Const(g, Random(shapes::Shape(dtype, std::move(dims)), rng, lo, hi));
}

Node Index(Graph* g, int32_t v) { return graph::Const(g, v); }

ir::WindowAttrs Window(ir::WindowReduction r) {
  ir::WindowAttrs w;
  w.reduction = r;
  w.window_dimensions = {2, 2};
  w.strides = {1, 1};
  return w;
}

std::vector<OpCase> MakeCases() {
  std::vector<OpCase> cases;
  auto unary = [&](OpType op, Node (*f)(Node, graph::Loc)) {
    cases.push_back({op, [f](Graph* g, dtypes::DType dt) { return f(Input(g, dt, {5}), graph::Loc::current()); }});
  };
  auto binary = [&](OpType op, Node (*f)(Node, Node, graph::Loc)) {
    cases.push_back({op, [f](Graph* g, dtypes::DType dt) {
                       return f(Input(g, dt, {2, 3}), Input(g, dt, {3}), graph::Loc::current());
                     }});
  };
  cases.push_back({OpType::kIota, [](Graph* g, dtypes::DType dt) { return graph::Iota(g, shapes::Make(dt, 3, 4), 1); }});
  unary(OpType::kAbs, graph::Abs);
  unary(OpType::kNeg, graph::Neg);
  unary(OpType::kSign, graph::Sign);
  unary(OpType::kCeil, graph::Ceil);
  unary(OpType::kFloor, graph::Floor);
  unary(OpType::kRound, graph::Round);
  unary(OpType::kExp, graph::Exp);
  unary(OpType::kExpm1, graph::Expm1);
  unary(OpType::kLog, graph::Log);
  unary(OpType::kLog1p, graph::Log1p);
  unary(OpType::kLogistic, graph::Logistic);
  unary(OpType::kSin, graph::Sin);
  unary(OpType::kCos, graph::Cos);
  unary(OpType::kTanh, graph::Tanh);
  unary(OpType::kSqrt, graph::Sqrt);
  unary(OpType::kRsqrt, graph::Rsqrt);
  unary(OpType::kErf, graph::Erf);
  unary(OpType::kIsFinite, graph::IsFinite);
  unary(OpType::kIsNaN, graph::IsNaN);
  unary(OpType::kBitCount, graph::BitCount);
  unary(OpType::kClz, graph::Clz);
  unary(OpType::kBitwiseNot, graph::BitwiseNot);
  unary(OpType::kLogicalNot, graph::LogicalNot);
  binary(OpType::kAdd, graph::Add);
  binary(OpType::kSub, graph::Sub);
  binary(OpType::kMul, graph::Mul);
  binary(OpType::kDiv, graph::Div);
  binary(OpType::kRem, graph::Rem);
  binary(OpType::kPow, graph::Pow);
  binary(OpType::kMax, graph::Max);
  binary(OpType::kMin, graph::Min);
  binary(OpType::kAtan2, graph::Atan2);
  binary(OpType::kBitwiseAnd, graph::BitwiseAnd);
  binary(OpType::kBitwiseOr, graph::BitwiseOr);
  binary(OpType::kBitwiseXor, graph::BitwiseXor);
  binary(OpType::kLogicalAnd, graph::LogicalAnd);
  binary(OpType::kLogicalOr, graph::LogicalOr);
  binary(OpType::kLogicalXor, graph::LogicalXor);
  binary(OpType::kShiftLeft, graph::ShiftLeft);
  binary(OpType::kShiftRightArithmetic, graph::ShiftRightArithmetic);
  binary(OpType::kShiftRightLogical, graph::ShiftRightLogical);
  binary(OpType::kEqual, graph::Equal);
  binary(OpType::kNotEqual, graph::NotEqual);
  binary(OpType::kGreaterThan, graph::GreaterThan);
  binary(OpType::kGreaterOrEqual, graph::GreaterOrEqual);
  binary(OpType::kLessThan, graph::LessThan);
  binary(OpType::kLessOrEqual, graph::LessOrEqual);
  cases.push_back({OpType::kWhere, [](Graph* g, dtypes::DType dt) {
                     return graph::Where(Input(g, dtypes::Bool, {2, 3}), Input(g, dt, {2, 3}), Input(g, dt, {3}));
                   }});
  cases.push_back({OpType::kClamp, [](Graph* g, dtypes::DType dt) {
                     return graph::Clamp(Input(g, dt, {}), Input(g, dt, {2, 3}, 0, 4), Input(g, dt, {}, 2, 3));
                   }});
  cases.push_back({OpType::kConvertDType, [](Graph* g, dtypes::DType dt) {
                     // Converts from every dtype into `dt`: the case exercises all sources.
                     Node sum;
                     for (dtypes::DType from : dtypes::kAll) {
                       // (complex to real is refused: it would drop the imaginary part)
                       if (from == dt || (dtypes::IsComplex(from) && !dtypes::IsComplex(dt))) continue;
                       Node c = graph::ConvertDType(Input(g, from, {4}), dt);
                       sum = sum.Ok() ? graph::Concatenate({sum, c}, 0) : c;
                     }
                     return sum;
                   }});
  cases.push_back({OpType::kBitcast, [](Graph* g, dtypes::DType dt) {
                     return graph::Bitcast(Input(g, dt, {4}), dtypes::Uint8);
                   }});
  cases.push_back({OpType::kReshape, [](Graph* g, dtypes::DType dt) { return graph::Reshape(Input(g, dt, {2, 3}), {3, 2}); }});
  cases.push_back({OpType::kTranspose, [](Graph* g, dtypes::DType dt) {
                     return graph::Transpose(Input(g, dt, {2, 3, 4}), {2, 0, 1});
                   }});
  cases.push_back({OpType::kBroadcastInDim, [](Graph* g, dtypes::DType dt) {
                     return graph::BroadcastInDim(Input(g, dt, {3}), {2, 3}, {1});
                   }});
  cases.push_back({OpType::kConcatenate, [](Graph* g, dtypes::DType dt) {
                     return graph::Concatenate({Input(g, dt, {2, 3}), Input(g, dt, {1, 3})}, 0);
                   }});
  cases.push_back({OpType::kSlice, [](Graph* g, dtypes::DType dt) {
                     return graph::Slice(Input(g, dt, {4, 5}), {1, 0}, {4, 5}, {2, 2});
                   }});
  cases.push_back({OpType::kPad, [](Graph* g, dtypes::DType dt) {
                     return graph::Pad(Input(g, dt, {3, 2}), Input(g, dt, {}), {1, -1}, {0, 2}, {1, 0});
                   }});
  cases.push_back({OpType::kReverse, [](Graph* g, dtypes::DType dt) { return graph::Reverse(Input(g, dt, {3, 2}), {0}); }});
  cases.push_back({OpType::kDynamicSlice, [](Graph* g, dtypes::DType dt) {
                     return graph::DynamicSlice(Input(g, dt, {4, 5}), {Index(g, 1), Index(g, 9)}, {2, 2});
                   }});
  cases.push_back({OpType::kDynamicUpdateSlice, [](Graph* g, dtypes::DType dt) {
                     return graph::DynamicUpdateSlice(Input(g, dt, {4, 5}), Input(g, dt, {2, 2}), {Index(g, 1), Index(g, -1)});
                   }});
  auto reduce = [&](OpType op, Node (*f)(Node, std::vector<int>, graph::Loc)) {
    cases.push_back({op, [f](Graph* g, dtypes::DType dt) { return f(Input(g, dt, {3, 4}), {1}, graph::Loc::current()); }});
  };
  reduce(OpType::kReduceSum, graph::ReduceSum);
  reduce(OpType::kReduceProduct, graph::ReduceProduct);
  reduce(OpType::kReduceMax, graph::ReduceMax);
  reduce(OpType::kReduceMin, graph::ReduceMin);
  reduce(OpType::kReduceLogicalAnd, graph::ReduceLogicalAnd);
  reduce(OpType::kReduceLogicalOr, graph::ReduceLogicalOr);
  reduce(OpType::kReduceLogicalXor, graph::ReduceLogicalXor);
  reduce(OpType::kReduceBitwiseAnd, graph::ReduceBitwiseAnd);
  reduce(OpType::kReduceBitwiseOr, graph::ReduceBitwiseOr);
  reduce(OpType::kReduceBitwiseXor, graph::ReduceBitwiseXor);
  cases.push_back({OpType::kArgMinMax, [](Graph* g, dtypes::DType dt) {
                     return graph::ArgMinMax(Input(g, dt, {3, 4}), 1, false);
                   }});
  cases.push_back({OpType::kDotGeneral, [](Graph* g, dtypes::DType dt) {
                     return graph::DotGeneral(Input(g, dt, {2, 3, 4}), {2}, {0}, Input(g, dt, {2, 4, 5}), {1}, {0});
                   }});
  cases.push_back({OpType::kConvGeneral, [](Graph* g, dtypes::DType dt) {
                     ir::ConvAttrs a;
                     a.input_batch_axis = 0;
                     a.input_feature_axis = 3;
                     a.input_spatial_axes = {1, 2};
                     a.kernel_spatial_axes = {0, 1};
                     a.kernel_input_feature_axis = 2;
                     a.kernel_output_feature_axis = 3;
                     a.output_batch_axis = 0;
                     a.output_feature_axis = 3;
                     a.output_spatial_axes = {1, 2};
                     a.padding_low = {1, 1};
                     a.padding_high = {1, 1};
                     return graph::ConvGeneral(Input(g, dt, {1, 5, 5, 2}), Input(g, dt, {3, 3, 2, 4}), a);
                   }});
  cases.push_back({OpType::kReduceWindow, [](Graph* g, dtypes::DType dt) {
                     // Complex windows sum or multiply (max has no meaning for them).
                     const auto reduction = dtypes::IsComplex(dt) ? ir::WindowReduction::kProduct : ir::WindowReduction::kMax;
                     return graph::ReduceWindow(Input(g, dt, {4, 4}), Window(reduction));
                   }});
  cases.push_back({OpType::kSelectAndScatter, [](Graph* g, dtypes::DType dt) {
                     return graph::SelectAndScatter(Input(g, dt, {4, 4}), Input(g, dt, {3, 3}),
                                                    Window(ir::WindowReduction::kMax));
                   }});
  auto embedding_gather = [](Graph* g, dtypes::DType dt) {
    ir::GatherAttrs a;
    a.offset_dims = {1};
    a.collapsed_slice_dims = {0};
    a.start_index_map = {0};
    a.index_vector_dim = 1;
    a.slice_sizes = {1, 3};
    return graph::Gather(Input(g, dt, {5, 3}), graph::Const(g, std::vector<std::vector<int32_t>>{{4}, {0}, {2}}), a);
  };
  cases.push_back({OpType::kGather, embedding_gather});
  auto scatter = [&](OpType op, Node (*f)(Node, Node, Node, ir::ScatterAttrs, graph::Loc)) {
    cases.push_back({op, [f](Graph* g, dtypes::DType dt) {
                       ir::ScatterAttrs a;
                       a.update_window_dims = {1};
                       a.inserted_window_dims = {0};
                       a.scatter_dims_to_operand_dims = {0};
                       a.index_vector_dim = 1;
                       return f(Input(g, dt, {5, 3}), graph::Const(g, std::vector<std::vector<int32_t>>{{4}, {0}, {4}}),
                                Input(g, dt, {3, 3}), a, graph::Loc::current());
                     }});
  };
  scatter(OpType::kScatterSum, graph::ScatterSum);
  scatter(OpType::kScatterMax, graph::ScatterMax);
  scatter(OpType::kScatterMin, graph::ScatterMin);
  scatter(OpType::kScatterUpdate, graph::ScatterUpdate);
  cases.push_back({OpType::kRNGBitGenerator, [](Graph* g, dtypes::DType dt) {
                     Node state = graph::Const(g, std::vector<uint64_t>{42, 0, 0});
                     return graph::RNGBitGenerator(state, shapes::Make(dt, 3, 5)).second;
                   }});
  // Control flow carries values of any dtype: a loop that reverses its carry
  // three times, and an If whose branches reverse it or not.
  cases.push_back({OpType::kWhile, [](Graph* g, dtypes::DType dt) {
                     Node i = graph::Const(g, int32_t{0});
                     auto out = graph::While(
                         [](const std::vector<Node>& c) { return graph::LessThan(c[0], graph::ScalarLike(c[0], 3)); },
                         [](const std::vector<Node>& c) {
                           return std::vector<Node>{c[0] + graph::ScalarLike(c[0], 1), graph::Reverse(c[1], {0})};
                         },
                         {i, Input(g, dt, {4})});
                     return out[1];
                   }});
  cases.push_back({OpType::kSort, [](Graph* g, dtypes::DType dt) { return graph::Sort(Input(g, dt, {3, 5}), 1); }});
  // Linear algebra on a diagonally dominant batch (Float32 and Float64 only).
  auto matrices = [](Graph* g, dtypes::DType dt) {
    return Input(g, dt, {2, 3, 3}) + graph::Eye(g, 3, dt) * 10.0;
  };
  cases.push_back({OpType::kCholesky, [=](Graph* g, dtypes::DType dt) { return graph::Cholesky(matrices(g, dt)); }});
  cases.push_back({OpType::kTriangularSolve, [=](Graph* g, dtypes::DType dt) {
                     return graph::TriangularSolve(matrices(g, dt), Input(g, dt, {2, 3, 2}));
                   }});
  cases.push_back({OpType::kLu, [=](Graph* g, dtypes::DType dt) { return graph::Lu(matrices(g, dt)).lu; }});
  cases.push_back({OpType::kQr, [=](Graph* g, dtypes::DType dt) { return graph::Qr(Input(g, dt, {2, 4, 3})).r; }});
  cases.push_back(
      {OpType::kEigh, [=](Graph* g, dtypes::DType dt) { return graph::Eigh(matrices(g, dt)).eigenvectors; }});
  cases.push_back({OpType::kSvd, [=](Graph* g, dtypes::DType dt) { return graph::Svd(Input(g, dt, {2, 3, 4})).u; }});
  // Causal grouped-query attention with a mask (Float32 and Float64 only).
  cases.push_back({OpType::kAttention, [](Graph* g, dtypes::DType dt) {
                     Node mask = graph::LessThan(graph::Iota(g, shapes::Make(dtypes::Int32, 1, 4, 2, 3), 3),
                                                 graph::Const(g, int32_t{2}));
                     return graph::Attention(Input(g, dt, {2, 4, 2, 5}), Input(g, dt, {2, 2, 3, 5}),
                                             Input(g, dt, {2, 2, 3, 5}), mask, {.scale = 0.5, .causal = true});
                   }});
  // Its gradients (AttentionGrad, where the backend has it) for a random
  // output cotangent.
  cases.push_back({OpType::kAttentionGrad, [](Graph* g, dtypes::DType dt) {
                     Node q = Input(g, dt, {2, 4, 2, 5}), k = Input(g, dt, {2, 2, 3, 5}), v = Input(g, dt, {2, 2, 3, 5});
                     Node out = graph::Attention(q, k, v, {}, {.scale = 0.5, .causal = true});
                     std::vector<Node> grads = graph::VJP({out}, {Input(g, dt, {2, 4, 2, 5})}, {q, k, v});
                     return graph::Concatenate({graph::Reshape(grads[0], {80}), graph::Reshape(grads[1], {60}),
                                                graph::Reshape(grads[2], {60})}, 0);
                   }});
  // Complex numbers: Complex takes the parts' dtype; Real, Imag and Fft run
  // on complex values (FFT round trip over two axes), or for real dtypes on
  // a value made complex first (RFFT then IRFFT).
  cases.push_back({OpType::kComplex, [](Graph* g, dtypes::DType dt) {
                     return graph::Complex(Input(g, dt, {2, 3}), Input(g, dt, {3}, -2, 2));
                   }});
  // (Real and Imag of a real value need no instruction: for Float32 and
  // Float64 the case makes a complex value first, so the op runs.)
  auto complex_input = [](Graph* g, dtypes::DType dt) {
    Node x = Input(g, dt, {2, 3});
    if (dt == dtypes::Float32 || dt == dtypes::Float64) x = graph::Complex(x, Input(g, dt, {2, 3}, -2, 2));
    return x;
  };
  cases.push_back({OpType::kReal, [=](Graph* g, dtypes::DType dt) { return graph::Real(complex_input(g, dt)); }});
  cases.push_back({OpType::kImag, [=](Graph* g, dtypes::DType dt) { return graph::Imag(complex_input(g, dt)); }});
  cases.push_back({OpType::kFft, [](Graph* g, dtypes::DType dt) {
                     Node x = Input(g, dt, {2, 3, 4});
                     if (dtypes::IsComplex(dt)) return graph::IFFT(graph::FFT(x, 2), 2);
                     return graph::IRFFT(graph::RFFT(x, 2), 2, 4);
                   }});
  // Outside a distributed job the world has one process: each collective is
  // the identity (tests/distributed runs them across processes).
  cases.push_back({OpType::kCollective, [](Graph* g, dtypes::DType dt) {
                     Node x = Input(g, dt, {2, 3});
                     if (dt == dtypes::Bool) return graph::Broadcast(graph::AllGather(x));
                     const auto op = dtypes::IsComplex(dt) ? ir::ReduceOp::kSum : ir::ReduceOp::kMax;
                     return graph::ReduceScatter(graph::AllReduce(x), op);
                   }});
  cases.push_back({OpType::kIf, [](Graph* g, dtypes::DType dt) {
                     Node x = Input(g, dt, {2, 3});
                     return graph::If(
                         graph::Const(g, true),
                         [](const std::vector<Node>& v) { return std::vector<Node>{graph::Reverse(v[0], {1}), v[0]}; },
                         [](const std::vector<Node>& v) { return std::vector<Node>{v[0], v[0]}; }, {x})[0];
                   }});
  // The payload of a sort (GetTupleElement 1), keyed by the reversed input.
  cases.push_back({OpType::kGetTupleElement, [](Graph* g, dtypes::DType dt) {
                     Node x = Input(g, dt, {2, 3});
                     return graph::SortTogether({graph::Reverse(x, {1}), x}, 1, 1)[1];
                   }});
  return cases;
}

}  // namespace

const std::vector<OpCase>& OpCases() {
  static const std::vector<OpCase> cases = MakeCases();
  return cases;
}

Coverage TryCase(const OpCase& c, dtypes::DType dtype, const std::shared_ptr<backends::Backend>& backend,
                 std::string* detail) {
  graph::Node out;
  std::unique_ptr<graph::Graph> g = graph::NewGraph("coverage");
  try {
    out = c.build(g.get(), dtype);
  } catch (const Error& e) {
    if (detail) *detail = e.what();
    return Coverage::kRejectedByGraph;
  }
  try {
    auto exec = graph::Compile(backend, [&](graph::Graph* traced) {
      graph::Node n = c.build(traced, dtype);
      return n;
    });
    tensors::Tensor result = exec.Call();
    result.HostData();
  } catch (const Error& e) {
    if (detail) *detail = e.what();
    return Coverage::kFails;
  }
  return Coverage::kRuns;
}

}  // namespace kiln::testing
