// Copyright 2026 The Kiln Authors.
// Definitions (operand checks and shape rules) of the reductions: Reduce*
// and ArgMinMax.
#include <algorithm>
#include <limits>
#include <string>

#include "src/graph/op_builder.h"

namespace kiln::graph {

using internal::OpError;
using ir::OpType;

namespace {

// The dtypes a reduction accepts.
enum class ReduceKinds : uint8_t { kNumeric, kBool, kInteger };

bool Accepts(ReduceKinds kinds, dtypes::DType dt) {
  switch (kinds) {
    case ReduceKinds::kNumeric: return dtypes::IsFloat(dt) || dtypes::IsInteger(dt);
    case ReduceKinds::kBool: return dt == dtypes::Bool;
    case ReduceKinds::kInteger: return dtypes::IsInteger(dt);
  }
  return false;
}

const char* KindsName(ReduceKinds kinds) {
  switch (kinds) {
    case ReduceKinds::kNumeric: return "a numeric (integer or float) dtype";
    case ReduceKinds::kBool: return "Bool";
    case ReduceKinds::kInteger: return "an integer dtype";
  }
  return "";
}

// Checks the dtype, normalizes and sorts the axes (empty: all axes) and emits
// `op` with the reduced axes removed. A rank-0 x has nothing to reduce and is
// returned as is.
Node Reduce(OpType op, ReduceKinds kinds, Node x, const std::vector<int>& axes, const Loc& loc) {
  const std::string_view name = ir::OpName(op);
  Graph* g = internal::CheckNode(x, name, loc);
  if (!Accepts(kinds, x.DType())) {
    OpError(loc, name, std::string("requires ") + KindsName(kinds) + ", got " + x.Shape().ToString());
  }
  std::vector<int64_t> reduced;
  if (axes.empty()) {
    for (int i = 0; i < x.Rank(); ++i) reduced.push_back(i);
  } else {
    reduced = internal::NormalizeAxes(axes, x.Rank(), name, loc);
    std::sort(reduced.begin(), reduced.end());
  }
  if (reduced.empty()) return x;
  std::vector<int64_t> dims;
  for (int i = 0; i < x.Rank(); ++i) {
    if (!std::binary_search(reduced.begin(), reduced.end(), i)) dims.push_back(x.Shape().Dims()[i]);
  }
  return internal::Emit(g, op, {x}, shapes::Shape(x.DType(), dims), ir::AxesAttrs{std::move(reduced)}, loc);
}

// The largest value of an integer dtype, as an int64 (saturated for Uint64).
int64_t MaxIndexOf(dtypes::DType dt) {
  return DispatchDType(dt, [](auto zero) -> int64_t {
    using T = decltype(zero);
    if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) {
      if constexpr (sizeof(T) == 8) return std::numeric_limits<int64_t>::max();
      else return static_cast<int64_t>(std::numeric_limits<T>::max());
    } else {
      return 0;
    }
  });
}

}  // namespace

Node ReduceSum(Node x, std::vector<int> axes, Loc loc) {
  return Reduce(OpType::kReduceSum, ReduceKinds::kNumeric, x, axes, loc);
}
Node ReduceProduct(Node x, std::vector<int> axes, Loc loc) {
  return Reduce(OpType::kReduceProduct, ReduceKinds::kNumeric, x, axes, loc);
}
Node ReduceMax(Node x, std::vector<int> axes, Loc loc) {
  return Reduce(OpType::kReduceMax, ReduceKinds::kNumeric, x, axes, loc);
}
Node ReduceMin(Node x, std::vector<int> axes, Loc loc) {
  return Reduce(OpType::kReduceMin, ReduceKinds::kNumeric, x, axes, loc);
}
Node ReduceLogicalAnd(Node x, std::vector<int> axes, Loc loc) {
  return Reduce(OpType::kReduceLogicalAnd, ReduceKinds::kBool, x, axes, loc);
}
Node ReduceLogicalOr(Node x, std::vector<int> axes, Loc loc) {
  return Reduce(OpType::kReduceLogicalOr, ReduceKinds::kBool, x, axes, loc);
}
Node ReduceLogicalXor(Node x, std::vector<int> axes, Loc loc) {
  return Reduce(OpType::kReduceLogicalXor, ReduceKinds::kBool, x, axes, loc);
}
Node ReduceBitwiseAnd(Node x, std::vector<int> axes, Loc loc) {
  return Reduce(OpType::kReduceBitwiseAnd, ReduceKinds::kInteger, x, axes, loc);
}
Node ReduceBitwiseOr(Node x, std::vector<int> axes, Loc loc) {
  return Reduce(OpType::kReduceBitwiseOr, ReduceKinds::kInteger, x, axes, loc);
}
Node ReduceBitwiseXor(Node x, std::vector<int> axes, Loc loc) {
  return Reduce(OpType::kReduceBitwiseXor, ReduceKinds::kInteger, x, axes, loc);
}

Node ArgMinMax(Node x, int axis, bool is_min, dtypes::DType index_dtype, Loc loc) {
  Graph* g = internal::CheckNode(x, "ArgMinMax", loc);
  if (!Accepts(ReduceKinds::kNumeric, x.DType())) {
    OpError(loc, "ArgMinMax", "requires a numeric (integer or float) dtype, got " + x.Shape().ToString());
  }
  if (!dtypes::IsInteger(index_dtype)) {
    OpError(loc, "ArgMinMax", std::string("index dtype must be an integer type, got ") + dtypes::Name(index_dtype));
  }
  if (x.Shape().IsScalar()) OpError(loc, "ArgMinMax", "operand must have at least one axis, got " + x.Shape().ToString());
  const int a = internal::NormalizeAxis(axis, x.Rank(), "ArgMinMax", loc);
  const int64_t d = x.Shape().Dims()[a];
  // An empty axis has no min or max (numpy and JAX reject it too).
  if (d == 0) OpError(loc, "ArgMinMax", "axis " + std::to_string(axis) + " of " + x.Shape().ToString() + " is empty");
  if (d - 1 > MaxIndexOf(index_dtype)) {
    OpError(loc, "ArgMinMax", std::string("index dtype ") + dtypes::Name(index_dtype) + " cannot hold index " +
                                  std::to_string(d - 1) + " of axis " + std::to_string(axis) + " of " +
                                  x.Shape().ToString());
  }
  std::vector<int64_t> dims = x.Shape().Dims();
  dims.erase(dims.begin() + a);
  return internal::Emit(g, OpType::kArgMinMax, {x}, shapes::Shape(index_dtype, dims), ir::ArgMinMaxAttrs{a, is_min},
                        loc);
}

}  // namespace kiln::graph
