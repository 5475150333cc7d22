// Copyright 2026 The Kiln Authors.
// The CUDA backend's pinned staging (src/backends/cuda/staging.h) on a
// simulated stream: queued copies run only when the host waits for them, as
// a real DMA may, so a slot read before its copy is done or refilled while
// its copy is still queued shows up as wrong bytes.
#include "src/backends/cuda/staging.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <deque>
#include <memory>
#include <numeric>
#include <string>
#include <thread>
#include <vector>

namespace kiln::backends::cuda {
namespace {

// A stream whose operations run in order, each only when something waits
// for it (or a later one).
struct SimulatedStream {
  struct Op {
    void* dst = nullptr;
    const void* src = nullptr;
    size_t bytes = 0;
    int event = -1;  // a Record when >= 0
  };
  std::deque<Op> queued;
  int64_t ran = 0, enqueued = 0;       // operations
  std::vector<int64_t> recorded_at;    // per event: the position of its last Record
  std::vector<std::unique_ptr<std::vector<char>>> pinned;
  int pinned_allowed = 1000;           // AllocPinned fails after this many
  int waits = 0, copies = 0;

  void RunUntil(int64_t position) {
    while (ran < position && !queued.empty()) {
      const Op op = queued.front();
      queued.pop_front();
      if (op.event < 0) std::memcpy(op.dst, op.src, op.bytes);
      ++ran;
    }
  }
};

struct FakeApi {
  using Event = int;
  SimulatedStream* s;
  void* AllocPinned(size_t bytes) {
    if (s->pinned_allowed-- <= 0) return nullptr;
    s->pinned.push_back(std::make_unique<std::vector<char>>(bytes, '\x5a'));
    return s->pinned.back()->data();
  }
  void FreePinned(void*) {}
  Event NewEvent() {
    s->recorded_at.push_back(0);
    return static_cast<int>(s->recorded_at.size()) - 1;
  }
  void DestroyEvent(Event) {}
  void CopyAsync(void* dst, const void* src, size_t bytes, bool) {
    s->queued.push_back({dst, src, bytes, -1});
    ++s->enqueued;
    ++s->copies;
  }
  void Record(Event e) {
    s->queued.push_back({nullptr, nullptr, 0, e});
    s->recorded_at[static_cast<size_t>(e)] = ++s->enqueued;
  }
  void Wait(Event e) {
    ++s->waits;
    s->RunUntil(s->recorded_at[static_cast<size_t>(e)]);
  }
  void Sync() { s->RunUntil(s->enqueued); }
};

std::vector<char> Pattern(size_t n, int seed) {
  std::vector<char> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<char>((i * 131 + static_cast<size_t>(seed) * 17 + i / 7) & 0xff);
  return v;
}

// Uploads of several sizes queued back to back (the host buffers reused at
// once, as callers may), then downloads: every byte arrives.
TEST(CudaStagingTest, CopiesEverySizeThroughFewSlots) {
  constexpr size_t kSlot = 64;
  for (int slots : {1, 2, 3}) {
    for (size_t bytes : {size_t{1}, kSlot - 1, kSlot, kSlot + 1, 3 * kSlot + 5, 10 * kSlot}) {
      SCOPED_TRACE("slots " + std::to_string(slots) + ", bytes " + std::to_string(bytes));
      SimulatedStream stream;
      Staging<FakeApi> staging(FakeApi{&stream}, kSlot, slots);
      std::vector<std::vector<char>> device(4, std::vector<char>(bytes, 0));
      std::vector<char> host;
      for (int i = 0; i < 4; ++i) {
        host = Pattern(bytes, i);  // overwritten right after each upload returns
        staging.ToDevice(device[static_cast<size_t>(i)].data(), host.data(), bytes);
        std::fill(host.begin(), host.end(), 0);
      }
      EXPECT_TRUE(staging.Pinned());
      for (int i = 0; i < 4; ++i) {
        std::vector<char> back(bytes, 0);
        staging.ToHost(back.data(), device[static_cast<size_t>(i)].data(), bytes);
        EXPECT_EQ(back, Pattern(bytes, i)) << "buffer " << i;
      }
      EXPECT_EQ(stream.copies, 8 * static_cast<int>((bytes + kSlot - 1) / kSlot));
    }
  }
}

// A download waits only for the chunk it copies out, and the uploads before
// it in stream order land first.
TEST(CudaStagingTest, DownloadSeesEarlierUploadsInStreamOrder) {
  SimulatedStream stream;
  Staging<FakeApi> staging(FakeApi{&stream}, 16, 2);
  std::vector<char> device(40, 0);
  const std::vector<char> first = Pattern(40, 1), second = Pattern(40, 2);
  staging.ToDevice(device.data(), first.data(), 40);
  staging.ToDevice(device.data(), second.data(), 40);  // the later one wins
  std::vector<char> back(40, 0);
  staging.ToHost(back.data(), device.data(), 40);
  EXPECT_EQ(back, second);
  EXPECT_TRUE(stream.queued.empty());
}

// Without pinned memory the copies go straight through the driver.
TEST(CudaStagingTest, FallsBackWhenPinnedMemoryIsRefused) {
  for (int allowed : {0, 1}) {  // refused at once, or after one slot
    SimulatedStream stream;
    stream.pinned_allowed = allowed;
    Staging<FakeApi> staging(FakeApi{&stream}, 16, 3);
    std::vector<char> device(50, 0), back(50, 0);
    const std::vector<char> data = Pattern(50, 3);
    staging.ToDevice(device.data(), data.data(), 50);
    staging.ToHost(back.data(), device.data(), 50);
    EXPECT_EQ(back, data);
    EXPECT_FALSE(staging.Pinned());
    EXPECT_EQ(stream.copies, 2);  // one each way, unchunked
  }
}

// Copies from several host threads at once (as Buffer::CopyToHost and
// uploads may come): each sees its own bytes. (ThreadSanitizer runs this.)
TEST(CudaStagingTest, ConcurrentCopiesKeepTheirBytes) {
  SimulatedStream stream;
  Staging<FakeApi> staging(FakeApi{&stream}, 32, 2);
  constexpr int kThreads = 4;
  std::vector<std::vector<char>> device(kThreads, std::vector<char>(100, 0));
  std::vector<int> wrong(kThreads, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 20; ++i) {
        const std::vector<char> data = Pattern(100, t * 100 + i);
        staging.ToDevice(device[static_cast<size_t>(t)].data(), data.data(), data.size());
        std::vector<char> back(100, 0);
        staging.ToHost(back.data(), device[static_cast<size_t>(t)].data(), back.size());
        wrong[static_cast<size_t>(t)] += back != data;
      }
    });
  }
  for (std::thread& th : threads) th.join();
  for (int t = 0; t < kThreads; ++t) EXPECT_EQ(wrong[static_cast<size_t>(t)], 0) << "thread " << t;
}

TEST(CudaStagingTest, EmptyCopiesDoNothing) {
  SimulatedStream stream;
  Staging<FakeApi> staging(FakeApi{&stream}, 16, 2);
  staging.ToDevice(nullptr, nullptr, 0);
  staging.ToHost(nullptr, nullptr, 0);
  EXPECT_EQ(stream.enqueued, 0);
  EXPECT_TRUE(stream.pinned.empty());  // slots are made on first use
}

}  // namespace
}  // namespace kiln::backends::cuda
