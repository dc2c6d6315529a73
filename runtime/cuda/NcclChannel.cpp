// NcclChannel.cpp - collectives between GPUs through NCCL, loaded at run time.
//
// NCCL's C API is declared here (the few entry points used, as NCCL 2.18+
// exports them), so that the runtime builds without NCCL's headers and
// loads the library only when a run asks for it, like the CUDA driver.
#include "runtime/cuda/NcclChannel.h"
#include "runtime/cuda/CudaStream.h"

#include <dlfcn.h>

#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <vector>

namespace moec::rt::cuda {
namespace {

using ncclComm = void *;
using ncclResult = int; // ncclResult_t: 0 is ncclSuccess
struct ncclUniqueId {
  char internal[128];
};
enum ncclDataType : int { ncclUint8 = 1, ncclInt32 = 2, ncclFloat32 = 7 };
enum ncclRedOp : int { ncclSum = 0, ncclAvg = 4 };

/// NCCL's entry points, resolved once.
struct NcclLibrary {
  void *handle = nullptr;
  int version = 0;
  ncclResult (*ncclGetVersion)(int *);
  ncclResult (*ncclGetUniqueId)(ncclUniqueId *);
  ncclResult (*ncclCommInitRank)(ncclComm *, int, ncclUniqueId, int);
  ncclResult (*ncclCommSplit)(ncclComm, int, int, ncclComm *, void *);
  ncclResult (*ncclCommDestroy)(ncclComm);
  ncclResult (*ncclCommAbort)(ncclComm);
  ncclResult (*ncclCommCount)(ncclComm, int *);
  ncclResult (*ncclCommUserRank)(ncclComm, int *);
  ncclResult (*ncclAllReduce)(const void *, void *, size_t, int, int, ncclComm, CUstream);
  ncclResult (*ncclAllGather)(const void *, void *, size_t, int, ncclComm, CUstream);
  ncclResult (*ncclSend)(const void *, size_t, int, int, ncclComm, CUstream);
  ncclResult (*ncclRecv)(void *, size_t, int, int, ncclComm, CUstream);
  ncclResult (*ncclGroupStart)();
  ncclResult (*ncclGroupEnd)();
  const char *(*ncclGetErrorString)(ncclResult);

