// Copyright 2026 The Kiln Authors.
// Shared machinery of the optimizers (internal): the update-rule interface,
// the per-variable state slots, the common UpdateGraph and the checked
// hyperparameter readers.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "kiln/context/context.h"
#include "kiln/ml/optimizers/optimizers.h"

namespace kiln::ml::optimizers::internal {

/// The state ("slots": moments, accumulators) of one trainable variable.
/// Slots are context variables, so checkpoints carry them: not trainable,
/// created on first use under
///   <ctx scope>/optimizers/<optimizer>/<variable's full name>/<slot>
/// ("/optimizers/adam/dense/weights/m" for the root context), with the
/// variable's dims and the compute dtype (Float32 for half variables, so
/// second moments do not underflow).
class Slots {
 public:
  /// `optimizer_ctx` is the handle at "<ctx scope>/optimizers/<optimizer>".
  Slots(const context::Context& optimizer_ctx, const context::Variable& var, dtypes::DType dtype, graph::Graph* g);

  /// The slot's value before this step; created with `init` if missing.
  Node Get(const std::string& slot, const context::initializers::Initializer& init);
  /// Sets the slot's value after this step (Get must have been called first).
  /// With a commit predicate (gradient accumulation), the slot keeps its
  /// old value on the micro-steps that do not update.
  void Set(const std::string& slot, Node value);
  /// The Bool scalar saying whether this step updates (empty: always).
  void SetCommit(Node commit) { commit_ = commit; }

 private:
  context::Context scope_;
  shapes::Shape shape_;
  graph::Graph* g_;
  Node commit_;
};

/// What an update rule sees for one variable, all in its compute dtype.
struct UpdateArgs {
  Node w;     ///< The current value.
  Node grad;  ///< The gradient, clipped, with L2 weight decay already added.
  Node lr;    ///< The learning rate of this step (scalar).
  Node step;  ///< Updates done before this one (scalar; 0 at the first).
  const context::Variable* var = nullptr;  ///< The variable (its name and shape).
};

/// Returns the variable's new value; reads and writes its state in `slots`.
using UpdateRule = std::function<Node(const UpdateArgs& args, Slots& slots)>;
/// Returns the new values of all the variables, args[i] and slots[i] for
/// the i-th, in order.
using UpdateAllRule = std::function<std::vector<Node>(const std::vector<UpdateArgs>& args, std::vector<Slots>& slots)>;

/// Adam's hyperparameters (adam_beta1, adam_beta2, adam_epsilon).
struct AdamParams {
  double b1 = 0.9, b2 = 0.999, eps = 1e-7;
};
/// Reads and validates them from `ctx` (errors name `who`).
AdamParams ReadAdamParams(const context::Context& ctx, const std::string& who);
/// Adam's update of one variable (moments "m" and "v" in `slots`, bias
/// correction from args.step); the caller adds weight decay. Shared by Adam,
/// AdamW and Muon's non-matrix variables.
Node AdamUpdate(const UpdateArgs& args, Slots& slots, const AdamParams& params);

/// The part every optimizer shares: finds the trainable variables the loss
/// depends on, computes and clips their gradients, applies weight decay
/// and the learning-rate schedule, runs the algorithm's rule on each, and
/// increments the global step. Subclasses provide the rule for one variable
/// (MakeRule), or for all of them at once (MakeUpdateAll).
class OptimizerBase : public Optimizer {
 public:
  void UpdateGraph(context::Context ctx, Node loss) final;

 protected:
  /// Reads and validates the algorithm's hyperparameters from `ctx`, and
  /// returns its rule for this trace (used by the default MakeUpdateAll).
  virtual UpdateRule MakeRule(const context::Context& ctx) const;
  /// The same for all the variables together: the default runs MakeRule's
  /// rule on each; an algorithm that works on several variables at once
  /// (Muon batches same-shaped matrices) overrides it. Called before any
  /// graph work, so bad hyperparameters fail first.
  virtual UpdateAllRule MakeUpdateAll(const context::Context& ctx) const;
  /// The learning rate when "learning_rate" is not set.
  virtual double DefaultLearningRate() const { return 0.001; }
  /// The weight decay when "weight_decay" is not set.
  virtual double DefaultWeightDecay() const { return 0; }
  /// Decoupled decay (w -= lr * wd * w, AdamW) instead of L2 added to the
  /// gradient (grad += wd * w).
  virtual bool DecoupledWeightDecay() const { return false; }
};

/// The learning rate for the current step with `default_lr` when the
/// context does not set "learning_rate" (see optimizers::LearningRate).
Node ScheduledLearningRate(const context::Context& ctx, graph::Graph* g, dtypes::DType dtype, double default_lr);
/// The same rate on the host at global step `step` (see optimizers::LearningRateAt).
double ScheduledLearningRateAt(const context::Context& ctx, double step, double default_lr);

/// Bounds of a hyperparameter: [lo, hi], either end open on request.
struct Range {
  double lo, hi;
  bool lo_open = false, hi_open = false;
};
/// Range {0, 1} with the high end open: [0, 1).
inline constexpr Range kUnitOpen{0, 1, false, true};
/// [0, inf).
Range NonNegative();
/// (0, inf).
Range Positive();

/// The float hyperparameter `key` (`default_value` if unset). Throws
/// kiln::Error "<who>: hyperparameter <key>=<value> must be in <range>"
/// when outside `range` (or NaN).
double FloatParam(const context::Context& ctx, std::string_view who, const std::string& key, double default_value,
                  Range range);

}  // namespace kiln::ml::optimizers::internal
