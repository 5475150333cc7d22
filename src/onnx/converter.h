// Copyright 2026 The Kiln Authors.
// The machinery shared by the ONNX operator converters: values (graph nodes
// or tensors known at trace time), the per-node context a converter reads its
// inputs and attributes from, and the registry of converters.
#pragma once

#include <onnx/onnx_pb.h>

#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "kiln/context/context.h"
#include "kiln/core/error.h"
#include "kiln/core/tensors.h"
#include "kiln/graph/graph.h"
#include "kiln/onnx/onnx.h"

namespace kiln::onnx::internal {

/// Maps an ONNX TensorProto.DataType to a Kiln dtype (Invalid when Kiln has none).
dtypes::DType DTypeFromOnnx(int32_t elem_type);
/// ONNX's name of a TensorProto.DataType ("float", "int64", "string").
std::string OnnxTypeName(int32_t elem_type);
/// "tensor(float)", "seq(tensor(int64))", ... for a TypeProto.
std::string TypeText(const ::onnx::TypeProto& type);
/// A TensorProto's value; `what` names it in errors.
tensors::Tensor TensorFromProto(const ::onnx::TensorProto& proto, const std::filesystem::path& external_data_dir,
                                const std::string& what);

/// One ONNX value while a graph is converted.
struct Value {
  /// The value in the graph being traced (may be empty for a constant not
  /// yet used as a node; see OpContext::In).
  graph::Node node;
  /// The value, when known at trace time (constants, initializers, shapes).
  tensors::Tensor constant;
  /// An initializer held in a variable: `constant` is its initial value,
  /// readable where an operator needs a value at trace time, but `node`
  /// (the variable) is what computations use and nothing is folded over it.
  bool is_variable = false;
  /// The graph inputs it was computed from (for the error, and for Exec's
  /// retry, when an operator needs it at trace time).
  std::set<std::string> from_inputs;
  /// An ONNX sequence: its elements, a list known at trace time (then node
  /// and constant are empty).
  std::shared_ptr<std::vector<graph::Node>> sequence;

  bool IsConstant() const { return constant.Ok() && !is_variable; }
};

/// Thrown when an operator needs, at trace time, a value computed from graph
/// inputs: Exec catches it, makes those inputs static and traces again.
class NeedsStaticError : public Error {
 public:
  NeedsStaticError(const std::string& message, std::set<std::string> inputs)
      : Error(message), inputs(std::move(inputs)) {}
  std::set<std::string> inputs;
};

class Converter;

/// The values visible while converting one graph (a sub-graph sees its
/// enclosing graphs' values too).
struct Scope {
  Scope* parent = nullptr;
  std::unordered_map<std::string, Value> values;
  Value* Find(const std::string& name);
};

/// What a converter sees of the node it converts.
class OpContext {
 public:
  OpContext(Converter& converter, Scope& scope, const ::onnx::NodeProto& node, int64_t opset, graph::Graph* g,
            std::vector<Value*> inputs);

  const ::onnx::NodeProto& Proto() const { return node_; }
  const std::string& OpType() const { return node_.op_type(); }
  int64_t Opset() const { return opset_; }
  graph::Graph* G() const { return g_; }
  Converter& Conv() const { return converter_; }
  Scope& CurrentScope() const { return scope_; }

  /// The number of input slots (including absent optional ones).
  int NumInputs() const { return static_cast<int>(inputs_.size()); }
  /// Whether input `i` is given (optional inputs may be absent or "").
  bool Has(int i) const { return i < NumInputs() && inputs_[static_cast<size_t>(i)] != nullptr; }
  /// Input `i` as a node of the graph being traced.
  graph::Node In(int i);
  /// Input `i` as a node, or an empty Node when absent.
  graph::Node InOr(int i);
  /// Input i's value, which must be known at trace time; `what` names it.
  tensors::Tensor ConstIn(int i, const std::string& what);
  /// ConstIn as int64 values (any integer dtype).
  std::vector<int64_t> Ints(int i, const std::string& what);
  /// ConstIn as doubles (any real dtype).
  std::vector<double> Doubles(int i, const std::string& what);
  /// Input i, a sequence, as its elements.
  std::vector<graph::Node> SeqIn(int i);
  /// Whether input i is known at trace time.
  bool IsConstIn(int i) const;
  /// The shape of input i (without materializing a node).
  shapes::Shape ShapeOf(int i) const;
  dtypes::DType DTypeOf(int i) const { return ShapeOf(i).DType(); }
  int RankOf(int i) const { return ShapeOf(i).Rank(); }

  /// Attributes (defaults when absent).
  bool HasAttr(const std::string& name) const { return Attr(name) != nullptr; }
  int64_t Int(const std::string& name, int64_t def) const;
  float Float(const std::string& name, float def) const;
  std::string Str(const std::string& name, const std::string& def) const;
  std::vector<int64_t> IntsAttr(const std::string& name, std::vector<int64_t> def = {}) const;
  std::vector<float> Floats(const std::string& name, std::vector<float> def = {}) const;
  std::vector<std::string> Strings(const std::string& name) const;
  const ::onnx::AttributeProto* Attr(const std::string& name) const;
  /// A tensor attribute's value.
  tensors::Tensor TensorAttr(const std::string& name) const;
  /// A graph attribute (If's branches, Loop's body); throws when absent.
  const ::onnx::GraphProto& GraphAttr(const std::string& name) const;

