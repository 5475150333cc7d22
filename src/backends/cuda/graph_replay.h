// Copyright 2026 The Kiln Authors.
// Whole executables recorded once and replayed as CUDA graphs: the policy,
// the call keys, the slots and the fallbacks, a template over the CUDA
// backend's device interface, which captures and launches the graphs (on
// a GPU, or on the emulator's runtime in CI, emulator.h).
//
// A recording is made for one "call key": each argument's device address,
// and whether the program may write it (donated and held by nobody else),
// which decides the in-place updates. A later call with the same key runs
// the recording: one launch instead of one per step. Every address the
// recorded work touches is then fixed:
//   - the arguments: the key's addresses (a replay reads whatever the
//     caller's buffers at those addresses hold, and updates donated ones in
//     place, exactly as the recorded run would);
//   - the constants: the executable's;
//   - the intermediates: the recording's own memory (CUDA's graph memory);
//   - the outputs the program allocates: each recorded run ends by copying
//     them into "slots", fixed buffers of the recording, and every replay
//     copies each slot into a fresh buffer for the caller, so a result the
//     caller keeps is never overwritten by the next replay.
// The recording run itself executes nothing: it runs the program on views
// of the arguments (same addresses, never freed), so the caller's buffers
// stay untouched until the replay that follows it.
//
// An argument the program only reads whose address changed from one call
// to the next (a fresh batch each train step) is "moving": from then on it
// is not part of the key; recordings read it from an input slot of theirs,
// into which each replay first copies the caller's buffer (up to
// kMaxInputSlotBytes; larger ones stay in the key). Arguments whose
// address repeats (weights, donated variables updated in place) are read
// where they are, with no copy.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "kiln/core/error.h"
#include "src/backends/cuda/codegen.h"
#include "src/backends/cuda/program_runner.h"

namespace kiln::backends::cuda {

/// When executables record their programs (KILN_CUDA_GRAPHS).
enum class GraphPolicy : uint8_t {
  kOff,     // "off": never
  kRepeat,  // the default: when a call has the same key as the call before it (and
            // the program has kMinRecordedLaunches launches)
  kAlways,  // "always": at the first call of each key (tests)
};

/// KILN_CUDA_GRAPHS=off|always, else kRepeat. Throws on other values.
inline GraphPolicy GraphPolicyFromEnvironment() {
  const char* v = std::getenv("KILN_CUDA_GRAPHS");
  if (v == nullptr || *v == '\0' || std::string(v) == "repeat") return GraphPolicy::kRepeat;
  if (std::string(v) == "off" || std::string(v) == "0") return GraphPolicy::kOff;
  if (std::string(v) == "always") return GraphPolicy::kAlways;
  Throw(std::string("KILN_CUDA_GRAPHS must be off, repeat or always; got \"") + v + "\"");
}

/// Whether `p` can be recorded: its steps never wait for the host (library
/// calls with host workspaces or host copies, While and If reading their
/// predicates on the host are not recorded).
inline bool Recordable(const Program& p) {
  for (const Step& s : p.steps) {
    if (s.kind == StepKind::kLibrary || s.kind == StepKind::kWhile || s.kind == StepKind::kIf ||
        s.kind == StepKind::kTupleElement) {
      return false;
    }
  }
  return true;
}

/// Launches (kernels and products) a program needs before the kRepeat
/// policy records it: a replay costs a graph launch plus an allocation and
/// a copy per output the program allocates, so a program of a launch or two
/// runs faster step by step.
inline constexpr int kMinRecordedLaunches = 4;

/// The kernel launches, products and convolutions of a program's steps.
inline int Launches(const Program& p) {
  int n = 0;
  for (const Step& s : p.steps) {
    n += s.kind == StepKind::kKernel || s.kind == StepKind::kUpdate || s.kind == StepKind::kMatmul ||
         s.kind == StepKind::kConv;
  }
  return n;
}

/// The largest moving argument copied into an input slot on each replay.
inline constexpr size_t kMaxInputSlotBytes = size_t{64} << 20;

/// Counters of recordings and replays since the process started (all
/// executables).
struct GraphStats {
  int64_t recorded = 0, replayed = 0, record_failures = 0;
  int64_t replay_failures = 0;  // launches of a recording that failed (then step by step)
};
/// The counters now.
GraphStats GetGraphStats();
/// Adds one to `counter` (Replays calls it).
void CountGraphEvent(int64_t GraphStats::*counter);

/// The recordings of one executable. `Mem` is RunProgram's memory block;
/// `Graph` the device's recorded work. The device provides, beyond
/// RunProgram's interface:
///   std::shared_ptr<Mem> View(const Mem&);      // same address, never freed
///   std::shared_ptr<Mem> AllocateFixed(size_t); // outside any recording
///   void BeginRecording();                      // Allocate/Launch/Matmul/Conv/Copy are recorded from here
///   Graph EndRecording();                       // throws if the recording failed
///   void AbandonRecording();                    // after an exception between Begin and End
///   void Replay(Graph&);
///   void Copy(void* dst, const void* src, size_t bytes);  // device to device, in order
template <class Mem, class Graph>
class Replays {
 public:
  Replays(const Program& p, GraphPolicy policy)
      : enabled_(policy != GraphPolicy::kOff && Recordable(p) &&
                 (policy == GraphPolicy::kAlways || Launches(p) >= kMinRecordedLaunches)),
        policy_(policy) {}

