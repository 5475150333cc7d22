// Copyright 2026 The Kiln Authors.
// Layers: functions of a context (where their variables live) and Nodes.
// Each layer creates its variables in the scope of the context it is given,
// so callers pick names with ctx.In("dense1"). Shapes are channels-last.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "kiln/context/context.h"

namespace kiln::ml::layers {

using context::Context;
using graph::Node;

/// x [..., in] -> [..., units]: x W + b. Variables "weights" [in, units]
/// (GlorotUniform unless the context sets an initializer) and "biases" [units] (zeros).
/// Dense and Conv add l2 * sum(weights^2) to the training loss when the
/// hyperparameter "l2_regularization" (looked up from ctx's scope) is > 0.
Node Dense(Context ctx, Node x, int64_t units, bool use_bias = true);

/// Padding of convolutions and pools: "valid" (none) or "same" (output size
/// ceil(input / stride)).
enum class Padding { kValid, kSame };

struct ConvOptions {
  std::vector<int64_t> strides;    // per spatial axis; empty = 1
  Padding padding = Padding::kValid;
  std::vector<int64_t> dilations;  // per spatial axis; empty = 1
  bool use_bias = true;
};

/// N-d convolution (1-3 spatial axes) of x [batch, spatial..., channels] with
/// a kernel "weights" [kernel_size..., channels, filters] and "biases" [filters].
Node Conv(Context ctx, Node x, int64_t filters, std::vector<int64_t> kernel_size, const ConvOptions& options = {});

struct PoolOptions {
  std::vector<int64_t> window;   // per spatial axis
  std::vector<int64_t> strides;  // per spatial axis; empty = window
  Padding padding = Padding::kValid;
};
/// Max pooling over the spatial axes of x [batch, spatial..., channels].
Node MaxPool(Node x, const PoolOptions& options);
/// Average pooling (padding excluded from the average).
Node AvgPool(Node x, const PoolOptions& options);

/// Batch normalization over all axes but `axis` (the features). In training
/// (ctx.IsTraining()) it normalizes with the batch statistics and updates the
/// moving averages "mean"/"variance" (momentum); in inference it uses them.
/// Learned "scale" and "offset".
Node BatchNorm(Context ctx, Node x, int axis = -1, double momentum = 0.99, double epsilon = 1e-3);
/// Layer normalization over `axes` (default the last), learned "scale"/"offset".
Node LayerNorm(Context ctx, Node x, std::vector<int> axes = {-1}, double epsilon = 1e-5);
/// RMS normalization over the last axis, learned "scale".
Node RMSNorm(Context ctx, Node x, double epsilon = 1e-6);
/// Inverted dropout: in training zeroes each element with probability `rate`
/// and scales the rest by 1 / (1 - rate); identity in inference.
Node Dropout(Context ctx, Node x, double rate);
/// Integer indices [...] -> [..., dim] rows of "embeddings" [vocab, dim].
Node Embedding(Context ctx, Node indices, int64_t vocab_size, int64_t dim);

struct AttentionOptions {
  Node mask;            // optional Bool [batch, q_len, kv_len] (or broadcastable): false = masked
  bool causal = false;  // each query attends to keys at positions <= its own
  double dropout = 0;   // on attention weights, in training
};
/// Multi-head attention: query [batch, q_len, d], key/value [batch, kv_len, d]
/// -> [batch, q_len, d]; projections "query", "key", "value", "output"
/// (Dense) with num_heads heads of key_dim each.
Node MultiHeadAttention(Context ctx, Node query, Node key, Node value, int num_heads, int64_t key_dim,
                        const AttentionOptions& options = {});

/// Applies an activation by name: "relu", "leaky_relu", "gelu", "silu",
/// "swish", "tanh", "sigmoid", "softplus", "linear"/"none". Unknown names are
/// a kiln::Error listing the known ones.
Node Activation(const std::string& name, Node x);

/// A Sequential-style builder: each Add* appends a layer in its own scope
/// ("0_dense", "1_relu", ...), and Apply runs them in order.
///   auto model = layers::Sequential().Dense(128).Activation("relu").Dropout(0.2).Dense(10);
///   Node logits = model.Apply(ctx, x);
class Sequential {
 public:
  /// Appends the layer of the same name (see the free functions above).
  Sequential& Dense(int64_t units, bool use_bias = true);
  Sequential& Conv(int64_t filters, std::vector<int64_t> kernel_size, ConvOptions options = {});
  Sequential& MaxPool(PoolOptions options);
  Sequential& AvgPool(PoolOptions options);
  Sequential& BatchNorm();
  Sequential& LayerNorm();
  Sequential& Dropout(double rate);
  Sequential& Activation(std::string name);
  /// Reshapes [batch, ...] to [batch, -1].
  Sequential& Flatten();
  /// Any function of (ctx, x) as a layer.
  Sequential& Add(std::string name, std::function<Node(Context, Node)> layer);
  /// Runs the layers in order on x.
  Node Apply(Context ctx, Node x) const;

 private:
  std::vector<std::pair<std::string, std::function<Node(Context, Node)>>> layers_;
};

}  // namespace kiln::ml::layers
