// Copyright 2026 The Kiln Authors.
// Activations by name.
#include <functional>
#include <utility>

#include "kiln/graph/ops.h"
#include "kiln/ml/layers/layers.h"
#include "src/ml/layers/layers_internal.h"

namespace kiln::ml::layers {

namespace {

using ActivationFn = Node (*)(Node);

/// The known activations, in the order the error message lists them.
const std::vector<std::pair<std::string, ActivationFn>>& KnownActivations() {
  static const std::vector<std::pair<std::string, ActivationFn>> known = {
      {"relu", [](Node x) { return graph::Relu(x); }},
      {"leaky_relu", [](Node x) { return graph::LeakyRelu(x); }},
      {"gelu", [](Node x) { return graph::Gelu(x); }},  // exact, as Keras's default
      {"silu", [](Node x) { return graph::Silu(x); }},
      {"swish", [](Node x) { return graph::Silu(x); }},
      {"tanh", [](Node x) { return graph::Tanh(x); }},
      {"sigmoid", [](Node x) { return graph::Sigmoid(x); }},
      {"softplus", [](Node x) { return graph::Softplus(x); }},
      {"linear", [](Node x) { return x; }},
      {"none", [](Node x) { return x; }},
  };
  return known;
}

}  // namespace

Node Activation(const std::string& name, Node x) {
  std::string names;
  for (const auto& [known, fn] : KnownActivations()) {
    if (known == name) {
      internal::CheckFloat("Activation", x);
      return fn(x);
    }
    names += (names.empty() ? "" : ", ") + known;
  }
  internal::LayerError("Activation", "unknown activation \"" + name + "\"; known: " + names);
}

}  // namespace kiln::ml::layers
