// Copyright 2026 The Kiln Authors.
// Muon (Keller Jordan et al., 2024; torch.optim.Muon): for a weight matrix,
// SGD with Nesterov momentum whose update is replaced by the nearest
// semi-orthogonal matrix, approximated by a quintic Newton-Schulz iteration;
// AdamW for embeddings, output heads, biases and norms.
#include <cmath>
#include <map>
#include <sstream>
#include <tuple>

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
// need. On a stack of k wide matrices [k, rows, cols] (rows <= cols, where X
// X^T is the smaller square), each normalized by its own norm: one batched
// product per term instead of k small ones.
Node NewtonSchulz(Node x, int steps, double eps) {
  constexpr double a = 3.4445, b = -4.7750, c = 2.0315;
  const int64_t k = x.Shape().Dims()[0];
  Node norms = graph::Sqrt(graph::ReduceSum(graph::Square(x), {1, 2}));
  x = x / (graph::Reshape(norms, {k, 1, 1}) + eps);
  for (int i = 0; i < steps; ++i) {
    Node s = graph::DotGeneral(x, {2}, {0}, x, {2}, {0});  // X X^T per matrix
    Node poly = s * b + graph::MatMul(s, s) * c;
    x = x * a + graph::MatMul(poly, x);
  }
  return x;
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

  internal::UpdateAllRule MakeUpdateAll(const context::Context& ctx) const override {
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
    return [=](const std::vector<internal::UpdateArgs>& args, std::vector<internal::Slots>& slots) {
      return Update(args, slots, mu, nesterov, static_cast<int>(steps), adjust == "original", exclude, adam);
    };
  }

 private:
  static std::vector<Node> Update(const std::vector<internal::UpdateArgs>& args, std::vector<internal::Slots>& slots,
                                  double mu, bool nesterov, int ns_steps, bool original_scale,
                                  const std::vector<std::string>& exclude, const internal::AdamParams& adam) {
    std::vector<Node> out(args.size());
    // The momentum updates to orthogonalize, wide (rows <= cols, transposed
    // if tall), grouped by shape and dtype: each group is one stack.
    std::map<std::tuple<int64_t, int64_t, dtypes::DType>, std::vector<size_t>> groups;
    std::vector<Node> wide(args.size());
    for (size_t i = 0; i < args.size(); ++i) {
      const internal::UpdateArgs& a = args[i];
      const std::vector<int64_t>& dims = a.w.Shape().Dims();
      // A complex variable arrives as its real view ([..., 2], see RealView):
      // its parts are coordinates, not a matrix, so it goes to AdamW.
      const bool complex = a.var != nullptr && dtypes::IsComplex(a.var->DType());
      bool matrix = !complex && dims.size() == 2 && dims[0] > 1 && dims[1] > 1;
      for (const std::string& e : exclude) {
        if (matrix && a.var != nullptr && a.var->ScopeAndName().find(e) != std::string::npos) matrix = false;
      }
      if (!matrix) {
        out[i] = internal::AdamUpdate(a, slots[i], adam);  // AdamW: the base class adds the decay
        continue;
      }
      // torch.optim.Muon: buf = lerp(buf, g, 1 - mu); update = lerp(g, buf, mu) with Nesterov.
      Node buf = slots[i].Get("momentum", initializers::Zeros()) * mu + a.grad * (1 - mu);
      slots[i].Set("momentum", buf);
      Node update = nesterov ? a.grad * (1 - mu) + buf * mu : buf;
      const bool tall = dims[0] > dims[1];
      wide[i] = tall ? graph::Transpose(update, {1, 0}) : update;
      groups[{std::min(dims[0], dims[1]), std::max(dims[0], dims[1]), a.w.DType()}].push_back(i);
    }
    for (const auto& [key, members] : groups) {
      const auto [rows, cols, dtype] = key;
      std::vector<Node> stack;
      for (size_t i : members) stack.push_back(graph::Reshape(wide[i], {1, rows, cols}));
      Node ortho = NewtonSchulz(stack.size() == 1 ? stack[0] : graph::Concatenate(stack, 0), ns_steps, 1e-7);
      for (size_t j = 0; j < members.size(); ++j) {
        const internal::UpdateArgs& a = args[members[j]];
        const auto m = static_cast<int64_t>(j);
        Node o = graph::Reshape(graph::Slice(ortho, {m, 0, 0}, {m + 1, rows, cols}), {rows, cols});
        const std::vector<int64_t>& dims = a.w.Shape().Dims();
        if (dims[0] > dims[1]) o = graph::Transpose(o, {1, 0});
        const auto r = static_cast<double>(dims[0]), c = static_cast<double>(dims[1]);
        const double scale = original_scale ? std::sqrt(std::max(1.0, c / r)) : 0.2 * std::sqrt(std::max(r, c));
        out[members[j]] = a.w - a.lr * scale * o;
      }
    }
    return out;
  }
};

}  // namespace

std::shared_ptr<Optimizer> Muon() { return std::make_shared<MuonOptimizer>(); }

}  // namespace kiln::ml::optimizers
