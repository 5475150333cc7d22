// Copyright 2026 The Kiln Authors.
// Context handles, variables, scopes and hyperparameters.
#include "kiln/context/context.h"

#include <algorithm>
#include <sstream>

#include "kiln/graph/ops.h"
#include "kiln/graph/random.h"
#include "src/context/store.h"

namespace kiln::context {

using internal::Store;

std::string JoinScope(const std::string& scope, const std::string& name) {
  return scope == "/" ? "/" + name : scope + "/" + name;
}

// ------------------------------------------------------------------ Variable.

Variable::Variable(Store* store, std::string scope, std::string name, shapes::Shape shape,
                   initializers::Initializer initializer)
    : store_(store),
      scope_(std::move(scope)),
      name_(std::move(name)),
      shape_(std::move(shape)),
      initializer_(std::move(initializer)),
      trainable_(dtypes::IsFloatOrComplex(shape_.DType())) {}

std::string Variable::ScopeAndName() const { return JoinScope(scope_, name_); }

namespace {
[[noreturn]] void ThrowDeleted(const Variable& v, const std::string& what) {
  Throw("Variable " + v.ScopeAndName() + ": " + what + " after Context::DeleteVariablesInScope deleted it");
}
}  // namespace

bool Variable::HasValue() const {
  std::lock_guard lock(store_->mu);
  return value_.Ok();
}

bool Variable::Deleted() const {
  std::lock_guard lock(store_->mu);
  return deleted_;
}

void Variable::SetValueUnchecked(tensors::Tensor value) {
  std::lock_guard lock(store_->mu);
  if (deleted_) ThrowDeleted(*this, "set");
  value_ = std::move(value);
}

tensors::Tensor Variable::Value() const {
  std::lock_guard lock(store_->mu);
  if (deleted_) ThrowDeleted(*this, "read");
  if (!value_.Ok()) {
    Throw("Variable " + ScopeAndName() + " has no value yet: it is initialized by the first context::NewExec "
          "run that uses it, by context::InitializeVariables, by SetValue or by a checkpoint restore");
  }
  // A handle of its own: an in-place update of the variable never empties it.
  return value_.ShallowCopy();
}

void Variable::SetValue(const tensors::Tensor& value) {
  std::lock_guard lock(store_->mu);
  if (deleted_) ThrowDeleted(*this, "SetValue");
  if (!value.Ok() || value.Shape() != shape_) {
    Throw("Variable " + ScopeAndName() + ": SetValue with " + (value.Ok() ? value.Shape().ToString() : "an empty tensor") +
          ", the variable is " + shape_.ToString());
  }
  value_ = value.ShallowCopy();  // the caller's handle stays independent
}

graph::Node Variable::ValueGraph(graph::Graph* g, graph::Loc loc) {
  std::lock_guard lock(store_->mu);
  if (deleted_) ThrowAt(loc, "Variable " + ScopeAndName() + ": ValueGraph after Context::DeleteVariablesInScope deleted it");
  Store::Trace* trace = store_->trace;
  // Inside a While or If body (a sub-graph of the traced graph) the value is
  // the traced graph's, which the body captures where it uses it.
  if (trace == nullptr || g == nullptr || !g->IsWithin(trace->g)) {
    ThrowAt(loc, "Variable " + ScopeAndName() + ": ValueGraph must be called while context::NewExec traces this graph");
  }
  // Read-after-write inside one graph sees the new value.
  if (auto it = trace->updates.find(this); it != trace->updates.end()) return it->second;
  if (auto it = trace->inputs.find(this); it != trace->inputs.end()) return it->second;
  graph::Node param = graph::Parameter(trace->g, "var:" + ScopeAndName(), shape_, loc);
  trace->inputs[this] = param;
  trace->input_order.push_back(this);
  return param;
}

void Variable::SetValueGraph(graph::Node value, graph::Loc loc) {
  std::lock_guard lock(store_->mu);
  if (deleted_) {
    ThrowAt(loc, "Variable " + ScopeAndName() + ": SetValueGraph after Context::DeleteVariablesInScope deleted it");
  }
  Store::Trace* trace = store_->trace;
  if (!value.Ok()) ThrowAt(loc, "Variable " + ScopeAndName() + ": SetValueGraph with an empty Node");
  if (trace != nullptr && value.Graph() != trace->g && value.Graph()->IsWithin(trace->g)) {
    ThrowAt(loc, "Variable " + ScopeAndName() + ": SetValueGraph with a value computed inside a While or If body; "
                 "return it from the body and set the variable outside");
  }
  if (trace == nullptr || trace->g != value.Graph()) {
    ThrowAt(loc, "Variable " + ScopeAndName() + ": SetValueGraph must be called while context::NewExec traces the graph");
  }
  if (value.Shape() != shape_) {
    ThrowAt(loc, "Variable " + ScopeAndName() + ": SetValueGraph with " + value.Shape().ToString() +
                     ", the variable is " + shape_.ToString());
  }
  if (!trace->updates.contains(this)) trace->update_order.push_back(this);
  trace->updates[this] = value;
}

// --------------------------------------------------------------------- Store.

namespace internal {

Variable* Store::Create(const std::string& scope, const std::string& name, const shapes::Shape& shape,
                        initializers::Initializer initializer) {
  const std::string full = JoinScope(scope, name);
  // A value restored lazily from a checkpoint: check it before creating the
  // variable, so that a mismatch leaves the store unchanged.
  tensors::Tensor restored;
  if (auto it = pending_restore.find(full); it != pending_restore.end()) {
    if (it->second.Shape() != shape) {
      Throw("Context: variable " + full + " is created as " + shape.ToString() + ", but " +
            (pending_restore_origin.empty() ? std::string("a checkpoint") : pending_restore_origin) +
            " restored it as " + it->second.Shape().ToString());
    }
    restored = std::move(it->second);
    pending_restore.erase(it);
  }
  variables.push_back(std::unique_ptr<Variable>(new Variable(this, scope, name, shape, std::move(initializer))));
  Variable* v = variables.back().get();
  by_name[full] = v;
  deleted_names.erase(full);  // it exists again
  if (restored.Ok()) v->SetValueUnchecked(std::move(restored));
  return v;
}

initializers::Initializer DefaultInitializer(const shapes::Shape& shape) {
  return dtypes::IsFloat(shape.DType()) ? initializers::GlorotUniform() : initializers::Zeros();
}

std::optional<Param> FindParam(const Store& store, const std::string& scope, const std::string& key) {
  std::lock_guard lock(store.mu);
  std::string s = scope;
  while (true) {
    if (auto it = store.params.find(s); it != store.params.end()) {
      if (auto kv = it->second.find(key); kv != it->second.end()) return kv->second;
    }
    if (s == "/") return std::nullopt;
    size_t slash = s.find_last_of('/');
    s = slash == 0 ? "/" : s.substr(0, slash);
  }
}

namespace {
std::string ParamToString(const Param& p) {
  std::ostringstream os;
  std::visit(
      [&](const auto& v) {
        using V = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<V, bool>) os << (v ? "true" : "false");
        else if constexpr (std::is_same_v<V, int64_t> || std::is_same_v<V, double> || std::is_same_v<V, std::string>) os << v;
        else {
          for (size_t i = 0; i < v.size(); ++i) os << (i ? "," : "") << v[i];
        }
      },
      p);
  return os.str();
}
}  // namespace

void ThrowParamType(const std::string& key, const Param& value, const char* wanted) {
  static const char* kNames[] = {"bool", "int", "double", "string", "int list", "double list", "string list"};
  Throw("Context::GetParam: parameter \"" + key + "\" is a " + kNames[value.index()] + " (" + ParamToString(value) +
        "), not a " + wanted);
}

}  // namespace internal

