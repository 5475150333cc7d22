// Copyright 2026 The Kiln Authors.
#include "kiln/core/shapes.h"

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
  for (int i = static_cast<int>(dims.size()) - 2; i >= 0; --i) s[i] = s[i + 1] * dims[i + 1];
  return s;
}

size_t Hash(const Shape& shape) {
  size_t h = static_cast<size_t>(shape.DType()) * 0x9e3779b97f4a7c15ull;
  for (int64_t d : shape.Dims()) h = (h ^ static_cast<size_t>(d)) * 0x100000001b3ull + 0x9e37;
  return h ^ shape.Dims().size();
}

}  // namespace kiln::shapes
