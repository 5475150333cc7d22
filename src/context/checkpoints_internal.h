// Copyright 2026 The Kiln Authors.
// The checkpoint files below the checkpoints::Handler API, shared with the
// kiln_checkpoint tool: listing a directory and reading a checkpoint with
// full verification.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "kiln/context/context.h"
#include "src/context/atomic_file.h"
#include "src/context/safetensors.h"

namespace kiln::context::internal {

struct Store;

/// One variable as described by a checkpoint's JSON file.
struct CheckpointVariable {
  std::string scope, name;
  shapes::Shape shape;
  uint32_t crc32 = 0;  // of the variable's bytes
};

/// A checkpoint's JSON file ("<name>.json").
struct CheckpointMetadata {
  int format_version = 0;
  int64_t step = 0;
  int64_t time = 0;  // seconds since the Unix epoch
  std::vector<std::pair<std::string, Param>> params;  // full key "/scope/key"
  std::vector<CheckpointVariable> variables;
  FileDigest safetensors;  // expected size and CRC-32 of "<name>.safetensors"
};

/// A checkpoint read and verified against its metadata.
struct LoadedCheckpoint {
  CheckpointMetadata metadata;
  std::vector<safetensors::NamedTensor> values;  // in the order of metadata.variables
};

/// "<dir>/<name>.json" and "<dir>/<name>.safetensors".
std::string JsonPath(const std::string& dir, const std::string& name);
std::string SafetensorsPath(const std::string& dir, const std::string& name);

/// The (step, suffix) of a checkpoint name "checkpoint-<step>[-<suffix>]",
/// or nullopt for any other name.
std::optional<std::pair<int64_t, int64_t>> ParseCheckpointName(const std::string& name);

/// The complete checkpoints (both files present) in `dir`, oldest first by
/// (step, suffix). Temporary files of interrupted saves are ignored. Throws
/// kiln::Error if the directory cannot be read.
std::vector<std::string> ListCheckpoints(const std::string& dir);

/// Reads and validates the JSON file of checkpoint `name` (not the tensors).
CheckpointMetadata ReadCheckpointMetadata(const std::string& dir, const std::string& name);

/// Reads checkpoint `name` and verifies it: the safetensors file's size and
/// CRC-32, and each variable's dtype, shape and CRC-32. Any problem is a
/// kiln::Error naming the offending file.
LoadedCheckpoint LoadCheckpoint(const std::string& dir, const std::string& name);

}  // namespace kiln::context::internal