// ------------------------------------------------------------------- Context.

Context::Context() : store_(std::make_shared<Store>()) {}

Context New() { return Context(); }

Context Context::In(const std::string& name) const {
  if (name.empty() || name.find('/') != std::string::npos) {
    Throw("Context::In: invalid scope name \"" + name + "\" (non-empty, without '/')");
  }
  Context c = *this;
  c.scope_ = JoinScope(scope_, name);
  return c;
}

Context Context::Root() const {
  Context c = *this;
  c.scope_ = "/";
  return c;
}

Context Context::Reuse() const {
  Context c = *this;
  c.reuse_ = true;
  return c;
}

Context Context::WithTraining(bool training) const {
  Context c = *this;
  c.training_ = training;
  return c;
}

void Context::AddLoss(graph::Node loss, graph::Loc loc) {
  std::lock_guard lock(store_->mu);
  Store::Trace* trace = store_->trace;
  if (!loss.Ok() || trace == nullptr || trace->g != loss.Graph()) {
    ThrowAt(loc, "Context::AddLoss: must be called while context::NewExec traces the loss's graph");
  }
  if (loss.Rank() != 0 || !dtypes::IsFloat(loss.DType())) {
    ThrowAt(loc, "Context::AddLoss: the loss must be a float scalar, got " + loss.Shape().ToString());
  }
  trace->losses.push_back(loss);
}

