// MpiChannel.cpp - collectives among the processes of an MPI job.
#include "runtime/mpi/MpiChannel.h"
#include "runtime/hal/Stream.h"

#include <mpi.h>

#include <chrono>
#include <climits>
#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace moec::rt::hal {
namespace {

/// The tag of the messages that announce "this rank reached collective n".
constexpr int kArrivalTag = 7001;

class MpiChannel final : public Channel {
public:
  /// `world`: the channel of every process, which finalises MPI when it goes.
  /// `worldRanks[q]`: the job's rank of this communicator's rank q (for
  /// messages; empty: the communicator is the job's).
  MpiChannel(MPI_Comm comm, double timeoutSeconds, bool world, std::vector<int> worldRanks = {})
      : comm_(comm), timeout_(timeoutSeconds), world_(world), worldRanks_(std::move(worldRanks)) {
    MPI_Comm_rank(comm_, &rank_);
    MPI_Comm_size(comm_, &size_);
    lastArrival_.assign(size_, 0);
    if (worldRanks_.empty())
      for (int q = 0; q < size_; ++q)
        worldRanks_.push_back(q);
  }
  ~MpiChannel() override {
    groups_.clear(); // their communicators go before MPI does
    MPI_Comm_free(&comm_);
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (world_ && !finalized)
      MPI_Finalize();
  }

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  bool reaches(DeviceKind kind) const override {
    return kind == DeviceKind::cpu || kind == DeviceKind::cudaEmu;
  }

  Status allReduce(Stream &stream, void *data, size_t count, DType dtype,
                   Reduction reduction) override {
    if (dtype != DType::f32 && dtype != DType::i32)
      return Status::error("the mpi channel reduces f32 and i32 tensors only");
    if (reduction == Reduction::average && dtype != DType::f32)
      return Status::error("the mpi channel averages f32 only");
    // Every rank's values, then the sum in rank order: the same bits on
    // every rank, whatever algorithm MPI would have chosen.
    size_t bytes = count * 4;
    gathered_.resize(bytes * size_);
    if (Status s = gather(stream, data, bytes, gathered_.data(), "all-reduce"); !s)
      return s;
    if (dtype == DType::f32)
      reduceInRankOrder<float>(static_cast<float *>(data), count, reduction);
    else
      reduceInRankOrder<int32_t>(static_cast<int32_t *>(data), count, reduction);
    return Status::ok();
  }

  Status allGather(Stream &stream, const void *send, size_t bytes, void *receive) override {
    return gather(stream, send, bytes, receive, "all-gather");
  }

  Status allToAll(Stream &stream, const void *send, const std::vector<size_t> &sendOffsets,
                  const std::vector<size_t> &sendBytes, void *receive,
                  const std::vector<size_t> &recvOffsets,
                  const std::vector<size_t> &recvBytes) override {
    if (Status s = checkPerRank(sendOffsets, sendBytes, recvOffsets, recvBytes); !s)
      return s;
    const size_t n = static_cast<size_t>(size_);
    if (Status s = stream.synchronize(); !s)
      return s;
    std::vector<int> sc(n), sd(n), rc(n), rd(n);
    for (size_t q = 0; q < n; ++q) {
      if (sendBytes[q] > INT_MAX || recvBytes[q] > INT_MAX || sendOffsets[q] > INT_MAX ||
          recvOffsets[q] > INT_MAX)
        return Status::error("the mpi channel moves at most 2 GiB per rank in one all-to-all");
      sc[q] = static_cast<int>(sendBytes[q]);
      sd[q] = static_cast<int>(sendOffsets[q]);
      rc[q] = static_cast<int>(recvBytes[q]);
      rd[q] = static_cast<int>(recvOffsets[q]);
    }
    return collective("all-to-all", [&](MPI_Request *request) {
      return MPI_Ialltoallv(send, sc.data(), sd.data(), MPI_BYTE, receive, rc.data(), rd.data(),
                            MPI_BYTE, comm_, request);
    });
  }

