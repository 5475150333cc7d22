// Copyright 2026 The Kiln Authors.
// The Sequential builder: layers applied in order, each in its own scope.
#include <utility>

#include "kiln/graph/ops.h"
#include "kiln/ml/layers/layers.h"
#include "src/ml/layers/layers_internal.h"

namespace kiln::ml::layers {

// Each builder method captures its arguments by value: the model may outlive
// the arguments and be applied many times (once per trace).

Sequential& Sequential::Dense(int64_t units, bool use_bias) {
  return Add("dense", [=](Context ctx, Node x) { return layers::Dense(ctx, x, units, use_bias); });
}

Sequential& Sequential::Conv(int64_t filters, std::vector<int64_t> kernel_size, ConvOptions options) {
  return Add("conv", [=, kernel_size = std::move(kernel_size), options = std::move(options)](Context ctx, Node x) {
    return layers::Conv(ctx, x, filters, kernel_size, options);
  });
}

Sequential& Sequential::MaxPool(PoolOptions options) {
  return Add("max_pool", [options = std::move(options)](Context, Node x) { return layers::MaxPool(x, options); });
}

Sequential& Sequential::AvgPool(PoolOptions options) {
  return Add("avg_pool", [options = std::move(options)](Context, Node x) { return layers::AvgPool(x, options); });
}

Sequential& Sequential::BatchNorm() {
  return Add("batch_norm", [](Context ctx, Node x) { return layers::BatchNorm(ctx, x); });
}

Sequential& Sequential::LayerNorm() {
  return Add("layer_norm", [](Context ctx, Node x) { return layers::LayerNorm(ctx, x); });
}

Sequential& Sequential::Dropout(double rate) {
  // Checked now, so a bad rate fails where the model is defined.
  if (!(rate >= 0 && rate < 1)) {
    internal::LayerError("Dropout", "rate must be in [0, 1), got " + internal::FormatNumber(rate));
  }
  return Add("dropout", [=](Context ctx, Node x) { return layers::Dropout(ctx, x, rate); });
}

Sequential& Sequential::Activation(std::string name) {
  std::string scope = name;
  return Add(std::move(scope), [name = std::move(name)](Context, Node x) { return layers::Activation(name, x); });
}

Sequential& Sequential::Flatten() {
  return Add("flatten", [](Context, Node x) {
    if (!x.Ok() || x.Rank() < 1) {
      internal::LayerError("Flatten", "x must have rank >= 1 ([batch, ...]), got " +
                                          (x.Ok() ? x.Shape().ToString() : std::string("an invalid Node")));
    }
    // Explicit sizes rather than -1, so a batch of 0 works too.
    const auto& dims = x.Shape().Dims();
    int64_t features = 1;
    for (size_t i = 1; i < dims.size(); ++i) features *= dims[i];
    return graph::Reshape(x, {dims[0], features});
  });
}

Sequential& Sequential::Add(std::string name, std::function<Node(Context, Node)> layer) {
  if (!layer) internal::LayerError("Sequential", "layer \"" + name + "\" is an empty function");
  layers_.emplace_back(std::move(name), std::move(layer));
  return *this;
}

Node Sequential::Apply(Context ctx, Node x) const {
  for (size_t i = 0; i < layers_.size(); ++i) {
    const auto& [name, layer] = layers_[i];
    x = layer(ctx.In(std::to_string(i) + "_" + name), x);
  }
  return x;
}

}  // namespace kiln::ml::layers
