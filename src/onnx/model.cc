// Copyright 2026 The Kiln Authors.
// onnx::Model: parsing and checking a ModelProto, converting its graph node
// by node into Kiln ops (folding what is known at trace time), and Exec,
// which compiles the result per input-shape signature.
#include <algorithm>
#include <cmath>
#include <fstream>
#include <limits>
#include <mutex>
#include <sstream>

#include "kiln/backends/backend.h"
#include "kiln/context/exec.h"
#include "kiln/graph/exec.h"
#include "kiln/graph/ops.h"
#include "kiln/onnx/onnx.h"
#include "src/onnx/converter.h"

namespace kiln::onnx {

struct Model::Impl {
  ::onnx::ModelProto proto;
  std::string description;  // "ONNX model model.onnx"
  std::filesystem::path dir;
  ImportOptions options;
  std::vector<ValueInfo> inputs, outputs;
  std::map<std::string, int64_t> opsets;
  std::map<std::string, std::string> metadata;
  std::map<std::string, tensors::Tensor> initializers;
  std::vector<std::string> initializer_order;

  std::string VariableName(const std::string& initializer) const;
};

namespace internal {

constexpr const char* kTrainingDomain = "ai.onnx.preview.training";

namespace {

bool IsDefaultDomain(const std::string& d) { return d.empty() || d == "ai.onnx"; }

std::string RegistryKey(const ::onnx::NodeProto& node) {
  if (IsDefaultDomain(node.domain())) return node.op_type();
  if (node.domain() == kTrainingDomain) return "training:" + node.op_type();
  return node.domain() + ":" + node.op_type();
}

std::string NodeLabel(const ::onnx::NodeProto& node) {
  if (!node.name().empty()) return node.name();
  if (node.output_size() > 0) return node.output(0);
  return "(unnamed)";
}

std::map<std::string, OpEntry>& MutableRegistry() {
  static std::map<std::string, OpEntry> registry;
  return registry;
}

// The CPU backend that computes the values folded at trace time.
std::shared_ptr<backends::Backend> FoldBackend() {
  static std::shared_ptr<backends::Backend> backend = backends::NewWithName("cpu");
  return backend;
}

ValueInfo MakeValueInfo(const ::onnx::ValueInfoProto& v) {
  ValueInfo info;
  info.name = v.name();
  info.type = TypeText(v.type());
  if (v.type().has_tensor_type()) {
    const auto& tt = v.type().tensor_type();
    info.dtype = DTypeFromOnnx(tt.elem_type());
    if (tt.has_shape()) {
      info.has_shape = true;
      for (const auto& d : tt.shape().dim()) {
        info.dims.push_back(d.has_dim_value() ? d.dim_value() : -1);
        info.dim_names.push_back(d.has_dim_param() ? d.dim_param() : "");
      }
    }
  }
  return info;
}

// Checks that every node input is defined before it is used (graph inputs,
// initializers, earlier outputs, enclosing graphs' values) and that each
// operator has a converter.
void CheckGraph(const ::onnx::GraphProto& graph, std::set<std::string> visible, const Model::Impl& m,
                const std::string& where) {
  for (const auto& i : graph.input()) visible.insert(i.name());
  for (const auto& i : graph.initializer()) visible.insert(i.name());
  for (int k = 0; k < graph.node_size(); ++k) {
    const auto& node = graph.node(k);
    const std::string label = m.description + ": " + where + "node '" + NodeLabel(node) + "' (#" + std::to_string(k) +
                              ", " + node.op_type() + ")";
    if (!IsDefaultDomain(node.domain()) && node.domain() != kTrainingDomain) {
      Throw(label + ": operator domain \"" + node.domain() + "\" is not supported (only the default ONNX domain and " +
            kTrainingDomain + ")");
    }
    const std::string domain = IsDefaultDomain(node.domain()) ? "" : node.domain();
    if (!m.opsets.count(domain)) Throw(label + ": the model does not import domain \"" + node.domain() + "\"");
    if (!Registry().count(RegistryKey(node))) {
      Throw(label + ": operator " + node.op_type() + " (opset " + std::to_string(m.opsets.at(domain)) +
            ") is not supported by Kiln's importer");
    }
    for (const auto& in : node.input()) {
      if (!in.empty() && !visible.count(in)) Throw(label + ": input '" + in + "' is not defined before the node");
    }
    for (const auto& a : node.attribute()) {
      if (a.has_g()) CheckGraph(a.g(), visible, m, where + node.op_type() + " '" + NodeLabel(node) + "' " + a.name() + ": ");
      for (const auto& sub : a.graphs()) CheckGraph(sub, visible, m, where + a.name() + ": ");
    }
    for (const auto& out : node.output()) {
      if (!out.empty()) visible.insert(out);
    }
  }
  for (const auto& o : graph.output()) {
    if (!visible.count(o.name())) Throw(m.description + ": " + where + "graph output '" + o.name() + "' is never computed");
  }
}

std::shared_ptr<Model::Impl> Parse(std::string_view bytes, std::filesystem::path dir, ImportOptions options,
                                   std::string description) {
  auto m = std::make_shared<Model::Impl>();
  m->description = std::move(description);
  m->dir = std::move(dir);
  m->options = std::move(options);
  if (bytes.size() > static_cast<size_t>(std::numeric_limits<int>::max())) {
    Throw(m->description + ": larger than 2 GB; store the weights as external data");
  }
  if (!m->proto.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    Throw(m->description + ": not a valid ONNX model (the protobuf does not parse)");
  }
  if (!m->proto.has_graph()) Throw(m->description + ": the model has no graph");
  for (const auto& op : m->proto.opset_import()) {
    m->opsets[IsDefaultDomain(op.domain()) ? "" : op.domain()] = op.version();
  }
  if (m->proto.opset_import_size() == 0) m->opsets[""] = 1;  // IR version 2 models: opset 1
  if (m->opsets.count("") && (m->opsets[""] < 1 || m->opsets[""] > 18)) {
    Throw(m->description + ": default-domain opset " + std::to_string(m->opsets[""]) +
          " is not supported (Kiln imports opsets 1 to 18)");
  }
  for (const auto& p : m->proto.metadata_props()) m->metadata[p.key()] = p.value();
  const auto& graph = m->proto.graph();
  for (const auto& init : graph.initializer()) {
    if (m->initializers.count(init.name())) Throw(m->description + ": initializer '" + init.name() + "' is listed twice");
    m->initializers[init.name()] = TensorFromProto(init, m->dir, m->description + ": initializer");
    m->initializer_order.push_back(init.name());
  }
  if (graph.sparse_initializer_size() > 0) Throw(m->description + ": sparse initializers are not supported");
  // Two weights must not share one variable ("a.b" and "a/b" both map to /a/b).
  std::map<std::string, std::string> variables;
  for (const auto& name : m->initializer_order) {
    if (!dtypes::IsFloatOrComplex(m->initializers[name].DType())) continue;
    auto [it, fresh] = variables.emplace(m->VariableName(name), name);
    if (!fresh) {
      Throw(m->description + ": initializers '" + it->second + "' and '" + name + "' map to the same variable " +
            it->first + " (set ImportOptions::variable_name)");
    }
  }
  std::set<std::string> seen;
  for (const auto& in : graph.input()) {
    if (!seen.insert(in.name()).second) Throw(m->description + ": graph input '" + in.name() + "' is listed twice");
    if (!m->initializers.count(in.name())) m->inputs.push_back(MakeValueInfo(in));
  }
  for (const auto& out : graph.output()) m->outputs.push_back(MakeValueInfo(out));
  CheckGraph(graph, {}, *m, "");
  return m;
}

std::vector<int64_t> ToInt64s(const tensors::Tensor& t) {
  std::vector<int64_t> v(static_cast<size_t>(t.Size()));
  DispatchDType(t.DType(), [&]<typename T>(T) {
    if constexpr (std::is_integral_v<T>) {  // (callers check for an integer dtype)
      auto flat = t.Flat<T>();
      for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<int64_t>(flat[i]);
    }
  });
  return v;
}

}  // namespace

const std::map<std::string, OpEntry>& Registry() {
  static std::once_flag once;
  std::call_once(once, [] {
    RegisterElementwiseOps();
    RegisterShapeOps();
    RegisterNnOps();
    RegisterReduceOps();
    RegisterMiscOps();
    RegisterRecurrentOps();
    RegisterQuantOps();
    RegisterSignalOps();
    RegisterSamplingOps();
    RegisterSequenceOps();
    RegisterTraceTimeOps();
  });
  return MutableRegistry();
}

void RegisterOp(const std::string& op_type, ConvertFn fn, bool foldable) {
  MutableRegistry()[op_type] = OpEntry{std::move(fn), foldable};
}

Value* Scope::Find(const std::string& name) {
  for (Scope* s = this; s != nullptr; s = s->parent) {
    auto it = s->values.find(name);
    if (it != s->values.end()) return &it->second;
  }
  return nullptr;
}

// ------------------------------------------------------------- OpContext.

OpContext::OpContext(Converter& converter, Scope& scope, const ::onnx::NodeProto& node, int64_t opset, graph::Graph* g,
                     std::vector<Value*> inputs)
    : converter_(converter), scope_(scope), node_(node), opset_(opset), g_(g), inputs_(std::move(inputs)) {}

void OpContext::Fail(const std::string& message) const {
  Throw("ONNX node '" + NodeLabel(node_) + "' (" + node_.op_type() + ", opset " + std::to_string(opset_) +
        "): " + message);
}

graph::Node OpContext::In(int i) {
  if (!Has(i)) Fail("input " + std::to_string(i) + " is required");
  return converter_.NodeOf(*inputs_[static_cast<size_t>(i)], g_);
}

graph::Node OpContext::InOr(int i) { return Has(i) ? In(i) : graph::Node(); }

std::vector<graph::Node> OpContext::SeqIn(int i) {
  if (!Has(i)) Fail("input " + std::to_string(i) + " (a sequence) is required");
  const Value& v = *inputs_[static_cast<size_t>(i)];
  if (!v.sequence) Fail("input " + std::to_string(i) + " must be a sequence");
  return *v.sequence;
}

bool OpContext::IsConstIn(int i) const { return Has(i) && inputs_[static_cast<size_t>(i)]->constant.Ok(); }

tensors::Tensor OpContext::ConstIn(int i, const std::string& what) {
  if (!Has(i)) Fail("input " + std::to_string(i) + " (" + what + ") is required");
  Value& v = *inputs_[static_cast<size_t>(i)];
  if (v.constant.Ok()) return v.constant;
  const std::string head = "ONNX node '" + NodeLabel(node_) + "' (" + node_.op_type() + ", opset " +
                           std::to_string(opset_) + "): input " + std::to_string(i) + " (" + what + ", '" +
                           node_.input(i) + "') must be known when the graph is traced";
  if (v.from_inputs.empty()) {
    Throw(head + ", but it is computed from data at run time, which is not supported (Kiln's shapes are static)");
  }
  std::string names;
  for (const auto& n : v.from_inputs) names += (names.empty() ? "" : ", ") + n;
  throw NeedsStaticError(head + "; it is computed from the graph inputs " + names +
                             ": pass them in Call's static_inputs (onnx::Exec does so itself)",
                         v.from_inputs);
}

std::vector<int64_t> OpContext::Ints(int i, const std::string& what) {
  const tensors::Tensor t = ConstIn(i, what);
  if (!dtypes::IsInteger(t.DType())) Fail(what + " must be integers, got " + t.Shape().ToString());
  return ToInt64s(t);
}

std::vector<double> OpContext::Doubles(int i, const std::string& what) {
  const tensors::Tensor t = ConstIn(i, what);
  std::vector<double> v(static_cast<size_t>(t.Size()));
  if (dtypes::IsComplex(t.DType()) || t.DType() == dtypes::Bool) Fail(what + " must be real numbers");
  DispatchDType(t.DType(), [&]<typename T>(T) {
    auto flat = t.Flat<T>();
    for (size_t k = 0; k < v.size(); ++k) v[k] = static_cast<double>(flat[k]);
  });
  return v;
}

shapes::Shape OpContext::ShapeOf(int i) const {
  if (!Has(i)) Fail("input " + std::to_string(i) + " is required");
  const Value& v = *inputs_[static_cast<size_t>(i)];
  if (v.node.Ok() && v.node.Alive()) return v.node.Shape();
  return v.constant.Shape();
}

void OpContext::CheckAttributesRead() const {
  for (const auto& a : node_.attribute()) {
    // consumed_inputs (opsets 1-6): an in-place hint that never changes a result.
    if (a.name() == "consumed_inputs") continue;
    if (!read_attrs_.count(a.name())) Fail("attribute '" + a.name() + "' is not supported");
  }
}

const ::onnx::AttributeProto* OpContext::Attr(const std::string& name) const {
  read_attrs_.insert(name);
  for (const auto& a : node_.attribute()) {
    if (a.name() == name) return &a;
  }
  return nullptr;
}

int64_t OpContext::Int(const std::string& name, int64_t def) const {
  const auto* a = Attr(name);
  if (!a) return def;
  if (a->type() != ::onnx::AttributeProto::INT) Fail("attribute " + name + " must be an int");
  return a->i();
}

float OpContext::Float(const std::string& name, float def) const {
  const auto* a = Attr(name);
  if (!a) return def;
  if (a->type() != ::onnx::AttributeProto::FLOAT) Fail("attribute " + name + " must be a float");
  return a->f();
}

std::string OpContext::Str(const std::string& name, const std::string& def) const {
  const auto* a = Attr(name);
  if (!a) return def;
  if (a->type() != ::onnx::AttributeProto::STRING) Fail("attribute " + name + " must be a string");
  return a->s();
}

std::vector<int64_t> OpContext::IntsAttr(const std::string& name, std::vector<int64_t> def) const {
  const auto* a = Attr(name);
  if (!a) return def;
  if (a->type() != ::onnx::AttributeProto::INTS) Fail("attribute " + name + " must be a list of ints");
  return {a->ints().begin(), a->ints().end()};
}

std::vector<float> OpContext::Floats(const std::string& name, std::vector<float> def) const {
  const auto* a = Attr(name);
  if (!a) return def;
  if (a->type() != ::onnx::AttributeProto::FLOATS) Fail("attribute " + name + " must be a list of floats");
  return {a->floats().begin(), a->floats().end()};
}

std::vector<std::string> OpContext::Strings(const std::string& name) const {
  const auto* a = Attr(name);
  if (!a) return {};
  if (a->type() != ::onnx::AttributeProto::STRINGS) Fail("attribute " + name + " must be a list of strings");
  return {a->strings().begin(), a->strings().end()};
}

tensors::Tensor OpContext::TensorAttr(const std::string& name) const {
  const auto* a = Attr(name);
  if (!a || a->type() != ::onnx::AttributeProto::TENSOR) Fail("attribute " + name + " must be a tensor");
  return TensorFromProto(a->t(), converter_.ExternalDataDir(), "attribute " + name);
}

const ::onnx::GraphProto& OpContext::GraphAttr(const std::string& name) const {
  const auto* a = Attr(name);
  if (!a || !a->has_g()) Fail("attribute " + name + " (a graph) is required");
  return a->g();
}

void CheckTraceTimeSize(const OpContext& c, int64_t elements, dtypes::DType dtype, const std::string& what) {
  if (elements < 0 || elements > kMaxFoldBytes / static_cast<int64_t>(dtypes::SizeOf(dtype))) {
    c.Fail(what + " of " + std::to_string(elements) + " elements computed when tracing is not supported (at most " +
           std::to_string(kMaxFoldBytes) + " bytes)");
  }
}

int64_t ToIndex(const OpContext& c, double v, const std::string& what) {
  constexpr double kLimit = 9007199254740992.0;  // 2^53
  if (!std::isfinite(v) || v > kLimit || v < -kLimit) c.Fail(what + " " + std::to_string(v) + " is not a usable integer");
  return static_cast<int64_t>(v);
}

int64_t CheckedMul(const OpContext& c, int64_t a, int64_t b) {
  int64_t r;
  if (__builtin_mul_overflow(a, b, &r)) c.Fail("sizes " + std::to_string(a) + " x " + std::to_string(b) + " overflow");
  return r;
}

void CheckPositive(const OpContext& c, const std::vector<int64_t>& values, const std::string& name) {
  for (int64_t v : values) {
    if (v < 1 || v > (int64_t{1} << 32)) c.Fail(name + " must be in [1, 2^32], got " + std::to_string(v));
  }
}

void CheckPadding(const OpContext& c, const std::vector<int64_t>& values, const std::string& name) {
  for (int64_t v : values) {
    if (v < -(int64_t{1} << 40) || v > (int64_t{1} << 40)) c.Fail(name + " " + std::to_string(v) + " is out of range");
  }
}

int NormAxis(const OpContext& c, int64_t axis, int rank) {
  if (rank <= 0 || axis < -rank || axis >= rank) {
    c.Fail("axis " + std::to_string(axis) + " is out of range for rank " + std::to_string(rank));
  }
  return static_cast<int>(axis < 0 ? axis + rank : axis);
}

std::vector<int64_t> BroadcastDims(const OpContext& c, const std::vector<int64_t>& a, const std::vector<int64_t>& b) {
  const size_t r = std::max(a.size(), b.size());
  std::vector<int64_t> out(r);
  for (size_t i = 0; i < r; ++i) {
    const int64_t da = i < r - a.size() ? 1 : a[i - (r - a.size())];
    const int64_t db = i < r - b.size() ? 1 : b[i - (r - b.size())];
    if (da != db && da != 1 && db != 1) {
      c.Fail("shapes " + shapes::Shape(dtypes::Float32, a).ToString() + " and " +
             shapes::Shape(dtypes::Float32, b).ToString() + " do not broadcast");
    }
    out[i] = da == 1 ? db : da;
  }
  return out;
}

// ------------------------------------------------------------- Converter.

int64_t Converter::OpsetOf(const std::string& domain) const {
  auto it = model_.opsets.find(IsDefaultDomain(domain) ? "" : domain);
  return it == model_.opsets.end() ? -1 : it->second;
}

const std::filesystem::path& Converter::ExternalDataDir() const { return model_.dir; }

graph::Node Converter::NodeOf(Value& v, graph::Graph* g) {
  if (v.sequence) Throw("ONNX import: a sequence is used where a tensor is expected (sequences are not supported there)");
  if (v.node.Ok() && v.node.Alive() && g->IsWithin(v.node.Graph())) return v.node;
  if (v.is_variable) Throw("ONNX import: a variable's node is not usable here");
  if (!v.constant.Ok()) Throw("ONNX import: a value's node is not usable in this graph");
  v.node = graph::Const(g, v.constant);
  return v.node;
}

void Converter::ConvertNode(const ::onnx::NodeProto& node, int index, Scope& scope, graph::Graph* g) {
  const auto& registry = Registry();
  auto it = registry.find(RegistryKey(node));
  const int64_t opset = OpsetOf(IsDefaultDomain(node.domain()) ? "" : node.domain());
  if (it == registry.end()) {
    Throw("ONNX node '" + NodeLabel(node) + "' (#" + std::to_string(index) + ", " + node.op_type() + ", opset " +
          std::to_string(opset) + "): operator not supported");
  }
  std::vector<Value*> inputs;
  bool all_constant = true;
  std::set<std::string> from_inputs;
  for (const auto& name : node.input()) {
    if (name.empty()) {
      inputs.push_back(nullptr);
      continue;
    }
    Value* v = scope.Find(name);
    if (!v) Throw("ONNX node '" + NodeLabel(node) + "' (" + node.op_type() + "): input '" + name + "' is not defined");
    inputs.push_back(v);
    all_constant = all_constant && v->IsConstant();
    from_inputs.insert(v->from_inputs.begin(), v->from_inputs.end());
  }
  while (!inputs.empty() && inputs.back() == nullptr) inputs.pop_back();
  std::vector<Out> outs;
  bool has_subgraph = false;
  for (const auto& a : node.attribute()) has_subgraph = has_subgraph || a.has_g() || a.graphs_size() > 0;
  bool folded = false;
  if (all_constant && it->second.foldable && !has_subgraph) {
    // Every input is known: compute the outputs now, on the CPU, so that
    // operators downstream (Reshape's shape, ...) can read them. Outputs
    // too large to be shape-like values stay graph computations.
    bool small = true;
    auto exec = graph::Compile(FoldBackend(), [&](graph::Graph* fg) {
      std::vector<Value> copies;
      copies.reserve(inputs.size());
      std::vector<Value*> ptrs;
      for (Value* v : inputs) {
        if (!v) {
          ptrs.push_back(nullptr);
          continue;
        }
        copies.push_back(Value{.constant = v->constant});
        ptrs.push_back(&copies.back());
      }
      OpContext c(*this, scope, node, opset, fg, ptrs);
      outs = it->second.fn(c);
      c.CheckAttributesRead();
      std::vector<graph::Node> nodes;
      for (auto& o : outs) {
        nodes.push_back(o.node.Ok() ? o.node : graph::Const(fg, o.constant));
        small = small && nodes.back().Shape().ByteSize() <= kMaxFoldBytes;
      }
      return nodes;
    }, "onnx_fold");
    if (small) {
      std::vector<tensors::Tensor> values = exec.CallVector({});
      for (size_t k = 0; k < outs.size(); ++k) outs[k] = Out(values[k]);
      folded = true;
    }
  }
  if (!folded) {
    OpContext c(*this, scope, node, opset, g, inputs);
    outs = it->second.fn(c);
    c.CheckAttributesRead();
  }
  // No dimension beyond 2^40: the converters' (and the ops') size
  // arithmetic then cannot overflow, whatever a file asks for.
  for (const Out& o : outs) {
    const shapes::Shape* s = o.node.Ok() ? &o.node.Shape() : o.constant.Ok() ? &o.constant.Shape() : nullptr;
    for (int64_t d : s ? s->Dims() : std::vector<int64_t>{}) {
      if (d > kMaxDimension) {
        Throw("ONNX node '" + NodeLabel(node) + "' (" + node.op_type() + ", opset " + std::to_string(opset) +
              "): an output of " + s->ToString() + " has a dimension over 2^40, which is not supported");
      }
    }
  }
  for (int k = 0; k < node.output_size(); ++k) {
    const std::string& name = node.output(k);
    if (name.empty()) continue;
    if (static_cast<size_t>(k) >= outs.size()) {
      Throw("ONNX node '" + NodeLabel(node) + "' (" + node.op_type() + ", opset " + std::to_string(opset) +
            "): output " + std::to_string(k) + " ('" + name + "') is not supported");
    }
    Value v;
    v.node = outs[static_cast<size_t>(k)].node;
    v.constant = outs[static_cast<size_t>(k)].constant;
    v.sequence = outs[static_cast<size_t>(k)].sequence;
    v.from_inputs = from_inputs;
    if (v.constant.Ok()) v.from_inputs.clear();
    scope.values[name] = std::move(v);
  }
}

std::vector<Value*> Converter::ConvertGraph(const ::onnx::GraphProto& graph, Scope& scope, graph::Graph* g) {
  for (int k = 0; k < graph.node_size(); ++k) ConvertNode(graph.node(k), k, scope, g);
  std::vector<Value*> outs;
  for (const auto& o : graph.output()) {
    Value* v = scope.Find(o.name());
    if (!v) Throw("ONNX import: graph output '" + o.name() + "' is never computed");
    outs.push_back(v);
  }
  return outs;
}

}  // namespace internal

// ------------------------------------------------------------------ Model.

std::string Model::Impl::VariableName(const std::string& initializer) const {
  if (options.variable_name) return options.variable_name(initializer);
  std::string out;
  std::string part;
  auto flush = [&] {
    if (!part.empty()) out += "/" + part;
    part.clear();
  };
  for (char ch : initializer) {
    if (ch == '.' || ch == '/' || ch == ':') flush();
    else part += ch;
  }
  flush();
  return out.empty() ? "/initializer" : out;
}

std::vector<std::string> SupportedOperators() {
  std::vector<std::string> names;
  for (const auto& [key, entry] : internal::Registry()) {
    names.push_back(key.starts_with("training:") ? std::string(internal::kTrainingDomain) + ":" + key.substr(9) : key);
  }
  std::sort(names.begin(), names.end());
  return names;
}

Model Model::Import(const std::filesystem::path& path, ImportOptions options) {
  std::ifstream in(path, std::ios::binary);
  if (!in) Throw("onnx::Model::Import: cannot open " + path.string());
  std::stringstream ss;
  ss << in.rdbuf();
  return Model(internal::Parse(ss.str(), path.parent_path(), std::move(options), "ONNX model " + path.string()));
}

Model Model::ImportBytes(std::string_view bytes, const std::filesystem::path& external_data_dir,
                         ImportOptions options) {
  return Model(internal::Parse(bytes, external_data_dir, std::move(options), "ONNX model (bytes)"));
}

const std::vector<ValueInfo>& Model::Inputs() const { return impl_->inputs; }
const std::vector<ValueInfo>& Model::Outputs() const { return impl_->outputs; }
int64_t Model::Opset(const std::string& domain) const {
  auto it = impl_->opsets.find(domain == "ai.onnx" ? "" : domain);
  return it == impl_->opsets.end() ? -1 : it->second;
}
const std::map<std::string, std::string>& Model::Metadata() const { return impl_->metadata; }
std::string Model::Producer() const {
  return impl_->proto.producer_name() +
         (impl_->proto.producer_version().empty() ? "" : " " + impl_->proto.producer_version());
}
int64_t Model::IrVersion() const { return impl_->proto.ir_version(); }
std::string Model::GraphName() const { return impl_->proto.graph().name(); }
std::vector<std::string> Model::Initializers() const { return impl_->initializer_order; }
std::string Model::VariableOf(const std::string& initializer) const {
  if (!impl_->initializers.count(initializer)) Throw(impl_->description + ": no initializer '" + initializer + "'");
  return impl_->VariableName(initializer);
}

namespace {

// The context and name of an initializer's variable.
std::pair<context::Context, std::string> VariablePlace(const Model::Impl& m, context::Context ctx,
                                                       const std::string& initializer) {
  const std::string path = m.VariableName(initializer);
  std::vector<std::string> parts;
  std::string part;
  for (char ch : path) {
    if (ch == '/') {
      if (!part.empty()) parts.push_back(part);
      part.clear();
    } else {
      part += ch;
    }
  }
  if (!part.empty()) parts.push_back(part);
  if (parts.empty()) Throw(m.description + ": initializer '" + initializer + "' maps to an empty variable name");
  for (size_t i = 0; i + 1 < parts.size(); ++i) ctx = ctx.In(parts[i]);
  return {ctx, parts.back()};
}

bool IsTrainable(const Model::Impl& m, const tensors::Tensor& t) {
  return m.options.trainable && dtypes::IsFloatOrComplex(t.DType());
}

context::Variable* VariableFor(const Model::Impl& m, context::Context ctx, const std::string& initializer) {
  auto [scope, name] = VariablePlace(m, std::move(ctx), initializer);
  if (context::Variable* v = scope.GetVariable(name)) return v;
  return scope.VariableWithValue(name, m.initializers.at(initializer));
}

}  // namespace

void Model::CreateVariables(context::Context ctx) const {
  for (const auto& name : impl_->initializer_order) {
    if (IsTrainable(*impl_, impl_->initializers.at(name))) VariableFor(*impl_, ctx, name);
  }
}

std::vector<graph::Node> Model::Call(context::Context ctx, const std::vector<graph::Node>& inputs,
                                     const std::map<std::string, tensors::Tensor>& static_inputs,
                                     graph::Graph* graph_for_constants) const {
  const Impl& m = *impl_;
  if (inputs.size() != m.inputs.size()) {
    Throw(m.description + ": Call with " + std::to_string(inputs.size()) + " inputs, the model has " +
          std::to_string(m.inputs.size()));
  }
  for (const auto& entry : static_inputs) {
    const std::string& name = entry.first;
    if (std::none_of(m.inputs.begin(), m.inputs.end(), [&](const ValueInfo& v) { return v.name == name; })) {
      Throw(m.description + ": static input '" + name + "' is not an input of the model");
    }
  }
  graph::Graph* g = nullptr;
  internal::Converter converter(m);
  internal::Scope scope;
  for (size_t i = 0; i < inputs.size(); ++i) {
    const ValueInfo& info = m.inputs[i];
    internal::Value v;
    auto st = static_inputs.find(info.name);
    shapes::Shape shape;
    if (inputs[i].Ok() && g == nullptr) g = inputs[i].Graph();
    if (st != static_inputs.end()) {
      v.constant = st->second;
      shape = st->second.Shape();
    } else {
      if (!inputs[i].Ok()) Throw(m.description + ": input '" + info.name + "' is an empty Node (and not static)");
      v.node = inputs[i];
      v.from_inputs = {info.name};
      shape = inputs[i].Shape();
    }
    if (info.dtype == dtypes::Invalid) {
      Throw(m.description + ": input '" + info.name + "' has type " + info.type + ", which Kiln does not support");
    }
    for (int64_t d : shape.Dims()) {
      if (d > internal::kMaxDimension) Throw(m.description + ": input '" + info.name + "' has a dimension over 2^40");
    }
    if (shape.DType() != info.dtype) {
      Throw(m.description + ": input '" + info.name + "' must be " + info.type + ", got " + shape.ToString());
    }
    if (info.has_shape) {
      bool ok = shape.Rank() == static_cast<int>(info.dims.size());
      for (size_t d = 0; ok && d < info.dims.size(); ++d) ok = info.dims[d] < 0 || info.dims[d] == shape.Dims()[d];
      if (!ok) {
        std::string want = "[";
        for (size_t d = 0; d < info.dims.size(); ++d) {
          want += (d ? ", " : "") + (info.dims[d] >= 0 ? std::to_string(info.dims[d])
                                                       : (info.dim_names[d].empty() ? "?" : info.dim_names[d]));
        }
        Throw(m.description + ": input '" + info.name + "' must have dimensions " + want + "], got " +
              shape.ToString());
      }
    }
    scope.values[info.name] = std::move(v);
  }
  if (g == nullptr) g = graph_for_constants;
  if (g == nullptr) Throw(m.description + ": Call needs an input Node or the graph to build in");
  for (const auto& name : m.initializer_order) {
    if (scope.values.count(name)) continue;  // an input overrides its initializer's default
    internal::Value v;
    const tensors::Tensor& t = m.initializers.at(name);
    v.constant = t;
    if (IsTrainable(m, t)) {
      v.is_variable = true;
      v.node = VariableFor(m, ctx, name)->ValueGraph(g);
    }
    scope.values[name] = std::move(v);
  }
  std::vector<internal::Value*> outs = converter.ConvertGraph(m.proto.graph(), scope, g);
  std::vector<graph::Node> result;
  for (internal::Value* v : outs) result.push_back(converter.NodeOf(*v, g));
  return result;
}

// ------------------------------------------------------------------- Exec.

struct Exec::State {
  State(Model m, std::shared_ptr<backends::Backend> b, context::Context c)
      : model(std::move(m)), backend(std::move(b)), ctx(std::move(c)) {}
  Model model;
  std::shared_ptr<backends::Backend> backend;
  context::Context ctx;
  std::mutex mu;
  std::set<std::string> static_names;
  std::map<std::string, std::shared_ptr<context::internal::ContextExecCore>> cores;  // by static values
};

Exec Model::NewExec(std::shared_ptr<backends::Backend> backend, context::Context ctx) const {
  auto s = std::make_shared<Exec::State>(*this, std::move(backend), std::move(ctx));
  return Exec(std::move(s));
}

std::vector<std::string> Exec::StaticInputs() const {
  std::lock_guard<std::mutex> lock(state_->mu);
  return {state_->static_names.begin(), state_->static_names.end()};
}

std::vector<tensors::Tensor> Exec::Call(const std::vector<tensors::Tensor>& inputs) {
  State& s = *state_;
  const auto& infos = s.model.Inputs();
  if (inputs.size() != infos.size()) {
    Throw(s.model.impl_->description + ": Exec::Call with " + std::to_string(inputs.size()) +
          " inputs, the model has " + std::to_string(infos.size()));
  }
  for (size_t attempt = 0; attempt <= infos.size(); ++attempt) {
    std::set<std::string> statics;
    {
      std::lock_guard<std::mutex> lock(s.mu);
      statics = s.static_names;
    }
    std::string key;
    std::map<std::string, tensors::Tensor> static_values;
    std::vector<tensors::Tensor> args;
    std::vector<size_t> arg_index;  // model input of each argument
    for (size_t i = 0; i < infos.size(); ++i) {
      if (!inputs[i].Ok()) Throw(s.model.impl_->description + ": input '" + infos[i].name + "' is an empty Tensor");
      if (statics.count(infos[i].name)) {
        tensors::Tensor host = inputs[i];
        const auto* bytes = static_cast<const char*>(host.HostData());
        key += infos[i].name + host.Shape().ToString() + ":" +
               std::string(bytes, static_cast<size_t>(host.Shape().ByteSize())) + "|";
        static_values[infos[i].name] = host;
      } else {
        args.push_back(inputs[i]);
        arg_index.push_back(i);
      }
    }
    std::shared_ptr<context::internal::ContextExecCore> core;
    {
      std::lock_guard<std::mutex> lock(s.mu);
      auto found = s.cores.find(key);
      if (found != s.cores.end()) {
        core = found->second;
      } else {
        if (s.cores.size() >= 64) s.cores.clear();  // static values that keep changing: a bounded cache
        core = std::make_shared<context::internal::ContextExecCore>(s.backend, s.ctx, "onnx");
        s.cores[key] = core;
      }
    }
    // A graph whose inputs are all static still needs a parameter to name
    // the graph being traced: a dummy scalar.
    const bool dummy = args.empty();
    if (dummy) args.push_back(tensors::FromValue(int32_t{0}));
    std::set<std::string> needed;
    const Model& model = s.model;
    context::internal::ContextBuilder builder = [&](context::Context ctx, const std::vector<graph::Node>& params) {
      std::vector<graph::Node> nodes(infos.size());
      for (size_t k = 0; k < arg_index.size(); ++k) nodes[arg_index[k]] = params[k];
      try {
        return model.Call(std::move(ctx), nodes, static_values, params.at(0).Graph());
      } catch (const internal::NeedsStaticError& e) {
        needed = e.inputs;
        throw;
      }
    };
    try {
      return core->Call(std::move(args), builder);
    } catch (const Error&) {
      // Retry when this attempt lacked a static input the trace asked for
      // (another thread may have added it meanwhile).
      bool retry = false;
      {
        std::lock_guard<std::mutex> lock(s.mu);
        for (const auto& n : needed) {
          s.static_names.insert(n);
          retry = retry || !statics.count(n);
        }
      }
      if (!retry) throw;
    }
  }
  Throw(s.model.impl_->description + ": Exec::Call could not determine the inputs needed at trace time");
}

}  // namespace kiln::onnx
