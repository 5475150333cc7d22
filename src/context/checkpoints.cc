// Copyright 2026 The Kiln Authors.
// Checkpoints: a safetensors file with the variables plus a JSON file with the
// step, hyperparameters and checksums, written crash-safely (see
// atomic_file.h) and verified on restore.
//
// Choices:
//  * Only variables with a value are saved: an uninitialized variable has
//    nothing to save, and on restore it is initialized as usual.
//  * Checkpoints are ordered by (step, suffix) parsed from their names, so
//    "newest" means the highest global step.
//  * One process saves into a directory at a time: Save() removes every
//    temporary file and every safetensors file without its JSON (left by a
//    save that crashed) before writing.
//  * A checkpoint is restored all or nothing: it is read and verified, and the
//    shapes of existing variables are checked, before anything is changed.
#include "kiln/context/checkpoints.h"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <iostream>
#include <limits>
#include <map>
#include <mutex>
#include <set>

#include <nlohmann/json.hpp>

#include "src/context/checkpoints_internal.h"
#include "src/context/store.h"

namespace kiln::context {

namespace fs = std::filesystem;

namespace internal {

namespace {

using Json = nlohmann::json;
using OrderedJson = nlohmann::ordered_json;

constexpr int kFormatVersion = 1;
constexpr const char* kPrefix = "checkpoint-";
constexpr const char* kGlobalStep = "/global_step";
// The type names of Param's alternatives in the JSON file, in variant order.
constexpr const char* kParamTypes[] = {"bool", "int", "double", "string", "int_list", "double_list", "string_list"};
static_assert(std::size(kParamTypes) == std::variant_size_v<Param>);

// ------------------------------------------------------------ Parameters.

// Doubles as JSON numbers (shortest round-trip form); NaN and infinities,
// which JSON lacks, as strings.
Json DoubleToJson(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "Infinity" : "-Infinity";
  return v;
}

double DoubleFromJson(const Json& j) {
  if (j.is_number()) return j.get<double>();
  if (j == "NaN") return std::numeric_limits<double>::quiet_NaN();
  if (j == "Infinity") return std::numeric_limits<double>::infinity();
  if (j == "-Infinity") return -std::numeric_limits<double>::infinity();
  Throw("expected a number, got " + j.dump());
}

Json ParamToJson(const Param& p) {
  return std::visit(
      [](const auto& v) -> Json {
        using V = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<V, double>) {
          return DoubleToJson(v);
        } else if constexpr (std::is_same_v<V, std::vector<double>>) {
          Json list = Json::array();
          for (double d : v) list.push_back(DoubleToJson(d));
          return list;
        } else {
          return v;
        }
      },
      p);
}

Param ParamFromJson(const std::string& type, const Json& j) {
  auto list = [&](auto element) {
    if (!j.is_array()) Throw("expected a list, got " + j.dump());
    std::vector<decltype(element(j))> out;
    for (const Json& e : j) out.push_back(element(e));
    return out;
  };
  if (type == "bool") return j.get<bool>();
  if (type == "int") return j.get<int64_t>();
  if (type == "double") return DoubleFromJson(j);
  if (type == "string") return j.get<std::string>();
  if (type == "int_list") return list([](const Json& e) { return e.get<int64_t>(); });
  if (type == "double_list") return list([](const Json& e) { return DoubleFromJson(e); });
  if (type == "string_list") return list([](const Json& e) { return e.get<std::string>(); });
  Throw("unknown type \"" + type + "\"");
}

// nlohmann's get<> accepts any number for any arithmetic type: check the kind
// first so that, e.g., a double never silently becomes an int.
void CheckParamKind(const std::string& type, const Json& j) {
  auto ok = [](const std::string& t, const Json& e) {
    if (t == "bool") return e.is_boolean();
    if (t == "int") return e.is_number_integer();
    if (t == "string") return e.is_string();
    return true;  // doubles are checked by DoubleFromJson
  };
  const bool is_list = type.ends_with("_list");
  if (!is_list && !ok(type, j)) Throw("value " + j.dump() + " is not a " + type);
  if (is_list && j.is_array()) {
    const std::string element = type.substr(0, type.size() - 5);
    for (const Json& e : j) {
      if (!ok(element, e)) Throw("element " + e.dump() + " is not a " + element);
    }
  }
}

// ---------------------------------------------------------------- Metadata.

std::string MetadataToJson(const CheckpointMetadata& m) {
  OrderedJson params = OrderedJson::array();
  for (const auto& [key, value] : m.params) {
    params.push_back({{"key", key}, {"type", kParamTypes[value.index()]}, {"value", ParamToJson(value)}});
  }
  OrderedJson vars = OrderedJson::array();
  for (const CheckpointVariable& v : m.variables) {
    vars.push_back({{"scope", v.scope},
                    {"name", v.name},
                    {"dtype", dtypes::Name(v.shape.DType())},
                    {"shape", v.shape.Dims()},
                    {"crc32", v.crc32}});
  }
  OrderedJson j = {{"format_version", m.format_version},
                   {"step", m.step},
                   {"time", m.time},
                   {"hyperparameters", params},
                   {"variables", vars},
                   {"safetensors", {{"size", m.safetensors.size}, {"crc32", m.safetensors.crc32}}}};
  try {
    return j.dump(2) + "\n";
  } catch (const Json::exception& e) {  // a name or string that is not valid UTF-8
    Throw(std::string("checkpoints: cannot encode the metadata: ") + e.what());
  }
}

// Splits "/scope/key" into ("/scope", "key"); ("/", "key") at the root.
std::pair<std::string, std::string> SplitKey(const std::string& full) {
  const size_t slash = full.find_last_of('/');
  if (full.empty() || full[0] != '/' || slash == full.size() - 1) Throw("invalid hyperparameter key \"" + full + "\"");
  return {slash == 0 ? "/" : full.substr(0, slash), full.substr(slash + 1)};
}

CheckpointVariable VariableFromJson(const Json& j) {
  CheckpointVariable v;
  v.scope = j.at("scope").get<std::string>();
  v.name = j.at("name").get<std::string>();
  std::vector<int64_t> dims = j.at("shape").get<std::vector<int64_t>>();
  v.shape = shapes::Shape(dtypes::FromName(j.at("dtype").get<std::string>()), std::move(dims));
  if (!j.at("crc32").is_number_unsigned()) Throw("crc32 of " + v.name + " is not an unsigned integer");
  v.crc32 = j.at("crc32").get<uint32_t>();
  return v;
}

CheckpointMetadata MetadataFromJson(const Json& j) {
  CheckpointMetadata m;
  m.format_version = j.at("format_version").get<int>();
  if (m.format_version != kFormatVersion) {
    Throw("unsupported format_version " + std::to_string(m.format_version) + " (this Kiln reads version " +
          std::to_string(kFormatVersion) + ")");
  }
  m.step = j.at("step").get<int64_t>();
  m.time = j.at("time").get<int64_t>();
  for (const Json& p : j.at("hyperparameters")) {
    const std::string key = p.at("key").get<std::string>(), type = p.at("type").get<std::string>();
    SplitKey(key);  // validates
    CheckParamKind(type, p.at("value"));
    m.params.emplace_back(key, ParamFromJson(type, p.at("value")));
  }
  for (const Json& v : j.at("variables")) m.variables.push_back(VariableFromJson(v));
  const Json& st = j.at("safetensors");
  m.safetensors.size = st.at("size").get<uint64_t>();
  m.safetensors.crc32 = st.at("crc32").get<uint32_t>();
  return m;
}

std::string Hex(uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof(buf), "0x%08x", v);
  return buf;
}

// Checks the tensors read from `path` against the metadata; returns them in
// the metadata's order.
std::vector<safetensors::NamedTensor> MatchVariables(const std::string& path, const CheckpointMetadata& m,
                                                     safetensors::Contents contents) {
  std::map<std::string, tensors::Tensor> by_name;
  for (auto& t : contents.tensors) by_name[t.name] = std::move(t.value);
  if (by_name.size() != m.variables.size()) {
    Throw("checkpoint " + path + " holds " + std::to_string(by_name.size()) + " tensors, its JSON file lists " +
          std::to_string(m.variables.size()) + " variables");
  }
  std::vector<safetensors::NamedTensor> out;
  for (const CheckpointVariable& v : m.variables) {
    const std::string full = JoinScope(v.scope, v.name);
    auto it = by_name.find(full);
    if (it == by_name.end()) Throw("checkpoint " + path + " has no tensor \"" + full + "\" listed in its JSON file");
    const tensors::Tensor& t = it->second;
    if (t.Shape() != v.shape) {
      Throw("checkpoint " + path + ": tensor \"" + full + "\" is " + t.Shape().ToString() + ", its JSON file says " +
            v.shape.ToString());
    }
    const auto bytes = static_cast<size_t>(t.Shape().ByteSize());
    const uint32_t crc = bytes == 0 ? 0 : Crc32({static_cast<const std::byte*>(t.HostData()), bytes});
    if (crc != v.crc32) {
      Throw("checkpoint " + path + ": CRC-32 of tensor \"" + full + "\" is " + Hex(crc) + ", expected " + Hex(v.crc32) +
            " (corrupt)");
    }
    out.push_back({full, t});
  }
  return out;
}

// ------------------------------------------------------------------ Naming.

std::string BaseName(int64_t step) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%s%010lld", kPrefix, static_cast<long long>(step));
  return buf;
}

