// Copyright 2026 The Kiln Authors.
// The error budgets of the accuracy suite (tests/accuracy/accuracy_test.cc):
// the one table of how far Kiln's float32, float16 and bfloat16 results may
// be from its own float64 results on the same (rounded) inputs. Each budget
// is derived from what a careful implementation achieves (documented ulp
// bounds of the math functions, blocked/pairwise accumulation for sums), not
// from what Kiln measured; docs/numerics.md explains each derivation and
// lists the measured errors.
//
// Units. u is the unit roundoff of the dtype under test: 2^-24 (float32),
// 2^-11 (float16), 2^-8 (bfloat16).
//  - kUlp: the largest elementwise error in ulps of the dtype at the
//    reference value (ulp(x) = 2^(floor(log2|x|) - p + 1), p = 24, 11, 8).
//  - kNorm: the normwise relative error ||got - ref||_2 / ||ref||_2, in
//    multiples of u.
// A budget is `base + per_log2n * log2(n) + per_sqrtn * sqrt(n)`, n the
// case's accumulation length (the number of terms in one sum: a row, a
// contraction, the whole array; 1 for elementwise ops). Gradients (of
// sum(out * w), w uniform in [-1, 1] or [0, 1] and rounded to the dtype) are
// always compared normwise, per differentiated input.
#pragma once

#include <string_view>

