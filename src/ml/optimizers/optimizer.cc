// Copyright 2026 The Kiln Authors.
// The pieces every optimizer shares: variable discovery, gradients, global
// norm clipping, weight decay, learning-rate schedules, state slots and the
// global step; and FromContext.
#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <map>
#include <numbers>
#include <optional>
#include <sstream>
#include <utility>

#include "kiln/graph/autodiff.h"
#include "kiln/graph/ops.h"
#include "kiln/ml/optimizers/optimizers.h"
#include "src/ml/optimizers/optimizers_internal.h"

namespace kiln::ml::optimizers {

namespace internal {

namespace {

using context::Context;
using context::Variable;

// Number formatting for messages: shortest round-trip-ish form ("0.9", "inf").
std::string Num(double v) {
  std::ostringstream os;
  os << v;
  return os.str();
}

std::string RangeText(const Range& r) {
  return std::string(r.lo_open ? "(" : "[") + Num(r.lo) + ", " + Num(r.hi) + (r.hi_open ? ")" : "]");
}

bool InRange(double v, const Range& r) {
  const bool lo_ok = r.lo_open ? v > r.lo : v >= r.lo;
  const bool hi_ok = r.hi_open ? v < r.hi : v <= r.hi;
  return lo_ok && hi_ok;  // false for NaN
}

Node Cast(Node x, dtypes::DType dtype) { return x.DType() == dtype ? x : graph::ConvertDType(x, dtype); }

// Half variables are updated in Float32 and rounded back once, so small
// updates are not lost to float16/bfloat16 rounding at every operation.
dtypes::DType ComputeDType(dtypes::DType dtype) {
  if (dtypes::IsComplex(dtype)) return dtypes::RealPart(dtype);  // updated as pairs of reals (RealView)
  return dtypes::IsHalf(dtype) ? dtypes::Float32 : dtype;
}

// Complex variables are updated as pairs of reals, as PyTorch's optimizers do
// (torch.view_as_real): the real and the imaginary part of each element are
// two coordinates, each with its own optimizer state. With gradients dL/dx +
// i dL/dy, this is exactly the real optimizer on (x, y). RealView(x) is x's
// bits as [..., 2] of the real part's dtype (x itself for real values).
Node RealView(Node x) {
  return dtypes::IsComplex(x.DType()) ? graph::Bitcast(x, dtypes::RealPart(x.DType())) : x;
}

// Whether each instruction of `f` up to `root` contributes to `root`
// (instructions are in topological order, so one backward sweep suffices).
std::vector<bool> Ancestors(const ir::Function& f, int root) {
  std::vector<bool> used(f.instructions.size(), false);
  used[static_cast<size_t>(root)] = true;
  for (int id = root; id >= 0; --id) {
    if (!used[static_cast<size_t>(id)]) continue;
    for (int operand : f.instructions[static_cast<size_t>(id)].operands) used[static_cast<size_t>(operand)] = true;
  }
  return used;
}

struct VariableValue {
  Variable* var;
  Node value;
};

// The trainable float variables whose value `loss` depends on. Each
// candidate's node comes from ValueGraph: a variable the trace had not read
// yet gets a new parameter, whose id is past the loss, so it is skipped (it
// stays an unused input of the graph, which costs nothing but a buffer
// handle). Dependency is structural: a variable reached only through
// StopGradient is still updated (with a zero gradient).
std::vector<VariableValue> DependentVariables(const Context& ctx, Node loss) {
  graph::Graph* g = loss.Graph();
  const std::vector<bool> used = Ancestors(g->Function(), loss.Id());
  std::vector<VariableValue> out;
  for (Variable* v : ctx.Variables()) {
    if (!v->Trainable() || !dtypes::IsFloatOrComplex(v->DType())) continue;
    Node value = v->ValueGraph(g);
    if (static_cast<size_t>(value.Id()) < used.size() && used[static_cast<size_t>(value.Id())]) {
      out.push_back({v, value});
    }
  }
  return out;
}

void CheckLoss(const std::string& name, Node loss) {
  if (!loss.Ok()) Throw("Optimizer " + name + ": UpdateGraph with an empty loss Node");
  if (loss.Rank() != 0 || !dtypes::IsFloat(loss.DType())) {
    Throw("Optimizer " + name + ": the loss must be a float scalar, got " + loss.Shape().ToString());
  }
}

// The learning rate, once per compute dtype (a model mixing Float32 and
// Float64 variables needs two), so the schedule is built at most twice.
class LearningRates {
 public:
  LearningRates(const Context& ctx, graph::Graph* g, double default_lr) : ctx_(ctx), g_(g), default_lr_(default_lr) {}
  Node For(dtypes::DType dtype) {
    auto it = cache_.find(dtype);
    if (it == cache_.end()) it = cache_.emplace(dtype, ScheduledLearningRate(ctx_, g_, dtype, default_lr_)).first;
    return it->second;
  }

