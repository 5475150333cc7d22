// Copyright 2026 The Kiln Authors.
// The accuracy suite: for ops of the op table and the helpers, losses and
// normalizations built on them, the value and the gradient of sum(out * w)
// in float32, float16 and bfloat16 are compared with Kiln's own float64
// result on the same rounded inputs, over shapes that stress accumulation
// (rows of 32k, reductions of 1M elements, long dot products). Each case's
// error must stay within its budget in tests/accuracy/budgets.h (the one
// table; docs/numerics.md explains it). Also here: 16-bit sums and dot
// products accumulate in float32, and the regression tests of issue 11
// (softmax/logsumexp gradients in float32 against PyTorch's errors).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <vector>

#include "kiln/context/exec.h"
#include "kiln/graph/autodiff.h"
#include "kiln/kiln.h"
#include "kiln/ml/layers/layers.h"
#include "kiln/ml/losses/losses.h"
#include "tests/accuracy/budgets.h"
#include "tests/testing/testing.h"

namespace kiln::testing::accuracy {
namespace {

using dtypes::DType;
using graph::Node;
using tensors::Tensor;

// Under the sanitizers (-O1, instrumented) the big shapes shrink 16x.
#ifdef KILN_ACCURACY_SMALL
constexpr int64_t kShrink = 16;
#else
constexpr int64_t kShrink = 1;
#endif
constexpr int64_t kMillion = (int64_t{1} << 20) / kShrink;
constexpr int64_t kRow32k = 32768 / kShrink;
constexpr int64_t kLongDot = 65536 / kShrink;

// --------------------------------------------------------------- Formats.

struct Format {
  int precision;  // p: significand bits, the implicit one included
  int emin;       // exponent of the smallest normal
};

Format FormatOf(DType d) {
  switch (d) {
    case dtypes::Float16: return {11, -14};
    case dtypes::BFloat16: return {8, -126};
    default: return {24, -126};  // Float32
  }
}

// The unit roundoff u = 2^-p.
double UnitRoundoff(DType d) { return std::ldexp(1.0, -FormatOf(d).precision); }

// The ulp of dtype d at x (values below the smallest normal use its ulp).
double Ulp(double x, DType d) {
  const Format f = FormatOf(d);
  int e;
  std::frexp(std::max(std::fabs(x), std::ldexp(1.0, f.emin)), &e);  // |x| in [2^(e-1), 2^e)
  return std::ldexp(1.0, e - 1 - (f.precision - 1));
}

// The largest elementwise error in ulps of d. Infinities and NaN must match.
double MaxUlpError(const std::vector<double>& got, const std::vector<double>& want, DType d) {
  double worst = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    if (std::isnan(want[i]) || std::isinf(want[i])) {
      if (!(std::isnan(got[i]) && std::isnan(want[i])) && got[i] != want[i]) return INFINITY;
      continue;
    }
    worst = std::max(worst, std::fabs(got[i] - want[i]) / Ulp(want[i], d));
  }
  return worst;
}

// ||got - want||_2 / ||want||_2 (0 when both are 0, Inf when only want is).
double NormwiseError(const std::vector<double>& got, const std::vector<double>& want) {
  double num = 0, den = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const double diff = got[i] - want[i];
    if (std::isnan(diff)) return INFINITY;
    num += diff * diff;
    den += want[i] * want[i];
  }
  if (num == 0) return 0;
  return den == 0 ? INFINITY : std::sqrt(num / den);
}

const Budget& BudgetOf(std::string_view name) {
  for (const Budget& b : kBudgets) {
    if (b.name == name) return b;
  }
  ADD_FAILURE() << "no budget named " << name << " in tests/accuracy/budgets.h";
  static constexpr Budget kNone{"", Metric::kNorm, 0, 0, 0, 0, 0, 0, 0, ""};
  return kNone;
}

// --------------------------------------------------------------- Cases.

struct Input {
  std::vector<int64_t> dims;
  double lo = -1, hi = 1;
  bool integer = false;  // Int32 in [lo, hi]: not rounded, not differentiated
  bool differentiate = true;
};

