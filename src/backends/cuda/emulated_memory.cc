// Copyright 2026 The Kiln Authors.
// The emulator's device memory (see emulated_memory.h).
#include "src/backends/cuda/emulated_memory.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <string>

#include "kiln/core/error.h"

namespace kiln::backends::cuda {

namespace {

constexpr size_t kEmuAlignment = 16;
constexpr unsigned char kEmuCanary = 0xa5;

}  // namespace

HostMem::HostMem(size_t n) : bytes(n) {
  if (n == 0) return;
  const size_t rounded = (n + kEmuAlignment - 1) / kEmuAlignment * kEmuAlignment;
  slack_ = rounded - n;
  if (!MapWithGuard(rounded)) {
    heap_ = std::aligned_alloc(kEmuAlignment, rounded);
    if (heap_ == nullptr) Throw("cuda-emu: out of memory allocating " + std::to_string(n) + " bytes");
    ptr = heap_;
  }
  std::memset(ptr, 0xff, n);
  std::memset(static_cast<char*>(ptr) + n, kEmuCanary, slack_);
}

HostMem::~HostMem() {
  if (ptr == nullptr) return;
  CheckCanary();
  if (mapping_ != nullptr) ::munmap(mapping_, mapped_);
  std::free(heap_);
}

void HostMem::CheckCanary() const {
  const auto* tail = static_cast<const unsigned char*>(ptr) + bytes;
  for (size_t i = 0; i < slack_; ++i) {
    if (tail[i] != kEmuCanary) {
      std::fprintf(stderr, "cuda-emu: a kernel or library call wrote byte %zu after the end of a %zu-byte buffer\n",
                   i + 1, bytes);
      std::abort();
    }
  }
}

void HostMem::Refill() { std::memset(ptr, 0xff, bytes); }

// Maps `rounded` bytes ending at an inaccessible page; false if the mapping
// or its protection fails.
bool HostMem::MapWithGuard(size_t rounded) {
  const auto page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  const size_t data_pages = (rounded + page - 1) / page * page;
  void* m = ::mmap(nullptr, data_pages + page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (m == MAP_FAILED) return false;
  char* guard = static_cast<char*>(m) + data_pages;
  if (::mprotect(guard, page, PROT_NONE) != 0) {
    ::munmap(m, data_pages + page);
    return false;
  }
  mapping_ = m;
  mapped_ = data_pages + page;
  ptr = guard - rounded;
  return true;
}

namespace {

// Freed blocks of 1 MiB or more, kept for reuse by size (at most 256 MiB):
// a fresh one costs a page fault per 4 KiB when filled, and a backend's
// 32 MiB cuBLASLt workspace is made again whenever a test makes a backend.
// Smaller blocks are unmapped when freed, so a late access to one faults.
constexpr size_t kReusedBlockBytes = size_t{1} << 20;
constexpr size_t kMaxReusedBytes = size_t{256} << 20;

struct ReusedBlocks {
  std::mutex mu;
  std::multimap<size_t, std::unique_ptr<HostMem>> blocks;
  size_t total = 0;
};
ReusedBlocks& Reused() {
  static auto* r = new ReusedBlocks();
  return *r;
}

}  // namespace

std::unique_ptr<HostMem> NewHostMem(size_t bytes) {
  if (bytes >= kReusedBlockBytes) {
    ReusedBlocks& r = Reused();
    std::unique_lock lock(r.mu);
    if (auto it = r.blocks.find(bytes); it != r.blocks.end()) {
      std::unique_ptr<HostMem> m = std::move(it->second);
      r.blocks.erase(it);
      r.total -= bytes;
      lock.unlock();
      m->Refill();
      return m;
    }
  }
  return std::make_unique<HostMem>(bytes);
}

void ReleaseHostMem(std::unique_ptr<HostMem> m) {
  if (m == nullptr || m->bytes < kReusedBlockBytes) return;
  m->CheckCanary();
  ReusedBlocks& r = Reused();
  std::lock_guard lock(r.mu);
  if (r.total + m->bytes > kMaxReusedBytes) return;  // freed on return, unlocked first: m is destroyed after
  r.total += m->bytes;
  r.blocks.emplace(m->bytes, std::move(m));
}


}  // namespace kiln::backends::cuda