bool ParseNumber(std::string_view s, int64_t& out) {
  if (s.empty()) return false;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && end == s.data() + s.size() && s[0] != '-' && s[0] != '+';
}

bool Exists(const std::string& path) {
  std::error_code ec;
  return fs::exists(path, ec);
}

}  // namespace

std::string JsonPath(const std::string& dir, const std::string& name) { return (fs::path(dir) / (name + ".json")).string(); }

std::string SafetensorsPath(const std::string& dir, const std::string& name) {
  return (fs::path(dir) / (name + ".safetensors")).string();
}

std::optional<std::pair<int64_t, int64_t>> ParseCheckpointName(const std::string& name) {
  std::string_view rest(name);
  if (!rest.starts_with(kPrefix)) return std::nullopt;
  rest.remove_prefix(std::string_view(kPrefix).size());
  const size_t dash = rest.find('-');
  int64_t step = 0, suffix = 0;
  if (!ParseNumber(rest.substr(0, dash), step)) return std::nullopt;
  if (dash != std::string_view::npos && !ParseNumber(rest.substr(dash + 1), suffix)) return std::nullopt;
  return std::make_pair(step, suffix);
}

std::vector<std::string> ListCheckpoints(const std::string& dir) {
  std::error_code ec;
  fs::directory_iterator it(dir, ec);
  if (ec) Throw("checkpoints: cannot read directory " + dir + ": " + ec.message());
  std::vector<std::pair<std::pair<int64_t, int64_t>, std::string>> found;
  for (; it != fs::directory_iterator(); it.increment(ec)) {
    const fs::path& p = it->path();
    if (p.extension() != ".json") continue;  // temporary files end in ".tmp-<pid>"
    const std::string name = p.stem().string();
    auto key = ParseCheckpointName(name);
    if (key && Exists(SafetensorsPath(dir, name))) found.emplace_back(*key, name);
  }
  if (ec) Throw("checkpoints: cannot read directory " + dir + ": " + ec.message());
  std::sort(found.begin(), found.end());
  std::vector<std::string> names;
  for (auto& [key, name] : found) names.push_back(std::move(name));
  return names;
}