  /// Marks attributes as understood without reading them (they do not
  /// change the result in the configuration converted).
  void Ignore(std::initializer_list<const char*> names) const {
    for (const char* n : names) read_attrs_.insert(n);
  }
  /// Fails naming the first attribute of the node the converter never
  /// looked at: an attribute it does not know could change the result.
  void CheckAttributesRead() const;

  /// Throws the importer's error for this node: "ONNX node 'n' (Op, opset
  /// 13): <message>".
  [[noreturn]] void Fail(const std::string& message) const;

 private:
  Converter& converter_;
  Scope& scope_;
  const ::onnx::NodeProto& node_;
  int64_t opset_;
  graph::Graph* g_;
  std::vector<Value*> inputs_;
  mutable std::set<std::string> read_attrs_;  // the attributes the converter looked at
};

/// A converter's result for one output: a node, or a value known at trace time.
struct Out {
  Out(graph::Node n) : node(std::move(n)) {}  // NOLINT: implicit by design
  Out(tensors::Tensor t) : constant(std::move(t)) {}  // NOLINT
  Out(std::vector<graph::Node> elements)  // NOLINT: a sequence
      : sequence(std::make_shared<std::vector<graph::Node>>(std::move(elements))) {}
  graph::Node node;
  tensors::Tensor constant;
  std::shared_ptr<std::vector<graph::Node>> sequence;
};

using ConvertFn = std::function<std::vector<Out>(OpContext&)>;

/// How an operator is converted.
struct OpEntry {
  ConvertFn fn;
  /// When all its inputs are known at trace time, its outputs are computed
  /// at trace time too (false for random ops).
  bool foldable = true;
};

/// The registry: operator type (default domain or the training domain) -> entry.
const std::map<std::string, OpEntry>& Registry();
/// Adds converters; each ops_*.cc calls it from a registration function.
void RegisterOp(const std::string& op_type, ConvertFn fn, bool foldable = true);

// Registration functions of the ops_*.cc files, called once by Registry().
void RegisterElementwiseOps();
void RegisterShapeOps();
void RegisterNnOps();
void RegisterReduceOps();
void RegisterMiscOps();
void RegisterRecurrentOps();
void RegisterQuantOps();
void RegisterSignalOps();
void RegisterSamplingOps();
void RegisterSequenceOps();
void RegisterTraceTimeOps();

/// Converts graphs; one per Model::Call.
class Converter {
 public:
  explicit Converter(const Model::Impl& model) : model_(model) {}

  /// Converts the nodes of `graph` with `scope` holding its inputs (and
  /// enclosing values); returns its outputs' values.
  std::vector<Value*> ConvertGraph(const ::onnx::GraphProto& graph, Scope& scope, graph::Graph* g);
  /// The opset of a domain.
  int64_t OpsetOf(const std::string& domain) const;
  /// A node for `v` in graph g (materializing a constant once).
  graph::Node NodeOf(Value& v, graph::Graph* g);
  const std::filesystem::path& ExternalDataDir() const;

 private:
  void ConvertNode(const ::onnx::NodeProto& node, int index, Scope& scope, graph::Graph* g);
  const Model::Impl& model_;
};

/// The largest value computed at trace time (folded, or made by a
/// converter on the host): shape-like values are far smaller; larger ones
/// stay graph computations, or are an error where a converter needs them.
inline constexpr int64_t kMaxFoldBytes = int64_t{16} << 20;
/// The largest dimension of a value in an imported graph (checked after
/// every node), so that size arithmetic cannot overflow.
inline constexpr int64_t kMaxDimension = int64_t{1} << 40;
/// Fails unless `elements` values of `dtype` fit kMaxFoldBytes.
void CheckTraceTimeSize(const OpContext& c, int64_t elements, dtypes::DType dtype, const std::string& what);

/// `v` as an integer (a size or an index computed from float inputs);
/// fails unless it is finite and within +-2^53.
int64_t ToIndex(const OpContext& c, double v, const std::string& what);

/// a * b, failing (not wrapping) when it overflows int64.
int64_t CheckedMul(const OpContext& c, int64_t a, int64_t b);

/// Fails unless every value of `values` (an attribute `name`) is in [1, 2^32].
void CheckPositive(const OpContext& c, const std::vector<int64_t>& values, const std::string& name);

/// Fails unless every value of `values` (pads, output_padding) is within +-2^40.
void CheckPadding(const OpContext& c, const std::vector<int64_t>& values, const std::string& name);

/// The convolution of ONNX's Conv, ConvInteger and QLinearConv on NCHW input
/// x and [M, C / group, k...] kernel w: strides, dilations, pads or auto_pad,
/// group, checked (ops_nn.cc).
ir::ConvAttrs ConvAttrsOf(const OpContext& c, graph::Node x, graph::Node w);

/// Normalizes an ONNX axis (negative counts from the end) for rank `rank`.
int NormAxis(const OpContext& c, int64_t axis, int rank);
/// numpy-broadcast of two shapes' dims (ONNX multidirectional broadcasting).
std::vector<int64_t> BroadcastDims(const OpContext& c, const std::vector<int64_t>& a, const std::vector<int64_t>& b);

}  // namespace kiln::onnx::internal