  Status allGatherHost(const void *send, size_t bytes, void *receive) override {
    if (bytes > INT_MAX)
      return Status::error("the mpi channel gathers at most 2 GiB per rank at once");
    return collective("all-gather", [&](MPI_Request *request) {
      return MPI_Iallgather(send, static_cast<int>(bytes), MPI_BYTE, receive,
                            static_cast<int>(bytes), MPI_BYTE, comm_, request);
    });
  }

  void abort(int exitCode) override { MPI_Abort(comm_, exitCode); }

  StatusOr<Channel *> group(const std::string &name, int color, int key) override {
    if (auto it = groups_.find(name); it != groups_.end())
      return static_cast<Channel *>(it->second.get());
    MPI_Comm comm;
    if (int code = MPI_Comm_split(comm_, color, key, &comm); code != MPI_SUCCESS)
      return Status::error("MPI could not form the group '" + name + "': " + errorString(code));
    MPI_Comm_set_errhandler(comm, MPI_ERRORS_RETURN);
    // The job's rank of each member, for messages that name ranks.
    int size = 0, mine = worldRanks_[rank_];
    MPI_Comm_size(comm, &size);
    std::vector<int> members(size);
    MPI_Allgather(&mine, 1, MPI_INT, members.data(), 1, MPI_INT, comm);
    auto &group = groups_[name];
    group = std::make_unique<MpiChannel>(comm, timeout_, /*world=*/false, std::move(members));
    return static_cast<Channel *>(group.get());
  }

private:
  template <typename T> void reduceInRankOrder(T *data, size_t count, Reduction reduction) {
    const T *all = reinterpret_cast<const T *>(gathered_.data());
    for (size_t i = 0; i < count; ++i) {
      T sum = all[i];
      for (int r = 1; r < size_; ++r)
        sum += all[r * count + i];
      data[i] = reduction == Reduction::average ? sum / static_cast<T>(size_) : sum;
    }
  }

  Status gather(Stream &stream, const void *send, size_t bytes, void *receive, const char *what) {
    if (bytes > INT_MAX)
      return Status::error(std::string("the mpi channel moves at most 2 GiB per rank in one ") +
                           what);
    // Kernels queued before the collective have written `send`.
    if (Status s = stream.synchronize(); !s)
      return s;
    return collective(what, [&](MPI_Request *request) {
      return MPI_Iallgather(send, static_cast<int>(bytes), MPI_BYTE, receive,
                            static_cast<int>(bytes), MPI_BYTE, comm_, request);
    });
  }

  /// Starts a non-blocking collective and waits for it, at most the timeout.
  /// Before it, the rank tells every other one that it reached collective n;
  /// on a timeout, the ranks whose announcement of n has not arrived are the
  /// ones that died or hang.
  template <typename Start> Status collective(const char *what, Start start) {
    uint64_t sequence = ++sequence_;
    std::vector<MPI_Request> announcements;
    for (int q = 0; q < size_; ++q)
      if (q != rank_) {
        announcements.emplace_back();
        MPI_Isend(&sequence_, 1, MPI_UINT64_T, q, kArrivalTag, comm_, &announcements.back());
      }
    MPI_Request request;
    if (int code = start(&request); code != MPI_SUCCESS)
      return Status::error(std::string("MPI could not start the ") + what + ": " +
                           errorString(code));
    auto deadline = std::chrono::steady_clock::now() +
                    std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                        std::chrono::duration<double>(timeout_));
    auto pause = std::chrono::microseconds(1);
    for (;;) {
      int done = 0;
      if (int code = MPI_Test(&request, &done, MPI_STATUS_IGNORE); code != MPI_SUCCESS)
        return Status::error(std::string("the ") + what + " failed in MPI: " + errorString(code));
      if (done)
        break;
      receiveArrivals();
      if (std::chrono::steady_clock::now() > deadline)
        return Status::error(timeoutMessage(what, sequence));
      std::this_thread::sleep_for(pause);
      pause = std::min(pause * 2, std::chrono::microseconds(100));
    }
    MPI_Waitall(static_cast<int>(announcements.size()), announcements.data(), MPI_STATUSES_IGNORE);
    // Everyone reached it: their announcements are sent; take them.
    for (int q = 0; q < size_; ++q)
      while (q != rank_ && lastArrival_[q] < sequence) {
        uint64_t n = 0;
        MPI_Recv(&n, 1, MPI_UINT64_T, q, kArrivalTag, comm_, MPI_STATUS_IGNORE);
        lastArrival_[q] = n;
      }
    return Status::ok();
  }