// The function of a case: nodes in, one output. `ctx` is a fresh context for
// the layers (unused by the others).
using CaseFn = std::function<Node(context::Context ctx, const std::vector<Node>& inputs)>;

struct Case {
  std::string name;    // unique
  std::string budget;  // key in kBudgets
  std::vector<Input> inputs;
  int64_t n = 1;       // accumulation length: the n of the budget's log2(n) and sqrt(n) terms
  CaseFn fn;
  std::vector<DType> dtypes = {dtypes::Float32, dtypes::Float16, dtypes::BFloat16};
  double w_lo = -1;  // the cotangent w is uniform in [w_lo, 1]
};

// Inputs of a case: doubles rounded to `d` (integers as they are).
std::vector<Tensor> MakeInputs(const Case& c, DType d, uint64_t seed) {
  std::vector<Tensor> out;
  Rng rng(seed);
  for (const Input& in : c.inputs) {
    if (in.integer) {
      out.push_back(Random(shapes::Shape(dtypes::Int32, in.dims), rng, in.lo, in.hi));
      continue;
    }
    Tensor t = Random(shapes::Shape(dtypes::Float64, in.dims), rng, in.lo, in.hi);
    out.push_back(FromDoubles(shapes::Shape(d, in.dims), ToDoubles(t)));
  }
  return out;
}

// Converts the float inputs to Float64 (exactly).
std::vector<Tensor> Widen(const Case& c, const std::vector<Tensor>& xs) {
  std::vector<Tensor> out;
  for (size_t i = 0; i < xs.size(); ++i) {
    out.push_back(c.inputs[i].integer ? xs[i] : FromDoubles(shapes::Shape(dtypes::Float64, c.inputs[i].dims),
                                                            ToDoubles(xs[i])));
  }
  return out;
}

// The value and the gradients of sum(out * w) of case `c` computed in the
// dtype of the float inputs; w is random in [c.w_lo, 1] rounded to `rounding`.
std::vector<Tensor> Evaluate(const std::shared_ptr<backends::Backend>& backend, const Case& c,
                             const std::vector<Tensor>& args, DType rounding) {
  auto fn = [&](context::Context ctx, const std::vector<Node>& p) {
    Node out = c.fn(ctx, p);
    Rng rng(77);
    Tensor w64 = Random(shapes::Shape(dtypes::Float64, out.Shape().Dims()), rng, c.w_lo, 1);
    Tensor w = FromDoubles(out.Shape(), ToDoubles(FromDoubles(shapes::Shape(rounding, out.Shape().Dims()),
                                                              ToDoubles(w64))));
    std::vector<Node> wrt;
    for (size_t i = 0; i < p.size(); ++i) {
      if (!c.inputs[i].integer && c.inputs[i].differentiate) wrt.push_back(p[i]);
    }
    std::vector<Node> results = {out};
    if (!wrt.empty()) {
      for (Node g : graph::VJP({out}, {graph::Const(out.Graph(), w)}, wrt)) results.push_back(g);
    }
    return results;
  };
  // Through the context exec engine (the layers need one), with every input a node.
  context::internal::ContextExecCore exec(backend, context::New(), c.name);
  return exec.Call(args, fn);
}

struct Measured {
  double value = 0, value_budget = 0, grad = 0, grad_budget = 0;
};

// The float32 value budget of `b` on `backend_name` (kCudaValueBudgets on
// the CUDA backends).
double ValueBudgetF32(const Budget& b, const std::string& backend_name) {
  if (backend_name.starts_with("cuda")) {
    for (const CudaValueBudget& cuda : kCudaValueBudgets) {
      if (cuda.name == b.name) return cuda.value_f32;
    }
  }
  return b.value_f32;
}

