// Copyright 2026 The Kiln Authors.
// Stochastic gradient descent with optional (Nesterov) momentum.
#include "kiln/graph/ops.h"
#include "kiln/ml/optimizers/optimizers.h"
#include "src/ml/optimizers/optimizers_internal.h"

namespace kiln::ml::optimizers {

namespace {

namespace initializers = context::initializers;

// Momentum follows PyTorch: the buffer accumulates raw gradients and the
// learning rate scales the step (v = mu v + g; w -= lr v), so a schedule's
// change of rate takes effect at once. Nesterov (PyTorch/Sutskever form):
// w -= lr (g + mu v), with v already updated.
class SGDOptimizer final : public internal::OptimizerBase {
 public:
  std::string Name() const override { return "sgd"; }

 protected:
  double DefaultLearningRate() const override { return 0.01; }

  internal::UpdateRule MakeRule(const context::Context& ctx) const override {
    const double momentum = internal::FloatParam(ctx, "Optimizer sgd", "momentum", 0, {0, 1});
    const bool nesterov = ctx.GetParamOr<bool>("nesterov", false);
    if (nesterov && momentum == 0) Throw("Optimizer sgd: nesterov=true needs a momentum > 0");
    if (momentum == 0) {
      return [](const internal::UpdateArgs& a, internal::Slots&) { return a.w - a.lr * a.grad; };
    }
    return [momentum, nesterov](const internal::UpdateArgs& a, internal::Slots& slots) {
      Node v = slots.Get("momentum", initializers::Zeros()) * momentum + a.grad;
      slots.Set("momentum", v);
      Node direction = nesterov ? a.grad + v * momentum : v;
      return a.w - a.lr * direction;
    };
  }
};

}  // namespace

std::shared_ptr<Optimizer> SGD() { return std::make_shared<SGDOptimizer>(); }

}  // namespace kiln::ml::optimizers