  /// Runs `p` on `args` (Execute's memory, in parameter order; the caller
  /// holds no other references), from a recording where the policy allows.
  template <class Device>
  std::vector<std::shared_ptr<Mem>> Run(const Program& p, const std::vector<int>& last_use,
                                        const std::vector<std::shared_ptr<Mem>>& constants,
                                        std::vector<std::shared_ptr<Mem>> args, const std::vector<bool>& donate,
                                        Device& device) {
    if (!enabled_) return RunWithArguments(p, last_use, constants, std::move(args), donate, device);
    Key key;
    const bool first_call = moving_.empty();
    moving_.resize(args.size(), false);
    for (size_t i = 0; i < args.size(); ++i) {
      const bool writable = !donate.empty() && donate[i] && args[i].use_count() == 1;
      if (!first_call && !writable && args[i]->ptr != last_addresses_[i] && args[i]->bytes <= kMaxInputSlotBytes) {
        moving_[i] = true;
      }
      // A moving argument's address is not part of the key (null: read
      // from an input slot).
      key.addresses.push_back(moving_[i] && !writable ? nullptr : args[i]->ptr);
      key.writable.push_back(writable);
    }
    last_addresses_.clear();
    for (const std::shared_ptr<Mem>& a : args) last_addresses_.push_back(a->ptr);
    Recording* r = Find(key);
    if (r == nullptr) {
      const bool wanted = policy_ == GraphPolicy::kAlways || (has_last_ && key == last_key_);
      last_key_ = key;
      has_last_ = true;
      if (wanted) r = Record(p, last_use, constants, args, key, device);
      if (r == nullptr) return RunWithArguments(p, last_use, constants, std::move(args), donate, device);
    }
    r->last_use = ++clock_;
    try {
      for (size_t i = 0; i < args.size(); ++i) {
        if (r->inputs[i]) device.Copy(r->inputs[i]->ptr, args[i]->ptr, r->inputs[i]->bytes);
      }
      device.Replay(r->graph);
    } catch (const std::exception&) {
      // A launch that fails (on a GPU: the graph's own memory cannot be
      // had) changed nothing the caller sees; the recordings go and the
      // program runs step by step from now on, as after a failed recording.
      recordings_.clear();
      enabled_ = false;
      CountGraphEvent(&GraphStats::replay_failures);
      return RunWithArguments(p, last_use, constants, std::move(args), donate, device);
    }
    CountGraphEvent(&GraphStats::replayed);
    std::vector<std::shared_ptr<Mem>> outputs;
    for (const Source& s : r->outputs) {
      switch (s.kind) {
        case Source::kArgument: outputs.push_back(args[s.index]); break;
        case Source::kConstant: outputs.push_back(constants[s.index]); break;
        case Source::kSlot: {
          const std::shared_ptr<Mem>& slot = r->slots[s.index];
          std::shared_ptr<Mem> fresh = device.Allocate(slot->bytes);
          if (slot->bytes > 0) device.Copy(fresh->ptr, slot->ptr, slot->bytes);
          outputs.push_back(std::move(fresh));
          break;
        }
      }
    }
    return outputs;  // arguments not returned are released after the replay, in stream order
  }

  /// Recordings kept per executable (the least recently used goes first).
  static constexpr size_t kMaxRecordings = 2;