CheckpointMetadata ReadCheckpointMetadata(const std::string& dir, const std::string& name) {
  const std::string path = JsonPath(dir, name);
  const std::string text = ReadFileToString(path);
  try {
    return MetadataFromJson(Json::parse(text));
  } catch (const Json::exception& e) {
    Throw("checkpoint " + path + " is corrupt: " + e.what());
  } catch (const Error& e) {
    Throw("checkpoint " + path + " is corrupt: " + e.what());
  }
}

LoadedCheckpoint LoadCheckpoint(const std::string& dir, const std::string& name) {
  LoadedCheckpoint loaded;
  loaded.metadata = ReadCheckpointMetadata(dir, name);
  const std::string path = SafetensorsPath(dir, name);
  const FileDigest& expected = loaded.metadata.safetensors;
  std::error_code ec;
  const uint64_t size = fs::file_size(path, ec);
  if (ec) Throw("checkpoint " + path + ": " + ec.message());
  // A cheap check first: a truncated file fails here without being read.
  if (size != expected.size) {
    Throw("checkpoint " + path + " has " + std::to_string(size) + " bytes, its JSON file says " +
          std::to_string(expected.size) + " (truncated or corrupt)");
  }
  safetensors::Contents contents = safetensors::Read(path);
  if (contents.digest.crc32 != expected.crc32) {
    Throw("checkpoint " + path + ": CRC-32 is " + Hex(contents.digest.crc32) + ", its JSON file says " +
          Hex(expected.crc32) + " (corrupt)");
  }
  loaded.values = MatchVariables(path, loaded.metadata, std::move(contents));
  return loaded;
}

}  // namespace internal

