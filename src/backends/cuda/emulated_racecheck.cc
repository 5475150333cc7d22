// Copyright 2026 The Kiln Authors.
// The emulator's race check (see emulated_racecheck.h).
//
// Each address a launch touches has a cell: its last plain write, and the
// last atomic updates and plain reads of two threads each, each with the
// thread, its block, how many barriers it had passed and the access's
// kind. Aligned accesses of 4 bytes and more
// (almost all of them) have their cells in dense pages, one cell per 4
// bytes of memory, so a kernel streaming through a buffer streams through
// its cells; others go to a hash table. Pages and table slots carry the
// number of the launch that took them, so a launch starts without clearing
// anything.
#include "src/backends/cuda/emulated_racecheck.h"

#include <algorithm>
#include <cstring>

namespace kiln::backends::cuda {

namespace {

// Who accessed an address, packed in 8 bytes. The epoch is kept modulo
// 2^22: the threads of a block pass barriers together, so two of its
// accesses in different intervals have different epochs (unless 2^22
// barriers lie between them).
struct Who {
  uint64_t block : 28, thread : 10, epoch : 22, kind : 2, valid : 1;
};
static_assert(sizeof(Who) == 8);

struct Cell {
  Who write;       // the last plain write
  Who atomics[2];  // the last atomic updates of two threads
  Who reads[2];    // the last plain reads of two threads
};

AccessKind KindOf(const Who& w) { return static_cast<AccessKind>(w.kind); }
bool IsWrite(AccessKind k) { return k == AccessKind::kWrite || k == AccessKind::kAtomic; }
bool IsAtomic(AccessKind k) { return k == AccessKind::kAtomic || k == AccessKind::kAtomicRead; }

// Whether `a` comes before `b` for sure: the same thread, or the same block
// with a barrier between. For shared memory, also another block's access:
// each block has its own variables.
bool Ordered(const Who& a, const Who& b, bool shared) {
  if (a.block != b.block) return shared;
  return a.thread == b.thread || a.epoch != b.epoch;
}

bool Conflict(const Who& earlier, const Who& now, bool shared) {
  if (!earlier.valid || Ordered(earlier, now, shared)) return false;
  if (!IsWrite(KindOf(earlier)) && !IsWrite(KindOf(now))) return false;
  return !(IsAtomic(KindOf(earlier)) && IsAtomic(KindOf(now)));
}

// An open-addressing map from a key to a T for the current launch: slots
// another launch took count as free.
template <class T>
class LaunchMap {
 public:
  void NextLaunch() {
    if (++launch_ == 0) {  // the numbers wrapped: free every slot once
      for (Slot& slot : slots_) slot.launch = 0;
      launch_ = 1;
    }
    used_ = 0;
  }
  // `key`'s value (a new one value-initialized), or null once `max` keys
  // are taken.
  T* Find(uintptr_t key, size_t max) {
    if (slots_.empty()) slots_.resize(size_t{1} << 10);
    for (size_t i = Index(key);; i = (i + 1) & (slots_.size() - 1)) {
      Slot& slot = slots_[i];
      if (slot.launch != launch_) {
        if (used_ >= max) return nullptr;
        if (2 * (used_ + 1) > slots_.size()) {
          Grow();
          return Find(key, max);
        }
        ++used_;
        slot.key = key, slot.launch = launch_, slot.value = T{};
        return &slot.value;
      }
      if (slot.key == key) return &slot.value;
    }
  }

