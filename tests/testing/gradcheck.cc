// Copyright 2026 The Kiln Authors.
#include "tests/testing/gradcheck.h"

#include <algorithm>
#include <cmath>
#include <sstream>

#include "kiln/graph/autodiff.h"

namespace kiln::testing {

::testing::AssertionResult CheckGradients(const std::shared_ptr<backends::Backend>& backend, const GraphFn& fn,
                                          const std::vector<tensors::Tensor>& args, const GradCheckOptions& options) {
  // The projection R makes L sensitive to every output element differently.
  tensors::Tensor projection;
  auto loss_of = [&](const std::vector<graph::Node>& params) {
    graph::Node out = fn(params);
    if (!projection.Ok()) {
      Rng rng(1234);
      projection = Random(out.Shape(), rng, -1, 1);
    }
    graph::Node projected = graph::Mul(out, graph::Const(out.Graph(), projection));
    // A complex output is projected to a real loss by its real part: with a
    // complex R both of the output's parts count.
    return graph::ReduceAllSum(graph::Real(projected));
  };
  std::vector<int> diff;
  for (size_t i = 0; i < args.size(); ++i) {
    if ((args[i].DType() == dtypes::Float64 || args[i].DType() == dtypes::Complex128) &&
        std::find(options.skip.begin(), options.skip.end(), static_cast<int>(i)) == options.skip.end()) {
      diff.push_back(static_cast<int>(i));
    }
  }
  auto forward = graph::NewExec(backend, [&](const std::vector<graph::Node>& p) { return loss_of(p); }, "loss");
  auto backward = graph::NewExec(
      backend,
      [&](const std::vector<graph::Node>& p) {
        std::vector<graph::Node> wrt;
        for (int i : diff) wrt.push_back(p[i]);
        return graph::Gradient(loss_of(p), wrt);
      },
      "gradient");
  std::vector<tensors::Tensor> grads = backward.CallVector(args);

  std::ostringstream report;
  int failures = 0;
  for (size_t k = 0; k < diff.size(); ++k) {
    const int i = diff[k];
    std::vector<double> analytic = ToDoubles(grads[k]);
    if (grads[k].Shape() != args[i].Shape()) {
      return ::testing::AssertionFailure() << "gradient of argument " << i << " has shape " << grads[k].Shape()
                                           << ", the argument " << args[i].Shape();
    }
    // Each double of the argument: for complex arguments the real and the
    // imaginary part of each element, whose gradients are the real and the
    // imaginary part of the gradient (PyTorch's convention).
    const std::vector<double> values = ToDoubles(args[i]);
    for (int64_t e = 0; e < static_cast<int64_t>(values.size()); ++e) {
      auto eval = [&](double delta) {
        std::vector<tensors::Tensor> shifted = args;
        std::vector<double> moved = values;
        moved[static_cast<size_t>(e)] += delta;
        shifted[i] = FromDoubles(args[i].Shape(), moved);
        return forward.CallVector(shifted)[0].Value<double>();
      };
      const double numeric = (eval(options.epsilon) - eval(-options.epsilon)) / (2 * options.epsilon);
      const double got = analytic[static_cast<size_t>(e)];
      if (!(std::abs(got - numeric) <= options.atol + options.rtol * std::abs(numeric))) {
        if (failures++ < 6) {
          report << "\n  argument " << i << " element " << e << ": analytic " << got << ", numeric " << numeric;
        }
      }
    }
  }
  if (failures > 0) return ::testing::AssertionFailure() << failures << " gradient elements differ:" << report.str();
  return ::testing::AssertionSuccess();
}

}  // namespace kiln::testing
