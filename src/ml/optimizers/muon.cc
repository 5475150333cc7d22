// Copyright 2026 The Kiln Authors.
// Muon (Keller Jordan et al., 2024; torch.optim.Muon): for a weight matrix,
// SGD with Nesterov momentum whose update is replaced by the nearest
// semi-orthogonal matrix, approximated by a quintic Newton-Schulz iteration;
// AdamW for embeddings, output heads, biases and norms.
#include <cmath>
#include <sstream>

#include "kiln/graph/ops.h"
#include "kiln/ml/optimizers/optimizers.h"
#include "src/ml/optimizers/optimizers_internal.h"

namespace kiln::ml::optimizers {

namespace {

namespace initializers = context::initializers;

// The quintic iteration of the reference implementation: X <- aX + (bA + cA^2)X
// with A = X X^T, on X = G / ||G||_F (so its singular values start in (0, 1]).
// The coefficients maximize the slope at 0, so 5 steps bring every singular
// value into about [0.7, 1.2]: not exactly U V^T, which the method does not
// need. Computed on the wide orientation (rows <= cols), where X X^T is the
// smaller square.
Node NewtonSchulz(Node g, int steps, double eps) {
  constexpr double a = 3.4445, b = -4.7750, c = 2.0315;
  const bool tall = g.Shape().Dims()[0] > g.Shape().Dims()[1];
  Node x = tall ? graph::Transpose(g, {1, 0}) : g;
  x = x / (graph::Sqrt(graph::ReduceAllSum(graph::Square(x))) + eps);
  for (int i = 0; i < steps; ++i) {
    Node s = graph::DotGeneral(x, {1}, {}, x, {1}, {});  // X X^T
    Node poly = s * b + graph::MatMul(s, s) * c;
    x = x * a + graph::MatMul(poly, x);
  }
  return tall ? graph::Transpose(x, {1, 0}) : x;
}

std::vector<std::string> SplitCommas(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream in(s);
  for (std::string part; std::getline(in, part, ',');) {
    if (!part.empty()) out.push_back(part);
  }
  return out;
}

class MuonOptimizer final : public internal::OptimizerBase {
 public:
  std::string Name() const override { return "muon"; }

 protected:
  double DefaultWeightDecay() const override { return 0.1; }
  bool DecoupledWeightDecay() const override { return true; }

  internal::UpdateRule MakeRule(const context::Context& ctx) const override {
    const std::string who = "Optimizer muon";
    const double mu = internal::FloatParam(ctx, who, "muon_momentum", 0.95, internal::kUnitOpen);
    const bool nesterov = ctx.GetParamOr<bool>("muon_nesterov", true);
    const auto steps = ctx.GetParamOr<int64_t>("muon_ns_steps", 5);
    if (steps < 1 || steps > 100) {
      Throw(who + ": hyperparameter muon_ns_steps=" + std::to_string(steps) + " must be in [1, 100]");
    }
    const auto adjust = ctx.GetParamOr<std::string>("muon_adjust_lr", "match_rms_adamw");
    if (adjust != "match_rms_adamw" && adjust != "original") {
      Throw(who + ": hyperparameter muon_adjust_lr=\"" + adjust + "\" must be \"match_rms_adamw\" or \"original\"");
    }
    const std::vector<std::string> exclude =
        SplitCommas(ctx.GetParamOr<std::string>("muon_exclude", "embedding,positions,logits"));
    const internal::AdamParams adam = internal::ReadAdamParams(ctx, who);
    return [=](const internal::UpdateArgs& a, internal::Slots& slots) {
      const std::vector<int64_t>& dims = a.w.Shape().Dims();
      // A complex variable arrives as its real view ([..., 2], see RealView):
      // its parts are coordinates, not a matrix, so it goes to AdamW.
      const bool complex = a.var != nullptr && dtypes::IsComplex(a.var->DType());
      bool matrix = !complex && dims.size() == 2 && dims[0] > 1 && dims[1] > 1;
      for (const std::string& e : exclude) {
        if (matrix && a.var != nullptr && a.var->ScopeAndName().find(e) != std::string::npos) matrix = false;
      }
      if (!matrix) return internal::AdamUpdate(a, slots, adam);  // AdamW: the base class adds the decay
      // torch.optim.Muon: buf = lerp(buf, g, 1 - mu); update = lerp(g, buf, mu) with Nesterov.
      Node buf = slots.Get("momentum", initializers::Zeros()) * mu + a.grad * (1 - mu);
      slots.Set("momentum", buf);
      Node update = nesterov ? a.grad * (1 - mu) + buf * mu : buf;
      const auto rows = static_cast<double>(dims[0]), cols = static_cast<double>(dims[1]);
      const double scale = adjust == "original" ? std::sqrt(std::max(1.0, cols / rows))
                                                : 0.2 * std::sqrt(std::max(rows, cols));
      return a.w - a.lr * scale * NewtonSchulz(update, static_cast<int>(steps), 1e-7);
    };
  }
};

}  // namespace

std::shared_ptr<Optimizer> Muon() { return std::make_shared<MuonOptimizer>(); }

}  // namespace kiln::ml::optimizers
