// Copyright 2026 The Kiln Authors.
// Per-feature normalization of host tensors: (x - mean) / stddev.
#include <algorithm>
#include <cmath>
#include <vector>

#include "kiln/ml/datasets/datasets.h"

namespace kiln::ml::datasets {

namespace {

using tensors::Tensor;

// The smallest stddev Normalize divides by. A constant feature (e.g. a
// border pixel that is always 0) has stddev 0; flooring keeps its normalized
// values finite (0 on data equal to the mean) instead of NaN or Inf.
constexpr double kMinStddev = 1e-6;

void CheckFloat(const Tensor& t, const char* op, const char* what) {
  if (!t.Ok()) Throw(std::string(op) + ": " + what + " is an empty tensor handle");
  if (t.DType() != dtypes::Float32 && t.DType() != dtypes::Float64) {
    Throw(std::string(op) + ": " + what + " must be Float32 or Float64, got " + t.Shape().ToString());
  }
  if (t.Rank() == 0) Throw(std::string(op) + ": " + what + " must have rank >= 1 (examples on axis 0), got a scalar");
}

// The per-feature shape: `x` without its first axis.
shapes::Shape FeatureShape(const Tensor& x) {
  const auto& dims = x.Shape().Dims();
  return shapes::Shape(x.DType(), std::vector<int64_t>(dims.begin() + 1, dims.end()));
}

// Mean and floored population stddev over rows of the row-major [n, f] data,
// accumulated in double (two passes: the one-pass formula loses precision
// when the mean is large compared to the spread).
template <typename T>
Normalization Compute(const Tensor& x, int64_t n, int64_t f) {
  std::span<const T> data = x.Flat<T>();
  std::vector<double> mean(f, 0.0), var(f, 0.0);
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = 0; j < f; ++j) mean[j] += static_cast<double>(data[i * f + j]);
  }
  for (double& m : mean) m /= static_cast<double>(n);
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = 0; j < f; ++j) {
      const double d = static_cast<double>(data[i * f + j]) - mean[j];
      var[j] += d * d;
    }
  }
  Normalization out{Tensor(FeatureShape(x)), Tensor(FeatureShape(x))};
  std::span<T> m = out.mean.MutableFlat<T>(), s = out.stddev.MutableFlat<T>();
  for (int64_t j = 0; j < f; ++j) {
    m[j] = static_cast<T>(mean[j]);
    s[j] = static_cast<T>(std::max(std::sqrt(var[j] / static_cast<double>(n)), kMinStddev));
  }
  return out;
}

template <typename T>
Tensor Apply(const Tensor& x, const Normalization& norm, int64_t n, int64_t f) {
  std::span<const T> data = x.Flat<T>(), mean = norm.mean.Flat<T>(), stddev = norm.stddev.Flat<T>();
  Tensor out(x.Shape());
  std::span<T> y = out.MutableFlat<T>();
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = 0; j < f; ++j) y[i * f + j] = (data[i * f + j] - mean[j]) / stddev[j];
  }
  return out;
}

}  // namespace

Normalization ComputeNormalization(const Tensor& x) {
  CheckFloat(x, "ComputeNormalization", "x");
  const int64_t n = x.Shape().Dim(0);
  if (n == 0) Throw("ComputeNormalization: x " + x.Shape().ToString() + " has no examples (axis 0 is empty)");
  const int64_t f = x.Size() / n;
  return x.DType() == dtypes::Float32 ? Compute<float>(x, n, f) : Compute<double>(x, n, f);
}

Tensor Normalize(const Tensor& x, const Normalization& norm) {
  CheckFloat(x, "Normalize", "x");
  const shapes::Shape want = FeatureShape(x);
  for (const auto& [t, what] : {std::pair{&norm.mean, "mean"}, std::pair{&norm.stddev, "stddev"}}) {
    if (!t->Ok() || t->Shape() != want) {
      Throw(std::string("Normalize: ") + what + " " + (t->Ok() ? t->Shape().ToString() : "(empty handle)") +
            " does not match x " + x.Shape().ToString() + " (want " + want.ToString() + ")");
    }
  }
  const int64_t n = x.Shape().Dim(0);
  const int64_t f = n == 0 ? 0 : x.Size() / n;
  return x.DType() == dtypes::Float32 ? Apply<float>(x, norm, n, f) : Apply<double>(x, norm, n, f);
}

}  // namespace kiln::ml::datasets