 private:
  const Context& ctx_;
  graph::Graph* g_;
  double default_lr_;
  std::map<dtypes::DType, Node> cache_;
};

// The schedule's hyperparameters, validated.
struct Schedule {
  std::string kind;
  double learning_rate, min_learning_rate, decay_rate, cooldown_fraction;
  int64_t warmup_steps, decay_steps;
};

int64_t IntParam(const Context& ctx, const std::string& key, int64_t default_value, int64_t min) {
  const auto v = ctx.GetParamOr<int64_t>(key, default_value);
  if (v < min) {
    Throw("LearningRate: hyperparameter " + key + "=" + std::to_string(v) + " must be >= " + std::to_string(min));
  }
  return v;
}

Schedule ReadSchedule(const Context& ctx, double default_lr) {
  Schedule s;
  s.kind = ctx.GetParamOr<std::string>("learning_rate_schedule", "constant");
  if (s.kind != "constant" && s.kind != "cosine" && s.kind != "exponential" && s.kind != "linear" && s.kind != "wsd" &&
      s.kind != "variable") {
    Throw("LearningRate: unknown learning_rate_schedule \"" + s.kind +
          "\"; known: constant, cosine, exponential, linear, wsd, variable");
  }
  s.learning_rate = FloatParam(ctx, "LearningRate", "learning_rate", default_lr, NonNegative());
  s.min_learning_rate = FloatParam(ctx, "LearningRate", "min_learning_rate", 0, NonNegative());
  s.decay_rate = FloatParam(ctx, "LearningRate", "decay_rate", 0.96, Positive());
  s.cooldown_fraction =
      s.kind == "wsd" ? FloatParam(ctx, "LearningRate", "cooldown_fraction", 0.2, {0, 1, true, false}) : 0;
  s.warmup_steps = IntParam(ctx, "warmup_steps", 0, 0);
  s.decay_steps = IntParam(ctx, "decay_steps", 10000, 1);
  return s;
}

// The schedule's arithmetic on a graph scalar (the train step's) or a host
// double (LearningRateAt): each formula below is written once, for both.
double MinOne(double x) { return std::min(x, 1.0); }
Node MinOne(const Node& x) { return graph::Min(x, graph::ScalarLike(x, 1)); }
double ClampUnit(double x) { return std::clamp(x, 0.0, 1.0); }
Node ClampUnit(const Node& x) { return graph::Clamp(graph::ScalarLike(x, 0), x, graph::ScalarLike(x, 1)); }
double MaxZero(double x) { return std::max(x, 0.0); }
Node MaxZero(const Node& x) { return graph::Max(x, graph::ScalarLike(x, 0)); }
double CosOf(double x) { return std::cos(x); }
Node CosOf(const Node& x) { return graph::Cos(x); }
double PowOf(double base, double exponent) { return std::pow(base, exponent); }
Node PowOf(double base, const Node& exponent) { return graph::Pow(graph::ScalarLike(exponent, base), exponent); }
double ConstantLike(double, double value) { return value; }
Node ConstantLike(const Node& like, double value) { return graph::ScalarLike(like, value); }
double SelectBelow(double x, double limit, double below, double otherwise) { return x < limit ? below : otherwise; }
Node SelectBelow(const Node& x, double limit, const Node& below, const Node& otherwise) {
  return graph::Where(graph::LessThan(x, graph::ScalarLike(x, limit)), below, otherwise);
}

// The schedule after warmup, at `t` steps past the warmup.
template <typename V>
V Decayed(const Schedule& s, const V& t) {
  if (s.kind == "cosine") {
    // Keras CosineDecay: reaches min_learning_rate after decay_steps, then stays.
    const V progress = MinOne(t / static_cast<double>(s.decay_steps));
    const V cosine = (CosOf(progress * std::numbers::pi) + 1.0) * 0.5;
    return cosine * (s.learning_rate - s.min_learning_rate) + s.min_learning_rate;
  }
  if (s.kind == "linear" || s.kind == "wsd") {
    // linear: from learning_rate at t = 0 to min_learning_rate at
    // decay_steps. wsd (warmup-stable-decay): learning_rate until the last
    // cooldown_fraction of decay_steps, then the same straight line down.
    const double span = s.kind == "wsd" ? s.cooldown_fraction * static_cast<double>(s.decay_steps)
                                        : static_cast<double>(s.decay_steps);
    const double start = static_cast<double>(s.decay_steps) - span;
    const V progress = ClampUnit((t - start) / span);
    return (1.0 - progress) * (s.learning_rate - s.min_learning_rate) + s.min_learning_rate;
  }
  if (s.kind == "exponential") {
    // Continuous (not staircase) decay: one factor decay_rate per decay_steps.
    return PowOf(s.decay_rate, t / static_cast<double>(s.decay_steps)) * s.learning_rate;
  }
  return ConstantLike(t, s.learning_rate);
}

// The rate at global step `step`: linear warmup from 0 at step 0 to
// learning_rate at step warmup_steps, then the decay, which counts its steps
// from the end of the warmup (as Keras does).
template <typename V>
V ScheduleAt(const Schedule& s, const V& step) {
  if (s.warmup_steps == 0) return Decayed(s, step);
  const auto warmup = static_cast<double>(s.warmup_steps);
  return SelectBelow(step, warmup, step * (s.learning_rate / warmup), Decayed(s, MaxZero(step - warmup)));
}

}  // namespace

Range NonNegative() { return {0, std::numeric_limits<double>::infinity(), false, true}; }
Range Positive() { return {0, std::numeric_limits<double>::infinity(), true, true}; }

double FloatParam(const Context& ctx, std::string_view who, const std::string& key, double default_value,
                  Range range) {
  const auto v = ctx.GetParamOr<double>(key, default_value);
  if (!InRange(v, range)) {
    Throw(std::string(who) + ": hyperparameter " + key + "=" + Num(v) + " must be in " + RangeText(range));
  }
  return v;
}

double ScheduledLearningRateAt(const Context& ctx, double step, double default_lr) {
  const Schedule s = ReadSchedule(ctx, default_lr);
  if (s.kind == "variable") return LearningRateVariable(ctx)->Value().Value<float>();
  if (!(step >= 0)) Throw("LearningRateAt: step must be >= 0, got " + Num(step));
  return ScheduleAt(s, step);
}

Node ScheduledLearningRate(const Context& ctx, graph::Graph* g, dtypes::DType dtype, double default_lr) {
  if (g == nullptr) Throw("LearningRate: null graph");
  if (!dtypes::IsFloat(dtype)) Throw(std::string("LearningRate: dtype must be a float, got ") + dtypes::Name(dtype));
  const Schedule s = ReadSchedule(ctx, default_lr);
  if (s.kind == "variable") return Cast(LearningRateVariable(ctx)->ValueGraph(g), dtype);
  if (s.kind == "constant" && s.warmup_steps == 0) return graph::Scalar(g, dtype, s.learning_rate);
  // Float32 counts steps exactly up to 2^24; the schedule only needs ~1e-7
  // relative precision, so Float64 is used only for Float64 requests.
  const dtypes::DType sd = dtype == dtypes::Float64 ? dtypes::Float64 : dtypes::Float32;
  Node step = graph::ConvertDType(GlobalStep(ctx)->ValueGraph(g), sd);
  return Cast(ScheduleAt(s, step), dtype);
}

// ---------------------------------------------------------------- Slots.

namespace {

// The handle at "<optimizer scope>/<var scope...>/<var name>": one level per
// component of the variable's full name, since scope names have no '/'.
Context SlotScope(const Context& optimizer_ctx, const Variable& var) {
  Context c = optimizer_ctx;
  const std::string full = var.ScopeAndName();
  size_t start = 1;  // skip the leading '/'
  while (start <= full.size()) {
    size_t end = full.find('/', start);
    if (end == std::string::npos) end = full.size();
    if (end > start) c = c.In(full.substr(start, end - start));
    start = end + 1;
  }
  return c;
}

}  // namespace

namespace {
// A slot has its variable's shape, plus a trailing axis of the two parts for
// a complex variable (see RealView).
shapes::Shape SlotShape(const Variable& var, dtypes::DType dtype) {
  std::vector<int64_t> dims = var.Shape().Dims();
  if (dtypes::IsComplex(var.DType())) dims.push_back(2);
  return shapes::Shape(dtype, std::move(dims));
}
}  // namespace

Slots::Slots(const Context& optimizer_ctx, const Variable& var, dtypes::DType dtype, graph::Graph* g)
    : scope_(SlotScope(optimizer_ctx, var)), shape_(SlotShape(var, dtype)), g_(g) {}

Node Slots::Get(const std::string& slot, const context::initializers::Initializer& init) {
  // Reuse-tolerant: a re-trace (new input shapes) or a restored checkpoint
  // finds the slot already there; Reuse() still checks its shape.
  Variable* v = scope_.GetVariable(slot) != nullptr ? scope_.Reuse().VariableWithShape(slot, shape_)
                                                    : scope_.WithInitializer(init).VariableWithShape(slot, shape_);
  v->SetTrainable(false);
  return v->ValueGraph(g_);
}

void Slots::Set(const std::string& slot, Node value) {
  Variable* v = scope_.GetVariable(slot);
  if (v == nullptr) Throw("Optimizer slot " + context::JoinScope(scope_.Scope(), slot) + " set before it was read");
  v->SetValueGraph(commit_.Ok() ? graph::Where(commit_, value, v->ValueGraph(g_)) : value);
}

namespace {

// Gradient accumulation (hyperparameter gradient_accumulation_steps = k > 1,
// as Keras 3's optimizers and optax.MultiSteps): every call adds its
// gradients to accumulators, and every k-th call updates the variables with
// their mean and resets them. Accumulators and the micro-step counter are
// context variables under "<scope>/optimizers/accumulation", so checkpoints
// carry a half-accumulated state.
class Accumulation {
 public:
  Accumulation(const Context& ctx, graph::Graph* g, int64_t steps)
      : scope_(ctx.In("optimizers").In("accumulation")), g_(g), steps_(steps) {
    Variable* counter = scope_.GetVariable("micro_step") != nullptr
                            ? scope_.Reuse().VariableWithShape("micro_step", shapes::Make(dtypes::Int64))
                            : scope_.WithInitializer(context::initializers::Zeros())
                                  .VariableWithShape("micro_step", shapes::Make(dtypes::Int64));
    counter->SetTrainable(false);
    // The counter runs over [0, k): it commits at k - 1, or beyond when a
    // run is resumed with a smaller k, and then restarts.
    Node micro = counter->ValueGraph(g);
    commit_ = graph::GreaterOrEqual(micro, graph::ScalarLike(micro, static_cast<double>(steps - 1)));
    Node next = micro + graph::ScalarLike(micro, 1);
    counter->SetValueGraph(graph::Where(commit_, graph::ZerosLike(micro), next));
  }