std::vector<graph::Node> Context::AddedLosses(graph::Graph* g) const {
  std::lock_guard lock(store_->mu);
  Store::Trace* trace = store_->trace;
  if (trace == nullptr || trace->g != g) return {};
  return trace->losses;
}

Context Context::WithInitializer(initializers::Initializer initializer) const {
  Context c = *this;
  c.initializer_ = std::move(initializer);
  return c;
}

Variable* Context::VariableWithShape(const std::string& name, const shapes::Shape& shape, graph::Loc loc) {
  if (name.empty() || name.find('/') != std::string::npos) {
    ThrowAt(loc, "Context: invalid variable name \"" + name + "\" (non-empty, without '/')");
  }
  if (!shape.Ok()) ThrowAt(loc, "Context: variable \"" + name + "\" has a shape with an invalid dtype");
  std::lock_guard lock(store_->mu);
  const std::string full = JoinScope(scope_, name);
  auto it = store_->by_name.find(full);
  if (it != store_->by_name.end()) {
    if (!reuse_) {
      ThrowAt(loc, "Context: variable " + full + " already exists; use ctx.Reuse() to share it");
    }
    if (it->second->Shape() != shape) {
      ThrowAt(loc, "Context: variable " + full + " exists with shape " + it->second->Shape().ToString() +
                       ", requested " + shape.ToString());
    }
    return it->second;
  }
  if (reuse_) ThrowAt(loc, "Context: variable " + full + " does not exist (the context is in reuse mode)");
  return store_->Create(scope_, name, shape, initializer_ ? initializer_ : internal::DefaultInitializer(shape));
}

Variable* Context::VariableWithValue(const std::string& name, const tensors::Tensor& value, graph::Loc loc) {
  if (!value.Ok()) ThrowAt(loc, "Context: variable \"" + name + "\" given an empty tensor");
  std::lock_guard lock(store_->mu);
  const bool existed = store_->by_name.contains(JoinScope(scope_, name));
  Variable* v = VariableWithShape(name, value.Shape(), loc);
  // A value restored lazily from a checkpoint wins over the initial value.
  if (!existed && !v->HasValue()) v->SetValue(value);
  return v;
}

Variable* Context::GetVariable(const std::string& name) const { return GetVariableByScopeAndName(JoinScope(scope_, name)); }

Variable* Context::GetVariableByScopeAndName(const std::string& scope_and_name) const {
  std::lock_guard lock(store_->mu);
  auto it = store_->by_name.find(scope_and_name);
  return it == store_->by_name.end() ? nullptr : it->second;
}

std::vector<Variable*> Context::Variables() const {
  std::lock_guard lock(store_->mu);
  std::vector<Variable*> out;
  for (const auto& v : store_->variables) out.push_back(v.get());
  return out;
}

