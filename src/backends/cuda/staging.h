// Copyright 2026 The Kiln Authors.
// Host<->device copies through pinned (page-locked) staging slots, on the
// backend's stream. A copy from pageable memory makes the driver stage it
// and wait; from pinned memory the DMA runs on its own, so
//   - ToDevice returns as soon as the bytes are in a slot (the upload
//     proceeds in stream order, behind the work already queued), and
//   - ToHost overlaps the DMA of one slot with the host's copy out of the
//     previous one.
// Device-neutral (a template over the driver calls) so the slot logic is
// unit-tested with a simulated stream (tests/backends/cuda_staging_test.cc).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <mutex>
#include <vector>

namespace kiln::backends::cuda {

/// `Api` provides, for one stream:
///   using Event = ...;
///   void* AllocPinned(size_t bytes);             // nullptr when it cannot
///   void FreePinned(void*);
///   Event NewEvent();
///   void DestroyEvent(Event);
///   void CopyAsync(void* dst, const void* src, size_t bytes, bool to_device);  // queued on the stream
///   void Record(Event);                          // queued on the stream
///   void Wait(Event);                            // blocks until the stream passed the Record
///   void Sync();                                 // blocks until the stream is idle
template <class Api>
class Staging {
 public:
  /// `slots` pinned slots of `slot_bytes` each, allocated on first use.
  Staging(Api api, size_t slot_bytes, int slots) : api_(std::move(api)), slot_bytes_(slot_bytes), slots_(slots) {}
  ~Staging() {
    if (!slots_.empty() && slots_[0].ptr != nullptr) api_.Sync();
    for (Slot& s : slots_) {
      if (s.ptr != nullptr) api_.FreePinned(s.ptr);
      if (s.has_event) api_.DestroyEvent(s.event);
    }
  }
  Staging(const Staging&) = delete;
  Staging& operator=(const Staging&) = delete;

  /// Copies `bytes` from host memory to device memory; `src` may be reused
  /// when this returns.
  void ToDevice(void* device_dst, const void* host_src, size_t bytes) {
    if (bytes == 0) return;
    std::lock_guard lock(mu_);
    if (!Ready()) {
      api_.CopyAsync(device_dst, host_src, bytes, true);  // pageable: the driver stages it
      return;
    }
    for (size_t at = 0; at < bytes; at += slot_bytes_) {
      const size_t n = std::min(slot_bytes_, bytes - at);
      Slot& s = Acquire();
      std::memcpy(s.ptr, static_cast<const char*>(host_src) + at, n);
      api_.CopyAsync(static_cast<char*>(device_dst) + at, s.ptr, n, true);
      Release(s);
    }
  }

  /// Copies `bytes` from device memory (after the stream's queued work) to
  /// host memory; they are there when this returns.
  void ToHost(void* host_dst, const void* device_src, size_t bytes) {
    if (bytes == 0) return;
    std::lock_guard lock(mu_);
    if (!Ready()) {
      api_.CopyAsync(host_dst, device_src, bytes, false);
      api_.Sync();
      return;
    }
    // Up to all slots in flight; each chunk is copied out when its DMA is done.
    const size_t chunks = (bytes + slot_bytes_ - 1) / slot_bytes_;
    std::vector<Slot*> in_flight;  // chunk `done + i` in in_flight[i]
    size_t issued = 0, done = 0;
    while (done < chunks) {
      while (issued < chunks && in_flight.size() < slots_.size()) {
        const size_t at = issued * slot_bytes_;
        Slot& s = Acquire();
        api_.CopyAsync(s.ptr, static_cast<const char*>(device_src) + at, std::min(slot_bytes_, bytes - at), false);
        Release(s);
        in_flight.push_back(&s);
        ++issued;
      }
      Slot& s = *in_flight.front();
      api_.Wait(s.event);
      s.busy = false;
      const size_t at = done * slot_bytes_;
      std::memcpy(static_cast<char*>(host_dst) + at, s.ptr, std::min(slot_bytes_, bytes - at));
      in_flight.erase(in_flight.begin());
      ++done;
    }
  }

  /// Whether the pinned slots exist (false: copies go straight from
  /// pageable memory, as when pinned memory cannot be had).
  bool Pinned() {
    std::lock_guard lock(mu_);
    return Ready();
  }

 private:
  struct Slot {
    void* ptr = nullptr;
    typename Api::Event event{};
    bool has_event = false;
    bool busy = false;  // a queued copy uses it until `event`
  };

  // Allocates the slots once; false (for good) if pinned memory is refused.
  bool Ready() {
    if (tried_) return usable_;
    tried_ = true;
    for (Slot& s : slots_) {
      s.ptr = api_.AllocPinned(slot_bytes_);
      if (s.ptr == nullptr) return usable_ = false;
      s.event = api_.NewEvent();
      s.has_event = true;
    }
    return usable_ = !slots_.empty();
  }

  // The next slot in turn, once its last copy is done.
  Slot& Acquire() {
    Slot& s = slots_[next_];
    next_ = (next_ + 1) % slots_.size();
    if (s.busy) api_.Wait(s.event);
    s.busy = false;
    return s;
  }

  // Marks `s` in use by the copy just queued.
  void Release(Slot& s) {
    api_.Record(s.event);
    s.busy = true;
  }

  Api api_;
  size_t slot_bytes_;
  std::vector<Slot> slots_;
  size_t next_ = 0;
  bool tried_ = false, usable_ = false;
  std::mutex mu_;
};

}  // namespace kiln::backends::cuda