// -------------------------------------------------------------------- Config.

namespace checkpoints {

using internal::Store;

Config& Config::Dir(std::string dir) {
  dir_ = std::move(dir);
  return *this;
}

Config& Config::Keep(int n) {
  if (n < 1) Throw("checkpoints::Config::Keep: n must be >= 1, got " + std::to_string(n));
  keep_ = n;
  return *this;
}

Config& Config::ExcludeVars(std::vector<std::string> prefixes) {
  exclude_ = std::move(prefixes);
  return *this;
}

std::unique_ptr<Handler> Config::Done() { return std::make_unique<Handler>(*this); }

// ------------------------------------------------------------------- Handler.

namespace {

bool IsExcluded(const std::vector<std::string>& prefixes, const std::string& full_name) {
  return std::any_of(prefixes.begin(), prefixes.end(),
                     [&](const std::string& p) { return full_name.starts_with(p); });
}

// The global step: the value of "/global_step", or the value a restore keeps
// for it while the variable is not created yet; 0 if neither exists.
int64_t GlobalStep(Store& store) {
  tensors::Tensor value;
  if (auto it = store.by_name.find(internal::kGlobalStep); it != store.by_name.end()) {
    if (!it->second->HasValue()) return 0;
    value = it->second->Value();
  } else if (auto p = store.pending_restore.find(internal::kGlobalStep); p != store.pending_restore.end()) {
    value = p->second;
  } else {
    return 0;
  }
  if (value.Shape() != shapes::Make(dtypes::Int64)) {
    Throw(std::string("checkpoints: ") + internal::kGlobalStep + " must be an Int64 scalar, it is " +
          value.Shape().ToString());
  }
  const int64_t step = value.Value<int64_t>();
  if (step < 0) Throw(std::string("checkpoints: ") + internal::kGlobalStep + " is negative (" + std::to_string(step) + ")");
  return step;
}

// The metadata of a new checkpoint of `ctx` (all but the safetensors file's
// digest), with the values to save in `values`: every variable that has a
// value and is not excluded, and every value a restore keeps for a variable
// not created yet (it is part of the state: a save right after a restore must
// not drop the weights the model has not asked for yet).
internal::CheckpointMetadata Snapshot(Store& store, const Context& ctx, const std::vector<std::string>& exclude,
                                      std::vector<internal::safetensors::NamedTensor>& values) {
  internal::CheckpointMetadata meta;
  meta.format_version = internal::kFormatVersion;
  meta.time = static_cast<int64_t>(std::time(nullptr));
  meta.step = GlobalStep(store);
  for (const auto& v : store.variables) {
    const std::string full = v->ScopeAndName();
    if (!v->HasValue() || IsExcluded(exclude, full)) continue;
    values.push_back({full, v->Value()});  // a handle of its own: later updates do not change it
    meta.variables.push_back({v->Scope(), v->Name(), v->Shape(), 0});
  }
  for (const auto& [full, value] : store.pending_restore) {
    if (IsExcluded(exclude, full) || store.by_name.contains(full)) continue;
    auto [scope, name] = internal::SplitKey(full);
    values.push_back({full, value.ShallowCopy()});
    meta.variables.push_back({scope, name, value.Shape(), 0});
  }
  meta.params = ctx.Params();
  for (size_t i = 0; i < values.size(); ++i) {
    const auto bytes = static_cast<size_t>(values[i].value.Shape().ByteSize());
    if (bytes == 0) continue;
    meta.variables[i].crc32 = internal::Crc32({static_cast<const std::byte*>(values[i].value.HostData()), bytes});
  }
  return meta;
}

// Refuses a save that would hold less than the newest checkpoint in `dir`:
// a variable it has that the new one lacks must have been deleted on purpose
// (Context::DeleteVariablesInScope) or excluded; otherwise the save, and the
// Keep() pruning after it, would lose data. An unreadable newest checkpoint is
// skipped, as Restore() would skip it.
void CheckNothingLost(const Store& store, const std::string& dir, const std::vector<std::string>& exclude,
                      const internal::CheckpointMetadata& meta) {
  std::set<std::string> saving;
  for (const auto& v : meta.variables) saving.insert(JoinScope(v.scope, v.name));
  const std::vector<std::string> names = internal::ListCheckpoints(dir);
  for (auto it = names.rbegin(); it != names.rend(); ++it) {
    internal::CheckpointMetadata newest;
    try {
      newest = internal::ReadCheckpointMetadata(dir, *it);
    } catch (const Error&) {
      continue;
    }
    std::vector<std::string> lost;
    for (const auto& v : newest.variables) {
      const std::string full = JoinScope(v.scope, v.name);
      if (!saving.contains(full) && !IsExcluded(exclude, full) && !store.deleted_names.contains(full)) {
        lost.push_back(full);
      }
    }
    if (lost.empty()) return;
    std::string list;
    for (size_t i = 0; i < lost.size() && i < 5; ++i) list += (i ? ", " : "") + lost[i];
    if (lost.size() > 5) list += ", ...";
    Throw("checkpoints: Save() refused: the newest checkpoint " + (fs::path(dir) / *it).string() + " holds " +
          std::to_string(lost.size()) + " variable(s) this context does not have (" + list +
          "); saving would lose them. Restore() first to keep them, remove them on purpose with "
          "Context::DeleteVariablesInScope, exclude them with Config::ExcludeVars, or save into another directory");
  }
}

// Removes what interrupted saves left: temporary files, and safetensors files
// whose JSON file was never written. Best effort: a failure only leaves a
// file that List() and Restore() ignore anyway.
void RemoveIncompleteFiles(const std::string& dir) {
  std::error_code ec;
  std::vector<fs::path> doomed;
  for (fs::directory_iterator it(dir, ec); !ec && it != fs::directory_iterator(); it.increment(ec)) {
    const fs::path& p = it->path();
    const std::string file = p.filename().string();
    if (!file.starts_with(internal::kPrefix)) continue;
    const bool temp = file.find(internal::kTempMarker) != std::string::npos;
    const bool orphan = p.extension() == ".safetensors" && !internal::Exists(internal::JsonPath(dir, p.stem().string()));
    if (temp || orphan) doomed.push_back(p);
  }
  for (const fs::path& p : doomed) fs::remove(p, ec);
}

// "checkpoint-<step>", or, if any file of that step exists, with a suffix
// "-<n>" above every existing one, so the new checkpoint sorts last among
// its step's even after older ones were deleted.
std::string UnusedName(const std::string& dir, int64_t step) {
  int64_t max_suffix = -1;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec); !ec && it != fs::directory_iterator(); it.increment(ec)) {
    std::string file = it->path().filename().string();
    file = file.substr(0, file.find('.'));  // no extension, no temporary marker
    if (auto key = internal::ParseCheckpointName(file); key && key->first == step) {
      max_suffix = std::max(max_suffix, key->second);
    }
  }
  if (ec) Throw("checkpoints: cannot read directory " + dir + ": " + ec.message());
  const std::string base = internal::BaseName(step);
  return max_suffix < 0 ? base : base + "-" + std::to_string(max_suffix + 1);
}

