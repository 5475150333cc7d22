// Copyright 2026 The Kiln Authors.
// Importing ONNX models: an ONNX file becomes an ordinary Kiln graph function
// whose weights live in a context, so it can be run, fine-tuned with the
// Trainer, checkpointed and exported (io::safetensors::SaveContext).
//
//   auto model = onnx::Model::Import("resnet.onnx");
//   auto run = model.NewExec(backends::New(), ctx);
//   std::vector<tensors::Tensor> outputs = run.Call({images});
//
// or, inside any traced function (a Trainer's model function):
//   graph::Node logits = model.Call(ctx, {images})[0];
//
// The file is parsed with the ONNX project's own protobuf classes (Debian's
// libonnx-dev); nothing is hand-parsed. Each ONNX node becomes Kiln ops, with
// ONNX's broadcasting rules and attribute defaults for the node's opset.
// Float initializers become context variables (trainable unless
// ImportOptions says otherwise); the others are constants. Dimensions left
// dynamic in the file take the call's shapes: the graph is traced (and, by
// Exec, compiled) once per input-shape signature. An operator, attribute or
// type Kiln cannot express is a kiln::Error naming the node, the operator,
// its opset and what is missing, never a silently different result.
#pragma once

#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "kiln/backends/backend.h"
#include "kiln/context/context.h"
#include "kiln/core/dtypes.h"
#include "kiln/core/tensors.h"
#include "kiln/graph/graph.h"

namespace kiln::onnx {

/// A graph input or output of a model.
struct ValueInfo {
  std::string name;
  /// ONNX's type as text: "tensor(float)", "seq(tensor(int64))", "optional(...)".
  std::string type;
  /// The element dtype of a tensor type Kiln has; Invalid otherwise (strings,
  /// sequences, maps, optionals).
  dtypes::DType dtype = dtypes::Invalid;
  /// Whether the file gives a shape (a rank); dims are then valid.
  bool has_shape = false;
  /// One per axis: the size, or -1 where the file leaves it dynamic.
  std::vector<int64_t> dims;
  /// One per axis: the symbolic name of a dynamic axis ("batch"), else "".
  std::vector<std::string> dim_names;
};

/// How Import treats a model's initializers (its weights).
struct ImportOptions {
  /// Float initializers become trainable context variables (the default),
  /// or, when false, constants folded into the graph (inference only).
  bool trainable = true;
  /// The variable (scope and name, relative to the context's scope) of an
  /// initializer. Default: dots and slashes become scopes,
  /// "layer1.0.conv.weight" -> "/layer1/0/conv/weight".
  std::function<std::string(const std::string& initializer)> variable_name;
};

class Exec;

/// An imported ONNX model. Cheap to copy (copies share the parsed model).
class Model {
 public:
  /// Reads and checks `path`; external data files are looked up next to it.
  /// A file that cannot be read or parsed, or whose graph is malformed, is a
  /// kiln::Error naming it.
  static Model Import(const std::filesystem::path& path, ImportOptions options = {});
  /// Parses a serialized ModelProto; external data files are looked up in
  /// `external_data_dir` (none allowed when it is empty).
  static Model ImportBytes(std::string_view bytes, const std::filesystem::path& external_data_dir = {},
                           ImportOptions options = {});

  /// The graph inputs the caller provides (inputs with an initializer, i.e.
  /// weights, are not listed), in the file's order.
  const std::vector<ValueInfo>& Inputs() const;
  /// The graph outputs, in the file's order.
  const std::vector<ValueInfo>& Outputs() const;
  /// The opset version imported for `domain` ("" is the default ONNX
  /// domain), or -1 when the model does not import it.
  int64_t Opset(const std::string& domain = "") const;
  /// The model's metadata_props, producer ("pytorch 2.1"), IR version and graph name.
  const std::map<std::string, std::string>& Metadata() const;
  std::string Producer() const;
  int64_t IrVersion() const;
  std::string GraphName() const;
  /// The initializer names, in the file's order.
  std::vector<std::string> Initializers() const;
  /// The variable (scope and name under the context's scope, "/fc1/weight")
  /// an initializer is held in; see ImportOptions::variable_name.
  std::string VariableOf(const std::string& initializer) const;

  /// Builds the model's computation in the graph of `inputs` (one Node per
  /// Inputs() entry, in order) and returns one Node per output. Float
  /// initializers are read from (and, the first time, created as) variables
  /// of `ctx`. `static_inputs` gives values for inputs that some operator
  /// needs when the graph is traced (a Reshape's target shape, a TopK's k fed
  /// as a graph input); their entries in `inputs` are ignored (may be empty
  /// Nodes). Such an input missing is an error naming it. `g` is the graph
  /// to build in when no input is a Node (else the inputs' graph).
  std::vector<graph::Node> Call(context::Context ctx, const std::vector<graph::Node>& inputs,
                                const std::map<std::string, tensors::Tensor>& static_inputs = {},
                                graph::Graph* g = nullptr) const;

  /// Creates the variables of the float initializers in `ctx` now (Call
  /// creates them when first traced), so that an optimizer or a checkpoint
  /// sees them before the first step. Existing variables are kept.
  void CreateVariables(context::Context ctx) const;

  /// A compiled runner of the model on `backend` with the variables of `ctx`.
  Exec NewExec(std::shared_ptr<backends::Backend> backend, context::Context ctx) const;

  struct Impl;

 private:
  explicit Model(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {}
  std::shared_ptr<const Impl> impl_;
  friend class Exec;
};

/// Runs a model: traced and compiled once per input-shape signature (and per
/// value of the inputs that must be known when tracing, which it detects).
/// Cheap to copy; copies share the compiled executables.
class Exec {
 public:
  /// Runs with one tensor per Model::Inputs() entry; returns one per output.
  std::vector<tensors::Tensor> Call(const std::vector<tensors::Tensor>& inputs);
  /// The names of the inputs found to be needed when tracing (their values
  /// are part of the cache key).
  std::vector<std::string> StaticInputs() const;

  struct State;

 private:
  explicit Exec(std::shared_ptr<State> state) : state_(std::move(state)) {}
  std::shared_ptr<State> state_;
  friend class Model;
};

/// The operators the importer converts, sorted: the default domain's by
/// name ("Conv"), the training domain's as "ai.onnx.preview.training:Adam".
std::vector<std::string> SupportedOperators();

/// Reads a serialized ONNX TensorProto (the input_0.pb files of ONNX's test
/// data) into a tensor; external data is looked up next to the file.
tensors::Tensor ReadTensor(const std::filesystem::path& path);
/// Parses a serialized TensorProto.
tensors::Tensor ParseTensor(std::string_view bytes, const std::filesystem::path& external_data_dir = {});

}  // namespace kiln::onnx
