// Copyright 2026 The Kiln Authors.
// Gradient cases of the complex-number ops (Complex, Real, Imag, Fft), of
// Abs, Sign, CumSum, CumProd, window products and ReduceProduct on complex values, and of the holomorphic ops on
// complex values (whose rules autodiff conjugates),
// checked by finite differences of each part of each Complex128 argument.
#include "kiln/graph/cumulative.h"
#include "kiln/graph/fft.h"
#include "tests/graph/grad_cases.h"

namespace kiln::testing {

namespace {

using graph::Node;
using ir::OpType;

// A Complex128 tensor of `dims`, both parts uniform in [lo, hi].
tensors::Tensor ComplexValues(std::vector<int64_t> dims, uint64_t seed, double lo = -1, double hi = 1) {
  Rng rng(seed);
  return Random(shapes::Shape(dtypes::Complex128, std::move(dims)), rng, lo, hi);
}

}  // namespace

std::vector<GradCase> ComplexGradCases() {
  std::vector<GradCase> c;
  using Args = const std::vector<Node>&;
  c.push_back({OpType::kComplex, "Complex of broadcast parts",
               [](Args p) { return graph::Complex(p[0], p[1]); }, {Uniform({2, 3}, -1, 1, 1), Uniform({3}, -1, 1, 2)}});
  c.push_back({OpType::kReal, "Real", [](Args p) { return graph::Real(p[0]); }, {ComplexValues({2, 3}, 3)}});
  c.push_back({OpType::kImag, "Imag", [](Args p) { return graph::Imag(p[0]); }, {ComplexValues({2, 3}, 4)}});
  c.push_back({OpType::kReal, "Conj times z (non-holomorphic)", [](Args p) { return graph::Conj(p[0]) * p[0]; },
               {ComplexValues({4}, 5)}});
  c.push_back({OpType::kAtan2, "Angle", [](Args p) { return graph::Angle(p[0]); }, {ComplexValues({5}, 6)}});
  c.push_back({OpType::kAbs, "Abs complex", [](Args p) { return graph::Abs(p[0]); }, {ComplexValues({5}, 7)}});
  c.push_back({OpType::kSign, "Sign complex (z / |z|, non-holomorphic)", [](Args p) { return graph::Sign(p[0]); },
               {ComplexValues({5}, 8)}});

  // Holomorphic ops on complex values: the rules' conjugation (autodiff.cc).
  auto unary = [&](OpType op, const std::string& name, Node (*f)(Node, graph::Loc), double lo, double hi) {
    c.push_back({op, name + " complex", [f](Args p) { return f(p[0], graph::Loc::current()); },
                 {ComplexValues({2, 3}, 10 + static_cast<uint64_t>(op), lo, hi)}});
  };
  unary(OpType::kNeg, "Neg", graph::Neg, -1, 1);
  unary(OpType::kExp, "Exp", graph::Exp, -1, 1);
  unary(OpType::kLog, "Log", graph::Log, 0.2, 1);  // away from the branch cut
  unary(OpType::kSin, "Sin", graph::Sin, -1, 1);
  unary(OpType::kCos, "Cos", graph::Cos, -1, 1);
  unary(OpType::kTanh, "Tanh", graph::Tanh, -1, 1);
  unary(OpType::kExpm1, "Expm1", graph::Expm1, -1, 1);
  unary(OpType::kLog1p, "Log1p", graph::Log1p, -0.4, 0.4);  // both paths of the kernel: |parts| < 0.5 and beyond
  c.push_back({OpType::kLog1p, "Log1p complex away from 0", [](Args p) { return graph::Log1p(p[0]); },
               {ComplexValues({2, 3}, 31, 0.6, 2)}});
  unary(OpType::kSqrt, "Sqrt", graph::Sqrt, 0.2, 1);
  unary(OpType::kRsqrt, "Rsqrt", graph::Rsqrt, 0.2, 1);
  auto binary = [&](OpType op, const std::string& name, Node (*f)(Node, Node, graph::Loc)) {
    c.push_back({op, name + " complex", [f](Args p) { return f(p[0], p[1], graph::Loc::current()); },
                 {ComplexValues({2, 3}, 40 + static_cast<uint64_t>(op), 0.3, 1),
                  ComplexValues({3}, 60 + static_cast<uint64_t>(op), 0.3, 1)}});
  };
  binary(OpType::kAdd, "Add", graph::Add);
  binary(OpType::kSub, "Sub", graph::Sub);
  binary(OpType::kMul, "Mul", graph::Mul);
  binary(OpType::kDiv, "Div", graph::Div);
  binary(OpType::kPow, "Pow", graph::Pow);  // parts in [0.3, 1]: away from the branch cut
  c.push_back({OpType::kConvertDType, "ConvertDType real to complex",
               [](Args p) { return graph::ConvertDType(p[0], dtypes::Complex128) * p[1]; },
               {Uniform({3}, -1, 1, 80), ComplexValues({3}, 81)}});
  c.push_back({OpType::kDotGeneral, "MatMul complex", [](Args p) { return graph::MatMul(p[0], p[1]); },
               {ComplexValues({2, 3}, 82), ComplexValues({3, 4}, 83)}});
  c.push_back({OpType::kReduceWindow, "CumSum complex, reversed",
               [](Args p) { return graph::CumSum(p[0], 1, {.reverse = true}); }, {ComplexValues({2, 4}, 85)}});
  c.push_back({OpType::kReduceWindow, "CumProd complex",
               [](Args p) { return graph::CumProd(p[0], 1); }, {ComplexValues({2, 4}, 86)}});
  c.push_back({OpType::kReduceWindow, "CumProd complex, exclusive and reversed, with a zero",
               [](Args p) {
                 Node column = graph::Iota(p[0].Graph(), shapes::Make(dtypes::Int32, 2, 4), 1);
                 Node x = graph::Where(graph::Equal(column, graph::ScalarLike(column, 1)), graph::ZerosLike(p[0]), p[0]);
                 return graph::CumProd(x, 1, {.exclusive = true, .reverse = true});
               },
               {ComplexValues({2, 4}, 87)}});
  c.push_back({OpType::kReduceWindow, "window product complex (window 2, stride 1)",
               [](Args p) {
                 ir::WindowAttrs pairs;
                 pairs.reduction = ir::WindowReduction::kProduct;
                 pairs.window_dimensions = {1, 2};
                 return graph::ReduceWindow(p[0], pairs);
               },
               {ComplexValues({2, 4}, 88)}});
  c.push_back({OpType::kReduceProduct, "ReduceProduct complex", [](Args p) { return graph::ReduceProduct(p[0], {1}); },
               {ComplexValues({2, 4}, 89)}});
  c.push_back({OpType::kReduceProduct, "ReduceProduct complex, one zero per row",
               [](Args p) {
                 Node column = graph::Iota(p[0].Graph(), shapes::Make(dtypes::Int32, 2, 4), 1);
                 Node x = graph::Where(graph::Equal(column, graph::ScalarLike(column, 2)), graph::ZerosLike(p[0]), p[0]);
                 return graph::ReduceProduct(x, {1});
               },
               {ComplexValues({2, 4}, 95)}});
  c.push_back({OpType::kReduceProduct, "ReduceProduct complex, with zeros, over both axes",
               [](Args p) {
                 Node column = graph::Iota(p[0].Graph(), shapes::Make(dtypes::Int32, 2, 3), 1);
                 Node x = graph::Where(graph::Equal(column, graph::ScalarLike(column, 1)), graph::ZerosLike(p[0]), p[0]);
                 return graph::ReduceProduct(x * p[0], {0, 1}) + graph::ReduceProduct(p[0], {0});
               },
               {ComplexValues({2, 3}, 94)}});
  c.push_back({OpType::kReduceSum, "ReduceSum complex", [](Args p) { return graph::ReduceSum(p[0], {1}); },
               {ComplexValues({2, 3}, 84)}});

  // The transforms: each type, one to three axes, even and odd lengths.
  c.push_back({OpType::kFft, "FFT last axis", [](Args p) { return graph::FFT(p[0]); }, {ComplexValues({2, 5}, 90)}});
  c.push_back({OpType::kFft, "FFT two axes", [](Args p) { return graph::FFT(p[0], 2); }, {ComplexValues({3, 4}, 91)}});
  c.push_back({OpType::kFft, "IFFT three axes", [](Args p) { return graph::IFFT(p[0], 3); },
               {ComplexValues({2, 2, 3}, 92)}});
  c.push_back({OpType::kFft, "RFFT even", [](Args p) { return graph::RFFT(p[0]); }, {Uniform({2, 6}, -1, 1, 93)}});
  c.push_back({OpType::kFft, "RFFT odd two axes", [](Args p) { return graph::RFFT(p[0], 2); },
               {Uniform({3, 5}, -1, 1, 94)}});
  c.push_back({OpType::kFft, "IRFFT even", [](Args p) { return graph::IRFFT(p[0]); }, {ComplexValues({2, 4}, 95)}});
  c.push_back({OpType::kFft, "IRFFT odd", [](Args p) { return graph::IRFFT(p[0], 1, 7); },
               {ComplexValues({4}, 96)}});
  c.push_back({OpType::kFft, "IRFFT two axes", [](Args p) { return graph::IRFFT(p[0], 2, 6); },
               {ComplexValues({3, 4}, 97)}});
  return c;
}

}  // namespace kiln::testing
