// CollectiveQueue.cpp - an executor's collectives, run off the compute thread.
#include "runtime/core/CollectiveQueue.h"

#include <chrono>
#include <exception>
#include <string>

namespace moec::rt {

bool MemorySpan::overlaps(const MemorySpan &other) const {
  auto a = reinterpret_cast<uintptr_t>(begin), b = reinterpret_cast<uintptr_t>(other.begin);
  return bytes && other.bytes && a < b + other.bytes && b < a + bytes;
}

CollectiveQueue::~CollectiveQueue() {
  {
    std::unique_lock<std::mutex> lock(mutex_);
    (void)waitUntilDone(lock, submitted_);
    stopping_ = true;
  }
  queued_.notify_all();
  if (thread_.joinable())
    thread_.join();
}

void CollectiveQueue::submit(std::function<Status()> work, std::vector<MemorySpan> reads,
                             std::vector<MemorySpan> writes) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    // The thread first: an item queued without one would never finish.
    if (!thread_.joinable())
      thread_ = std::thread([this] { serve(); });
    items_.push_back({++submitted_, std::move(work), std::move(reads), std::move(writes)});
  }
  queued_.notify_one();
}

void CollectiveQueue::serve() {
  std::unique_lock<std::mutex> lock(mutex_);
  for (;;) {
    queued_.wait(lock, [&] { return stopping_ || !items_.empty(); });
    if (items_.empty())
      return; // stopping, nothing left
    // The item stays at the front (in flight) while it runs.
    std::function<Status()> work = std::move(items_.front().work);
    bool skip = !error_.isOk() || cancelled_;
    lock.unlock();
    Status status = Status::ok();
    if (!skip) {
      try {
        status = work();
      } catch (const std::exception &e) {
        status = Status::error(std::string("a collective failed: ") + e.what());
      }
    }
    lock.lock();
    if (!status && error_.isOk())
      error_ = std::move(status);
    items_.pop_front();
    ++done_;
    finished_.notify_all();
  }
}

Status CollectiveQueue::waitUntilDone(std::unique_lock<std::mutex> &lock, uint64_t id) {
  if (done_ < id) {
    auto start = std::chrono::steady_clock::now();
    finished_.wait(lock, [&] { return done_ >= id; });
    waited_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  }
  return error_;
}

Status CollectiveQueue::waitForConflicts(const std::vector<MemorySpan> &reads,
                                         const std::vector<MemorySpan> &writes) {
  std::unique_lock<std::mutex> lock(mutex_);
  auto touches = [](const std::vector<MemorySpan> &spans, const std::vector<MemorySpan> &others) {
    for (const MemorySpan &a : spans)
      for (const MemorySpan &b : others)
        if (a.overlaps(b))
          return true;
    return false;
  };
  // The last item in flight that conflicts: waiting for it waits for all
  // before it.
  uint64_t last = 0;
  for (const Item &item : items_)
    if (touches(item.writes, reads) || touches(item.writes, writes) || touches(item.reads, writes))
      last = item.id;
  return waitUntilDone(lock, last);
}

Status CollectiveQueue::drain() {
  std::unique_lock<std::mutex> lock(mutex_);
  return waitUntilDone(lock, submitted_);
}

void CollectiveQueue::cancel() {
  std::unique_lock<std::mutex> lock(mutex_);
  cancelled_ = true;
  (void)waitUntilDone(lock, submitted_);
  cancelled_ = false;
}

void CollectiveQueue::reset() {
  std::lock_guard<std::mutex> lock(mutex_);
  error_ = Status::ok();
}

bool CollectiveQueue::busy() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return !items_.empty();
}

double CollectiveQueue::takeWaitSeconds() {
  std::lock_guard<std::mutex> lock(mutex_);
  double waited = waited_;
  waited_ = 0;
  return waited;
}

} // namespace moec::rt