std::vector<Variable*> Context::VariablesInScope() const {
  std::vector<Variable*> out;
  const std::string prefix = scope_ == "/" ? "/" : scope_ + "/";
  for (Variable* v : Variables()) {
    if (v->ScopeAndName().rfind(prefix, 0) == 0) out.push_back(v);
  }
  return out;
}

void Context::DeleteVariablesInScope(const std::string& prefix) {
  Store& store = *store_;
  std::lock_guard lock(store.mu);
  bool removed = false;
  auto& vars = store.variables;
  for (auto it = vars.begin(); it != vars.end();) {
    Variable& v = **it;
    const std::string full = v.ScopeAndName();
    if (full.starts_with(prefix)) {
      store.by_name.erase(full);
      store.deleted_names.insert(full);
      v.value_ = tensors::Tensor();  // free the memory; the metadata stays for messages
      v.deleted_ = true;
      store.deleted.push_back(std::move(*it));
      it = vars.erase(it);
      removed = true;
    } else {
      ++it;
    }
  }
  // Restored values waiting for such variables are deleted on purpose too.
  for (auto it = store.pending_restore.begin(); it != store.pending_restore.end();) {
    if (it->first.starts_with(prefix)) {
      store.deleted_names.insert(it->first);
      it = store.pending_restore.erase(it);
    } else {
      ++it;
    }
  }
  if (removed) ++store.deletions;
}

void Context::SetParam(const std::string& key, Param value) {
  if (key.empty() || key.find('/') != std::string::npos) Throw("Context::SetParam: invalid key \"" + key + "\"");
  std::lock_guard lock(store_->mu);
  store_->params[scope_][key] = std::move(value);
}

bool Context::HasParam(const std::string& key) const { return internal::FindParam(*store_, scope_, key).has_value(); }

namespace {

std::vector<std::string> SplitOn(const std::string& s, char sep) {
  std::vector<std::string> parts;
  std::string cur;
  std::istringstream is(s);
  while (std::getline(is, cur, sep)) parts.push_back(cur);
  return parts;
}

std::string Trim(const std::string& s) {
  size_t b = s.find_first_not_of(" \t"), e = s.find_last_not_of(" \t");
  return b == std::string::npos ? "" : s.substr(b, e - b + 1);
}

// Parses `text` as the same alternative as `like`.
Param ParseLike(const Param& like, const std::string& key, const std::string& text) {
  auto fail = [&](const char* type) -> Param {
    Throw("Context::SetParams: cannot parse \"" + text + "\" as a " + type + " for parameter \"" + key + "\"");
  };
  auto parse_int = [&](const std::string& t, int64_t& out) {
    size_t pos = 0;
    try {
      out = std::stoll(t, &pos);
    } catch (...) {
      return false;
    }
    return pos == t.size();
  };
  auto parse_double = [&](const std::string& t, double& out) {
    size_t pos = 0;
    try {
      out = std::stod(t, &pos);
    } catch (...) {
      return false;
    }
    return pos == t.size();
  };
  switch (like.index()) {
    case 0:
      if (text == "true" || text == "1") return true;
      if (text == "false" || text == "0") return false;
      return fail("bool");
    case 1: {
      int64_t v;
      return parse_int(text, v) ? Param(v) : fail("int");
    }
    case 2: {
      double v;
      return parse_double(text, v) ? Param(v) : fail("double");
    }
    case 3: return text;
    case 4: {
      std::vector<int64_t> out;
      for (const auto& part : SplitOn(text, ',')) {
        int64_t v;
        if (!parse_int(Trim(part), v)) return fail("int list");
        out.push_back(v);
      }
      return out;
    }
    case 5: {
      std::vector<double> out;
      for (const auto& part : SplitOn(text, ',')) {
        double v;
        if (!parse_double(Trim(part), v)) return fail("double list");
        out.push_back(v);
      }
      return out;
    }
    default: {
      std::vector<std::string> out;
      for (const auto& part : SplitOn(text, ',')) out.push_back(Trim(part));
      return out;
    }
  }
}

}  // namespace

