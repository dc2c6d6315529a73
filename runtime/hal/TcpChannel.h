// TcpChannel.h - ranks started by torchrun or Slurm meet over TCP.
#ifndef MOEC_RUNTIME_HAL_TCPCHANNEL_H
#define MOEC_RUNTIME_HAL_TCPCHANNEL_H

#include "runtime/hal/Channel.h"

#include <memory>
#include <string>
#include <vector>

namespace moec::rt::hal {

/// Where the ranks of a run meet: torchrun's and Slurm's environment.
struct Rendezvous {
  int rank = 0, size = 1;
  std::string address; // rank 0's host (MASTER_ADDR)
  int port = 0;        // where rank 0 listens (MASTER_PORT)
};

/// The rendezvous that `RANK`, `WORLD_SIZE`, `MASTER_ADDR` and `MASTER_PORT`
/// describe (as torchrun sets them); null when `WORLD_SIZE` is not set, an
/// error naming the variable when one is missing or malformed.
StatusOr<std::unique_ptr<Rendezvous>> rendezvousFromEnvironment();

/// Host memory between the processes of a run, through rank 0 (a star of
/// TCP connections): enough to bootstrap a device channel (NCCL's unique
/// id) and for moe-run's setup checks. It moves no device memory
/// (`reaches` nothing), so the executor never runs a collective step on it.
class TcpChannel final : public Channel {
public:
  /// Rank 0 listens on the rendezvous' port and waits for the others, which
  /// connect (retrying while rank 0 is not up yet); each waits at most
  /// `timeoutSeconds`, and collectives too.
  static StatusOr<std::unique_ptr<TcpChannel>> connect(const Rendezvous &rendezvous,
                                                       double timeoutSeconds);
  ~TcpChannel() override;

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  bool reaches(DeviceKind) const override { return false; }
  Status allReduce(Stream &, void *, size_t, DType, Reduction) override { return refuse(); }
  Status allGather(Stream &, const void *, size_t, void *) override { return refuse(); }
  Status allToAll(Stream &, const void *, const std::vector<size_t> &, const std::vector<size_t> &,
                  void *, const std::vector<size_t> &, const std::vector<size_t> &) override {
    return refuse();
  }
  /// Every rank's bytes, through rank 0, which checks that all send as many.
  Status allGatherHost(const void *send, size_t bytes, void *receive) override;
  /// Closes the connections (the other ranks' next collective fails, naming
  /// this rank) and ends the process.
  void abort(int exitCode) override;
  StatusOr<Channel *> group(const std::string &name, int, int) override;

private:
  TcpChannel(int rank, int size, double timeout) : rank_(rank), size_(size), timeout_(timeout) {}
  static Status refuse();

  int rank_, size_;
  double timeout_;
  /// Rank 0: the socket of rank q at [q] (-1 at [0]); another rank: rank
  /// 0's at [0].
  std::vector<int> sockets_;
};

} // namespace moec::rt::hal

#endif // MOEC_RUNTIME_HAL_TCPCHANNEL_H