Measured Measure(const std::shared_ptr<backends::Backend>& backend, const std::string& backend_name, const Case& c,
                 DType d) {
  const Budget& b = BudgetOf(c.budget);
  uint64_t seed = 14695981039346656037u;  // FNV-1a of the name: inputs differ per case, not per run
  for (char ch : c.name) seed = (seed ^ static_cast<unsigned char>(ch)) * 1099511628211u;
  const std::vector<Tensor> args = MakeInputs(c, d, seed);
  const std::vector<Tensor> got = Evaluate(backend, c, args, d);
  const std::vector<Tensor> want = Evaluate(backend, c, Widen(c, args), d);
  const double u = UnitRoundoff(d), log2n = std::log2(static_cast<double>(std::max<int64_t>(c.n, 1))),
               sqrtn = std::sqrt(static_cast<double>(std::max<int64_t>(c.n, 1)));
  Measured m;
  const std::vector<double> gv = ToDoubles(got[0]), wv = ToDoubles(want[0]);
  const double base = d == dtypes::Float32 ? ValueBudgetF32(b, backend_name) : b.value_half;
  if (b.value_metric == Metric::kUlp) {
    m.value = MaxUlpError(gv, wv, d);
    m.value_budget = base;
  } else {
    m.value = NormwiseError(gv, wv) / u;
    m.value_budget = base + b.value_per_log2n * log2n + b.value_per_sqrtn * sqrtn;
  }
  for (size_t k = 1; k < got.size(); ++k) m.grad = std::max(m.grad, NormwiseError(ToDoubles(got[k]), ToDoubles(want[k])) / u);
  m.grad_budget = b.grad + b.grad_per_log2n * log2n + b.grad_per_sqrtn * sqrtn;
  return m;
}

// A case of one float input.
Case Unary(const std::string& name, double lo, double hi, std::function<Node(Node)> f, int64_t size = 1 << 16) {
  return {name, name, {{{size}, lo, hi}}, 1, [f](context::Context, const std::vector<Node>& p) { return f(p[0]); }};
}

Case Binary(const std::string& name, Input a, Input b, std::function<Node(Node, Node)> f) {
  return {name, name, {a, b}, 1, [f](context::Context, const std::vector<Node>& p) { return f(p[0], p[1]); }};
}

ir::ConvAttrs Nchw() {
  ir::ConvAttrs a;
  a.input_batch_axis = 0;
  a.input_feature_axis = 1;
  a.input_spatial_axes = {2, 3};
  a.kernel_output_feature_axis = 0;
  a.kernel_input_feature_axis = 1;
  a.kernel_spatial_axes = {2, 3};
  a.output_batch_axis = 0;
  a.output_feature_axis = 1;
  a.output_spatial_axes = {2, 3};
  a.padding_low = {1, 1};
  a.padding_high = {1, 1};
  return a;
}

// A loss of (labels, predictions) as a case function.
CaseFn LossCase(ml::losses::LossFn loss) {
  return [loss](context::Context, const std::vector<Node>& p) { return loss({p[0]}, {p[1]}); };
}

