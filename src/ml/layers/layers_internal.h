// Copyright 2026 The Kiln Authors.
// Internal helpers shared by the layer implementations (src/ml/layers/*.cc):
// variable get-or-create (so re-traces find existing variables), error
// messages in one format, and small shape utilities.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "kiln/core/error.h"
#include "kiln/ml/layers/layers.h"

namespace kiln::ml::layers::internal {

/// Throws kiln::Error "layers::<layer>: <message>".
[[noreturn]] void LayerError(std::string_view layer, const std::string& message);

/// The variable `name` in ctx's scope: the existing one (found with reuse
/// semantics, so a shape or dtype mismatch is an error naming the variable),
/// or a new one created with ctx's initializer. Context::NewExec re-traces
/// per input-shape signature, and on a re-trace the variables already exist.
context::Variable* GetOrCreate(Context ctx, const std::string& name, const shapes::Shape& shape);

/// GetOrCreate with initializers::Zeros() (biases, offsets, moving means).
context::Variable* GetOrCreateZeros(Context ctx, const std::string& name, const shapes::Shape& shape);
/// GetOrCreate with initializers::Ones() (scales, moving variances).
context::Variable* GetOrCreateOnes(Context ctx, const std::string& name, const shapes::Shape& shape);

/// Throws unless x is a valid node of a float dtype.
void CheckFloat(std::string_view layer, const Node& x, std::string_view what = "x");

/// Adds l2 * sum(weights^2) to the trace's losses (Context::AddLoss) when the
/// hyperparameter "l2_regularization" (default 0) is positive in ctx's scope.
void AddL2Regularization(const Context& ctx, Node weights);

/// The score given to masked attention positions: large and negative but
/// finite, so a query that may see nothing gets uniform weights rather than
/// NaN; within Float16's range.
inline double MaskedScore(dtypes::DType dtype) { return dtype == dtypes::Float16 ? -6e4 : -1e9; }

/// A double as the shortest readable text ("0.5", "1e-05").
std::string FormatNumber(double value);

/// "[1, 2, 3]".
std::string DimsToString(const std::vector<int64_t>& dims);

/// Normalizes `axis` (negative counts from the end) against `rank`.
int NormalizeAxis(std::string_view layer, int axis, int rank);

/// `v` reshaped to rank `rank` with its dims at (sorted) `axes` and 1
/// elsewhere, so it broadcasts against a value of that rank.
Node ReshapeForAxes(Node v, const std::vector<int>& axes, int rank);

/// A per-spatial-axis option: `values` (one per spatial axis) or, if empty,
/// `fallback` for every axis; every value must be >= 1.
std::vector<int64_t> SpatialOption(std::string_view layer, std::string_view what, const std::vector<int64_t>& values,
                                   const std::vector<int64_t>& fallback);

/// TF/Keras "same" padding of one spatial axis: {low, high}, with the output
/// size ceil(input / stride).
std::pair<int64_t, int64_t> SamePadding(int64_t input, int64_t kernel, int64_t stride, int64_t dilation);

/// DotProductAttention (checked by the caller) with keys and values laid out
/// head-major, [batch, kv_heads, kv_len, head_dim]: its batched products read
/// them in place, so a cache kept in that layout is never copied per step.
Node AttendHeadMajor(Node q, Node k, Node v, bool causal, Node mask);

}  // namespace kiln::ml::layers::internal
