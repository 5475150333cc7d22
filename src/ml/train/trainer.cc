// Copyright 2026 The Kiln Authors.
// Trainer: the train step (model, loss, gradients, optimizer updates in one
// graph) and the eval step, compiled per input-shape signature.
#include "kiln/ml/train/trainer.h"

#include <cmath>
#include <sstream>

#include "kiln/context/exec.h"
#include "kiln/graph/ops.h"

namespace kiln::ml::train {

using graph::Node;

namespace {

// The built-in loss metric: the batch's mean loss, shown as a moving average.
Metric LossMetric() {
  Metric m;
  m.name = "loss";
  m.aggregation = Aggregation::kMovingAverage;
  m.decay = 0.98;
  return m;
}

double ScalarValue(const tensors::Tensor& t) {
  if (t.Rank() != 0 || !dtypes::IsFloat(t.DType())) {
    Throw("Trainer: a metric returned " + t.Shape().ToString() + ", want a float scalar");
  }
  double v = 0;
  DispatchDType(t.DType(), [&](auto zero) {
    using T = decltype(zero);
    if constexpr (std::is_same_v<T, float16> || std::is_same_v<T, bfloat16>) v = static_cast<float>(t.Flat<T>()[0]);
    else v = static_cast<double>(t.Flat<T>()[0]);
  });
  return v;
}

}  // namespace

struct Trainer::Impl {
  std::shared_ptr<backends::Backend> backend;
  context::Context ctx;
  ModelFn model;
  losses::LossFn loss;
  std::shared_ptr<optimizers::Optimizer> optimizer;
  std::vector<Metric> train_metrics{LossMetric()}, eval_metrics{LossMetric()};
  std::unique_ptr<context::internal::ContextExecCore> train_exec, eval_exec, predict_exec;

  // Splits the parameters of a step graph into inputs and labels.
  static std::pair<std::vector<Node>, std::vector<Node>> Split(const std::vector<Node>& params, size_t num_inputs) {
    return {std::vector<Node>(params.begin(), params.begin() + static_cast<long>(num_inputs)),
            std::vector<Node>(params.begin() + static_cast<long>(num_inputs), params.end())};
  }

  // The loss of the model on a batch plus the losses layers added.
  Node TotalLoss(context::Context c, const std::vector<Node>& labels, const std::vector<Node>& predictions,
                 graph::Graph* g) const {
    Node total = loss(labels, predictions);
    if (!total.Ok() || total.Rank() != 0 || !dtypes::IsFloat(total.DType())) {
      Throw("Trainer: the loss function must return a float scalar, got " +
            (total.Ok() ? total.Shape().ToString() : std::string("an empty Node")));
    }
    for (Node extra : c.AddedLosses(g)) total = total + graph::ConvertDType(extra, total.DType());
    return total;
  }

  // Outputs of a step: the loss, then each metric after the first (loss).
  std::vector<Node> MetricOutputs(const std::vector<Metric>& metrics, Node loss_value, const std::vector<Node>& labels,
                                  const std::vector<Node>& predictions) const {
    std::vector<Node> outs{loss_value};
    for (size_t i = 1; i < metrics.size(); ++i) {
      Node m = metrics[i].fn(labels, predictions);
      if (m.Rank() != 0) Throw("Trainer: metric \"" + metrics[i].name + "\" must return a scalar");
      outs.push_back(m);
    }
    return outs;
  }