std::vector<Case> AllCases() {
  using graph::Node;
  std::vector<Case> cases;
  // ---- Elementwise (values over a range that avoids overflow and the
  // 16-bit subnormals).
  const Input a{{1 << 16}, -4, 4}, pos{{1 << 16}, 0.01, 8};
  cases.push_back(Binary("Add", a, a, [](Node x, Node y) { return graph::Add(x, y); }));
  cases.push_back(Binary("Sub", a, a, [](Node x, Node y) { return graph::Sub(x, y); }));
  cases.push_back(Binary("Mul", a, a, [](Node x, Node y) { return graph::Mul(x, y); }));
  cases.push_back(Binary("Div", a, pos, [](Node x, Node y) { return graph::Div(x, y); }));
  cases.push_back(Binary("Max", a, a, [](Node x, Node y) { return graph::Max(x, y); }));
  cases.push_back(Binary("Pow", {{1 << 16}, 0.1, 4}, {{1 << 16}, -3, 3}, [](Node x, Node y) { return graph::Pow(x, y); }));
  cases.push_back(Binary("Atan2", a, a, [](Node x, Node y) { return graph::Atan2(x, y); }));
  cases.push_back(Unary("Abs", -4, 4, [](Node x) { return graph::Abs(x); }));
  cases.push_back(Unary("Sqrt", 0.01, 100, [](Node x) { return graph::Sqrt(x); }));
  cases.push_back(Unary("Rsqrt", 0.01, 100, [](Node x) { return graph::Rsqrt(x); }));
  cases.push_back(Unary("Exp", -9, 10, [](Node x) { return graph::Exp(x); }));
  cases.push_back(Unary("Expm1", -9, 10, [](Node x) { return graph::Expm1(x); }));
  cases.push_back(Unary("Log", 0.001, 1000, [](Node x) { return graph::Log(x); }));
  cases.push_back(Unary("Log1p", -0.9, 100, [](Node x) { return graph::Log1p(x); }));
  cases.push_back(Unary("Logistic", -10, 10, [](Node x) { return graph::Logistic(x); }));
  cases.push_back(Unary("Tanh", -6, 6, [](Node x) { return graph::Tanh(x); }));
  cases.push_back(Unary("Sin", -10, 10, [](Node x) { return graph::Sin(x); }));
  cases.push_back(Unary("Cos", -10, 10, [](Node x) { return graph::Cos(x); }));
  cases.push_back(Unary("Erf", -4, 4, [](Node x) { return graph::Erf(x); }));

  // ---- Accumulating ops. Positive data, so the normwise error is not
  // inflated by cancellation (the budgets assume a well-conditioned sum).
  auto fn1 = [](std::function<Node(Node)> f) {
    return [f](context::Context, const std::vector<Node>& p) { return f(p[0]); };
  };
  cases.push_back({"ReduceSum of 1M elements", "ReduceSum", {{{kMillion}, 0.01, 0.05}}, kMillion,
                   fn1([](Node x) { return graph::ReduceSum(x, std::vector<int>{}); })});
  cases.push_back({"ReduceSum over rows of 32k", "ReduceSum", {{{8, kRow32k}, 0, 1}}, kRow32k,
                   fn1([](Node x) { return graph::ReduceSum(x, {1}); })});
  cases.push_back({"ReduceSum over columns of 64k", "ReduceSum", {{{kLongDot, 16}, 0, 1}}, kLongDot,
                   fn1([](Node x) { return graph::ReduceSum(x, {0}); })});
  cases.push_back({"ReduceSum of a fused elementwise chain", "ReduceSum", {{{16, kLongDot}, 0, 1}}, kLongDot,
                   fn1([](Node x) { return graph::ReduceSum(x * 0.5 + 0.25, {1}); })});
  cases.push_back({"ReduceProduct over rows of 256", "ReduceProduct", {{{64, 256}, 0.9, 1.1}}, 256,
                   fn1([](Node x) { return graph::ReduceProduct(x, {1}); })});
  cases.push_back({"ReduceMax over rows of 32k", "ReduceMax", {{{8, kRow32k}, -4, 4}}, kRow32k,
                   fn1([](Node x) { return graph::ReduceMax(x, {1}); })});
  auto fn2 = [](std::function<Node(Node, Node)> f) {
    return [f](context::Context, const std::vector<Node>& p) { return f(p[0], p[1]); };
  };
  cases.push_back({"DotGeneral: long dot products", "DotGeneral", {{{4, kLongDot}, 0, 1}, {{kLongDot, 4}, 0, 1}}, kLongDot,
                   fn2([](Node x, Node y) { return graph::MatMul(x, y); })});
  cases.push_back({"DotGeneral: 256^3 signed", "DotGeneral", {{{256, 256}, -1, 1}, {{256, 256}, -1, 1}}, 256,
                   fn2([](Node x, Node y) { return graph::MatMul(x, y); })});
  cases.push_back({"DotGeneral: batched", "DotGeneral", {{{8, 64, 512}, 0, 1}, {{8, 512, 32}, 0, 1}}, 512,
                   fn2([](Node x, Node y) { return graph::MatMul(x, y); })});
  cases.push_back({"ConvGeneral 3x3x64", "ConvGeneral", {{{2, 64, 16, 16}, 0, 1}, {{32, 64, 3, 3}, 0, 1}}, 9 * 64,
                   fn2([](Node x, Node k) { return graph::ConvGeneral(x, k, Nchw()); })});
  {
    ir::WindowAttrs w;
    w.reduction = ir::WindowReduction::kSum;
    w.window_dimensions = {1, 1024};
    w.strides = {1, 512};
    cases.push_back({"ReduceWindow sum of 1024", "ReduceWindow", {{{8, 16384}, 0, 1}}, 1024,
                     fn1([w](Node x) { return graph::ReduceWindow(x, w); })});
  }
  // A thin border: the padding value's gradient is a sum over 1028 positions
  // of 66564 (as the total minus the interior, it cancelled). w > 0, so that
  // sum is well conditioned.
  {
    Case pad{"Pad value gradient", "Pad", {{{256, 256}, -1, 1}, {{}, -1, 1}}, 1028,
             fn2([](Node x, Node v) { return graph::Pad(x, v, {1, 1}, {1, 1}); })};
    pad.w_lo = 0;
    cases.push_back(pad);
  }
  {
    ir::ScatterAttrs s;
    s.inserted_window_dims = {0};
    s.scatter_dims_to_operand_dims = {0};
    s.index_vector_dim = 1;
    cases.push_back({"ScatterSum of 64k updates into 16", "ScatterSum",
                     {{{16}, 0, 1}, {{kLongDot, 1}, 0, 15, true}, {{kLongDot}, 0, 1}}, kLongDot / 16,
                     [s](context::Context, const std::vector<Node>& p) { return graph::ScatterSum(p[0], p[1], p[2], s); }});
  }

  // ---- Helpers: softmax family over long rows, means.
  const std::vector<std::vector<int64_t>> rows = {{4, 32000}, {7, 1500}, {37, 1500}, {5, 4100}};
  for (const auto& dims : rows) {
    const std::string shape = std::to_string(dims[0]) + "x" + std::to_string(dims[1]);
    cases.push_back({"Softmax " + shape, "Softmax", {{dims, -8, 8}}, dims[1],
                     fn1([](Node x) { return graph::Softmax(x, -1); })});
    cases.push_back({"LogSoftmax " + shape, "LogSoftmax", {{dims, -8, 8}}, dims[1],
                     fn1([](Node x) { return graph::LogSoftmax(x, -1); })});
    cases.push_back({"LogSumExp " + shape, "LogSumExp", {{dims, -8, 8}}, dims[1],
                     fn1([](Node x) { return graph::LogSumExp(x, {-1}); })});
  }
  cases.push_back({"LogSumExp of 1M elements", "LogSumExp", {{{kMillion}, -8, 8}}, kMillion,
                   fn1([](Node x) { return graph::LogSumExp(x, {}); })});
  cases.push_back({"Softmax over axis 0", "Softmax", {{{4096, 8}, -8, 8}}, 4096,
                   fn1([](Node x) { return graph::Softmax(x, 0); })});
  // The gradient of a mean of 1M elements, w / 1M, is a float16 subnormal:
  // float16 runs a mean of 4k.
  cases.push_back({"ReduceMean of 1M elements", "ReduceMean", {{{kMillion}, 0.5, 2}}, kMillion,
                   fn1([](Node x) { return graph::ReduceAllMean(x); }), {dtypes::Float32, dtypes::BFloat16}});
  cases.push_back({"ReduceMean of 4k elements", "ReduceMean", {{{4096}, 0.5, 2}}, 4096,
                   fn1([](Node x) { return graph::ReduceAllMean(x); }), {dtypes::Float16}});

  // ---- Losses: labels first (not differentiated), then predictions.
  Input labels01{{256, 1000}, 0, 1, false, false};
  // The elementwise losses' gradients are 2 (p - y) / n and (sigmoid(p) -
  // y) / n: for n in the millions they are float16 subnormals (below 6.1e-5),
  // whose precision is not the type's, so the 16-bit cases are smaller.
  const std::vector<DType> f32 = {dtypes::Float32}, halves = {dtypes::Float16, dtypes::BFloat16};
  for (auto [size, types] : {std::pair{kMillion, f32}, std::pair{int64_t{4096}, halves}}) {
    const std::string n = size == 4096 ? "4k" : "1M";
    cases.push_back({"MeanSquaredError of " + n, "MeanSquaredError",
                     {{{size}, -1, 1, false, false}, {{size}, -1, 1}}, size,
                     LossCase(ml::losses::MeanSquaredError), types});
    cases.push_back({"BinaryCrossEntropyLogits of " + n, "BinaryCrossEntropyLogits",
                     {{{size}, 0, 1, false, false}, {{size}, -8, 8}}, size,
                     LossCase(ml::losses::BinaryCrossEntropyLogits), types});
  }
  cases.push_back({"CategoricalCrossEntropyLogits 256x1000", "CategoricalCrossEntropyLogits",
                   {labels01, {{256, 1000}, -8, 8}}, 1000, LossCase(ml::losses::CategoricalCrossEntropyLogits)});
  cases.push_back({"SparseCategoricalCrossEntropyLogits 16x32000", "SparseCategoricalCrossEntropyLogits",
                   {{{16}, 0, 31999, true}, {{16, 32000}, -8, 8}}, 32000,
                   LossCase(ml::losses::SparseCategoricalCrossEntropyLogits)});

  // ---- Normalizations (scale 1, offset 0 at creation).
  cases.push_back({"LayerNorm over rows of 32k", "LayerNorm", {{{8, kRow32k}, -2, 6}}, kRow32k,
                   [](context::Context ctx, const std::vector<Node>& p) { return ml::layers::LayerNorm(ctx, p[0]); }});
  cases.push_back({"RMSNorm over rows of 32k", "RMSNorm", {{{8, kRow32k}, -2, 6}}, kRow32k,
                   [](context::Context ctx, const std::vector<Node>& p) { return ml::layers::RMSNorm(ctx, p[0]); }});
  return cases;
}

