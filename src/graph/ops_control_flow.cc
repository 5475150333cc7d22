// Copyright 2026 The Kiln Authors.
// While, If, ForLoop and Scan (see kiln/graph/control_flow.h): the
// control-flow instructions over traced sub-functions (tracing.h) and their
// GetTupleElements, and the VJP rules of While and If.
#include "kiln/graph/control_flow.h"

#include <algorithm>
#include <limits>
#include <string>
#include <vector>

#include "kiln/graph/autodiff.h"
#include "kiln/graph/ops.h"
#include "src/graph/op_builder.h"
#include "src/graph/tracing.h"
#include "src/graph/vjp.h"

namespace kiln::graph {

using internal::OpError;

namespace {

using internal::Current;
using internal::Inline;
using internal::ShapesOf;
using internal::TargetGraph;
using internal::Trace;
using internal::Traced;

// Emits the control-flow instruction (operands: `leading`, then each traced
// function's captures) and one GetTupleElement per result.
std::vector<Node> EmitControlFlow(Graph* g, ir::OpType op, const std::vector<Node>& leading,
                                  const std::vector<Traced>& subs, const std::vector<shapes::Shape>& results,
                                  int64_t num_carried, int64_t max_trip_count, const Loc& loc) {
  std::vector<Node> operands = leading;
  ir::ControlFlowAttrs attrs;
  attrs.num_carried = num_carried;
  attrs.max_trip_count = max_trip_count;
  attrs.results = results;
  for (const Traced& t : subs) {
    std::vector<int64_t> captures;
    for (const Node& c : t.graph->Captures()) {
      captures.push_back(static_cast<int64_t>(operands.size()));
      operands.push_back(c);
    }
    attrs.captures.push_back(std::move(captures));
    attrs.subfunctions.push_back(g->AddSubfunction(t.function, t.graph));
  }
  return internal::EmitTuple(g, op, operands, std::move(attrs), results, loc);
}

// x[k] along axis 0 of a stacked value, as a value of x's shape without it.
Node SliceAt(Node stacked, Node k, const Loc& loc) {
  std::vector<int64_t> sizes = stacked.Shape().Dims();
  const std::vector<int64_t> dims(sizes.begin() + 1, sizes.end());
  sizes[0] = 1;
  std::vector<Node> starts(sizes.size(), ZerosLike(k, loc));
  starts[0] = k;
  return Reshape(DynamicSlice(stacked, starts, sizes, loc), dims, loc);
}

// stacked with element k along axis 0 replaced by `value`.
Node UpdateAt(Node stacked, Node value, Node k, const Loc& loc) {
  std::vector<int64_t> dims = value.Shape().Dims();
  dims.insert(dims.begin(), 1);
  std::vector<Node> starts(dims.size(), ZerosLike(k, loc));
  starts[0] = k;
  return DynamicUpdateSlice(stacked, Reshape(value, dims, loc), starts, loc);
}

// The dtype of a loop counter that counts to n.
dtypes::DType CounterDType(int64_t n) {
  return n > std::numeric_limits<int32_t>::max() ? dtypes::Int64 : dtypes::Int32;
}

// Checks that `returned` (the shapes of what a body returned) start with the
// carry's shapes; `exact`: and hold nothing more.
void CheckCarry(const std::vector<shapes::Shape>& returned, const std::vector<shapes::Shape>& carry, bool exact,
                const std::string& what, std::string_view op, const Loc& loc) {
  if (returned.size() < carry.size() || (exact && returned.size() != carry.size())) {
    OpError(loc, op, what + " returned " + std::to_string(returned.size()) + " values for a carry of " +
                         std::to_string(carry.size()));
  }
  for (size_t i = 0; i < carry.size(); ++i) {
    if (returned[i] != carry[i]) {
      OpError(loc, op, "carried value #" + std::to_string(i) + " is " + carry[i].ToString() + " on entry, but " +
                           what + " returns " + returned[i].ToString());
    }
  }
}

}  // namespace

std::vector<Node> While(const CondFn& cond, const BodyFn& body, const std::vector<Node>& init, WhileOptions options,
                        Loc loc) {
  if (!cond || !body) OpError(loc, "While", "the condition and the body must be non-empty functions");
  if (init.empty()) OpError(loc, "While", "needs at least one carried value");
  if (options.max_trip_count < -1) {
    OpError(loc, "While", "max_trip_count must be -1 (unbounded) or >= 0, got " +
                              std::to_string(options.max_trip_count));
  }
  Graph* g = TargetGraph(init, "While", loc);
  const std::vector<shapes::Shape> carry = ShapesOf(init);
  const Traced c = Trace(g, "while_cond", carry, {}, [&](const std::vector<Node>& v) { return std::vector<Node>{cond(v)}; },
                         "While", loc);
  if (c.results.size() != 1 || c.results[0] != shapes::Shape(dtypes::Bool, {})) {
    OpError(loc, "While", "the condition must return one Bool scalar, got " + c.results[0].ToString());
  }
  const Traced b = Trace(g, "while_body", carry, {}, body, "While", loc);
  CheckCarry(b.results, carry, /*exact=*/true, "the body", "While", loc);
  return EmitControlFlow(g, ir::OpType::kWhile, init, {c, b}, carry, static_cast<int64_t>(init.size()),
                         options.max_trip_count, loc);
}

std::vector<Node> If(Node pred, const BodyFn& then_fn, const BodyFn& else_fn, const std::vector<Node>& operands,
                     Loc loc) {
  if (!then_fn || !else_fn) OpError(loc, "If", "both branches must be non-empty functions");
  std::vector<Node> all = {pred};
  all.insert(all.end(), operands.begin(), operands.end());
  Graph* g = TargetGraph(all, "If", loc);
  if (pred.Shape() != shapes::Shape(dtypes::Bool, {})) {
    OpError(loc, "If", "the predicate must be a Bool scalar, got " + pred.Shape().ToString());
  }
  const Traced t = Trace(g, "if_then", {}, operands, then_fn, "If", loc);
  const Traced e = Trace(g, "if_else", {}, operands, else_fn, "If", loc);
  if (t.results.size() != e.results.size()) {
    OpError(loc, "If", "the then branch returns " + std::to_string(t.results.size()) +
                           " values but the else branch returns " + std::to_string(e.results.size()));
  }
  for (size_t i = 0; i < t.results.size(); ++i) {
    if (t.results[i] != e.results[i]) {
      OpError(loc, "If", "value #" + std::to_string(i) + " is " + t.results[i].ToString() + " in the then branch but " +
                             e.results[i].ToString() + " in the else branch");
    }
  }
  return EmitControlFlow(g, ir::OpType::kIf, {pred}, {t, e}, t.results, 0, -1, loc);
}

std::vector<Node> Checkpoint(const BodyFn& fn, const std::vector<Node>& inputs, Loc loc) {
  if (!fn) OpError(loc, "Checkpoint", "the function must be non-empty");
  if (inputs.empty()) OpError(loc, "Checkpoint", "needs at least one input");
  Graph* g = TargetGraph(inputs, "Checkpoint", loc);
  return If(Const(g, true, loc), fn, fn, inputs, loc);
}

std::vector<Node> ForLoop(int64_t trip_count,
                          const std::function<std::vector<Node>(Node i, const std::vector<Node>& carry)>& body,
                          const std::vector<Node>& init, Loc loc) {
  if (!body) OpError(loc, "ForLoop", "the body must be a non-empty function");
  if (trip_count < 0) OpError(loc, "ForLoop", "trip_count must be >= 0, got " + std::to_string(trip_count));
  if (init.empty()) OpError(loc, "ForLoop", "needs at least one carried value");
  Graph* g = TargetGraph(init, "ForLoop", loc);
  const dtypes::DType counter = CounterDType(trip_count);
  const std::vector<shapes::Shape> carry = ShapesOf(init);
  std::vector<Node> start = {Scalar(g, counter, 0, loc)};
  start.insert(start.end(), init.begin(), init.end());
  std::vector<Node> out = While(
      [&](const std::vector<Node>& c) { return LessThan(c[0], Scalar(Current(), counter, static_cast<double>(trip_count), loc), loc); },
      [&](const std::vector<Node>& c) {
        std::vector<Node> next = body(c[0], std::vector<Node>(c.begin() + 1, c.end()));
        CheckCarry(ShapesOf(next), carry, /*exact=*/true, "the body", "ForLoop", loc);
        next.insert(next.begin(), c[0] + Scalar(Current(), counter, 1, loc));
        return next;
      },
      start, WhileOptions{trip_count}, loc);
  return std::vector<Node>(out.begin() + 1, out.end());
}

ScanResult Scan(const std::function<std::vector<Node>(const std::vector<Node>& carry, const std::vector<Node>& x)>& fn,
                const std::vector<Node>& init, const std::vector<Node>& xs, int64_t length, ScanOptions options,
                Loc loc) {
  if (!fn) OpError(loc, "Scan", "the function must be non-empty");
  for (size_t k = 0; k < xs.size(); ++k) {
    internal::CheckNode(xs[k], "Scan", loc);
    if (xs[k].Rank() == 0) OpError(loc, "Scan", "scanned input #" + std::to_string(k) + " is a scalar " + xs[k].Shape().ToString() + "; it needs a leading axis to scan over");
    const int64_t n = xs[k].Shape().Dims()[0];
    if (length < 0) length = n;
    if (n != length) {
      OpError(loc, "Scan", "scanned input #" + std::to_string(k) + " " + xs[k].Shape().ToString() +
                               " has leading dimension " + std::to_string(n) + ", expected " + std::to_string(length));
    }
  }
  if (length < 0) OpError(loc, "Scan", "needs scanned inputs or an explicit length");
  std::vector<Node> all = init;
  all.insert(all.end(), xs.begin(), xs.end());
  if (all.empty()) OpError(loc, "Scan", "needs at least one carried value or scanned input");
  Graph* g = TargetGraph(all, "Scan", loc);
  const std::vector<shapes::Shape> carry = ShapesOf(init);
  std::vector<shapes::Shape> x_shapes;
  for (const Node& x : xs) {
    x_shapes.emplace_back(x.DType(), std::vector<int64_t>(x.Shape().Dims().begin() + 1, x.Shape().Dims().end()));
  }
  // A first trace finds the shapes of the per-iteration outputs, which size
  // the stacked buffers carried by the loop.
  std::vector<shapes::Shape> leading = carry;
  leading.insert(leading.end(), x_shapes.begin(), x_shapes.end());
  std::vector<shapes::Shape> y_shapes;
  Trace(
      g, "scan_probe", leading, {},
      [&](const std::vector<Node>& v) {
        std::vector<Node> out = fn(std::vector<Node>(v.begin(), v.begin() + static_cast<long>(carry.size())),
                                   std::vector<Node>(v.begin() + static_cast<long>(carry.size()), v.end()));
        CheckCarry(ShapesOf(out), carry, /*exact=*/false, "the function", "Scan", loc);
        for (size_t k = carry.size(); k < out.size(); ++k) y_shapes.push_back(out[k].Shape());
        return std::vector<Node>{v.at(0)};  // Trace wants a value; only the shapes matter here
      },
      "Scan", loc);
  const dtypes::DType counter = CounterDType(length);
  std::vector<Node> start = {Scalar(g, counter, 0, loc)};
  start.insert(start.end(), init.begin(), init.end());
  for (const shapes::Shape& y : y_shapes) {
    std::vector<int64_t> dims = y.Dims();
    dims.insert(dims.begin(), length);
    start.push_back(Zeros(g, shapes::Shape(y.DType(), dims), loc));
  }
  const size_t nc = carry.size();
  std::vector<Node> out = While(
      [&](const std::vector<Node>& c) { return LessThan(c[0], Scalar(Current(), counter, static_cast<double>(length), loc), loc); },
      [&](const std::vector<Node>& c) {
        Graph* sub = Current();
        const Node i = c[0];
        const Node t = options.reverse ? Scalar(sub, counter, static_cast<double>(length - 1), loc) - i : i;
        std::vector<Node> x_t;
        for (const Node& x : xs) x_t.push_back(SliceAt(x, t, loc));
        std::vector<Node> out = fn(std::vector<Node>(c.begin() + 1, c.begin() + 1 + static_cast<long>(nc)), x_t);
        CheckCarry(ShapesOf(out), carry, /*exact=*/false, "the function", "Scan", loc);
        if (out.size() != nc + y_shapes.size()) {
          OpError(loc, "Scan", "the function returned " + std::to_string(out.size()) + " values, then " +
                                   std::to_string(nc + y_shapes.size()) + " (it must return the same every time)");
        }
        std::vector<Node> next = {i + Scalar(sub, counter, 1, loc)};
        next.insert(next.end(), out.begin(), out.begin() + static_cast<long>(nc));
        for (size_t k = 0; k < y_shapes.size(); ++k) {
          if (out[nc + k].Shape() != y_shapes[k]) {
            OpError(loc, "Scan", "output #" + std::to_string(k) + " changed shape between traces: " +
                                     y_shapes[k].ToString() + " then " + out[nc + k].Shape().ToString());
          }
          next.push_back(UpdateAt(c[1 + nc + k], out[nc + k], t, loc));
        }
        return next;
      },
      start, WhileOptions{length}, loc);
  ScanResult result;
  result.carry.assign(out.begin() + 1, out.begin() + 1 + static_cast<long>(nc));
  result.stacked.assign(out.begin() + 1 + static_cast<long>(nc), out.end());
  return result;
}

// ------------------------------------------------------------ VJP rules.

namespace {

// Which of the first n parameters of a While body `body` only writes into:
// output i is a DynamicUpdateSlice whose operand 0 is parameter i, and
// parameter i has no other use.
std::vector<bool> WriteOnlyCarries(const ir::Function& body, size_t n) {
  std::vector<int> uses(body.instructions.size(), 0);
  for (const ir::Instruction& in : body.instructions) {
    for (int o : in.operands) ++uses[static_cast<size_t>(o)];
  }
  for (int o : body.outputs) ++uses[static_cast<size_t>(o)];
  std::vector<bool> write_only(n, false);
  for (size_t i = 0; i < n; ++i) {
    const int param = body.parameters[i];
    const ir::Instruction& out = body.instructions[static_cast<size_t>(body.outputs[i])];
    write_only[i] = out.op == ir::OpType::kDynamicUpdateSlice && out.operands[0] == param &&
                    uses[static_cast<size_t>(param)] == 1;
  }
  return write_only;
}

// The instruction behind node `n`.
const ir::Instruction& InstructionOf(const Node& n) {
  return n.Graph()->Function().instructions[static_cast<size_t>(n.Id())];
}

// Whether `n` is +0 everywhere: a Constant, or a broadcast of one, whose
// bytes are all zero (ZerosLike, which VJP rules start from).
bool IsPositiveZeros(const Node& n) {
  const ir::Instruction* in = &InstructionOf(n);
  if (in->op == ir::OpType::kBroadcastInDim) in = &InstructionOf(Node(n.Graph(), in->operands[0]));
  if (in->op != ir::OpType::kConstant) return false;
  const auto& data = ir::Attr<ir::ConstantAttrs>(*in).data;
  return data && std::all_of(data->begin(), data->end(), [](std::byte b) { return b == std::byte{0}; });
}

// acc + d for the gradient of a captured value, summed over the iterations
// of the backward loop. A value the body reads one slice of per iteration (a
// Scan's input at step t) gets d = DynamicUpdateSlice(zeros, u, starts):
// added whole, that costs the whole array per iteration (quadratic over a
// scan); this adds u into acc's window instead, which the loop does in place.
// The same bits: acc starts at +0 and a sum from there is never -0, so acc +
// 0 is acc outside the window.
Node AccumulateGradient(const Node& acc, const Node& d, const Loc& loc) {
  const ir::Instruction& in = InstructionOf(d);
  if (in.op != ir::OpType::kDynamicUpdateSlice || !IsPositiveZeros(Node(d.Graph(), in.operands[0]))) return acc + d;
  const Node update(d.Graph(), in.operands[1]);
  std::vector<Node> starts;
  for (size_t k = 2; k < in.operands.size(); ++k) starts.emplace_back(d.Graph(), in.operands[k]);
  const Node window = DynamicSlice(acc, starts, update.Shape().Dims(), loc);
  return DynamicUpdateSlice(acc, Add(window, update, loc), starts, loc);
}

// The results of the replay recorded for While `loop` in `g` (a previous
// WhileVJP of it: see Graph::SetLoopReplay), read anew; empty if none, or if
// it does not have `results` results.
std::vector<Node> ExistingReplay(Graph* g, const Node& loop, size_t results, const Loc& loc) {
  if (loop.Graph() != g) return {};
  for (const auto& [original, replay] : g->LoopReplays()) {
    if (original != loop.Id()) continue;
    const std::vector<shapes::Shape> shapes =
        ir::TupleElementShapes(g->Function(), g->Function().instructions[static_cast<size_t>(replay)]);
    if (shapes.size() != results) return {};
    std::vector<Node> values;
    for (size_t i = 0; i < shapes.size(); ++i) {
      values.push_back(g->AddInstruction(ir::OpType::kGetTupleElement, {Node(g, replay)}, shapes[i],
                                         ir::TupleIndexAttrs{static_cast<int64_t>(i)}, loc));
    }
    return values;
  }
  return {};
}

// What WhileVJP derives from the loop, for its backward loop.
struct LoopParts {
  size_t n;                          // carried values
  int64_t m;                         // max_trip_count
  std::vector<Node> init;            // the initial carry
  std::vector<Node> body_caps;       // the body's captured operands
  std::vector<size_t> float_carry;   // carries with gradients
  std::vector<size_t> float_caps;    // body captures with gradients
  std::vector<Node> ct;              // the cotangents of the float carry
  std::vector<bool> write_only;      // see WriteOnlyCarries
};

std::vector<Node> BackwardLoop(const internal::VJPArgs& a, const LoopParts& parts, const std::vector<Node>& taped);

// While: replays the loop recording each iteration's carry (a [max_trip_count,
// ...] buffer per carried value), then runs the body's VJP from the last
// iteration to the first, accumulating the gradients of the captured values.
// The replay also gives the forward results, so the forward loop is dropped
// when the graph is finished (loop_replays.h): the loop runs once forward.
std::vector<Node> WhileVJP(const internal::VJPArgs& a) {
  const auto& attrs = ir::Attr<ir::ControlFlowAttrs>(a.instr);
  const int64_t m = attrs.max_trip_count;
  if (m < 0) {
    OpError(a.loc, "Gradient", "the While created at " + a.instr.location +
                                   " has no max_trip_count; reverse-mode differentiation of a loop needs "
                                   "WhileOptions::max_trip_count (or use ForLoop or Scan)");
  }
  LoopParts parts;
  parts.n = static_cast<size_t>(attrs.num_carried);
  parts.m = m;
  const size_t n = parts.n;
  const Graph& cond_g = *a.g->Subgraph(attrs.subfunctions[0]);
  const Graph& body_g = *a.g->Subgraph(attrs.subfunctions[1]);
  parts.init.assign(a.operands.begin(), a.operands.begin() + static_cast<long>(n));
  const std::vector<Node>& init = parts.init;
  std::vector<Node> cond_caps;
  for (int64_t k : attrs.captures[0]) cond_caps.push_back(a.operands[static_cast<size_t>(k)]);
  for (int64_t k : attrs.captures[1]) parts.body_caps.push_back(a.operands[static_cast<size_t>(k)]);
  const std::vector<Node>& body_caps = parts.body_caps;
  for (size_t i = 0; i < n; ++i) {
    if (dtypes::IsFloatOrComplex(init[i].DType())) parts.float_carry.push_back(i);
  }
  for (size_t i = 0; i < body_caps.size(); ++i) {
    if (dtypes::IsFloatOrComplex(body_caps[i].DType())) parts.float_caps.push_back(i);
  }
  for (size_t i : parts.float_carry) {
    parts.ct.push_back(a.cotangents[i].Ok() ? a.cotangents[i] : ZerosLike(init[i], a.loc));
  }
  if (m == 0) {  // the body never runs: the result is the initial carry
    std::vector<Node> grads(a.operands.size());
    for (size_t j = 0; j < parts.float_carry.size(); ++j) grads[parts.float_carry[j]] = parts.ct[j];
    return grads;
  }
  const dtypes::DType counter = CounterDType(m);
  const Loc& loc = a.loc;

  // Carries the body only writes into (its output j is a DynamicUpdateSlice
  // of parameter j, which nothing else reads: Scan's stacked outputs) never
  // reach another result, so they are not recorded (a record of them would
  // be [max_trip_count, max_trip_count, ...]); the backward body gets their
  // initial value, which its VJP does not read.
  parts.write_only = WriteOnlyCarries(body_g.Function(), n);
  const std::vector<bool>& write_only = parts.write_only;

  // 1. The replay with a tape of the other carries.
  std::vector<size_t> taped_carry;  // carry index of each tape
  for (size_t i = 0; i < n; ++i) {
    if (!write_only[i]) taped_carry.push_back(i);
  }
  // A loop differentiated again (a second Gradient of its results) reuses
  // the replay made for the first: the same values, so one forward run.
  const std::vector<Node> taped = ExistingReplay(a.g, a.output, 1 + n + taped_carry.size(), loc);
  if (!taped.empty()) return BackwardLoop(a, parts, taped);
  std::vector<Node> start = {Scalar(a.g, counter, 0, loc)};
  start.insert(start.end(), init.begin(), init.end());
  for (size_t i : taped_carry) {
    std::vector<int64_t> dims = init[i].Shape().Dims();
    dims.insert(dims.begin(), m);
    start.push_back(Zeros(a.g, shapes::Shape(init[i].DType(), dims), loc));
  }
  const std::vector<Node> replay = While(
      [&](const std::vector<Node>& c) {
        std::vector<Node> args(c.begin() + 1, c.begin() + 1 + static_cast<long>(n));
        args.insert(args.end(), cond_caps.begin(), cond_caps.end());
        return Inline(cond_g, args, Current())[0];
      },
      [&](const std::vector<Node>& c) {
        const Node k = c[0];
        std::vector<Node> args(c.begin() + 1, c.begin() + 1 + static_cast<long>(n));
        std::vector<Node> tapes;
        for (size_t t = 0; t < taped_carry.size(); ++t) tapes.push_back(UpdateAt(c[1 + n + t], args[taped_carry[t]], k, loc));
        args.insert(args.end(), body_caps.begin(), body_caps.end());
        std::vector<Node> next = {k + Scalar(Current(), counter, 1, loc)};
        for (const Node& v : Inline(body_g, args, Current())) next.push_back(v);
        next.insert(next.end(), tapes.begin(), tapes.end());
        return next;
      },
      start, WhileOptions{m}, loc);
  // The replay computes the forward loop's results too: Finish drops the
  // forward loop and reads them from here (see loop_replays.h).
  if (a.output.Graph() == a.g && replay[0].Graph() == a.g) {
    a.g->SetLoopReplay(InstructionOf(replay[0]).operands[0], a.output.Id());
  }
  return BackwardLoop(a, parts, replay);
}

// 2. The backward loop of WhileVJP, from iteration trips - 1 down to 0,
// reading the replay's results `taped` (the trip count, the carries, then a
// tape per carry that is not write-only).
std::vector<Node> BackwardLoop(const internal::VJPArgs& a, const LoopParts& parts, const std::vector<Node>& taped) {
  const auto& attrs = ir::Attr<ir::ControlFlowAttrs>(a.instr);
  const size_t n = parts.n;
  const Graph& body_g = *a.g->Subgraph(attrs.subfunctions[1]);
  const std::vector<Node>& init = parts.init;
  const std::vector<Node>& body_caps = parts.body_caps;
  const std::vector<size_t>& float_carry = parts.float_carry;
  const std::vector<size_t>& float_caps = parts.float_caps;
  const std::vector<bool>& write_only = parts.write_only;
  const dtypes::DType counter = CounterDType(parts.m);
  const Loc& loc = a.loc;
  const Node trips = taped[0];
  std::vector<Node> tapes(n);  // per carry; empty for write-only ones
  for (size_t i = 0, t = 0; i < n; ++i) {
    if (!write_only[i]) tapes[i] = taped[1 + n + t++];
  }
  std::vector<Node> back = {trips};
  back.insert(back.end(), parts.ct.begin(), parts.ct.end());
  for (size_t i : float_caps) back.push_back(ZerosLike(body_caps[i], loc));
  const size_t nf = float_carry.size();
  const std::vector<Node> result = While(
      [&](const std::vector<Node>& c) { return GreaterThan(c[0], ZerosLike(c[0], loc), loc); },
      [&](const std::vector<Node>& c) {
        Graph* sub = Current();
        const Node k = c[0] - Scalar(sub, counter, 1, loc);
        std::vector<Node> args;
        for (size_t i = 0; i < n; ++i) {
          // A distinct node for a write-only carry (its initial value may
          // also be a capture, which must keep its own gradient).
          args.push_back(write_only[i] ? StopGradient(sub->Capture(init[i], loc), loc) : SliceAt(tapes[i], k, loc));
        }
        for (const Node& cap : body_caps) args.push_back(sub->Capture(cap, loc));
        const std::vector<Node> outs = Inline(body_g, args, sub);
        std::vector<Node> outputs, cotangents, wrt;
        for (size_t j = 0; j < nf; ++j) {
          outputs.push_back(outs[float_carry[j]]);
          cotangents.push_back(c[1 + j]);
          wrt.push_back(args[float_carry[j]]);
        }
        for (size_t i : float_caps) wrt.push_back(args[n + i]);
        const std::vector<Node> d = VJP(outputs, cotangents, wrt, loc);
        std::vector<Node> next = {k};
        next.insert(next.end(), d.begin(), d.begin() + static_cast<long>(nf));
        for (size_t i = 0; i < float_caps.size(); ++i) next.push_back(AccumulateGradient(c[1 + nf + i], d[nf + i], loc));
        return next;
      },
      back, WhileOptions{parts.m}, loc);
  std::vector<Node> grads(a.operands.size());
  for (size_t j = 0; j < nf; ++j) grads[float_carry[j]] = result[1 + j];
  for (size_t i = 0; i < float_caps.size(); ++i) {
    grads[static_cast<size_t>(attrs.captures[1][float_caps[i]])] = result[1 + nf + i];
  }
  return grads;
}

// If: an If of the branches' VJPs. Each returns a gradient for every float
// operand: its own captures' (each a distinct value) and zeros for the
// operands only the other branch reads (an outer value both branches use is
// two operands, one per branch, so each branch must answer for its own only).
std::vector<Node> IfVJP(const internal::VJPArgs& a) {
  const auto& attrs = ir::Attr<ir::ControlFlowAttrs>(a.instr);
  const Loc& loc = a.loc;
  std::vector<size_t> float_operands;  // operand indices (pred excluded)
  for (size_t k = 1; k < a.operands.size(); ++k) {
    if (dtypes::IsFloatOrComplex(a.operands[k].DType())) float_operands.push_back(k);
  }
  std::vector<size_t> float_results;
  for (size_t r = 0; r < attrs.results.size(); ++r) {
    if (dtypes::IsFloatOrComplex(attrs.results[r].DType())) float_results.push_back(r);
  }
  std::vector<Node> grads(a.operands.size());
  if (float_operands.empty() || float_results.empty()) return grads;
  // The branches' inputs: every operand but the predicate, then the cotangents.
  std::vector<Node> inputs(a.operands.begin() + 1, a.operands.end());
  for (size_t r : float_results) {
    inputs.push_back(a.cotangents[r].Ok() ? a.cotangents[r] : Zeros(a.g, attrs.results[r], loc));
  }
  auto branch = [&](size_t k) {
    return [&, k](const std::vector<Node>& v) {
      const Graph& src = *a.g->Subgraph(attrs.subfunctions[k]);
      std::vector<Node> args;
      for (int64_t c : attrs.captures[k]) args.push_back(v[static_cast<size_t>(c) - 1]);
      const std::vector<Node> outs = Inline(src, args, Current());
      std::vector<Node> outputs, cotangents, wrt;
      for (size_t j = 0; j < float_results.size(); ++j) {
        outputs.push_back(outs[float_results[j]]);
        cotangents.push_back(v[a.operands.size() - 1 + j]);
      }
      const auto& mine = attrs.captures[k];
      std::vector<bool> own;
      for (size_t o : float_operands) {
        own.push_back(std::find(mine.begin(), mine.end(), static_cast<int64_t>(o)) != mine.end());
        if (own.back()) wrt.push_back(v[o - 1]);
      }
      const std::vector<Node> d = VJP(outputs, cotangents, wrt, loc);
      std::vector<Node> result;
      size_t next = 0;
      for (size_t i = 0; i < float_operands.size(); ++i) {
        result.push_back(own[i] ? d[next++] : ZerosLike(v[float_operands[i] - 1], loc));
      }
      return result;
    };
  };
  const std::vector<Node> d = If(a.operands[0], branch(0), branch(1), inputs, loc);
  for (size_t i = 0; i < float_operands.size(); ++i) grads[float_operands[i]] = d[i];
  return grads;
}

}  // namespace

namespace internal {
void RegisterControlFlowVJPs(VJPTable& table) {
  table[static_cast<size_t>(ir::OpType::kWhile)] = WhileVJP;
  table[static_cast<size_t>(ir::OpType::kIf)] = IfVJP;
}
}  // namespace internal

}  // namespace kiln::graph
