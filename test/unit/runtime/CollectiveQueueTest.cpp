// CollectiveQueueTest.cpp - collectives off the compute thread: order,
// waits for conflicting memory only, errors.
#include "runtime/core/CollectiveQueue.h"

#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <thread>
#include <vector>

using moec::rt::CollectiveQueue;
using moec::rt::MemorySpan;
using moec::rt::Status;

namespace {

/// An item that blocks until released (a collective waiting for the other
/// ranks).
struct Gate {
  std::promise<void> open;
  std::shared_future<void> opened = open.get_future().share();
  std::function<Status()> work(std::atomic<int> &finished) {
    auto wait = opened;
    return [wait, &finished] {
      wait.wait();
      ++finished;
      return Status::ok();
    };
  }
};

TEST(MemorySpanTest, OverlapIsByteRanges) {
  char bytes[16];
  EXPECT_TRUE((MemorySpan{bytes, 8}.overlaps({bytes + 7, 4})));
  EXPECT_FALSE((MemorySpan{bytes, 8}.overlaps({bytes + 8, 4})));
  EXPECT_FALSE((MemorySpan{bytes, 0}.overlaps({bytes, 16})));
}

TEST(CollectiveQueueTest, RunsItemsInOrder) {
  CollectiveQueue queue;
  std::vector<int> order;
  for (int i = 0; i < 50; ++i)
    queue.submit(
        [&order, i] {
          order.push_back(i);
          return Status::ok();
        },
        {}, {});
  ASSERT_TRUE(queue.drain());
  ASSERT_EQ(order.size(), 50u);
  for (int i = 0; i < 50; ++i)
    EXPECT_EQ(order[i], i);
  EXPECT_FALSE(queue.busy());
}

TEST(CollectiveQueueTest, WaitsOnlyForConflictingMemory) {
  float received[8], unrelated[8], sent[8];
  CollectiveQueue queue;
  // A step reading `reads` and writing `writes` while a collective that
  // sends `sent` into `received` is in flight: whether it has to wait.
  auto waits = [&](std::vector<MemorySpan> reads, std::vector<MemorySpan> writes) {
    std::atomic<int> finished{0};
    Gate gate;
    queue.submit(gate.work(finished), {{sent, sizeof(sent)}}, {{received, sizeof(received)}});
    auto waiter = std::async(std::launch::async, [&] {
      return queue.waitForConflicts(reads, writes).isOk() && finished.load() == 1;
    });
    bool blocked = waiter.wait_for(std::chrono::milliseconds(50)) == std::future_status::timeout;
    gate.open.set_value();
    bool ok = waiter.get();
    EXPECT_TRUE(queue.drain());
    // A waiter that went on did so before the collective finished.
    EXPECT_EQ(ok, blocked);
    return blocked;
  };
  EXPECT_FALSE(waits({{unrelated, sizeof(unrelated)}}, {{unrelated, sizeof(unrelated)}}));
  EXPECT_FALSE(waits({{sent, sizeof(sent)}}, {})); // both read it
  EXPECT_TRUE(waits({{received + 4, 4}}, {}));     // reads what it receives
  EXPECT_TRUE(waits({}, {{sent + 7, 4}}));         // overwrites what it sends
  EXPECT_TRUE(waits({}, {{received, 4}}));         // writes where it receives
  EXPECT_GE(queue.takeWaitSeconds(), 0.12);
  EXPECT_EQ(queue.takeWaitSeconds(), 0.0);
}

TEST(CollectiveQueueTest, AFailureSkipsTheRestAndReachesEveryWait) {
  CollectiveQueue queue;
  std::atomic<int> ran{0};
  queue.submit([] { return Status::error("rank 1 never reached it"); }, {}, {});
  queue.submit(
      [&ran] {
        ++ran;
        return Status::ok();
      },
      {}, {});
  Status drained = queue.drain();
  ASSERT_FALSE(drained);
  EXPECT_EQ(drained.message(), "rank 1 never reached it");
  EXPECT_EQ(ran.load(), 0);
  float x[4];
  EXPECT_FALSE(queue.waitForConflicts({{x, sizeof(x)}}, {}));
}

TEST(CollectiveQueueTest, DestructionWaitsForItemsInFlight) {
  std::atomic<int> finished{0};
  Gate gate;
  std::thread opener;
  {
    CollectiveQueue queue;
    queue.submit(gate.work(finished), {}, {});
    opener = std::thread([&] {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      gate.open.set_value();
    });
  }
  EXPECT_EQ(finished.load(), 1);
  opener.join();
}

} // namespace