  static StatusOr<std::shared_ptr<NcclLibrary>> load() {
    const char *override = std::getenv("MOEC_NCCL");
    std::string path = override && *override ? override : "libnccl.so.2";
    void *handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!handle) {
      const char *why = dlerror();
      return Status::error("the nccl channel cannot load " + path + " (" +
                           (why ? why : "not found") +
                           "); install NCCL or set MOEC_NCCL to its path");
    }
    auto library = std::make_shared<NcclLibrary>();
    library->handle = handle;
#define MOEC_NCCL_SYMBOL(name)                                                                     \
  library->name = reinterpret_cast<decltype(library->name)>(dlsym(handle, #name));                 \
  if (!library->name)                                                                              \
    return Status::error("NCCL " + path + " lacks " #name " (moe-run needs NCCL 2.18 or later)");
    MOEC_NCCL_SYMBOL(ncclGetVersion)
    MOEC_NCCL_SYMBOL(ncclGetUniqueId)
    MOEC_NCCL_SYMBOL(ncclCommInitRank)
    MOEC_NCCL_SYMBOL(ncclCommSplit)
    MOEC_NCCL_SYMBOL(ncclCommDestroy)
    MOEC_NCCL_SYMBOL(ncclCommAbort)
    MOEC_NCCL_SYMBOL(ncclCommCount)
    MOEC_NCCL_SYMBOL(ncclCommUserRank)
    MOEC_NCCL_SYMBOL(ncclAllReduce)
    MOEC_NCCL_SYMBOL(ncclAllGather)
    MOEC_NCCL_SYMBOL(ncclSend)
    MOEC_NCCL_SYMBOL(ncclRecv)
    MOEC_NCCL_SYMBOL(ncclGroupStart)
    MOEC_NCCL_SYMBOL(ncclGroupEnd)
    MOEC_NCCL_SYMBOL(ncclGetErrorString)
#undef MOEC_NCCL_SYMBOL
    library->ncclGetVersion(&library->version);
    return library;
  }

  Status check(ncclResult result, const std::string &what) const {
    if (result == 0)
      return Status::ok();
    const char *text = ncclGetErrorString ? ncclGetErrorString(result) : nullptr;
    return Status::error("NCCL " + what + ": " + (text ? text : "error " + std::to_string(result)));
  }
};

/// The CUDA stream a collective is queued on.
StatusOr<CUstream> cudaStream(hal::Stream &stream) {
  auto *cuda = dynamic_cast<CudaStream *>(&stream);
  if (!cuda)
    return Status::error("the nccl channel moves GPU memory on a CUDA stream; this run's device "
                         "is not a GPU (moe-run --device cuda)");
  return cuda->handle();
}

class NcclChannel final : public hal::Channel {
public:
  /// The run's channel: the communicator forms at the first collective.
  NcclChannel(std::shared_ptr<NcclLibrary> nccl, std::unique_ptr<hal::Channel> host)
      : nccl_(std::move(nccl)), host_(std::move(host)), rank_(host_->rank()), size_(host_->size()) {
  }
  /// A group split from a parent's communicator.
  NcclChannel(std::shared_ptr<NcclLibrary> nccl, ncclComm comm, int rank, int size)
      : nccl_(std::move(nccl)), comm_(comm), rank_(rank), size_(size) {}
  ~NcclChannel() override {
    groups_.clear();
    if (comm_)
      nccl_->ncclCommDestroy(comm_);
  }

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  bool reaches(hal::DeviceKind kind) const override { return kind == hal::DeviceKind::cuda; }

  Status allReduce(hal::Stream &stream, void *data, size_t count, DType dtype,
                   hal::Reduction reduction) override {
    if (dtype != DType::f32 && dtype != DType::i32)
      return Status::error("the nccl channel reduces f32 and i32 tensors only");
    if (reduction == hal::Reduction::average && dtype != DType::f32)
      return Status::error("the nccl channel averages f32 only");
    auto ready = prepare(stream);
    if (!ready)
      return ready.status();
    return nccl_->check(
        nccl_->ncclAllReduce(data, data, count, dtype == DType::f32 ? ncclFloat32 : ncclInt32,
                             reduction == hal::Reduction::sum ? ncclSum : ncclAvg, comm_, *ready),
        "all-reduce");
  }

  Status allGather(hal::Stream &stream, const void *send, size_t bytes, void *receive) override {
    auto ready = prepare(stream);
    if (!ready)
      return ready.status();
    return nccl_->check(nccl_->ncclAllGather(send, receive, bytes, ncclUint8, comm_, *ready),
                        "all-gather");
  }

  Status allToAll(hal::Stream &stream, const void *send, const std::vector<size_t> &sendOffsets,
                  const std::vector<size_t> &sendBytes, void *receive,
                  const std::vector<size_t> &recvOffsets,
                  const std::vector<size_t> &recvBytes) override {
    if (Status s = checkPerRank(sendOffsets, sendBytes, recvOffsets, recvBytes); !s)
      return s;
    const size_t n = static_cast<size_t>(size_);
    auto ready = prepare(stream);
    if (!ready)
      return ready.status();
    // Point-to-point pairs in one group: NCCL runs them together.
    if (Status s = nccl_->check(nccl_->ncclGroupStart(), "group start"); !s)
      return s;
    Status status = Status::ok();
    for (size_t q = 0; q < n && status; ++q) {
      if (sendBytes[q])
        status = nccl_->check(nccl_->ncclSend(static_cast<const char *>(send) + sendOffsets[q],
                                              sendBytes[q], ncclUint8, static_cast<int>(q), comm_,
                                              *ready),
                              "send");
      if (status && recvBytes[q])
        status = nccl_->check(nccl_->ncclRecv(static_cast<char *>(receive) + recvOffsets[q],
                                              recvBytes[q], ncclUint8, static_cast<int>(q), comm_,
                                              *ready),
                              "receive");
    }
    Status ended = nccl_->check(nccl_->ncclGroupEnd(), "all-to-all");
    return status ? ended : status;
  }

  Status allGatherHost(const void *send, size_t bytes, void *receive) override {
    if (!host_)
      return Status::error("the nccl channel of a group moves no host memory; the run's does");
    return host_->allGatherHost(send, bytes, receive);
  }

  void abort(int exitCode) override {
    if (comm_)
      nccl_->ncclCommAbort(comm_);
    comm_ = nullptr;
    if (host_)
      host_->abort(exitCode);
    std::_Exit(exitCode);
  }

  StatusOr<hal::Channel *> group(const std::string &name, int color, int key) override {
    if (auto it = groups_.find(name); it != groups_.end())
      return static_cast<hal::Channel *>(it->second.get());
    if (Status s = formCommunicator(); !s)
      return s;
    ncclComm child = nullptr;
    if (Status s = nccl_->check(nccl_->ncclCommSplit(comm_, color, key, &child, nullptr),
                                "could not form the group '" + name + "'");
        !s)
      return s;
    int rank = 0, size = 0;
    nccl_->ncclCommUserRank(child, &rank);
    nccl_->ncclCommCount(child, &size);
    auto &group = groups_[name];
    group = std::make_unique<NcclChannel>(nccl_, child, rank, size);
    return static_cast<hal::Channel *>(group.get());
  }

private:
  /// The stream, with the communicator formed.
  StatusOr<CUstream> prepare(hal::Stream &stream) {
    auto handle = cudaStream(stream);
    if (!handle)
      return handle.status();
    if (Status s = formCommunicator(); !s)
      return s;
    return *handle;
  }

  /// Rank 0's unique id reaches every rank over the host channel; every
  /// rank joins with the GPU whose context is current.
  Status formCommunicator() {
    if (comm_)
      return Status::ok();
    if (!host_)
      return Status::error("the nccl channel of a group has no communicator");
    ncclUniqueId mine{};
    if (rank_ == 0)
      if (Status s = nccl_->check(nccl_->ncclGetUniqueId(&mine), "could not create its id"); !s)
        return s;
    std::vector<ncclUniqueId> ids(size_);
    if (Status s = host_->allGatherHost(&mine, sizeof(mine), ids.data()); !s)
      return Status::error("the nccl channel could not share rank 0's id: " + s.message());
    return nccl_->check(nccl_->ncclCommInitRank(&comm_, size_, ids[0], rank_),
                        "could not form the communicator of " + std::to_string(size_) +
                            " ranks (NCCL " + std::to_string(nccl_->version) + ")");
  }

  std::shared_ptr<NcclLibrary> nccl_;
  std::unique_ptr<hal::Channel> host_; // the run's channel only
  ncclComm comm_ = nullptr;
  int rank_ = 0, size_ = 1;
  std::map<std::string, std::unique_ptr<NcclChannel>> groups_;
};

} // namespace

StatusOr<std::unique_ptr<hal::Channel>> openNcclChannel(std::unique_ptr<hal::Channel> host) {
  auto nccl = NcclLibrary::load();
  if (!nccl)
    return nccl.status();
  return std::unique_ptr<hal::Channel>(new NcclChannel(std::move(*nccl), std::move(host)));
}

} // namespace moec::rt::cuda
