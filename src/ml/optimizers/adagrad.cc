// Copyright 2026 The Kiln Authors.
// Adagrad (Duchi et al.), in the Keras formulation.
#include "kiln/graph/ops.h"
#include "kiln/ml/optimizers/optimizers.h"
#include "src/ml/optimizers/optimizers_internal.h"

namespace kiln::ml::optimizers {

namespace {

namespace initializers = context::initializers;

// acc = acc + g^2 (acc starts at adagrad_initial);  w -= lr g / sqrt(acc + eps)
class AdagradOptimizer final : public internal::OptimizerBase {
 public:
  std::string Name() const override { return "adagrad"; }

 protected:
  internal::UpdateRule MakeRule(const context::Context& ctx) const override {
    const double initial = internal::FloatParam(ctx, "Optimizer adagrad", "adagrad_initial", 0.1, internal::NonNegative());
    const double eps = internal::FloatParam(ctx, "Optimizer adagrad", "adagrad_epsilon", 1e-7, internal::NonNegative());
    return [initial, eps](const internal::UpdateArgs& a, internal::Slots& slots) {
      Node acc = slots.Get("accumulator", initializers::Constant(initial)) + graph::Square(a.grad);
      slots.Set("accumulator", acc);
      return a.w - a.lr * a.grad / graph::Sqrt(acc + eps);
    };
  }
};

}  // namespace

std::shared_ptr<Optimizer> Adagrad() { return std::make_shared<AdagradOptimizer>(); }

}  // namespace kiln::ml::optimizers
