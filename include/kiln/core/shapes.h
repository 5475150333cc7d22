// Copyright 2026 The Kiln Authors.
// kiln::shapes: a dtype plus dimensions.
#pragma once

#include <concepts>
#include <cstdint>
#include <initializer_list>
#include <iosfwd>
#include <string>
#include <vector>

#include "kiln/core/dtypes.h"

namespace kiln::shapes {

/// The dtype and dimensions of a tensor or graph value. A scalar has rank 0.
/// Dimensions may be 0 (empty tensors).
class Shape {
 public:
  Shape() = default;
  /// Throws kiln::Error for a negative dimension, or when the size in bytes
  /// of a non-empty shape overflows int64.
  Shape(dtypes::DType dtype, std::vector<int64_t> dims);

  dtypes::DType DType() const { return dtype_; }
  int Rank() const { return static_cast<int>(dims_.size()); }
  /// Dimension of `axis`; a negative axis counts from the end (-1 is the last).
  /// Throws kiln::Error for an axis out of range.
  int64_t Dim(int axis) const;
  const std::vector<int64_t>& Dims() const { return dims_; }
  /// Number of elements (1 for a scalar, 0 if any dimension is 0).
  int64_t Size() const;
  /// Size() * SizeOf(DType()).
  int64_t ByteSize() const;
  bool IsScalar() const { return dims_.empty(); }
  bool Ok() const { return dtype_ != dtypes::Invalid; }
  /// Converts a possibly-negative axis into [0, Rank()); throws if out of range.
  int NormalizeAxis(int axis) const;
  /// A copy with another dtype.
  Shape WithDType(dtypes::DType dtype) const { return Shape(dtype, dims_); }
  /// "Float32[32, 224, 224, 3]"; a scalar prints as "Float32".
  std::string ToString() const;

  friend bool operator==(const Shape& a, const Shape& b) = default;

 private:
  dtypes::DType dtype_ = dtypes::Invalid;
  std::vector<int64_t> dims_;
};

std::ostream& operator<<(std::ostream& os, const Shape& shape);

/// shapes::Make(dtypes::Float32, 32, 224, 224, 3).
template <std::integral... D>
Shape Make(dtypes::DType dtype, D... dims) {
  return Shape(dtype, std::vector<int64_t>{static_cast<int64_t>(dims)...});
}
/// shapes::Make(dtypes::Float32, {2, 3}) or with a vector of dimensions.
inline Shape Make(dtypes::DType dtype, std::vector<int64_t> dims) { return Shape(dtype, std::move(dims)); }

/// Row-major strides (in elements) of `dims`.
std::vector<int64_t> Strides(const std::vector<int64_t>& dims);

/// Hash of a shape, for compilation caches.
size_t Hash(const Shape& shape);

}  // namespace kiln::shapes