const char* DTypeName(DType d) { return d == dtypes::Float32 ? "f32" : d == dtypes::Float16 ? "f16" : "bf16"; }

class Accuracy : public ::testing::TestWithParam<std::string> {
 protected:
  std::shared_ptr<backends::Backend> backend_ = backends::NewWithName(GetParam());
};

TEST_P(Accuracy, EveryCaseWithinItsBudget) {
  std::printf("%-48s %-5s %10s %10s %10s %10s\n", "case", "dtype", "value", "budget", "gradient", "budget");
  // KILN_ACCURACY_FILTER=text runs only the cases whose name contains text.
  const char* filter = std::getenv("KILN_ACCURACY_FILTER");
  for (const Case& c : AllCases()) {
    if (filter != nullptr && c.name.find(filter) == std::string::npos) continue;
    for (DType d : c.dtypes) {
      SCOPED_TRACE(c.name + " " + DTypeName(d));
      const Measured m = Measure(backend_, GetParam(), c, d);
      const char* unit = BudgetOf(c.budget).value_metric == Metric::kUlp ? "ulp" : "u";
      std::printf("%-48s %-5s %7.2f%-3s %10.2f %9.2fu %10.2f\n", c.name.c_str(), DTypeName(d), m.value, unit,
                  m.value_budget, m.grad, m.grad_budget);
      EXPECT_LE(m.value, m.value_budget) << c.name << " " << DTypeName(d) << ": value error (" << unit << ")";
      EXPECT_LE(m.grad, m.grad_budget) << c.name << " " << DTypeName(d) << ": gradient error (multiples of u)";
    }
  }
}