  void receiveArrivals() {
    for (;;) {
      int pending = 0;
      MPI_Status status;
      MPI_Iprobe(MPI_ANY_SOURCE, kArrivalTag, comm_, &pending, &status);
      if (!pending)
        return;
      uint64_t n = 0;
      MPI_Recv(&n, 1, MPI_UINT64_T, status.MPI_SOURCE, kArrivalTag, comm_, MPI_STATUS_IGNORE);
      lastArrival_[status.MPI_SOURCE] = n;
    }
  }

  std::string timeoutMessage(const char *what, uint64_t sequence) const {
    std::string missing;
    for (int q = 0; q < size_; ++q)
      if (q != rank_ && lastArrival_[q] < sequence)
        missing += (missing.empty() ? "" : ", ") + std::to_string(worldRanks_[q]);
    char seconds[32];
    std::snprintf(seconds, sizeof(seconds), "%g", timeout_);
    return std::string("the ") + what + " (collective " + std::to_string(sequence) +
           " of this run) waited " + seconds + " s for the other ranks" +
           (missing.empty()
                ? std::string()
                : "; rank" + std::string(missing.find(',') == std::string::npos ? " " : "s ") +
                      missing + " never reached it (died or hangs)") +
           " (moe-run --collective-timeout sets the limit)";
  }

  static std::string errorString(int code) {
    char text[MPI_MAX_ERROR_STRING];
    int length = 0;
    MPI_Error_string(code, text, &length);
    return std::string(text, length);
  }

  MPI_Comm comm_;
  double timeout_;
  int rank_ = 0, size_ = 1;
  uint64_t sequence_ = 0;
  std::vector<uint64_t> lastArrival_; // per rank: the last collective it announced
  std::vector<uint8_t> gathered_;
  bool world_ = false;
  std::vector<int> worldRanks_;
  std::map<std::string, std::unique_ptr<MpiChannel>> groups_;
};

} // namespace
} // namespace moec::rt::hal

extern "C" moec::rt::hal::Channel *moecCreateMpiChannel(double timeoutSeconds, char *error,
                                                        size_t errorBytes) {
  auto fail = [&](const std::string &message) -> moec::rt::hal::Channel * {
    std::snprintf(error, errorBytes, "%s", message.c_str());
    return nullptr;
  };
  // The executor runs collectives on a thread of their own (one at a time,
  // never beside the setup's calls on the main thread): MPI must allow calls
  // from any thread, serialised.
  int initialized = 0, provided = 0;
  MPI_Initialized(&initialized);
  if (!initialized) {
    if (MPI_Init_thread(nullptr, nullptr, MPI_THREAD_SERIALIZED, &provided) != MPI_SUCCESS)
      return fail("MPI_Init_thread failed");
  } else {
    MPI_Query_thread(&provided);
  }
  if (provided < MPI_THREAD_SERIALIZED)
    return fail("this MPI library gives no thread support (MPI_THREAD_SERIALIZED), which the "
                "mpi channel needs to run collectives beside compute");
  // Errors come back as codes (reported as moe-run errors), not aborts.
  MPI_Comm comm;
  MPI_Comm_dup(MPI_COMM_WORLD, &comm);
  MPI_Comm_set_errhandler(comm, MPI_ERRORS_RETURN);
  return new moec::rt::hal::MpiChannel(comm, timeoutSeconds, /*world=*/true);
}
