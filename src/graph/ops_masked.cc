// Copyright 2026 The Kiln Authors.
// Masked reductions (see kiln/graph/masked.h): the unselected elements are
// replaced by the reduction's identity, then reduced.
#include "kiln/graph/masked.h"

#include <string>

#include "kiln/graph/ops.h"
#include "src/graph/op_builder.h"

namespace kiln::graph {

namespace {

// The mask broadcast to x's dims, after checking it is a Bool of a shape
// that broadcasts to x.
Node MaskFor(Node x, Node mask, std::string_view op, const Loc& loc) {
  internal::CheckSameGraph({x, mask}, op, loc);
  if (mask.DType() != dtypes::Bool) {
    internal::OpError(loc, op, "the mask must be Bool, got " + mask.Shape().ToString());
  }
  const std::vector<int64_t> dims = internal::BroadcastDims(x.Shape(), mask.Shape(), op, loc);
  if (dims != x.Shape().Dims()) {
    internal::OpError(loc, op, "the mask " + mask.Shape().ToString() + " must broadcast to the operand " +
                                   x.Shape().ToString() + " without enlarging it");
  }
  return internal::BroadcastToDims(mask, dims, loc);
}

// x where the mask is true, `identity` elsewhere.
Node Select(Node x, Node mask, double identity, const Loc& loc) {
  return Where(mask, x, BroadcastInDim(ScalarLike(x, identity, loc), x.Shape().Dims(), {}, loc), loc);
}

// x where the mask is true, elsewhere the identity of ReduceMax (or
// ReduceMin): its value over no elements, -Inf or the dtype's lowest value,
// exact for every dtype.
Node FillUnselected(Node x, Node mask, bool is_max, const Loc& loc) {
  Node none = Slice(Reshape(x, {x.Shape().Size()}, loc), {0}, {0}, {}, loc);
  Node identity = is_max ? ReduceMax(none, std::vector<int>{0}, loc) : ReduceMin(none, std::vector<int>{0}, loc);
  return Where(mask, x, BroadcastInDim(identity, x.Shape().Dims(), {}, loc), loc);
}

}  // namespace

Node MaskedReduceSum(Node x, Node mask, std::vector<int> axes, Loc loc) {
  Node m = MaskFor(x, mask, "MaskedReduceSum", loc);
  return ReduceSum(Select(x, m, 0, loc), std::move(axes), loc);
}

Node MaskedReduceMean(Node x, Node mask, std::vector<int> axes, Loc loc) {
  constexpr std::string_view kOp = "MaskedReduceMean";
  Node m = MaskFor(x, mask, kOp, loc);
  if (!dtypes::IsFloat(x.DType())) internal::OpError(loc, kOp, "needs a float operand, got " + x.Shape().ToString());
  Node sum = ReduceSum(Select(x, m, 0, loc), axes, loc);
  Node count = ReduceSum(ConvertDType(m, x.DType(), loc), std::move(axes), loc);
  return Div(sum, count, loc);
}

Node MaskedReduceMax(Node x, Node mask, std::vector<int> axes, Loc loc) {
  Node m = MaskFor(x, mask, "MaskedReduceMax", loc);
  return ReduceMax(FillUnselected(x, m, /*is_max=*/true, loc), std::move(axes), loc);
}

Node MaskedReduceMin(Node x, Node mask, std::vector<int> axes, Loc loc) {
  Node m = MaskFor(x, mask, "MaskedReduceMin", loc);
  return ReduceMin(FillUnselected(x, m, /*is_max=*/false, loc), std::move(axes), loc);
}

}  // namespace kiln::graph