TEST(AccuracyBudgets, NamesAreUniqueAndUsed) {
  std::vector<std::string> used;
  for (const Case& c : AllCases()) used.push_back(c.budget);
  for (size_t i = 0; i < std::size(kBudgets); ++i) {
    for (size_t j = i + 1; j < std::size(kBudgets); ++j) EXPECT_NE(kBudgets[i].name, kBudgets[j].name);
    EXPECT_NE(std::find(used.begin(), used.end(), std::string(kBudgets[i].name)), used.end())
        << kBudgets[i].name << " has a budget but no case";
  }
  for (const CudaValueBudget& cuda : kCudaValueBudgets) {
    EXPECT_TRUE(std::any_of(std::begin(kBudgets), std::end(kBudgets), [&](const Budget& b) { return b.name == cuda.name; }))
        << cuda.name << " has a CUDA budget but no budget";
    EXPECT_GT(cuda.value_f32, BudgetOf(cuda.name).value_f32) << cuda.name << ": a CUDA budget only widens the CPU's";
  }
}

// ------------------------------------------ 16-bit types accumulate in float32.
// With float16 accumulation, a sum of 1M values in [0.01, 0.05] (about 31000,
// representable) would stall once the running sum's ulp exceeds twice the
// terms (from 256 on for 0.05 with one accumulator; a few thousand with 16
// lanes), far from the true sum; in float32 the only visible error is the
// rounding of the result (0.5 ulp, u relative).
class HalfAccumulation : public ::testing::TestWithParam<std::string> {
 protected:
  // The relative error of f(x in dtype d) against f in float64 on the same
  // rounded inputs, in multiples of d's unit roundoff.
  double Error(DType d, std::vector<Input> inputs, std::function<Node(const std::vector<Node>&)> f) {
    Case c{"half accumulation", "ReduceSum", std::move(inputs), 1,
           [f](context::Context, const std::vector<Node>& p) { return f(p); }};
    for (Input& in : c.inputs) in.differentiate = false;
    auto args = MakeInputs(c, d, 5);
    auto got = Run1(backend_, f, args);
    auto want = Run1(backend_, f, Widen(c, args));
    return NormwiseError(ToDoubles(got), ToDoubles(want)) / UnitRoundoff(d);
  }
  std::shared_ptr<backends::Backend> backend_ = backends::NewWithName(GetParam());
};

