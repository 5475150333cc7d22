// Copyright 2026 The Kiln Authors.
// The compile cache shared by graph::NewExec/Compile and context::NewExec:
// one compiled entry per input-shape signature, LRU-bounded, thread-safe, and
// single-flight (concurrent callers of a missing signature wait on one build).
#pragma once

#include <cstdint>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <unordered_map>
#include <vector>

#include "kiln/core/shapes.h"
#include "kiln/graph/exec.h"

namespace kiln::graph::internal {

/// Compiled entries of type V by input-shape signature.
template <typename V>
class SignatureCache {
 public:
  using Signature = std::vector<shapes::Shape>;

  /// The entry for `signature`, built with `build()` (returning
  /// std::shared_ptr<V>) on a miss; concurrent callers with the same
  /// signature wait for that one build. A build that throws is not cached (a
  /// later call retries) and its exception reaches every waiting caller.
  template <typename Build>
  std::shared_ptr<V> GetOrBuild(const Signature& signature, Build&& build) {
    // The promise (a heap-allocated shared state) only for a miss: a hit is
    // the common case, on every call.
    std::optional<std::promise<std::shared_ptr<V>>> promise;
    std::shared_future<std::shared_ptr<V>> future;
    {
      std::lock_guard lock(mu_);
      auto it = entries_.find(signature);
      if (it != entries_.end()) {
        it->second.last_used = ++clock_;
        future = it->second.value;
      } else {
        promise.emplace();
        future = promise->get_future().share();
        entries_[signature] = Entry{future, ++clock_};
        EvictLocked();
      }
    }
    if (promise) {
      try {
        promise->set_value(build());
      } catch (...) {
        promise->set_exception(std::current_exception());
        Erase(signature);
      }
    }
    return future.get();
  }

  /// Drops the entry for `signature`, if any (e.g. when it became stale).
  void Erase(const Signature& signature) {
    std::lock_guard lock(mu_);
    entries_.erase(signature);
  }

  /// Keeps at most `n` entries (at least 1), dropping the least recently used.
  void SetCapacity(size_t n) {
    std::lock_guard lock(mu_);
    capacity_ = n == 0 ? 1 : n;
    EvictLocked();
  }

  size_t Size() const {
    std::lock_guard lock(mu_);
    return entries_.size();
  }

 private:
  struct Entry {
    std::shared_future<std::shared_ptr<V>> value;
    uint64_t last_used = 0;
  };

  void EvictLocked() {
    while (entries_.size() > capacity_) {
      auto oldest = entries_.begin();
      for (auto it = entries_.begin(); it != entries_.end(); ++it) {
        if (it->second.last_used < oldest->second.last_used) oldest = it;
      }
      entries_.erase(oldest);
    }
  }

  mutable std::mutex mu_;
  std::unordered_map<Signature, Entry, SignatureHash> entries_;
  uint64_t clock_ = 0;
  size_t capacity_ = 32;
};

}  // namespace kiln::graph::internal
