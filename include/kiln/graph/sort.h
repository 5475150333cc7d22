// Copyright 2026 The Kiln Authors.
// Sorting along an axis: Sort, SortTogether (several arrays permuted by the
// same keys), SortWithComparator (a traced C++ comparator), ArgSort, TopK and
// BottomK, all differentiable with respect to the sorted float values.
//
// Floats sort in the total order -Inf < ... < -0 = +0 < ... < +Inf < NaN
// (NaN last, as NumPy); descending is its exact reverse (NaN first, as
// torch.sort and torch.topk). Sorts are stable unless asked otherwise: equal
// keys keep their input order, so ArgSort and TopK pick the lowest index
// among ties.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "kiln/graph/graph.h"

namespace kiln::graph {

/// Options of the key-based sorts.
struct SortOptions {
  bool descending = false;
  /// Equal keys keep their input order (the CPU backend always sorts
  /// stably; false allows a backend a faster unstable sort).
  bool stable = true;
};

/// x sorted along `axis` (negative counts from the end). Any dtype.
Node Sort(Node x, int axis = -1, SortOptions options = {}, Loc loc = Loc::current());

/// Sorts the arrays of `operands` (all of one shape, any dtypes) together
/// along `axis`: the first `num_keys` operands are the keys, compared
/// lexicographically; every operand is permuted the same way.
std::vector<Node> SortTogether(const std::vector<Node>& operands, int axis = -1, int num_keys = 1,
                               SortOptions options = {}, Loc loc = Loc::current());

/// A comparator: whether the element with values `lhs` (one scalar per
/// operand) goes before the one with values `rhs`. It must be a strict weak
/// order, and may only use its arguments and constants.
using Comparator = std::function<Node(const std::vector<Node>& lhs, const std::vector<Node>& rhs)>;

/// Sorts `operands` together along `axis` in the order of `less`, traced once
/// into a sub-function. The CPU backend evaluates it per comparison, which
/// costs about a microsecond: for large arrays prefer the key-based sorts.
std::vector<Node> SortWithComparator(const std::vector<Node>& operands, int axis, const Comparator& less,
                                     bool stable = true, Loc loc = Loc::current());

/// The indices that sort x along `axis` (stable: ties in index order).
Node ArgSort(Node x, int axis = -1, SortOptions options = {}, dtypes::DType index_dtype = dtypes::Int32,
             Loc loc = Loc::current());

/// The k largest values along `axis`, in descending order, and their indices
/// (the lowest index first among equal values).
struct TopKResult {
  Node values;
  Node indices;
};
/// The k largest elements along `axis` (NaN counts as the largest).
TopKResult TopK(Node x, int64_t k, int axis = -1, dtypes::DType index_dtype = dtypes::Int32,
                Loc loc = Loc::current());
/// The k smallest elements along `axis`, in ascending order.
TopKResult BottomK(Node x, int64_t k, int axis = -1, dtypes::DType index_dtype = dtypes::Int32,
                   Loc loc = Loc::current());

/// out[..., i, ...] = x[..., indices[..., i, ...], ...] along `axis`
/// (numpy.take_along_axis): `indices` is an integer array with x's shape
/// except along `axis`. Differentiable with respect to x.
Node TakeAlongAxis(Node x, Node indices, int axis, Loc loc = Loc::current());

}  // namespace kiln::graph
