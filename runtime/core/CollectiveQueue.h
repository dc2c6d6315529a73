// CollectiveQueue.h - an executor's collectives, run off the compute thread.
#ifndef MOEC_RUNTIME_CORE_COLLECTIVEQUEUE_H
#define MOEC_RUNTIME_CORE_COLLECTIVEQUEUE_H

#include "runtime/core/Status.h"

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace moec::rt {

/// Bytes [begin, begin + bytes) of host-visible memory.
struct MemorySpan {
  const void *begin = nullptr;
  size_t bytes = 0;
  bool overlaps(const MemorySpan &other) const;
};

/// Runs queued work (collectives) on a thread of its own, one item at a time
/// in the order queued (every rank issues its collectives in the same
/// order), while the thread that queued it goes on computing. Each item says
/// which memory it reads and writes; before the compute thread touches
/// memory, it waits for the items still in flight whose memory that is
/// (waitForConflicts), so the program computes what running every step in
/// order computes. After an item fails, the later ones are skipped (the
/// other ranks are out of step) and every wait returns that error.
class CollectiveQueue {
public:
  CollectiveQueue() = default;
  CollectiveQueue(const CollectiveQueue &) = delete;
  CollectiveQueue &operator=(const CollectiveQueue &) = delete;
  /// Waits for the queued items and stops the thread.
  ~CollectiveQueue();

  /// Queues `work`, which reads `reads` and writes `writes`; the thread
  /// starts with the first item.
  void submit(std::function<Status()> work, std::vector<MemorySpan> reads,
              std::vector<MemorySpan> writes);
  /// Waits for every item in flight that writes memory in `reads` or reads
  /// or writes memory in `writes` (and for the items queued before it).
  /// The first error of any item so far.
  Status waitForConflicts(const std::vector<MemorySpan> &reads,
                          const std::vector<MemorySpan> &writes);
  /// Waits for every item queued; the first error of any.
  Status drain();
  /// Skips the items not started yet and waits for the one running (after
  /// an error on the compute thread: nothing may touch the executor's
  /// memory, or call the channel, once it returns).
  void cancel();
  /// Forgets the error of an earlier run (nothing is queued then).
  void reset();
  /// Whether items are queued or running.
  bool busy() const;
  /// Seconds the callers of the waits spent waiting, since the last call.
  double takeWaitSeconds();

private:
  struct Item {
    uint64_t id;
    std::function<Status()> work;
    std::vector<MemorySpan> reads, writes;
  };
  void serve();
  /// Waits until item `id` (and so every item before it) has finished.
  Status waitUntilDone(std::unique_lock<std::mutex> &lock, uint64_t id);

  mutable std::mutex mutex_;
  std::condition_variable queued_, finished_;
  std::deque<Item> items_; // queued or running, in order
  uint64_t submitted_ = 0, done_ = 0;
  Status error_ = Status::ok();
  bool stopping_ = false;
  bool cancelled_ = false; // skip what is queued
  double waited_ = 0;
  std::thread thread_;
};

} // namespace moec::rt

#endif // MOEC_RUNTIME_CORE_COLLECTIVEQUEUE_H
