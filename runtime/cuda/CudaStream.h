// CudaStream.h - a CUDA stream and event of the driver API.
#ifndef MOEC_RUNTIME_CUDA_CUDASTREAM_H
#define MOEC_RUNTIME_CUDA_CUDASTREAM_H

#include "runtime/cuda/CudaContext.h"
#include "runtime/hal/Event.h"
#include "runtime/hal/Stream.h"

namespace moec::rt::cuda {

/// Addresses are device pointers (CUdeviceptr) carried as `void *`.
class CudaStream final : public hal::Stream {
public:
  static StatusOr<std::unique_ptr<CudaStream>> create(std::shared_ptr<CudaContext> context);
  ~CudaStream() override;

  Status copy(void *destination, const void *source, size_t bytes) override;
  Status upload(void *destination, const void *host, size_t bytes) override;
  Status download(void *host, const void *source, size_t bytes) override;
  Status fillZero(void *destination, size_t bytes) override;
  Status record(hal::Event &event) override;
  Status wait(const hal::Event &event) override;
  Status synchronize() override;
  bool supportsCapture() const override { return true; }
  Status beginCapture() override;
  StatusOr<std::unique_ptr<hal::Graph>> endCapture() override;

  CUstream handle() const { return stream_; }

private:
  CudaStream() = default;
  /// Host copies and waits cannot be recorded: refuses them while capturing.
  Status refuseWhileCapturing(const char *what) const;
  std::shared_ptr<CudaContext> context_;
  CUstream stream_ = nullptr;
  bool capturing_ = false;
};

/// An instantiated CUDA graph (cuGraphLaunch on replay).
class CudaGraph final : public hal::Graph {
public:
  CudaGraph(std::shared_ptr<CudaContext> context, CUgraph graph, CUgraphExec exec)
      : context_(std::move(context)), graph_(graph), exec_(exec) {}
  ~CudaGraph() override;
  Status launch(hal::Stream &stream) override;

private:
  std::shared_ptr<CudaContext> context_;
  CUgraph graph_;
  CUgraphExec exec_;
};

class CudaEvent final : public hal::Event {
public:
  static StatusOr<std::unique_ptr<CudaEvent>> create(std::shared_ptr<CudaContext> context);
  ~CudaEvent() override;
  Status synchronize() override;
  StatusOr<double> secondsSince(const hal::Event &start) const override;
  CUevent handle() const { return event_; }

private:
  CudaEvent() = default;
  std::shared_ptr<CudaContext> context_;
  CUevent event_ = nullptr;
};

} // namespace moec::rt::cuda

#endif // MOEC_RUNTIME_CUDA_CUDASTREAM_H