 private:
  struct Slot {
    uintptr_t key = 0;
    uint32_t launch = 0;
    T value{};
  };
  size_t Index(uintptr_t key) const { return (key * 0x9e3779b97f4a7c15ull >> 20) & (slots_.size() - 1); }
  // Moves the launch's slots to a table twice the size (at most half full).
  void Grow() {
    std::vector<Slot> old(slots_.size() * 2);
    old.swap(slots_);
    for (const Slot& s : old) {
      if (s.launch != launch_) continue;
      size_t j = Index(s.key);
      while (slots_[j].launch == launch_) j = (j + 1) & (slots_.size() - 1);
      slots_[j] = s;
    }
  }
  std::vector<Slot> slots_;  // a power of two
  size_t used_ = 0;
  uint32_t launch_ = 0;
};

constexpr int kPageBits = 12;  // a page of cells covers 4 KiB of memory
constexpr size_t kPageCells = (size_t{1} << kPageBits) / 4;
constexpr size_t kMaxPages = 2048;            // 8 MiB of memory, 80 MiB of cells
constexpr size_t kMaxOddAddresses = 1 << 19;  // up to 2^20 slots of 56 bytes
struct Page {
  Cell cells[kPageCells];
};

// A plain write that met another thread's: settled by ThreadStopped.
struct SameValueWrite {
  uintptr_t address = 0;
  size_t size = 0;
  std::vector<unsigned char> earlier;  // the value the earlier write left
  Who first, second;
  bool shared = false;
};

const char* Verb(AccessKind k) {
  switch (k) {
    case AccessKind::kRead: return "reads";
    case AccessKind::kWrite: return "writes";
    case AccessKind::kAtomic: return "atomically updates";
    case AccessKind::kAtomicRead: return "reads (a compare-and-swap loop's first guess)";
  }
  return "accesses";
}
const char* PastVerb(AccessKind k) {
  switch (k) {
    case AccessKind::kRead: return "read";
    case AccessKind::kWrite: return "wrote";
    case AccessKind::kAtomic: return "atomically updated";
    case AccessKind::kAtomicRead: return "read";
  }
  return "accessed";
}

}  // namespace

struct RaceChecker::State {
  std::string kernel;
  uintptr_t shared_begin = 0, shared_end = 0;
  const std::vector<StaticVariable>* variables = nullptr;
  std::vector<LaunchBuffer> buffers;  // by begin
  std::vector<std::unique_ptr<Page>> pages;  // the first `pages_used` are the launch's
  size_t pages_used = 0;
  LaunchMap<uint32_t> page_of;  // page number -> 1 + its index in `pages`
  uintptr_t cached_page[2] = {0, 0};  // the last two pages looked up (number + 1, 0 for none)
  Page* cached[2] = {nullptr, nullptr};
  LaunchMap<Cell> odd;  // the cells of smaller or unaligned accesses
  std::vector<SameValueWrite> same_value_writes;
  std::string race;

  const LaunchBuffer* BufferOf(uintptr_t address) const {
    const auto it = std::upper_bound(buffers.begin(), buffers.end(), address,
                                     [](uintptr_t a, const LaunchBuffer& b) { return a < b.begin; });
    return it == buffers.begin() || address >= std::prev(it)->end ? nullptr : &*std::prev(it);
  }

  // The page holding `address`'s cell, or null past kMaxPages.
  Page* PageOf(uintptr_t address) {
    const uintptr_t number = (address >> kPageBits) + 1;
    if (cached_page[0] == number) return cached[0];
    if (cached_page[1] == number) {
      std::swap(cached_page[0], cached_page[1]);
      std::swap(cached[0], cached[1]);
      return cached[0];
    }
    uint32_t* index = page_of.Find(number, kMaxPages);
    if (index == nullptr) return nullptr;
    if (*index == 0) {
      if (pages_used == pages.size()) pages.push_back(std::make_unique<Page>());
      Page& page = *pages[pages_used];
      std::memset(static_cast<void*>(page.cells), 0, sizeof page.cells);
      *index = static_cast<uint32_t>(++pages_used);
    }
    cached_page[1] = cached_page[0], cached[1] = cached[0];
    cached_page[0] = number, cached[0] = pages[*index - 1].get();
    return cached[0];
  }

  Cell* CellOf(uintptr_t address, size_t size) {
    if (size >= 4 && address % 4 == 0) {
      Page* page = PageOf(address);
      return page == nullptr ? nullptr : &page->cells[(address >> 2) & (kPageCells - 1)];
    }
    return odd.Find(address, kMaxOddAddresses);
  }

  std::string Where(uintptr_t address, bool shared) const {
    if (shared) {
      if (variables != nullptr) {
        const auto it = std::upper_bound(variables->begin(), variables->end(), address,
                                         [](uintptr_t a, const StaticVariable& v) { return a < v.begin; });
        if (it != variables->begin() && address < std::prev(it)->begin + std::prev(it)->size) {
          return "shared memory (byte " + std::to_string(address - std::prev(it)->begin) + " of __shared__ " +
                 std::prev(it)->name + ")";
        }
      }
      return "shared memory (byte " + std::to_string(address - shared_begin) + " of the module's static data)";
    }
    const LaunchBuffer& b = *BufferOf(address);
    return "global memory (byte " + std::to_string(address - b.begin) + " from parameter " +
           std::to_string(b.parameter) + "'s pointer)";
  }