namespace kiln::testing::accuracy {

enum class Metric { kUlp, kNorm };

struct Budget {
  std::string_view name;   // the key a case names
  Metric value_metric;     // how the forward value is compared
  double value_f32;        // value budget for float32 (ulps or multiples of u) ...
  double value_half;       // ... and for float16 / bfloat16 (computed in float32, rounded once)
  double value_per_log2n;  // kNorm only: extra multiples of u per log2(n) ...
  double value_per_sqrtn;  // ... and per sqrt(n) (sequential accumulation)
  double grad;             // gradient budget: multiples of u, normwise ...
  double grad_per_log2n;   // ... plus this per log2(n) ...
  double grad_per_sqrtn;   // ... and per sqrt(n)
  std::string_view basis;  // where the numbers come from (short; docs/numerics.md has the rest)
};

// clang-format off
// Columns: name, value metric, value f32, value f16/bf16, value per log2(n),
// value per sqrt(n), gradient, gradient per log2(n), gradient per sqrt(n).
inline constexpr Budget kBudgets[] = {
  // ---- Elementwise ops of the table: value in ulps of the exact result,
  // gradient normwise. IEEE basic operations are correctly rounded (0.5
  // ulp); the 16-bit types are computed in float32 and rounded once, and
  // float32 has >= 2p + 2 bits for both, so the double rounding is
  // innocuous: 0.5 ulp too.
  {"Add",      Metric::kUlp, 0.5, 0.5, 0, 0, 0.5, 0, 0, "IEEE; gradient: the cotangent itself"},
  {"Sub",      Metric::kUlp, 0.5, 0.5, 0, 0, 0.5, 0, 0, "IEEE; gradient: the cotangent, negated"},
  {"Mul",      Metric::kUlp, 0.5, 0.5, 0, 0, 1,   0, 0, "IEEE; gradient: one product"},
  {"Div",      Metric::kUlp, 0.5, 0.5, 0, 0, 3,   0, 0, "IEEE; gradient wrt b: -(g / b) * (a / b), three roundings"},
  {"Sqrt",     Metric::kUlp, 0.5, 0.5, 0, 0, 2,   0, 0, "IEEE; gradient g / (2 sqrt(x)): two roundings"},
  {"Max",      Metric::kUlp, 0,   0,   0, 0, 0.5, 0, 0, "exact; gradient selects the cotangent"},
  {"Abs",      Metric::kUlp, 0,   0,   0, 0, 0.5, 0, 0, "exact; gradient g * sign(x)"},
  // Transcendental functions: the documented bound of the float32 kernel.
  // Kiln's own Exp/Tanh/Logistic: within 4 ulp (docs/architecture.md).
  // Highway's bounds (hwy/contrib/math: Expm1 4, Log 4, Log1p 2, Sin/Cos 3)
  // and glibc's (atan2f 1) count ulps from the correctly rounded result, so
  // + 0.5 from the exact one; glibc's powf is within 0.82 ulp of the exact
  // result. 16-bit results: 1 ulp (0.5, and the float32 error can move a
  // value across a rounding boundary of the 16-bit type). Gradients: the
  // derivative formula's roundings plus the error of the forward value it
  // reuses (an ulp is at most 2u relative).
  {"Exp",      Metric::kUlp, 4,   1, 0, 0, 9,   0, 0, "Kiln kernel <= 4 ulp; gradient g * y"},
  {"Expm1",    Metric::kUlp, 4.5, 1, 0, 0, 10,  0, 0, "Highway Expm1 4 ulp; gradient g * (y + 1)"},
  {"Log",      Metric::kUlp, 4.5, 1, 0, 0, 1,   0, 0, "Highway Log 4 ulp; gradient g / x"},
  {"Log1p",    Metric::kUlp, 2.5, 1, 0, 0, 2,   0, 0, "Highway Log1p 2 ulp; gradient g / (1 + x)"},
  {"Logistic", Metric::kUlp, 4,   1, 0, 0, 12,  0, 0, "Kiln kernel <= 4 ulp; gradient g * y * (1 - y)"},
  {"Tanh",     Metric::kUlp, 4,   1, 0, 0, 16,  0, 0, "Kiln kernel <= 4 ulp; gradient g * (1 - y^2): y's error times 2y^2/(1-y^2)"},
  {"Sin",      Metric::kUlp, 3.5, 1, 0, 0, 8,   0, 0, "Highway Sin 3 ulp; gradient g * cos(x)"},
  {"Cos",      Metric::kUlp, 3.5, 1, 0, 0, 8,   0, 0, "Highway Cos 3 ulp; gradient -g * sin(x)"},
  {"Rsqrt",    Metric::kUlp, 2,   1, 0, 0, 8,   0, 0, "1 / sqrt(x): two roundings, 1.5 ulp, + 0.5 for an estimate + Newton step; gradient -g y^3 / 2"},
  {"Erf",      Metric::kUlp, 1.5, 1, 0, 0, 8,   0, 0, "glibc erff 1 ulp; gradient g * 2/sqrt(pi) * exp(-x^2)"},
  {"Pow",      Metric::kUlp, 1,   1, 0, 0, 24,  0, 0, "glibc powf 0.82 ulp; gradient wrt b: g * y * log(a), y's error amplified by |b log a|"},
  {"Atan2",    Metric::kUlp, 1.5, 1, 0, 0, 4,   0, 0, "glibc atan2f 1 ulp; gradient g * x / (x^2 + y^2)"},
  // ---- Accumulating ops of the table: normwise. A sum of n terms with
  // pairwise or blocked accumulation has error ~ log2(n) u relative (random
  // rounding errors, positive data); +1 for the rounding of the result.
  // Ops whose semantics fix a sequential order (a scatter combines its
  // updates one after the other, as in XLA) get sqrt(n) u: the typical
  // error of n sequential roundings.
  {"ReduceSum",     Metric::kNorm, 1, 1, 1, 0, 0.5, 0, 0, "pairwise/blocked sum; gradient is a broadcast (exact)"},
  {"ReduceProduct", Metric::kNorm, 1, 1, 1, 0, 2,   0, 1, "blocked product; gradient: prefix and suffix products (scans), n roundings on a path"},
  {"ReduceMax",     Metric::kNorm, 0, 0, 0, 0, 1,   0, 0, "exact; gradient to the argmax, split evenly among ties (w / count: two roundings)"},
  {"DotGeneral",    Metric::kNorm, 1, 1, 1, 0, 1,   1, 0, "blocked dot products of length n; both gradients are dot products too"},
  {"ConvGeneral",   Metric::kNorm, 1, 1, 1, 0, 1,   1, 0, "dot products of length kh*kw*cin; gradients are convolutions"},
  {"ReduceWindow",  Metric::kNorm, 1, 1, 1, 0, 0.5, 0, 0, "window sums; gradient is a padded sum of the cotangent"},
  {"Pad",           Metric::kNorm, 0, 0, 0, 0, 1,   1, 0, "exact; the padding value's gradient is a sum over the padded positions"},
  {"ScatterSum",    Metric::kNorm, 1, 1, 0, 0.5, 0.5, 0, 0, "updates added in order per index (float32 for 16-bit types); gradient is a gather (exact)"},
  // ---- Helpers built on the table (src/graph/ops_helpers.cc; 16-bit
  // inputs computed in float32). Softmax: exp's 4 ulp (8u) plus the
  // rounding of x - max (|x - max| u, <= 16u for |x| <= 8 but far less where
  // the weight is) and the sum; the gradient y * (g - sum(g y)) adds a sum
  // of n products. PyTorch measured (issue 11): LogSoftmax 4x32000 gradient
  // 1.2e-7 (2u), LogSumExp 7x1500 7.4e-7 (12u).
  {"Softmax",    Metric::kNorm, 12, 12, 1, 0, 12, 1, 0, "exp 8u + shift 4u + sum log2(n) u; gradient adds a sum of n products"},
  {"LogSoftmax", Metric::kNorm, 4,  4,  1, 0, 12, 1, 0, "x - lse: lse's error ~ (1 + log2(n)) u; gradient g - y sum(g)"},
  {"LogSumExp",  Metric::kNorm, 4,  4,  1, 0, 12, 1, 0, "log of a sum of n exps: log's 4 ulp + sum; gradient g * softmax"},
  {"ReduceMean", Metric::kNorm, 2,  2,  1, 0, 1,  0, 0, "a sum and one division (16-bit: in float32)"},
  // ---- Losses (src/ml/losses, computed in float32 for 16-bit inputs):
  // scalar means of per-example terms, so normwise = the relative error of
  // the scalar; the gradients are per element.
  {"MeanSquaredError",                    Metric::kNorm, 4,  4,  1, 0, 4,  0, 0, "square, mean of n terms; gradient 2 (p - y) / n"},
  {"BinaryCrossEntropyLogits",            Metric::kNorm, 8,  8,  1, 0, 12, 0, 0, "softplus (exp 4 ulp, log1p 2 ulp), mean of n terms; gradient sigmoid(x) - y"},
  {"CategoricalCrossEntropyLogits",       Metric::kNorm, 16, 16, 1, 0, 16, 1, 0, "log-softmax and a sum over classes; gradient softmax - labels"},
  {"SparseCategoricalCrossEntropyLogits", Metric::kNorm, 16, 16, 1, 0, 16, 1, 0, "logsumexp - picked logit, mean over the batch; gradient softmax - one-hot"},
  // ---- Normalizations (src/ml/layers/normalization.cc): two-pass mean and
  // variance over n values, rsqrt, products.
  {"LayerNorm",  Metric::kNorm, 8, 8, 1, 0, 16, 1, 0, "two-pass mean/variance: sums of n terms, rsqrt 2 ulp, 2 products"},
  {"RMSNorm",    Metric::kNorm, 8, 8, 1, 0, 16, 1, 0, "mean of squares of n terms, rsqrt 2 ulp, a product"},
};

// The float32 value budgets that differ on the CUDA backends ("cuda", and
// "cuda-emu", whose math functions err as CUDA's may): their elementwise
// kernels call CUDA's math library, whose documented bounds (CUDA C++
// Programming Guide; ulps from the correctly rounded result, so + 0.5 from
// the exact one) exceed the CPU's for these.
struct CudaValueBudget {
  std::string_view name;   // a kBudgets entry
  double value_f32;        // its float32 value budget on CUDA
  std::string_view basis;
};
inline constexpr CudaValueBudget kCudaValueBudgets[] = {
  {"Erf",      2.5, "CUDA erff 2 ulp"},
  {"Pow",      4.5, "CUDA powf 4 ulp"},
  {"Atan2",    3.5, "CUDA atan2f 3 ulp"},
  {"Logistic", 6.5, "1 / (1 + expf(-x)): expf's 2.5 ulp is up to 5 ulp of y (ulps differ by 2x across a binade), + the sum's and the quotient's roundings"},
};
// clang-format on

}  // namespace kiln::testing::accuracy
