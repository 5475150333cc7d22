// Copyright 2026 The Kiln Authors.
// Optimizers: build the update of the trainable variables inside the train
// step graph. Their state (moments, step count) lives in the context, under
// the scope "/optimizers/<name>", so checkpoints carry it.
//
// Hyperparameters (read from the context, with these defaults):
//   learning_rate (0.001; SGD 0.01), learning_rate_schedule ("constant" |
//   "cosine" | "exponential" | "linear" | "wsd" | "variable"), warmup_steps
//   (0), decay_steps (10000; cosine and linear: steps to reach min; wsd: the
//   same, holding learning_rate until the last cooldown_fraction (0.2, in
//   (0, 1]) of them, then linear to min, i.e. warmup-stable-decay;
//   exponential: steps per decay), decay_rate (0.96), min_learning_rate (0);
//   decay_steps count from the end of the warmup. "variable": the value of
//   LearningRateVariable, set by the host (the warmup and decay
//   hyperparameters unused). clip_global_norm (0 = off), weight_decay (0; AdamW
//   default 0.01), weight_decay_min_rank (0: the decay applies to variables
//   of at least this rank; 2 spares biases, norm scales and other vectors, as
//   nanoGPT's AdamW groups), momentum (0 for SGD, 0.9 RMSProp), nesterov (false),
//   adam_beta1 (0.9), adam_beta2 (0.999), adam_epsilon (1e-7), rmsprop_rho
//   (0.9), rmsprop_epsilon (1e-7), adagrad_initial (0.1), adagrad_epsilon (1e-7).
//
// Muon updates each trainable matrix (rank 2, both dims > 1, its full name
// containing none of the comma-separated muon_exclude substrings, default
// "embedding,positions,logits": embeddings, learned position tables and
// output heads stay on AdamW, as in the paper) with the momentum's orthogonalization; every other variable with
// AdamW (adam_* hyperparameters). Its hyperparameters: weight_decay (0.1,
// decoupled, on both), muon_momentum (0.95), muon_nesterov (true),
// muon_ns_steps (5), muon_adjust_lr ("match_rms_adamw": the update scaled by
// 0.2 sqrt(max(rows, cols)), so one learning_rate suits both parts, as
// Moonshot's Muon and torch.optim.Muon's option; "original": by
// sqrt(max(1, cols / rows)), for a Dense [in, out] weight Keller Jordan's
// sqrt(max(1, out / in))). Matrices of one shape up to transposition are
// orthogonalized together (one batched product per Newton-Schulz term, not
// one per matrix; Float32 results may differ from one matrix at a time in
// the last bits).
//
// gradient_accumulation_steps (1): with k > 1, each call (each train step of
// a micro-batch) adds its gradients to accumulators; every k-th call updates
// the variables with the mean of the k gradients (clipping, weight decay and
// the schedule apply to that mean), increments the global step and resets
// the accumulators; the other calls leave the variables, the optimizer state
// and the global step unchanged. k micro-batches of b examples then train as
// one batch of k * b (for losses that are means over the batch), with the
// memory of one micro-batch. As optax.MultiSteps: the global step, and with
// it the schedule and Adam's bias correction, counts updates, not calls
// (Keras 3 counts calls). train::Loop's step-periodic hooks fire once per
// update; RunSteps(n) counts calls. The accumulators and the micro-step
// counter live under "<scope>/optimizers/accumulation" (checkpoints carry
// them; a run resumed with a smaller k updates at its next call).
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "kiln/context/context.h"

namespace kiln::ml::optimizers {

using graph::Node;

/// An optimizer: given the loss, updates every trainable variable of the
/// context that the loss depends on, and the global step.
class Optimizer {
 public:
  virtual ~Optimizer() = default;
  /// The name ("adam").
  virtual std::string Name() const = 0;
  /// Builds the updates inside the graph of `loss` (being traced by
  /// context::NewExec): computes gradients, applies clipping, schedules and
  /// weight decay, and sets the new variable values with SetValueGraph.
  /// Increments "/global_step" (Int64, created if missing).
  virtual void UpdateGraph(context::Context ctx, Node loss) = 0;