  MetricValues Run(context::internal::ContextExecCore& exec, const std::vector<Metric>& metrics,
                   const datasets::Batch& batch, bool training) {
    if (batch.inputs.empty() || batch.labels.empty()) Throw("Trainer: a batch needs inputs and labels");
    const size_t num_inputs = batch.inputs.size();
    std::vector<tensors::Tensor> args = batch.inputs;
    args.insert(args.end(), batch.labels.begin(), batch.labels.end());
    context::internal::ContextBuilder builder = [&](context::Context c, const std::vector<Node>& params) {
      auto [inputs, labels] = Split(params, num_inputs);
      context::Context mode = c.WithTraining(training);
      std::vector<Node> predictions = model(mode, inputs);
      Node total = TotalLoss(mode, labels, predictions, params[0].Graph());
      if (training) optimizer->UpdateGraph(mode, total);
      return MetricOutputs(metrics, total, labels, predictions);
    };
    std::vector<tensors::Tensor> outs = exec.Call(std::move(args), builder);
    MetricValues values;
    for (size_t i = 0; i < metrics.size(); ++i) values[metrics[i].name] = ScalarValue(outs[i]);
    return values;
  }
};

Trainer::Trainer(std::shared_ptr<backends::Backend> backend, context::Context ctx, ModelFn model, losses::LossFn loss,
                 std::shared_ptr<optimizers::Optimizer> optimizer)
    : impl_(std::make_unique<Impl>()) {
  if (!backend || !model || !loss || !optimizer) Throw("NewTrainer: backend, model, loss and optimizer are required");
  impl_->backend = backend;
  impl_->ctx = ctx;
  impl_->model = std::move(model);
  impl_->loss = std::move(loss);
  impl_->optimizer = std::move(optimizer);
  // The global step exists from the start, so a checkpoint restored later
  // sets it (and GlobalStep() reports it) before the first train step.
  optimizers::GlobalStep(ctx.Root());
  impl_->train_exec = std::make_unique<context::internal::ContextExecCore>(backend, ctx, "train_step");
  impl_->eval_exec = std::make_unique<context::internal::ContextExecCore>(backend, ctx, "eval_step");
  impl_->predict_exec = std::make_unique<context::internal::ContextExecCore>(backend, ctx, "predict");
}

Trainer::~Trainer() = default;

void Trainer::AddTrainMetric(Metric metric) { impl_->train_metrics.push_back(std::move(metric)); }
void Trainer::AddEvalMetric(Metric metric) {
  metric.aggregation = Aggregation::kMean;  // eval aggregates over the whole dataset
  impl_->eval_metrics.push_back(std::move(metric));
}

MetricValues Trainer::TrainStep(const datasets::Batch& batch) {
  MetricValues values = impl_->Run(*impl_->train_exec, impl_->train_metrics, batch, /*training=*/true);
  const double loss = values["loss"];
  if (!std::isfinite(loss)) {
    std::ostringstream os;
    os << "Trainer: the loss is " << loss << " at global step " << GlobalStep() << ": training stopped";
    Throw(os.str());
  }
  return values;
}

MetricValues Trainer::EvalStep(const datasets::Batch& batch) {
  return impl_->Run(*impl_->eval_exec, impl_->eval_metrics, batch, /*training=*/false);
}

MetricValues Trainer::Evaluate(datasets::Dataset& dataset) {
  dataset.Reset();
  std::vector<MetricAccumulator> accumulators(impl_->eval_metrics.size(), MetricAccumulator(Aggregation::kMean));
  datasets::Batch batch;
  int64_t batches = 0;
  while (dataset.Next(batch)) {
    MetricValues v = EvalStep(batch);
    const auto weight = static_cast<double>(batch.labels[0].Rank() > 0 ? batch.labels[0].Shape().Dim(0) : 1);
    for (size_t i = 0; i < impl_->eval_metrics.size(); ++i) accumulators[i].Add(v[impl_->eval_metrics[i].name], weight);
    ++batches;
  }
  dataset.Reset();
  if (batches == 0) Throw("Trainer::Evaluate: dataset \"" + dataset.Name() + "\" produced no batch");
  MetricValues result;
  for (size_t i = 0; i < impl_->eval_metrics.size(); ++i) result[impl_->eval_metrics[i].name] = accumulators[i].Value();
  return result;
}

std::vector<tensors::Tensor> Trainer::Predict(const std::vector<tensors::Tensor>& inputs) {
  context::internal::ContextBuilder builder = [&](context::Context c, const std::vector<Node>& params) {
    return impl_->model(c.WithTraining(false), params);
  };
  return impl_->predict_exec->Call(inputs, builder);
}

int64_t Trainer::GlobalStep() const {
  context::Variable* step = impl_->ctx.GetVariableByScopeAndName("/global_step");
  return step != nullptr && step->HasValue() ? step->Value().Value<int64_t>() : 0;
}

context::Context Trainer::Context() const { return impl_->ctx; }
const std::vector<Metric>& Trainer::TrainMetrics() const { return impl_->train_metrics; }
const std::vector<Metric>& Trainer::EvalMetrics() const { return impl_->eval_metrics; }

std::shared_ptr<Trainer> NewTrainer(std::shared_ptr<backends::Backend> backend, context::Context ctx, ModelFn model,
                                    losses::LossFn loss, std::shared_ptr<optimizers::Optimizer> optimizer) {
  return std::make_shared<Trainer>(std::move(backend), std::move(ctx), std::move(model), std::move(loss),
                                   std::move(optimizer));
}

}  // namespace kiln::ml::train
