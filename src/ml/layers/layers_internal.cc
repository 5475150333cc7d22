// Copyright 2026 The Kiln Authors.
#include "src/ml/layers/layers_internal.h"

#include <algorithm>
#include <sstream>

#include "kiln/context/initializers.h"
#include "kiln/graph/ops.h"

namespace kiln::ml::layers::internal {

namespace initializers = context::initializers;

void LayerError(std::string_view layer, const std::string& message) {
  Throw("layers::" + std::string(layer) + ": " + message);
}

context::Variable* GetOrCreate(Context ctx, const std::string& name, const shapes::Shape& shape) {
  // A handle already in reuse mode (deliberate sharing) is used as given: a
  // missing variable is then the caller's error, reported by the context.
  if (!ctx.IsReuse() && ctx.GetVariable(name) != nullptr) return ctx.Reuse().VariableWithShape(name, shape);
  return ctx.VariableWithShape(name, shape);
}

context::Variable* GetOrCreateZeros(Context ctx, const std::string& name, const shapes::Shape& shape) {
  return GetOrCreate(ctx.WithInitializer(initializers::Zeros()), name, shape);
}

context::Variable* GetOrCreateOnes(Context ctx, const std::string& name, const shapes::Shape& shape) {
  return GetOrCreate(ctx.WithInitializer(initializers::Ones()), name, shape);
}

void CheckFloat(std::string_view layer, const Node& x, std::string_view what) {
  if (!x.Ok()) LayerError(layer, std::string(what) + " is an invalid (default-constructed) Node");
  if (!dtypes::IsFloat(x.DType())) {
    LayerError(layer, std::string(what) + " must have a float dtype, got " + x.Shape().ToString());
  }
}

std::string FormatNumber(double value) {
  std::ostringstream os;
  os << value;
  return os.str();
}

std::string DimsToString(const std::vector<int64_t>& dims) {
  std::string s = "[";
  for (size_t i = 0; i < dims.size(); ++i) s += (i ? ", " : "") + std::to_string(dims[i]);
  return s + "]";
}

int NormalizeAxis(std::string_view layer, int axis, int rank) {
  if (axis < -rank || axis >= rank) {
    LayerError(layer, "axis " + std::to_string(axis) + " is out of range for rank " + std::to_string(rank));
  }
  return axis < 0 ? axis + rank : axis;
}

Node ReshapeForAxes(Node v, const std::vector<int>& axes, int rank) {
  std::vector<int64_t> dims(static_cast<size_t>(rank), 1);
  for (size_t i = 0; i < axes.size(); ++i) dims[static_cast<size_t>(axes[i])] = v.Shape().Dims()[i];
  return graph::Reshape(v, dims);
}

std::vector<int64_t> SpatialOption(std::string_view layer, std::string_view what, const std::vector<int64_t>& values,
                                   const std::vector<int64_t>& fallback) {
  if (values.empty()) return fallback;
  if (values.size() != fallback.size()) {
    LayerError(layer, std::string(what) + " " + DimsToString(values) + " must have one value per spatial axis (" +
                          std::to_string(fallback.size()) + ")");
  }
  for (int64_t v : values) {
    if (v < 1) LayerError(layer, std::string(what) + " " + DimsToString(values) + " must all be >= 1");
  }
  return values;
}

std::pair<int64_t, int64_t> SamePadding(int64_t input, int64_t kernel, int64_t stride, int64_t dilation) {
  const int64_t output = (input + stride - 1) / stride;
  const int64_t effective_kernel = (kernel - 1) * dilation + 1;
  const int64_t total = std::max<int64_t>((output - 1) * stride + effective_kernel - input, 0);
  // Like TF, the extra element of an odd total goes to the high side.
  return {total / 2, total - total / 2};
}

void AddL2Regularization(const Context& ctx, Node weights) {
  const double l2 = ctx.GetParamOr<double>("l2_regularization", 0.0);
  if (l2 < 0) LayerError("l2_regularization", "must be >= 0, got " + std::to_string(l2));
  if (l2 == 0) return;
  Context c = ctx;
  c.AddLoss(graph::ReduceAllSum(graph::Square(weights)) * l2);
}

}  // namespace kiln::ml::layers::internal
