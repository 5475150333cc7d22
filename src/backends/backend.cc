// Copyright 2026 The Kiln Authors.
// The backend registry and HostStorage.
#include "kiln/backends/backend.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <new>

#include "kiln/core/error.h"
#include "src/backends/host_storage_pool.h"

namespace kiln::backends {

namespace internal {
// Defined in builtin.cc: registers the backends compiled into libkiln.
void RegisterBuiltinBackends();
}  // namespace internal

std::shared_ptr<HostStorage> HostStorage::Allocate(size_t bytes) {
  size_t capacity = 0;
  void* p = internal::AcquireBlock(bytes, &capacity);
  if (p == nullptr) Throw("HostStorage: out of memory allocating " + std::to_string(bytes) + " bytes");
  return std::shared_ptr<HostStorage>(new HostStorage(p, bytes, capacity));
}

std::shared_ptr<HostStorage> HostStorage::AllocateZeroed(size_t bytes) {
  auto s = Allocate(bytes);
  std::memset(s->Data(), 0, bytes);
  return s;
}

HostStorage::~HostStorage() { internal::ReleaseBlock(data_, capacity_); }

namespace {

struct Registry {
  std::mutex mu;
  std::vector<Registration> entries;
  bool builtins_done = false;
};

Registry& GetRegistry() {
  static Registry* r = new Registry();  // never destroyed: usable during exit
  return *r;
}

std::vector<Registration> Snapshot() {
  // Registering the builtins calls Register(), which takes the lock itself.
  static std::once_flag once;
  std::call_once(once, [] { internal::RegisterBuiltinBackends(); });
  Registry& r = GetRegistry();
  std::lock_guard lock(r.mu);
  return r.entries;
}

std::string AvailableList(const std::vector<Registration>& entries) {
  std::string s;
  for (const auto& e : entries) {
    if (e.is_available && !e.is_available()) continue;
    s += (s.empty() ? "" : ", ") + ("\"" + e.name + "\"");
  }
  return s.empty() ? "none" : s;
}

}  // namespace

void Register(Registration registration) {
  if (registration.name.empty() || !registration.create) Throw("backends::Register: a name and a factory are required");
  Registry& r = GetRegistry();
  std::lock_guard lock(r.mu);
  auto it = std::find_if(r.entries.begin(), r.entries.end(),
                         [&](const Registration& e) { return e.name == registration.name; });
  if (it != r.entries.end()) *it = std::move(registration);
  else r.entries.push_back(std::move(registration));
}

std::shared_ptr<Backend> NewWithName(const std::string& full_name) {
  auto entries = Snapshot();
  const size_t colon = full_name.find(':');
  const std::string name = full_name.substr(0, colon);
  for (const auto& e : entries) {
    if (e.name != name) continue;
    if (e.is_available && !e.is_available()) {
      const std::string why = e.unavailable_reason ? e.unavailable_reason() : std::string();
      Throw("backend \"" + name + "\" is not available on this machine" + (why.empty() ? "" : " (" + why + ")") +
            "; available backends: " + AvailableList(entries));
    }
    if (colon == std::string::npos) return e.create();
    if (!e.create_with_config) Throw("backend \"" + name + "\" takes no configuration: \"" + full_name + "\"");
    return e.create_with_config(full_name.substr(colon + 1));
  }
  Throw("unknown backend \"" + name + "\"; available backends: " + AvailableList(entries));
}

std::shared_ptr<Backend> New() {
  if (const char* env = std::getenv("KILN_BACKEND"); env != nullptr && *env != '\0') {
    return NewWithName(env);
  }
  auto entries = Snapshot();
  const Registration* best = nullptr;
  for (const auto& e : entries) {
    if (e.is_available && !e.is_available()) continue;
    if (best == nullptr || e.priority > best->priority) best = &e;
  }
  if (best == nullptr) Throw("no Kiln backend is available");
  return best->create();
}

std::vector<std::string> Available() {
  std::vector<std::string> names;
  for (const auto& e : Snapshot()) {
    if (!e.is_available || e.is_available()) names.push_back(e.name);
  }
  return names;
}

}  // namespace kiln::backends