// Deletes the oldest complete checkpoints beyond the newest `keep`, never
// `just_saved` (even if its step is lower than older ones').
void DeleteOldCheckpoints(const std::string& dir, int keep, const std::string& just_saved) {
  std::vector<std::string> names = internal::ListCheckpoints(dir);
  std::erase(names, just_saved);
  const size_t others = static_cast<size_t>(keep - 1);
  if (names.size() <= others) return;
  for (size_t i = 0; i + others < names.size(); ++i) {
    // The JSON first: a crash in between leaves an orphan, not a broken checkpoint.
    for (const std::string& path : {internal::JsonPath(dir, names[i]), internal::SafetensorsPath(dir, names[i])}) {
      std::error_code ec;
      fs::remove(path, ec);
      if (ec) Throw("checkpoints: saved " + just_saved + ", but cannot delete the old " + path + ": " + ec.message());
    }
  }
  internal::SyncDirectory(dir);
}

// Sets the values of existing variables, stores the others for lazy restore,
// and sets the hyperparameters. Checks every shape before changing anything.
void Apply(Store& store, const std::string& dir, const std::vector<std::string>& exclude,
           const internal::LoadedCheckpoint& loaded, const std::string& name) {
  std::lock_guard lock(store.mu);
  for (const auto& [full, value] : loaded.values) {
    auto it = store.by_name.find(full);
    if (it == store.by_name.end() || IsExcluded(exclude, full)) continue;
    if (it->second->Shape() != value.Shape()) {
      Throw("checkpoints: variable " + full + " is " + it->second->Shape().ToString() + " in the context but " +
            value.Shape().ToString() + " in checkpoint " + internal::SafetensorsPath(dir, name));
    }
  }
  store.pending_restore.clear();  // values of an earlier restore are superseded
  store.pending_restore_origin = "checkpoint " + (fs::path(dir) / name).string();
  for (const auto& [full, value] : loaded.values) {
    if (IsExcluded(exclude, full)) continue;
    auto it = store.by_name.find(full);
    if (it != store.by_name.end()) it->second->SetValueUnchecked(value);
    else store.pending_restore[full] = value;
  }
  for (const auto& [full_key, value] : loaded.metadata.params) {
    auto [scope, key] = internal::SplitKey(full_key);
    store.params[scope][key] = value;
  }
}

}  // namespace