  /// A function applied to the gradients right after they are computed
  /// (before accumulation, clipping and weight decay), one per variable in
  /// and out, same shapes: data-parallel training (Trainer::
  /// EnableDataParallel) averages them across processes here. Optimizers
  /// that implement UpdateGraph themselves must apply it too.
  using GradientTransform = std::function<std::vector<Node>(const std::vector<Node>& grads)>;
  void SetGradientTransform(GradientTransform fn) { gradient_transform_ = std::move(fn); }
  const GradientTransform& GetGradientTransform() const { return gradient_transform_; }

 private:
  GradientTransform gradient_transform_;
};

/// Stochastic gradient descent, with optional momentum and Nesterov.
std::shared_ptr<Optimizer> SGD();
/// Adam (Kingma & Ba) with bias correction.
std::shared_ptr<Optimizer> Adam();
/// Adam with decoupled weight decay (Loshchilov & Hutter).
std::shared_ptr<Optimizer> AdamW();
/// Muon (Jordan et al. 2024, as torch.optim.Muon): momentum orthogonalized by
/// a Newton-Schulz iteration for the weight matrices, AdamW for the other
/// variables (see the header comment for which and for its hyperparameters).
std::shared_ptr<Optimizer> Muon();
/// RMSProp (Keras form), with optional momentum.
std::shared_ptr<Optimizer> RMSProp();
/// Adagrad (Keras form).
std::shared_ptr<Optimizer> Adagrad();
/// The optimizer named by the context hyperparameter "optimizer" ("sgd",
/// "adam", "adamw", "muon", "rmsprop", "adagrad"; default "adam"). An unknown name is
/// a kiln::Error listing the known ones.
std::shared_ptr<Optimizer> FromContext(const context::Context& ctx);

/// The learning rate for the current step, as a scalar of `dtype`, from the
/// context's hyperparameters and schedule (see the header comment).
Node LearningRate(const context::Context& ctx, graph::Graph* g, dtypes::DType dtype);

/// The rate the context's schedule gives at global step `step` (>= 0; a
/// fraction is allowed), computed on the host with LearningRate's formulas:
/// for logs and plots, or a schedule driven from outside the graph (the
/// char-GPT example evaluates a shape over the wall time). Without
/// "learning_rate", the default follows the "optimizer" hyperparameter, as
/// LearningRate's (0.01 for "sgd", else 0.001). "variable": the
/// learning-rate variable's value whatever the step (the variable is created
/// if missing, as LearningRateVariable does). A bad hyperparameter, or a
/// negative or NaN step of another schedule, is a kiln::Error.
double LearningRateAt(const context::Context& ctx, double step);

/// The global step variable "/global_step" (Int64 scalar, not trainable),
/// created with value 0 if missing.
context::Variable* GlobalStep(context::Context ctx);

/// The learning-rate variable "/optimizers/learning_rate" (Float32 scalar, not
/// trainable), created with the learning_rate hyperparameter's value (its
/// default: 0.001, SGD 0.01) if missing. With learning_rate_schedule = "variable" it is the
/// rate of every step: the host sets it between steps (SetValue, no
/// recompilation), as PyTorch's param_group["lr"], for schedules computed
/// outside the graph (on the wall time, on a validation plateau...). Every
/// optimizer of the context reads it. Data-parallel, each process sets its
/// own: give them the same value (from the step, or rank 0's broadcast), or
/// the replicas drift apart.
context::Variable* LearningRateVariable(context::Context ctx);

/// Scales `grads` so their global L2 norm is at most `max_norm`.
std::vector<Node> ClipByGlobalNorm(const std::vector<Node>& grads, double max_norm);

}  // namespace kiln::ml::optimizers