void Context::SetParams(const std::string& settings) {
  for (const std::string& raw : SplitOn(settings, ';')) {
    const std::string item = Trim(raw);
    if (item.empty()) continue;
    const size_t eq = item.find('=');
    if (eq == std::string::npos) Throw("Context::SetParams: \"" + item + "\" is not of the form key=value");
    std::string path = Trim(item.substr(0, eq));
    const std::string text = Trim(item.substr(eq + 1));
    // "/scope/key" sets in that scope; "key" in the current one.
    std::string scope = scope_, key = path;
    if (!path.empty() && path[0] == '/') {
      const size_t slash = path.find_last_of('/');
      scope = slash == 0 ? "/" : path.substr(0, slash);
      key = path.substr(slash + 1);
    }
    const std::optional<Param> existing = internal::FindParam(*store_, scope, key);
    if (!existing) {
      Throw("Context::SetParams: unknown parameter \"" + path + "\" (set a default with SetParam first)");
    }
    Param value = ParseLike(*existing, key, text);
    std::lock_guard lock(store_->mu);
    store_->params[scope][key] = std::move(value);
  }
}

std::vector<std::pair<std::string, Param>> Context::Params() const {
  std::lock_guard lock(store_->mu);
  std::vector<std::pair<std::string, Param>> out;
  for (const auto& [scope, kv] : store_->params) {
    for (const auto& [key, value] : kv) out.emplace_back(JoinScope(scope, key), value);
  }
  return out;
}

void Context::SetSeed(uint64_t seed) {
  std::lock_guard lock(store_->mu);
  store_->seed = seed;
  if (Variable* state = GetVariableByScopeAndName("/rng_state"); state != nullptr) {
    state->SetValue(tensors::FromValue(std::vector<uint64_t>{seed, 0, 0}));
  }
}

uint64_t Context::Seed() const {
  std::lock_guard lock(store_->mu);
  return store_->seed;
}

namespace {
// The context's Philox state variable, created on first use from the seed.
Variable* RngState(Context& ctx) {
  std::lock_guard lock(ctx.GetStore().mu);
  if (Variable* v = ctx.GetVariableByScopeAndName("/rng_state")) return v;
  Variable* v = ctx.GetStore().Create("/", "rng_state", shapes::Make(dtypes::Uint64, 3), initializers::Zeros());
  v->SetTrainable(false);
  // A value restored lazily from a checkpoint continues that stream.
  if (!v->HasValue()) v->SetValue(tensors::FromValue(std::vector<uint64_t>{ctx.Seed(), 0, 0}));
  return v;
}
}  // namespace

graph::Node Context::RandomUniform(graph::Graph* g, const shapes::Shape& shape, graph::Loc loc) {
  Variable* state = RngState(*this);
  auto [next, values] = graph::RandomUniform(state->ValueGraph(g, loc), shape, loc);
  state->SetValueGraph(next, loc);
  return values;
}

graph::Node Context::RandomNormal(graph::Graph* g, const shapes::Shape& shape, graph::Loc loc) {
  Variable* state = RngState(*this);
  auto [next, values] = graph::RandomNormal(state->ValueGraph(g, loc), shape, loc);
  state->SetValueGraph(next, loc);
  return values;
}

graph::Node Context::RandomBernoulli(graph::Graph* g, double p, const std::vector<int64_t>& dims, graph::Loc loc) {
  if (!(p >= 0 && p <= 1)) ThrowAt(loc, "Context::RandomBernoulli: probability " + std::to_string(p) + " is not in [0, 1]");
  graph::Node u = RandomUniform(g, shapes::Shape(dtypes::Float32, dims), loc);
  return graph::LessThan(u, graph::ScalarLike(u, p, loc), loc);
}

}  // namespace kiln::context