 private:
  struct Key {
    std::vector<const void*> addresses;
    std::vector<bool> writable;
    bool operator==(const Key& o) const { return addresses == o.addresses && writable == o.writable; }
  };
  struct Source {
    enum Kind : uint8_t { kArgument, kConstant, kSlot } kind;
    size_t index;
  };
  struct Recording {
    Key key;
    Graph graph;
    std::vector<Source> outputs;
    std::vector<std::shared_ptr<Mem>> slots;
    std::vector<std::shared_ptr<Mem>> inputs;  // per argument: its input slot (null: read in place)
    uint64_t last_use = 0;
  };

  Recording* Find(const Key& key) {
    for (const std::unique_ptr<Recording>& r : recordings_) {
      if (r->key == key) return r.get();
    }
    return nullptr;
  }

  // Records `p` on views of `args`; nullptr (and no more recordings for this
  // executable) if the device cannot record it.
  template <class Device>
  Recording* Record(const Program& p, const std::vector<int>& last_use,
                    const std::vector<std::shared_ptr<Mem>>& constants, const std::vector<std::shared_ptr<Mem>>& args,
                    const Key& key, Device& device) {
    auto r = std::make_unique<Recording>();
    r->key = key;
    std::vector<std::shared_ptr<Mem>> views;
    std::vector<const void*> recorded;  // each argument's address in the recording
    std::vector<std::shared_ptr<Mem>> slots;
    try {
      for (size_t i = 0; i < args.size(); ++i) {
        const bool slotted = key.addresses[i] == nullptr && args[i]->bytes > 0;
        r->inputs.push_back(slotted ? device.AllocateFixed(args[i]->bytes) : nullptr);
        views.push_back(device.View(slotted ? *r->inputs.back() : *args[i]));
        recorded.push_back(views.back()->ptr);
      }
      // A slot for every output, allocated before recording starts; those
      // that turn out to be arguments or constants are dropped after it.
      for (int o : p.function.outputs) {
        const shapes::Shape& shape = p.function.instructions[static_cast<size_t>(o)].shape;
        slots.push_back(device.AllocateFixed(static_cast<size_t>(shape.ByteSize())));
      }
      device.BeginRecording();
      try {
        std::vector<std::shared_ptr<Mem>> outs =
            RunWithArguments(p, last_use, constants, std::move(views), key.writable, device);
        for (size_t j = 0; j < outs.size(); ++j) {
          r->outputs.push_back(Classify(*outs[j], recorded, constants, slots[j]->bytes));
          if (r->outputs.back().kind != Source::kSlot) continue;
          if (slots[j]->bytes > 0) device.Copy(slots[j]->ptr, outs[j]->ptr, slots[j]->bytes);
          r->outputs.back().index = r->slots.size();
          r->slots.push_back(slots[j]);
        }
        outs.clear();  // the recording frees its own memory
        r->graph = device.EndRecording();
      } catch (...) {
        device.AbandonRecording();
        throw;
      }
    } catch (const std::exception&) {
      enabled_ = false;  // run the program step by step from now on
      CountGraphEvent(&GraphStats::record_failures);
      return nullptr;
    }
    CountGraphEvent(&GraphStats::recorded);
    if (recordings_.size() == kMaxRecordings) {
      size_t oldest = 0;
      for (size_t i = 1; i < recordings_.size(); ++i) {
        if (recordings_[i]->last_use < recordings_[oldest]->last_use) oldest = i;
      }
      recordings_.erase(recordings_.begin() + static_cast<std::ptrdiff_t>(oldest));
    }
    recordings_.push_back(std::move(r));
    return recordings_.back().get();
  }

  // Where a recorded output lives: an argument's (at its recorded address:
  // its buffer, or its input slot) or a constant's memory (passed through
  // or updated in place), else memory of the recording.
  static Source Classify(const Mem& out, const std::vector<const void*>& recorded,
                         const std::vector<std::shared_ptr<Mem>>& constants, size_t bytes) {
    if (bytes > 0) {
      for (size_t i = 0; i < recorded.size(); ++i) {
        if (recorded[i] == out.ptr) return {Source::kArgument, i};
      }
      for (size_t c = 0; c < constants.size(); ++c) {
        if (constants[c] && constants[c]->ptr == out.ptr) return {Source::kConstant, c};
      }
    }
    return {Source::kSlot, 0};
  }

  bool enabled_;
  GraphPolicy policy_;
  std::vector<std::unique_ptr<Recording>> recordings_;
  Key last_key_;
  bool has_last_ = false;
  std::vector<const void*> last_addresses_;  // of the last call's arguments
  std::vector<bool> moving_;                 // per argument: read from input slots (sticky)
  uint64_t clock_ = 0;
};

}  // namespace kiln::backends::cuda