  void Report(uintptr_t address, bool shared, const Who& earlier, const Who& now) {
    const auto thread = [](const Who& w) {
      return "thread " + std::to_string(w.thread) + " of block " + std::to_string(w.block);
    };
    const std::string between =
        earlier.block == now.block
            ? "in the same interval between barriers (after " + std::to_string(now.epoch) + " __syncthreads)"
            : "from another block";
    race = "cuda-emu: a data race in kernel " + kernel + ": " + thread(now) + " " + Verb(KindOf(now)) + " " +
           Where(address, shared) + " that " + thread(earlier) + " " + PastVerb(KindOf(earlier)) + " " + between +
           ", and not both atomically: on a GPU the result depends on the order the threads run in";
  }
};

RaceChecker::RaceChecker() : state_(std::make_unique<State>()) {}
RaceChecker::~RaceChecker() = default;

const std::string& RaceChecker::Race() const { return state_->race; }

void RaceChecker::BeginLaunch(const std::string& kernel, uintptr_t shared_begin, uintptr_t shared_end,
                              const std::vector<StaticVariable>* variables, std::vector<LaunchBuffer> buffers) {
  State& s = *state_;
  s.kernel = kernel;
  s.shared_begin = shared_begin, s.shared_end = shared_end, s.variables = variables;
  s.buffers = std::move(buffers);
  std::sort(s.buffers.begin(), s.buffers.end(),
            [](const LaunchBuffer& a, const LaunchBuffer& b) { return a.begin < b.begin; });
  s.pages_used = 0;
  s.page_of.NextLaunch();
  s.odd.NextLaunch();
  s.cached_page[0] = s.cached_page[1] = 0;
  s.same_value_writes.clear();
  s.race.clear();
}

void RaceChecker::Access(uintptr_t address, size_t size, AccessKind kind, unsigned block, unsigned thread,
                         unsigned epoch) {
  State& s = *state_;
  if (!s.race.empty()) return;  // one report per launch
  const bool shared = address >= s.shared_begin && address < s.shared_end;
  if (!shared && s.BufferOf(address) == nullptr) return;
  Cell* found = s.CellOf(address, size);
  if (found == nullptr) return;
  Cell& cell = *found;
  Who now{};
  now.block = block, now.thread = thread, now.epoch = epoch, now.kind = static_cast<uint64_t>(kind), now.valid = 1;
  // A slot of two for `now`: the first unless it holds another thread's
  // access `now` does not follow for sure.
  const auto slot_for = [&](Who* slots) -> Who& {
    return !slots[0].valid || Ordered(slots[0], now, shared) ? slots[0] : slots[1];
  };
  if (Conflict(cell.write, now, shared)) {
    if (kind == AccessKind::kWrite) {
      // Racing writes of one value leave that value whatever the order:
      // settled once this thread stops, when its own value is in memory.
      const auto* p = reinterpret_cast<const unsigned char*>(address);
      s.same_value_writes.push_back({address, size, std::vector<unsigned char>(p, p + size), cell.write, now, shared});
    } else {
      return s.Report(address, shared, cell.write, now);
    }
  }
  switch (kind) {
    case AccessKind::kRead:
    case AccessKind::kWrite:
      for (const Who& a : cell.atomics) {
        if (Conflict(a, now, shared)) return s.Report(address, shared, a, now);
      }
      if (kind == AccessKind::kRead) {
        slot_for(cell.reads) = now;
        return;
      }
      [[fallthrough]];
    case AccessKind::kAtomic:
      for (const Who& r : cell.reads) {
        if (Conflict(r, now, shared)) return s.Report(address, shared, r, now);
      }
      (kind == AccessKind::kWrite ? cell.write : slot_for(cell.atomics)) = now;
      return;
    case AccessKind::kAtomicRead:
      // Not kept: it races only plain writes, and the atomic update that
      // follows it (the loop's compare-and-swap) meets those too.
      return;
  }
}

void RaceChecker::ThreadStopped() {
  State& s = *state_;
  for (const SameValueWrite& w : s.same_value_writes) {
    if (s.race.empty() && std::memcmp(reinterpret_cast<const void*>(w.address), w.earlier.data(), w.size) != 0) {
      s.Report(w.address, w.shared, w.first, w.second);
    }
  }
  s.same_value_writes.clear();
}

}  // namespace kiln::backends::cuda
