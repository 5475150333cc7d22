// Copyright 2026 The Kiln Authors.
// RMSProp (Hinton), in the Keras formulation.
#include "kiln/graph/ops.h"
#include "kiln/ml/optimizers/optimizers.h"
#include "src/ml/optimizers/optimizers_internal.h"

namespace kiln::ml::optimizers {

namespace {

namespace initializers = context::initializers;

// Keras (non-centered):
//   ms = rho ms + (1 - rho) g^2;   step = lr g / sqrt(ms + eps)
//   momentum > 0:  mom = momentum mom + step;  w -= mom
//   otherwise:     w -= step
// (epsilon inside the square root; the momentum buffer holds lr-scaled steps.)
class RMSPropOptimizer final : public internal::OptimizerBase {
 public:
  std::string Name() const override { return "rmsprop"; }

 protected:
  internal::UpdateRule MakeRule(const context::Context& ctx) const override {
    const double rho = internal::FloatParam(ctx, "Optimizer rmsprop", "rmsprop_rho", 0.9, internal::kUnitOpen);
    const double eps = internal::FloatParam(ctx, "Optimizer rmsprop", "rmsprop_epsilon", 1e-7, internal::NonNegative());
    const double momentum = internal::FloatParam(ctx, "Optimizer rmsprop", "momentum", 0.9, {0, 1});
    return [rho, eps, momentum](const internal::UpdateArgs& a, internal::Slots& slots) {
      Node ms = slots.Get("mean_square", initializers::Zeros()) * rho + graph::Square(a.grad) * (1 - rho);
      slots.Set("mean_square", ms);
      Node step = a.lr * a.grad / graph::Sqrt(ms + eps);
      if (momentum == 0) return a.w - step;
      Node mom = slots.Get("momentum", initializers::Zeros()) * momentum + step;
      slots.Set("momentum", mom);
      return a.w - mom;
    };
  }
};

}  // namespace

std::shared_ptr<Optimizer> RMSProp() { return std::make_shared<RMSPropOptimizer>(); }

}  // namespace kiln::ml::optimizers
