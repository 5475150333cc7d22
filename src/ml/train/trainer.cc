// Copyright 2026 The Kiln Authors.
// Trainer: the train step (model, loss, gradients, optimizer updates in one
// graph) and the eval step, compiled per input-shape signature.
#include "kiln/ml/train/trainer.h"

#include <cmath>
#include <sstream>

#include "kiln/context/exec.h"
#include "kiln/distributed/distributed.h"
#include "kiln/graph/collective.h"
#include "kiln/graph/ops.h"
#include "src/context/store.h"

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
  bool data_parallel = false;
  DataParallelOptions dp_options;
  bool variables_synced = false;
  Node trace_weight;  // data-parallel train step being traced: this process's rows (Float64 scalar)
  // Its metrics, which ride in the first gradient bucket (one collective
  // per step, not two: on a loopback all-reduce of a few bytes costs as much
  // as one of 256 KiB), and the global batch's values they come back as.
  std::vector<Node> trace_metrics, trace_metrics_reduced;
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

  // ------------------------------------------------ Data-parallel steps.

  // `v` in `dtype`, weighted by this process's rows: zero for an empty
  // shard, whose `v` comes from a row of zeros.
  Node RowWeighted(Node v, dtypes::DType dtype) const {
    Node x = graph::ConvertDType(v, dtype);
    Node weighted = graph::GreaterThan(trace_weight, graph::ScalarLike(trace_weight, 0));
    return graph::Where(weighted, x * graph::ConvertDType(trace_weight, dtype), graph::ZerosLike(x));
  }

  // The gradients of the global batch: each process's gradient (of its
  // shard's mean loss) weighted by its rows, summed across processes in
  // buckets, divided by the total rows, which travel in the first bucket
  // with the step's metrics.
  std::vector<Node> AverageGradients(const std::vector<Node>& grads) {
    if (grads.empty()) return grads;
    if (!trace_weight.Ok()) Throw("Trainer (data-parallel): gradients requested outside the train step");
    // Gradients are real (complex ones are viewed as pairs of reals); half
    // ones are weighted, summed and divided in Float32 (the row counts and
    // their sums are exact there; in BFloat16 above 256 not). So every
    // bucket is Float32 or Float64 and holds the row counts exactly.
    std::vector<Node> scaled;
    for (const Node& g : grads) {
      const dtypes::DType dt = g.DType() == dtypes::Float16 || g.DType() == dtypes::BFloat16 ? dtypes::Float32 : g.DType();
      scaled.push_back(RowWeighted(g, dt));
    }
    // Buckets of consecutive same-dtype gradients, last variables first (as
    // PyTorch DDP: the backward pass produces them first).
    struct Bucket {
      std::vector<size_t> members;
      int64_t bytes = 0;
    };
    std::vector<Bucket> buckets;
    for (size_t k = grads.size(); k-- > 0;) {
      const int64_t bytes = scaled[k].Shape().ByteSize();
      if (buckets.empty() || scaled[buckets.back().members.back()].DType() != scaled[k].DType() ||
          buckets.back().bytes + bytes > dp_options.bucket_bytes) {
        buckets.emplace_back();
      }
      buckets.back().members.push_back(k);
      buckets.back().bytes += bytes;
    }
    Node total_rows;
    std::vector<Node> out(grads.size());
    for (size_t i = 0; i < buckets.size(); ++i) {
      const Bucket& b = buckets[i];
      const dtypes::DType dt = scaled[b.members[0]].DType();
      std::vector<Node> flat;
      if (i == 0) {
        flat.push_back(graph::Reshape(graph::ConvertDType(trace_weight, dt), {1}));
        for (const Node& m : trace_metrics) flat.push_back(graph::Reshape(RowWeighted(m, dt), {1}));
      }
      for (size_t k : b.members) flat.push_back(graph::Reshape(scaled[k], {grads[k].Shape().Size()}));
      Node summed = graph::AllReduce(flat.size() == 1 ? flat[0] : graph::Concatenate(flat, 0));
      // The slot at `offset` as a Float64 scalar.
      auto scalar_at = [&summed](int64_t offset) {
        return graph::ConvertDType(graph::Reshape(graph::Slice(summed, {offset}, {offset + 1}), {}), dtypes::Float64);
      };
      int64_t offset = 0;
      if (i == 0) {
        total_rows = scalar_at(offset++);
        trace_metrics_reduced.clear();
        for (const Node& m : trace_metrics) {
          trace_metrics_reduced.push_back(graph::ConvertDType(scalar_at(offset++) / total_rows, m.DType()));
        }
      }
      for (size_t k : b.members) {
        const int64_t n = grads[k].Shape().Size();
        out[k] = graph::Reshape(graph::Slice(summed, {offset}, {offset + n}), scaled[k].Shape().Dims());
        offset += n;
      }
    }
    for (size_t k = 0; k < out.size(); ++k) {
      out[k] = graph::ConvertDType(out[k] / graph::ConvertDType(total_rows, out[k].DType()), grads[k].DType());
    }
    return out;
  }

  // The metrics of the global batch: each process's value weighted by its
  // rows, summed, divided by the total rows (one collective).
  std::vector<Node> ReduceMetrics(const std::vector<Node>& values) const {
    std::vector<Node> parts;
    for (const Node& v : values) parts.push_back(graph::Reshape(RowWeighted(v, dtypes::Float64), {1}));
    parts.push_back(graph::Reshape(trace_weight, {1}));
    Node summed = graph::AllReduce(graph::Concatenate(parts, 0));
    const auto n = static_cast<int64_t>(values.size());
    Node total = graph::Reshape(graph::Slice(summed, {n}, {n + 1}), {});
    std::vector<Node> out;
    for (int64_t i = 0; i < n; ++i) {
      Node mean = graph::Reshape(graph::Slice(summed, {i}, {i + 1}), {}) / total;
      out.push_back(graph::ConvertDType(mean, values[static_cast<size_t>(i)].DType()));
    }
    return out;
  }

  // Before the first data-parallel train step runs: checks that every
  // process has the same variables, then gives them rank 0's values.
  void SyncVariables(const std::vector<context::Variable*>& vars) {
    if (variables_synced) return;
    uint64_t h = 1469598103934665603ull;
    for (const context::Variable* v : vars) {
      for (char c : v->ScopeAndName() + " " + v->Shape().ToString() + ";") {
        h ^= static_cast<unsigned char>(c);
        h *= 1099511628211ull;
      }
    }
    const std::vector<uint64_t> mine{h, static_cast<uint64_t>(vars.size())};
    tensors::Tensor all = distributed::AllGather(tensors::FromFlat<uint64_t>(shapes::Make(dtypes::Uint64, 2), mine));
    std::span<const uint64_t> fp = all.Flat<uint64_t>();
    for (size_t r = 1; r * 2 < fp.size(); ++r) {
      if (fp[2 * r] != fp[0]) {
        Throw("Trainer (data-parallel): rank " + std::to_string(r) + "'s model differs from rank 0's (" +
              std::to_string(fp[2 * r + 1]) + " variables against " + std::to_string(fp[1]) +
              ", or different names, shapes or dtypes): every process must build the same model");
      }
    }
    for (context::Variable* v : vars) v->SetValueUnchecked(distributed::Broadcast(v->Value(), 0));
    variables_synced = true;
  }

  // The state a train step updates that is not trained (batch
  // normalization's moving statistics, say) would drift apart, each process
  // updating it from its own shard: each such update becomes the row-weighted
  // mean of every process's (an empty shard's counts for nothing). Optimizer
  // state and the global step are left alone: they are equal everywhere.
  void AverageBuffers(context::Context c) const {
    context::internal::Store::Trace* trace = c.GetStore().trace;
    if (trace == nullptr) return;
    Node total;
    for (context::Variable* v : trace->update_order) {
      const std::string name = v->ScopeAndName();
      if (v->Trainable() || !dtypes::IsFloat(v->DType()) || name == "/global_step" ||
          name.find("/optimizers/") != std::string::npos) {
        continue;
      }
      Node updated = trace->updates.at(v);
      const dtypes::DType dt = updated.DType() == dtypes::Float64 ? dtypes::Float64 : dtypes::Float32;
      Node sum = graph::AllReduce(RowWeighted(updated, dt));
      if (!total.Ok()) total = graph::AllReduce(trace_weight);
      v->SetValueGraph(graph::ConvertDType(sum / graph::ConvertDType(total, dt), updated.DType()));
    }
  }

  MetricValues Run(context::internal::ContextExecCore& exec, const std::vector<Metric>& metrics,
                   const datasets::Batch& batch, bool training) {
    if (batch.inputs.empty() || batch.labels.empty()) Throw("Trainer: a batch needs inputs and labels");
    const size_t num_inputs = batch.inputs.size();
    std::vector<tensors::Tensor> args = batch.inputs;
    args.insert(args.end(), batch.labels.begin(), batch.labels.end());
    // A data-parallel train step weighs this process's gradients and
    // metrics by its rows, a run-time input: an empty shard runs one row of
    // zeros with weight 0, so every process runs the same graph and the
    // same collectives (a graph of empty arrays would depend on nothing).
    const bool data_parallel_step = training && data_parallel;
    if (data_parallel_step) {
      const int64_t rows = batch.labels[0].Rank() > 0 ? batch.labels[0].Shape().Dim(0) : 1;
      if (rows == 0) {
        for (auto& a : args) {
          std::vector<int64_t> dims = a.Shape().Dims();
          if (!dims.empty()) dims[0] = 1;
          a = tensors::Tensor(shapes::Shape(a.DType(), dims));
        }
      }
      args.push_back(tensors::FromValue(static_cast<double>(rows)));
    }
    context::internal::ContextBuilder builder = [&](context::Context c, const std::vector<Node>& all_params) {
      std::vector<Node> params = all_params;
      struct ClearTraceState {  // the weight and metrics belong to this trace only
        Impl& impl;
        ~ClearTraceState() {
          impl.trace_weight = Node();
          impl.trace_metrics.clear();
          impl.trace_metrics_reduced.clear();
        }
      } clear{*this};
      if (data_parallel_step) {
        trace_weight = params.back();
        params.pop_back();
      }
      auto [inputs, labels] = Split(params, num_inputs);
      context::Context mode = c.WithTraining(training);
      std::vector<Node> predictions = model(mode, inputs);
      Node total = TotalLoss(mode, labels, predictions, params[0].Graph());
      std::vector<Node> outs = MetricOutputs(metrics, total, labels, predictions);
      if (data_parallel_step) trace_metrics = outs;
      if (training) optimizer->UpdateGraph(mode, total);
      if (data_parallel_step) AverageBuffers(mode);
      // Data-parallel train steps report the metrics of the global batch
      // (reduced with the gradients, or by themselves if no gradient was).
      if (!data_parallel_step) return outs;
      return trace_metrics_reduced.size() == outs.size() ? trace_metrics_reduced : ReduceMetrics(outs);
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

Trainer::~Trainer() {
  // The optimizer may outlive this trainer (or serve another): its gradient
  // transform points into this one.
  if (impl_ && impl_->data_parallel) impl_->optimizer->SetGradientTransform(nullptr);
}

void Trainer::EnableDataParallel(DataParallelOptions options) {
  if (options.bucket_bytes <= 0) {
    Throw("Trainer::EnableDataParallel: bucket_bytes must be positive, got " + std::to_string(options.bucket_bytes));
  }
  if (impl_->train_exec->CacheSize() > 0) {
    Throw("Trainer::EnableDataParallel: call it before the first train step (the step is already built)");
  }
  impl_->data_parallel = true;
  impl_->dp_options = options;
  Impl* impl = impl_.get();
  impl_->optimizer->SetGradientTransform([impl](const std::vector<Node>& grads) { return impl->AverageGradients(grads); });
  impl_->train_exec->SetAfterBuild([impl](const std::vector<context::Variable*>& vars) { impl->SyncVariables(vars); });
}

bool Trainer::IsDataParallel() const { return impl_->data_parallel; }

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
  const size_t n = impl_->eval_metrics.size();
  std::vector<double> sums(n + 1, 0.0);  // data-parallel: weighted sums, then the weight
  while (dataset.Next(batch)) {
    ++batches;
    const auto weight = static_cast<double>(batch.labels[0].Rank() > 0 ? batch.labels[0].Shape().Dim(0) : 1);
    if (weight == 0) continue;  // an empty shard of the last global batch
    MetricValues v = EvalStep(batch);
    for (size_t i = 0; i < n; ++i) {
      accumulators[i].Add(v[impl_->eval_metrics[i].name], weight);
      sums[i] += v[impl_->eval_metrics[i].name] * weight;
    }
    sums[n] += weight;
  }
  dataset.Reset();
  if (impl_->data_parallel) {
    sums.push_back(static_cast<double>(batches));
    tensors::Tensor total = distributed::AllReduce(
        tensors::FromFlat<double>(shapes::Make(dtypes::Float64, static_cast<int64_t>(sums.size())), sums));
    std::span<const double> t = total.Flat<double>();
    if (t[n + 1] == 0) Throw("Trainer::Evaluate: dataset \"" + dataset.Name() + "\" produced no batch on any process");
    MetricValues result;
    for (size_t i = 0; i < n; ++i) result[impl_->eval_metrics[i].name] = t[i] / t[n];
    return result;
  }
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