TEST_P(HalfAccumulation, SumsAndDotProductsAccumulateInFloat32) {
  for (DType d : {dtypes::Float16, dtypes::BFloat16}) {
    SCOPED_TRACE(DTypeName(d));
    // The whole array (split in chunks across threads), rows, columns.
    EXPECT_LE(Error(d, {{{kMillion}, 0.01, 0.05}}, [](auto& p) { return graph::ReduceSum(p[0], std::vector<int>{}); }), 1.0);
    EXPECT_LE(Error(d, {{{4, kMillion / 4}, 0.01, 0.05}}, [](auto& p) { return graph::ReduceSum(p[0], {1}); }), 1.0);
    EXPECT_LE(Error(d, {{{kMillion / 8, 8}, 0.01, 0.05}}, [](auto& p) { return graph::ReduceSum(p[0], {0}); }), 1.0);
    EXPECT_LE(Error(d, {{{kMillion / 256, 256}, 0.01, 0.05}}, [](auto& p) { return graph::ReduceSum(p[0], {0}); }), 1.0);
    // Fed by a fused elementwise group, and the mean (a sum, then a division).
    EXPECT_LE(Error(d, {{{4, kMillion / 4}, 0.02, 0.1}},
                    [](auto& p) { return graph::ReduceSum(p[0] * 0.5 + 0.01, {1}); }),
              1.5);
    EXPECT_LE(Error(d, {{{kMillion}, 1, 2}}, [](auto& p) { return graph::ReduceAllMean(p[0]); }), 1.5);
    // Long dot products, plain and batched, and a window sum.
    EXPECT_LE(Error(d, {{{2, kLongDot}, 0, 0.1}, {{kLongDot, 2}, 0, 0.5}},
                    [](auto& p) { return graph::MatMul(p[0], p[1]); }),
              1.0);
    EXPECT_LE(Error(d, {{{2, 2, kLongDot}, 0, 0.1}, {{2, kLongDot, 2}, 0, 0.5}},
                    [](auto& p) { return graph::MatMul(p[0], p[1]); }),
              1.0);
    ir::WindowAttrs w;
    w.reduction = ir::WindowReduction::kSum;
    w.window_dimensions = {kLongDot};
    w.strides = {kLongDot};
    EXPECT_LE(Error(d, {{{4 * kLongDot}, 0.01, 0.05}}, [w](auto& p) { return graph::ReduceWindow(p[0], w); }), 1.0);
    // The softmax denominator over a row of 32k.
    EXPECT_LE(Error(d, {{{4, kRow32k}, -2, 0}},
                    [](auto& p) { return graph::ReduceSum(graph::Exp(p[0]), {1}); }),
              3.0);
  }
}