  Node Commit() const { return commit_; }

  // The gradient to update with, in the variable's compute dtype: the mean
  // of the accumulated ones, this call's included (used only when Commit()
  // holds).
  Node Add(const Variable& var, Node grad, dtypes::DType compute) {
    Slots slots(scope_, var, compute, g_);
    Node sum = slots.Get("gradient_sum", context::initializers::Zeros()) + Cast(grad, compute);
    slots.Set("gradient_sum", graph::Where(commit_, graph::ZerosLike(sum), sum));
    return sum / static_cast<double>(steps_);
  }

 private:
  Context scope_;
  graph::Graph* g_;
  int64_t steps_;
  Node commit_;
};

}  // namespace

// ---------------------------------------------------------- UpdateGraph.

UpdateRule OptimizerBase::MakeRule(const Context&) const {
  Throw("Optimizer " + Name() + ": defines neither MakeRule nor MakeUpdateAll");
}

UpdateAllRule OptimizerBase::MakeUpdateAll(const Context& ctx) const {
  return [rule = MakeRule(ctx)](const std::vector<UpdateArgs>& args, std::vector<Slots>& slots) {
    std::vector<Node> out;
    for (size_t i = 0; i < args.size(); ++i) out.push_back(rule(args[i], slots[i]));
    return out;
  };
}

void OptimizerBase::UpdateGraph(Context ctx, Node loss) {
  const std::string name = Name();
  CheckLoss(name, loss);
  graph::Graph* g = loss.Graph();
  const double clip = FloatParam(ctx, "Optimizer " + name, "clip_global_norm", 0, NonNegative());
  const double decay = FloatParam(ctx, "Optimizer " + name, "weight_decay", DefaultWeightDecay(), NonNegative());
  const auto decay_min_rank = ctx.GetParamOr<int64_t>("weight_decay_min_rank", 0);
  if (decay_min_rank < 0) {
    Throw("Optimizer " + name + ": hyperparameter weight_decay_min_rank=" + std::to_string(decay_min_rank) +
          " must be >= 0");
  }
  // Whether a variable is decayed, by its own rank (a complex one's real view has one more).
  auto decayed = [&](const context::Variable& var) { return decay > 0 && var.Shape().Rank() >= decay_min_rank; };
  const auto accumulate = ctx.GetParamOr<int64_t>("gradient_accumulation_steps", 1);
  if (accumulate < 1) {
    Throw("Optimizer " + name + ": hyperparameter gradient_accumulation_steps=" + std::to_string(accumulate) +
          " must be >= 1");
  }
  const UpdateAllRule update = MakeUpdateAll(ctx);
  LearningRates rates(ctx, g, DefaultLearningRate());

  const std::vector<VariableValue> vars = DependentVariables(ctx, loss);
  std::vector<Node> values;
  for (const auto& vv : vars) values.push_back(vv.value);
  std::vector<Node> grads = graph::Gradient(loss, values);
  for (Node& grad : grads) grad = RealView(grad);
  if (const GradientTransform& transform = GetGradientTransform()) {
    std::vector<Node> transformed = transform(grads);
    if (transformed.size() != grads.size()) {
      Throw("Optimizer " + name + ": the gradient transform returned " + std::to_string(transformed.size()) +
            " gradients for " + std::to_string(grads.size()) + " variables");
    }
    for (size_t i = 0; i < grads.size(); ++i) {
      if (!transformed[i].Ok() || transformed[i].Shape() != grads[i].Shape()) {
        Throw("Optimizer " + name + ": the gradient transform changed the gradient of " +
              vars[i].var->ScopeAndName() + " from " + grads[i].Shape().ToString() + " to " +
              (transformed[i].Ok() ? transformed[i].Shape().ToString() : std::string("an empty Node")));
      }
    }
    grads = std::move(transformed);
  }
  std::optional<Accumulation> accumulation;
  Node commit;  // empty: every call updates
  if (accumulate > 1) {
    accumulation.emplace(ctx, g, accumulate);
    commit = accumulation->Commit();
    for (size_t i = 0; i < vars.size(); ++i) {
      grads[i] = accumulation->Add(*vars[i].var, grads[i], ComputeDType(vars[i].var->DType()));
    }
  }
  if (clip > 0) grads = ClipByGlobalNorm(grads, clip);

  Variable* global_step = GlobalStep(ctx);
  Node step = global_step->ValueGraph(g);  // read before it is incremented below
  const Context optimizer_ctx = ctx.In("optimizers").In(name);
  std::vector<UpdateArgs> args;
  std::vector<Slots> slots;
  args.reserve(vars.size());
  slots.reserve(vars.size());
  for (size_t i = 0; i < vars.size(); ++i) {
    const dtypes::DType cd = ComputeDType(vars[i].var->DType());
    UpdateArgs& a = args.emplace_back(UpdateArgs{Cast(RealView(vars[i].value), cd), Cast(grads[i], cd), rates.For(cd),
                                                 graph::ConvertDType(step, cd), vars[i].var});
    if (decayed(*vars[i].var) && !DecoupledWeightDecay()) a.grad = a.grad + a.w * decay;
    slots.emplace_back(optimizer_ctx, *vars[i].var, cd, g);
    if (commit.Ok()) slots.back().SetCommit(commit);
  }
  const std::vector<Node> new_values = update(args, slots);
  if (new_values.size() != vars.size()) {
    Throw("Optimizer " + name + ": the update returned " + std::to_string(new_values.size()) + " values for " +
          std::to_string(vars.size()) + " variables");
  }
  for (size_t i = 0; i < vars.size(); ++i) {
    Node updated = new_values[i];
    if (!updated.Ok() || updated.Shape() != args[i].w.Shape()) {
      Throw("Optimizer " + name + ": the update of " + vars[i].var->ScopeAndName() + " is " +
            (updated.Ok() ? updated.Shape().ToString() : std::string("an empty Node")) + ", expected " +
            args[i].w.Shape().ToString());
    }
    if (decayed(*vars[i].var) && DecoupledWeightDecay()) updated = updated - args[i].lr * decay * args[i].w;
    const dtypes::DType dtype = vars[i].var->DType();
    Node new_value = dtypes::IsComplex(dtype) ? graph::Bitcast(updated, dtype) : Cast(updated, dtype);
    vars[i].var->SetValueGraph(commit.Ok() ? graph::Where(commit, new_value, vars[i].value) : new_value);
  }
  Node next = step + graph::ScalarLike(step, 1);
  global_step->SetValueGraph(commit.Ok() ? graph::Where(commit, next, step) : next);
}

}  // namespace internal

// ------------------------------------------------------- Public helpers.

namespace {

// The default follows the optimizer the context selects, so the value
// reported matches what FromContext(ctx) trains with.
double DefaultLearningRateOf(const context::Context& ctx) {
  return ctx.GetParamOr<std::string>("optimizer", "adam") == "sgd" ? 0.01 : 0.001;
}

}  // namespace

Node LearningRate(const context::Context& ctx, graph::Graph* g, dtypes::DType dtype) {
  return internal::ScheduledLearningRate(ctx, g, dtype, DefaultLearningRateOf(ctx));
}

double LearningRateAt(const context::Context& ctx, double step) {
  return internal::ScheduledLearningRateAt(ctx, step, DefaultLearningRateOf(ctx));
}

namespace {

// The non-trainable scalar variable `scope`/`name` under ctx's root, created
// with initial() if missing; one of another shape there is an error naming
// `who` (e.g. a checkpoint of another program).
context::Variable* RootScalar(context::Context ctx, const std::string& scope, const std::string& name,
                              dtypes::DType dtype, const std::function<tensors::Tensor()>& initial,
                              const std::string& who) {
  const shapes::Shape want = shapes::Make(dtype);
  const std::string path = scope + "/" + name;
  context::Variable* v = ctx.GetVariableByScopeAndName(path);
  if (v == nullptr) {
    context::Context c = ctx.Root();
    if (!scope.empty()) c = c.In(scope.substr(1));
    v = c.VariableWithValue(name, initial());
  } else if (v->Shape() != want) {
    Throw(who + ": " + path + " is " + v->Shape().ToString() + ", expected " + want.ToString());
  }
  v->SetTrainable(false);
  return v;
}

}  // namespace

context::Variable* GlobalStep(context::Context ctx) {
  return RootScalar(ctx, "", "global_step", dtypes::Int64, [] { return tensors::FromValue(int64_t{0}); },
                    "optimizers::GlobalStep");
}

context::Variable* LearningRateVariable(context::Context ctx) {
  return RootScalar(ctx, "/optimizers", "learning_rate", dtypes::Float32, [&] {
    const double lr = internal::FloatParam(ctx, "LearningRate", "learning_rate", DefaultLearningRateOf(ctx),
                                           internal::NonNegative());
    return tensors::FromValue(static_cast<float>(lr));
  }, "optimizers::LearningRateVariable");
}

std::vector<Node> ClipByGlobalNorm(const std::vector<Node>& grads, double max_norm) {
  if (!(max_norm > 0)) Throw("ClipByGlobalNorm: max_norm must be positive, got " + internal::Num(max_norm));
  if (grads.empty()) return {};
  // Accumulate in Float64 when any gradient is Float64, else Float32.
  dtypes::DType acc = dtypes::Float32;
  for (size_t i = 0; i < grads.size(); ++i) {
    if (!grads[i].Ok() || !dtypes::IsFloat(grads[i].DType())) {
      Throw("ClipByGlobalNorm: gradient #" + std::to_string(i) + " is " +
            (grads[i].Ok() ? grads[i].Shape().ToString() : std::string("an empty Node")) + ", not a float");
    }
    if (grads[i].DType() == dtypes::Float64) acc = dtypes::Float64;
  }
  Node sum_squares = graph::Scalar(grads[0].Graph(), acc, 0);
  for (Node grad : grads) sum_squares = sum_squares + graph::ReduceAllSum(graph::Square(internal::Cast(grad, acc)));
  // scale = max_norm / max(norm, max_norm): 1 when the norm is within bounds.
  Node norm = graph::Sqrt(sum_squares);
  Node scale = max_norm / graph::Max(norm, graph::ScalarLike(norm, max_norm));
  std::vector<Node> out;
  for (Node grad : grads) out.push_back(grad * internal::Cast(scale, grad.DType()));
  return out;
}

std::shared_ptr<Optimizer> FromContext(const context::Context& ctx) {
  const auto name = ctx.GetParamOr<std::string>("optimizer", "adam");
  static const std::map<std::string, std::shared_ptr<Optimizer> (*)()> kFactories = {
      {"adagrad", &Adagrad}, {"adam", &Adam}, {"adamw", &AdamW}, {"muon", &Muon}, {"rmsprop", &RMSProp}, {"sgd", &SGD}};
  auto it = kFactories.find(name);
  if (it == kFactories.end()) {
    std::string known;
    for (const auto& [key, factory] : kFactories) known += (known.empty() ? "" : ", ") + key;
    Throw("optimizers::FromContext: unknown optimizer \"" + name + "\" (hyperparameter \"optimizer\"); known: " + known);
  }
  return it->second();
}

}  // namespace kiln::ml::optimizers
