// Copyright 2026 The Kiln Authors.
// Checkpoints: saving and restoring a context's variables and hyperparameters.
//
//   auto checkpoint = context::checkpoints::Build(ctx).Dir("/tmp/my-model").Keep(3).Done();
//   checkpoint->Save();     // writes checkpoint-<step>
//   checkpoint->Restore();  // the latest good one (falls back to older ones if corrupt)
//
// Format, per checkpoint "<dir>/checkpoint-<step, 10 digits>":
//  * <name>.safetensors: every saved variable, in the Hugging Face
//    safetensors format (readable by other tools), keyed by full name
//    ("/layer1/weights");
//  * <name>.json: format version, step, time, hyperparameters, and for each
//    variable its scope, name, dtype, shape and CRC-32 of its bytes, plus the
//    size and CRC-32 of the safetensors file.
// Every file is written to a temporary name, fsync'd, renamed, and the
// directory fsync'd; the JSON is written last, so a checkpoint without a
// complete JSON file is ignored. A crash at any moment leaves the previous
// checkpoints intact.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "kiln/context/context.h"

namespace kiln::context::checkpoints {

class Handler;

/// Configures a checkpoint handler; Done() creates it.
class Config {
 public:
  explicit Config(Context ctx) : ctx_(std::move(ctx)) {}
  /// The directory holding the checkpoints (created if missing). Required.
  Config& Dir(std::string dir);
  /// Keep only the newest `n` checkpoints (n >= 1); older ones are deleted
  /// after each successful save. Default: keep all.
  Config& Keep(int n);
  /// Variables whose full names start with any of these prefixes are neither
  /// saved nor restored (e.g. "/rng_state", or a scope).
  Config& ExcludeVars(std::vector<std::string> prefixes);
  /// Creates the handler. Throws kiln::Error if the directory is unusable.
  std::unique_ptr<Handler> Done();

 private:
  friend class Handler;
  Context ctx_;
  std::string dir_;
  int keep_ = 0;
  std::vector<std::string> exclude_;
};

/// Starts a configuration for `ctx`.
inline Config Build(Context ctx) { return Config(std::move(ctx)); }

/// Saves and restores checkpoints of one context in one directory.
class Handler {
 public:
  explicit Handler(Config config);

  /// Saves every variable that has a value (except excluded ones; variables
  /// never initialized are skipped) and the hyperparameters as a new
  /// checkpoint named after the global step (the value of the Int64 scalar
  /// variable "/global_step" if it exists, else 0; a step already used gets a
  /// suffix "-1", "-2", ... that sorts after the existing ones). Returns the
  /// checkpoint's name. Only one process should save into a directory at a
  /// time: Save() removes the leftovers of interrupted saves.
  std::string Save();

  /// Restores the newest checkpoint (highest step). Variables that exist take
  /// the saved values now (a different shape or dtype is a kiln::Error naming
  /// the variable, and nothing is restored); variables created later in this
  /// context take them when created (lazy restore). Hyperparameters are
  /// restored too. A corrupt or truncated checkpoint is skipped with a warning
  /// on stderr naming the file, and the previous one is tried. Returns the
  /// name restored, or "" if the directory has no checkpoint. Throws
  /// kiln::Error if every checkpoint is corrupt.
  std::string Restore();
  /// Restores the checkpoint `name` (e.g. "checkpoint-0000001000"); throws
  /// kiln::Error naming the file if it is missing or corrupt.
  void RestoreNamed(const std::string& name);

  /// The checkpoints in the directory, oldest first (complete ones only).
  std::vector<std::string> List() const;
  const std::string& Dir() const { return config_.dir_; }

 private:
  Config config_;
};

}  // namespace kiln::context::checkpoints
