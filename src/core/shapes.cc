// Copyright 2026 The Kiln Authors.
#include "kiln/core/shapes.h"

#include <algorithm>
#include <ostream>
#include <sstream>

#include "kiln/core/error.h"

namespace kiln::shapes {

Shape::Shape(dtypes::DType dtype, std::vector<int64_t> dims) : dtype_(dtype), dims_(std::move(dims)) {
  for (size_t i = 0; i < dims_.size(); ++i) {
    if (dims_[i] < 0) {
      Throw("Shape: dimension " + std::to_string(i) + " is negative (" + std::to_string(dims_[i]) + ")");
    }
  }
  // Size() and ByteSize() must be exact: a count that wraps would let a
  // tensor allocate a few bytes and index far past them. A shape with a zero
  // dimension is empty, whatever its other dimensions.
  if (std::find(dims_.begin(), dims_.end(), 0) != dims_.end()) return;
  const int64_t element_bytes = std::max<int64_t>(1, static_cast<int64_t>(dtypes::SizeOf(dtype_)));
  int64_t bytes = element_bytes;
  for (int64_t d : dims_) {
    if (__builtin_mul_overflow(bytes, d, &bytes)) {
      Throw("Shape " + ToString() + ": its size in bytes overflows int64 (at most 2^63 - 1 bytes)");
    }
  }
}

int Shape::NormalizeAxis(int axis) const {
  int rank = Rank();
  int a = axis < 0 ? axis + rank : axis;
  if (a < 0 || a >= rank) {
    Throw("axis " + std::to_string(axis) + " is out of range for shape " + ToString() + " of rank " +
          std::to_string(rank));
  }
  return a;
}

int64_t Shape::Dim(int axis) const { return dims_[static_cast<size_t>(NormalizeAxis(axis))]; }

int64_t Shape::Size() const {
  // The constructor checked that a non-empty shape's product fits; an empty
  // one may have dimensions whose partial products do not.
  if (std::find(dims_.begin(), dims_.end(), 0) != dims_.end()) return 0;
  int64_t n = 1;
  for (int64_t d : dims_) n *= d;
  return n;
}

int64_t Shape::ByteSize() const { return Size() * static_cast<int64_t>(dtypes::SizeOf(dtype_)); }

std::string Shape::ToString() const {
  std::ostringstream os;
  os << dtypes::Name(dtype_);
  if (!dims_.empty()) {
    os << '[';
    for (size_t i = 0; i < dims_.size(); ++i) os << (i ? ", " : "") << dims_[i];
    os << ']';
  }
  return os.str();
}

std::ostream& operator<<(std::ostream& os, const Shape& shape) { return os << shape.ToString(); }

std::vector<int64_t> Strides(const std::vector<int64_t>& dims) {
  std::vector<int64_t> s(dims.size(), 1);
  // Unsigned: the strides of an empty shape with huge dimensions may wrap
  // (no element is ever addressed with them), which is undefined for int64.
  for (int i = static_cast<int>(dims.size()) - 2; i >= 0; --i) {
    s[i] = static_cast<int64_t>(static_cast<uint64_t>(s[i + 1]) * static_cast<uint64_t>(dims[i + 1]));
  }
  return s;
}

size_t Hash(const Shape& shape) {
  size_t h = static_cast<size_t>(shape.DType()) * 0x9e3779b97f4a7c15ull;
  for (int64_t d : shape.Dims()) h = (h ^ static_cast<size_t>(d)) * 0x100000001b3ull + 0x9e37;
  return h ^ shape.Dims().size();
}

}  // namespace kiln::shapes
