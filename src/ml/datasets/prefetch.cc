// Copyright 2026 The Kiln Authors.
// Prefetch: a producer thread reads the source into a bounded queue.
#include <condition_variable>
#include <deque>
#include <exception>
#include <mutex>
#include <thread>
#include <utility>

#include "kiln/ml/datasets/datasets.h"

namespace kiln::ml::datasets {

namespace {

// Reads one epoch of the source at a time on a background thread. The source
// is only ever touched by one thread at a time: the producer while it runs,
// the caller (Reset) after the producer has been joined.
class Prefetcher : public Dataset {
 public:
  Prefetcher(std::unique_ptr<Dataset> source, int depth)
      : source_(std::move(source)), depth_(static_cast<size_t>(depth)), name_(source_->Name()) {
    Start();
  }
  ~Prefetcher() override { Stop(); }
  Prefetcher(const Prefetcher&) = delete;
  Prefetcher& operator=(const Prefetcher&) = delete;

  std::string Name() const override { return name_; }
  bool Next(Batch& batch) override;
  void Reset() override;

 private:
  void Start();
  void Stop();
  void Produce();
  void Finish(std::exception_ptr error);

  std::unique_ptr<Dataset> source_;
  const size_t depth_;
  const std::string name_;  // Cached: Name() must not race with the producer.

  std::mutex mu_;
  std::condition_variable not_full_;   // The producer waits for room.
  std::condition_variable not_empty_;  // Next waits for a batch or the end.
  std::deque<Batch> queue_;
  bool done_ = false;  // The producer reached the end of the epoch or failed.
  bool stop_ = false;  // Asks the producer to quit (Reset, destructor).
  std::exception_ptr error_;
  std::thread producer_;
};

bool Prefetcher::Next(Batch& batch) {
  std::unique_lock lock(mu_);
  not_empty_.wait(lock, [&] { return !queue_.empty() || done_; });
  if (!queue_.empty()) {
    batch = std::move(queue_.front());
    queue_.pop_front();
    lock.unlock();
    not_full_.notify_one();
    return true;
  }
  // Batches produced before a failure are delivered first; the error then
  // stays until Reset, so a failed epoch never looks like a finished one.
  if (error_) std::rethrow_exception(error_);
  return false;
}

void Prefetcher::Reset() {
  Stop();
  {
    // Until the producer restarts, Next reports the end instead of waiting
    // (matters only if the source's Reset throws).
    std::lock_guard lock(mu_);
    queue_.clear();
    error_ = nullptr;
    done_ = true;
  }
  source_->Reset();
  Start();
}

void Prefetcher::Start() {
  {
    std::lock_guard lock(mu_);
    queue_.clear();
    done_ = false;
    stop_ = false;
    error_ = nullptr;
  }
  producer_ = std::thread(&Prefetcher::Produce, this);
}

void Prefetcher::Stop() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  not_full_.notify_all();
  if (producer_.joinable()) producer_.join();
}

void Prefetcher::Produce() {
  for (;;) {
    Batch batch;
    bool more = false;
    try {
      more = source_->Next(batch);
    } catch (...) {
      Finish(std::current_exception());
      return;
    }
    if (!more) {
      Finish(nullptr);
      return;
    }
    std::unique_lock lock(mu_);
    not_full_.wait(lock, [&] { return queue_.size() < depth_ || stop_; });
    if (stop_) return;
    queue_.push_back(std::move(batch));
    lock.unlock();
    not_empty_.notify_one();
  }
}

// Marks the epoch as over (with `error` if the source failed) and wakes Next.
void Prefetcher::Finish(std::exception_ptr error) {
  {
    std::lock_guard lock(mu_);
    done_ = true;
    error_ = std::move(error);
  }
  not_empty_.notify_all();
}

}  // namespace

std::unique_ptr<Dataset> Prefetch(std::unique_ptr<Dataset> source, int depth) {
  if (source == nullptr) Throw("Prefetch: the source dataset is null");
  if (depth < 1) {
    Throw("Prefetch(\"" + source->Name() + "\"): depth must be at least 1, got " + std::to_string(depth));
  }
  return std::make_unique<Prefetcher>(std::move(source), depth);
}

}  // namespace kiln::ml::datasets
