// Copyright 2026 The Kiln Authors.
// Compiling a finished function on a backend, shared by graph::Exec and
// context::Exec.
#pragma once

#include <memory>
#include <vector>

#include "kiln/backends/backend.h"

namespace kiln::graph::internal {

/// Hash of an input-shape signature, the key of the compilation caches.
struct SignatureHash {
  size_t operator()(const std::vector<shapes::Shape>& signature) const {
    size_t h = signature.size();
    for (const auto& s : signature) h = h * 31 + shapes::Hash(s);
    return h;
  }
};

/// Checks every instruction's op and dtype against the backend's
/// capabilities (an error names what is missing and where it was created),
/// then compiles.
std::unique_ptr<backends::Executable> CompileFunction(backends::Backend& backend,
                                                      std::shared_ptr<const ir::Function> function);

}  // namespace kiln::graph::internal
