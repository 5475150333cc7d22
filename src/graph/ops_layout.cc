// Copyright 2026 The Kiln Authors.
// Definitions (operand checks and shape rules) of the data-movement ops:
// Reshape, Transpose, BroadcastInDim, Concatenate, Slice, Pad, Reverse, Iota,
// DynamicSlice, DynamicUpdateSlice.
#include <numeric>
#include <string>

#include "src/graph/op_builder.h"

namespace kiln::graph {

using internal::ListToString;
using internal::OpError;
using ir::OpType;

Node Reshape(Node x, std::vector<int64_t> dims, Loc loc) {
  Graph* g = internal::CheckNode(x, "Reshape", loc);
  int inferred = -1;
  int64_t known = 1;
  for (size_t i = 0; i < dims.size(); ++i) {
    if (dims[i] == -1) {
      if (inferred >= 0) OpError(loc, "Reshape", "more than one -1 in " + ListToString(dims));
      inferred = static_cast<int>(i);
    } else if (dims[i] < 0) {
      OpError(loc, "Reshape", "negative dimension in " + ListToString(dims));
    } else {
      known *= dims[i];
    }
  }
  const int64_t size = x.Shape().Size();
  if (inferred >= 0) {
    if (known == 0 || size % known != 0) {
      OpError(loc, "Reshape", "cannot infer the -1 in " + ListToString(dims) + " for " + x.Shape().ToString());
    }
    dims[inferred] = size / known;
    known *= dims[inferred];
  }
  if (known != size) {
    OpError(loc, "Reshape", "cannot reshape " + x.Shape().ToString() + " (" + std::to_string(size) +
                                " elements) to " + ListToString(dims) + " (" + std::to_string(known) + " elements)");
  }
  if (dims == x.Shape().Dims()) return x;
  return internal::Emit(g, OpType::kReshape, {x}, shapes::Shape(x.DType(), dims), ir::NoAttrs{}, loc);
}

Node Transpose(Node x, std::vector<int> permutation, Loc loc) {
  Graph* g = internal::CheckNode(x, "Transpose", loc);
  if (static_cast<int>(permutation.size()) != x.Rank()) {
    OpError(loc, "Transpose", "permutation " + ListToString(permutation) + " has " +
                                  std::to_string(permutation.size()) + " axes for " + x.Shape().ToString());
  }
  std::vector<int64_t> perm = internal::NormalizeAxes(permutation, x.Rank(), "Transpose", loc);
  std::vector<int64_t> dims(perm.size());
  bool identity = true;
  for (size_t i = 0; i < perm.size(); ++i) {
    dims[i] = x.Shape().Dims()[perm[i]];
    identity = identity && perm[i] == static_cast<int64_t>(i);
  }
  if (identity) return x;
  return internal::Emit(g, OpType::kTranspose, {x}, shapes::Shape(x.DType(), dims), ir::AxesAttrs{perm}, loc);
}

Node BroadcastInDim(Node x, std::vector<int64_t> dims, std::vector<int> axes, Loc loc) {
  Graph* g = internal::CheckNode(x, "BroadcastInDim", loc);
  if (static_cast<int>(axes.size()) != x.Rank()) {
    OpError(loc, "BroadcastInDim", "operand " + x.Shape().ToString() + " needs " + std::to_string(x.Rank()) +
                                       " axes, got " + ListToString(axes));
  }
  shapes::Shape out(x.DType(), dims);  // checks for negative dims
  std::vector<int64_t> mapped;
  int prev = -1;
  for (int i = 0; i < x.Rank(); ++i) {
    int a = axes[i];
    if (a < 0 || a >= out.Rank()) {
      OpError(loc, "BroadcastInDim", "axis " + std::to_string(a) + " is out of range for output " + out.ToString());
    }
    if (a <= prev) OpError(loc, "BroadcastInDim", "axes " + ListToString(axes) + " must be strictly increasing");
    prev = a;
    int64_t d = x.Shape().Dims()[i];
    if (d != 1 && d != dims[a]) {
      OpError(loc, "BroadcastInDim", "operand " + x.Shape().ToString() + " axis " + std::to_string(i) +
                                         " (size " + std::to_string(d) + ") cannot broadcast to output " +
                                         out.ToString() + " axis " + std::to_string(a));
    }
    mapped.push_back(a);
  }
  if (out == x.Shape()) return x;
  return internal::Emit(g, OpType::kBroadcastInDim, {x}, out, ir::AxesAttrs{mapped}, loc);
}

Node BroadcastTo(Node x, std::vector<int64_t> dims, Loc loc) {
  internal::CheckNode(x, "BroadcastTo", loc);
  auto target = shapes::Shape(x.DType(), dims);
  if (internal::BroadcastDims(x.Shape(), target, "BroadcastTo", loc) != dims) {
    OpError(loc, "BroadcastTo", "cannot broadcast " + x.Shape().ToString() + " to " + target.ToString());
  }
  return internal::BroadcastToDims(x, dims, loc);
}

Node TransposeAxes(Node x, int axis0, int axis1, Loc loc) {
  internal::CheckNode(x, "TransposeAxes", loc);
  std::vector<int> perm(static_cast<size_t>(x.Rank()));
  std::iota(perm.begin(), perm.end(), 0);
  int a = internal::NormalizeAxis(axis0, x.Rank(), "TransposeAxes", loc);
  int b = internal::NormalizeAxis(axis1, x.Rank(), "TransposeAxes", loc);
  std::swap(perm[a], perm[b]);
  return Transpose(x, perm, loc);
}

}  // namespace kiln::graph