// ------------------------------------------ Issue 11: softmax gradients.
// The float32 gradient of sum(f(x) * w) against float64 on the same inputs,
// normwise, must be within 2x of PyTorch's error on the same kind of case
// (issue 11: LogSoftmax 4x32000 1.2e-7, LogSumExp 7x1500 7.4e-7). Subtracting
// the row maximum without stopping its gradient gave 1.4e-5 and 1.7e-5.
class SoftmaxGradients : public ::testing::TestWithParam<std::string> {
 protected:
  double GradientError(std::function<Node(Node)> f, std::vector<int64_t> dims) {
    Case c{"softmax gradient", "Softmax", {{std::move(dims), -8, 8}}, 1,
           [f](context::Context, const std::vector<Node>& p) { return f(p[0]); }};
    auto args = MakeInputs(c, dtypes::Float32, 11);
    auto got = Evaluate(backend_, c, args, dtypes::Float32);
    auto want = Evaluate(backend_, c, Widen(c, args), dtypes::Float32);
    const double e = NormwiseError(ToDoubles(got[1]), ToDoubles(want[1]));
    std::printf("gradient error %.3g\n", e);
    return e;
  }
  std::shared_ptr<backends::Backend> backend_ = backends::NewWithName(GetParam());
};

TEST_P(SoftmaxGradients, LogSoftmaxRowsOf32000WithinTwicePyTorch) {
  EXPECT_LE(GradientError([](Node x) { return graph::LogSoftmax(x, -1); }, {4, 32000}), 2.4e-7);
}

TEST_P(SoftmaxGradients, LogSumExpRowsOf1500WithinTwicePyTorch) {
  EXPECT_LE(GradientError([](Node x) { return graph::LogSumExp(x, {-1}); }, {7, 1500}), 1.5e-6);
}

TEST_P(SoftmaxGradients, SoftmaxAndLogSoftmaxAt37x1500And5x4100) {
  // The issue gives no PyTorch figures for these ("15-46x PyTorch's error"):
  // held to 4u (Softmax) and 2u (LogSoftmax). Before the fix: Softmax 3.3e-7
  // and 3.6e-7, LogSoftmax 1.5e-7 and 7.7e-8.
  EXPECT_LE(GradientError([](Node x) { return graph::Softmax(x, -1); }, {37, 1500}), 2.4e-7);
  EXPECT_LE(GradientError([](Node x) { return graph::Softmax(x, -1); }, {5, 4100}), 2.4e-7);
  EXPECT_LE(GradientError([](Node x) { return graph::LogSoftmax(x, -1); }, {37, 1500}), 1.2e-7);
  EXPECT_LE(GradientError([](Node x) { return graph::LogSoftmax(x, -1); }, {5, 4100}), 1.2e-7);
}

INSTANTIATE_TEST_SUITE_P(Backends, Accuracy, ::testing::ValuesIn(BackendNames()));
INSTANTIATE_TEST_SUITE_P(Backends, HalfAccumulation, ::testing::ValuesIn(BackendNames()));
INSTANTIATE_TEST_SUITE_P(Backends, SoftmaxGradients, ::testing::ValuesIn(BackendNames()));

}  // namespace
}  // namespace kiln::testing::accuracy
