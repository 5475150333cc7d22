// Copyright 2026 The Kiln Authors.
// Loading the tensors of a model file (safetensors, GGUF) into a context:
// where each tensor goes (a name map, with transposes), dtype conversions,
// and the checks done before anything is set. The readers in this folder
// call LoadTensors with their file's names, shapes and values.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "kiln/context/context.h"
#include "kiln/core/shapes.h"
#include "kiln/core/tensors.h"

namespace kiln::io {

/// Where a tensor of a file goes in a context.
struct Mapping {
  /// The variable's scope and name relative to the context's scope,
  /// "/layers/0/attn/q/weights" (a leading "/" is optional). Empty: the
  /// tensor is skipped.
  std::string variable;
  /// Swap the last two axes (rank >= 2): PyTorch's Linear stores its weight
  /// as [out, in], Kiln's Dense as [in, out].
  bool transpose = false;
};

/// Maps a tensor name of the file to its place in the context.
using NameMap = std::function<Mapping(const std::string& name)>;

/// The default NameMap: dots become scopes, "model.layers.0.q.weight" ->
/// "/model/layers/0/q/weight", no transposes.
Mapping DotsToScopes(const std::string& name);

/// What a load into a context did.
struct LoadReport {
  std::vector<std::string> loaded;   ///< existing variables set, as "/scope/name"
  std::vector<std::string> pending;  ///< values waiting for their variables to be created
  std::vector<std::string> skipped;  ///< tensor names the map skipped
};

/// How a load into a context places and converts tensors.
struct LoadOptions {
  /// Each tensor's variable (default: dots become scopes).
  NameMap map = DotsToScopes;
  /// Float tensors are converted to this float dtype (e.g. Float32 for BF16
  /// weights); Invalid keeps them, except that a variable that exists takes
  /// its own float dtype.
  dtypes::DType float_dtype = dtypes::Invalid;
};

/// A file's tensors, for LoadTensors: how messages name the file
/// ("safetensors file model.safetensors"), tensor names in file order, and a
/// function reading one (with its file dtype).
struct TensorSource {
  std::string description;
  std::vector<std::string> names;
  std::function<tensors::Tensor(const std::string& name)> get;
};

/// Loads `source`'s tensors into `ctx`, each to the variable `options.map`
/// names. A variable that exists must have the tensor's dimensions (after
/// the transpose) and is set; a variable that does not exist yet takes the
/// value when it is created (as a checkpoint restores lazily), so a model
/// built afterwards finds its weights; it must then be created with the
/// value's shape and dtype (a misspelled map leaves them pending forever:
/// check LoadReport::pending). Every tensor is read, mapped and checked
/// before anything is set: an error (naming the file, the tensor and both
/// shapes; two tensors mapped to one variable) leaves the context as it was.
/// Files are read without holding the context's lock; the variables are
/// looked up and set under it.
LoadReport LoadTensors(context::Context ctx, const TensorSource& source, const LoadOptions& options = {});

}  // namespace kiln::io