Handler::Handler(Config config) : config_(std::move(config)) {
  const std::string& dir = config_.dir_;
  if (dir.empty()) Throw("checkpoints: no directory: call Config::Dir() before Done()");
  std::error_code ec;
  if (fs::exists(dir, ec) && !fs::is_directory(dir, ec)) Throw("checkpoints: " + dir + " is not a directory");
  fs::create_directories(dir, ec);
  if (ec) Throw("checkpoints: cannot create directory " + dir + ": " + ec.message());
}

std::vector<std::string> Handler::List() const { return internal::ListCheckpoints(config_.dir_); }

std::string Handler::Save() {
  const std::string& dir = config_.dir_;
  Store& store = config_.ctx_.GetStore();
  // The store's lock for the whole save: a concurrent step waits, and the
  // snapshot is one consistent state.
  std::lock_guard lock(store.mu);
  std::vector<internal::safetensors::NamedTensor> values;
  internal::CheckpointMetadata meta = Snapshot(store, config_.ctx_, config_.exclude_, values);
  CheckNothingLost(store, dir, config_.exclude_, meta);
  RemoveIncompleteFiles(dir);
  const std::string name = UnusedName(dir, meta.step);
  // The safetensors file first: a checkpoint counts only once its JSON exists.
  meta.safetensors = internal::safetensors::Write(internal::SafetensorsPath(dir, name), values, {{"format", "kiln"}});
  const std::string json = internal::MetadataToJson(meta);
  internal::WriteFileAtomically(internal::JsonPath(dir, name), {std::as_bytes(std::span<const char>(json))});
  if (config_.keep_ > 0) DeleteOldCheckpoints(dir, config_.keep_, name);
  return name;
}

std::string Handler::Restore() {
  const std::vector<std::string> names = List();
  std::string last_error;
  for (auto it = names.rbegin(); it != names.rend(); ++it) {
    internal::LoadedCheckpoint loaded;
    try {
      loaded = internal::LoadCheckpoint(Dir(), *it);
    } catch (const Error& e) {
      std::cerr << "kiln: warning: skipping unusable checkpoint " << *it << " in " << Dir() << ": " << e.what()
                << std::endl;
      last_error = e.what();
      continue;
    }
    Apply(config_.ctx_.GetStore(), Dir(), config_.exclude_, loaded, *it);
    return *it;
  }
  if (names.empty()) return "";
  Throw("checkpoints: all " + std::to_string(names.size()) + " checkpoints in " + Dir() +
        " are unusable; the oldest one's error: " + last_error);
}

void Handler::RestoreNamed(const std::string& name) {
  Apply(config_.ctx_.GetStore(), Dir(), config_.exclude_, internal::LoadCheckpoint(Dir(), name), name);
}

}  // namespace checkpoints
}  // namespace kiln::context
