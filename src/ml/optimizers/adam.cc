// Copyright 2026 The Kiln Authors.
// Adam (Kingma & Ba) and AdamW (Loshchilov & Hutter: decoupled weight decay).
#include <cmath>

#include "kiln/graph/ops.h"
#include "kiln/ml/optimizers/optimizers.h"
#include "src/ml/optimizers/optimizers_internal.h"

namespace kiln::ml::optimizers {

namespace {

namespace initializers = context::initializers;

// 1 - b^t, the bias correction, accurate where it is small (the first
// steps): -expm1(t log b) with log b taken in double on the host. Written as
// 1 - Pow(b, t) in the step's dtype, it would lose what cancels: Float32
// rounds b = 0.999 to 0.99900001 (so 1 - b is 1.3e-5 off, relatively), and
// Pow's last-ulp error is multiplied by 1 / (1 - b^t), 1000 at the first
// step (a GPU's powf is documented to 4 ulp).
Node OneMinusPower(double b, const Node& t) { return -graph::Expm1(t * std::log(b)); }

// Algorithm 1 of the paper, with bias correction from the step count
// t = global step + 1:
//   m = b1 m + (1 - b1) g;   v = b2 v + (1 - b2) g^2
//   w -= lr (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)
// (epsilon outside the square root, as the paper and PyTorch; Keras puts
// it on the uncorrected sqrt(v), which differs only for tiny v.)
// Weight decay: L2 on the gradient for Adam, decoupled for AdamW (the base
// class applies either).
class AdamOptimizer final : public internal::OptimizerBase {
 public:
  explicit AdamOptimizer(bool decoupled) : decoupled_(decoupled) {}
  std::string Name() const override { return decoupled_ ? "adamw" : "adam"; }

 protected:
  double DefaultWeightDecay() const override { return decoupled_ ? 0.01 : 0; }
  bool DecoupledWeightDecay() const override { return decoupled_; }

  internal::UpdateRule MakeRule(const context::Context& ctx) const override {
    return [params = internal::ReadAdamParams(ctx, "Optimizer " + Name())](const internal::UpdateArgs& a,
                                                                           internal::Slots& slots) {
      return internal::AdamUpdate(a, slots, params);
    };
  }

 private:
  bool decoupled_;
};

}  // namespace

namespace internal {

AdamParams ReadAdamParams(const context::Context& ctx, const std::string& who) {
  return {FloatParam(ctx, who, "adam_beta1", 0.9, kUnitOpen), FloatParam(ctx, who, "adam_beta2", 0.999, kUnitOpen),
          FloatParam(ctx, who, "adam_epsilon", 1e-7, NonNegative())};
}

Node AdamUpdate(const UpdateArgs& a, Slots& slots, const AdamParams& p) {
  Node m = slots.Get("m", initializers::Zeros()) * p.b1 + a.grad * (1 - p.b1);
  Node v = slots.Get("v", initializers::Zeros()) * p.b2 + graph::Square(a.grad) * (1 - p.b2);
  slots.Set("m", m);
  slots.Set("v", v);
  Node t = a.step + 1.0;
  Node m_hat = m / OneMinusPower(p.b1, t);
  Node v_hat = v / OneMinusPower(p.b2, t);
  return a.w - a.lr * m_hat / (graph::Sqrt(v_hat) + p.eps);
}

}  // namespace internal

std::shared_ptr<Optimizer> Adam() { return std::make_shared<AdamOptimizer>(false); }
std::shared_ptr<Optimizer> AdamW() { return std::make_shared<AdamOptimizer>(true); }

}  // namespace kiln::ml::optimizers
