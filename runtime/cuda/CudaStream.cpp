// CudaStream.cpp - copies, events and synchronisation on a CUDA stream.
#include "runtime/cuda/CudaStream.h"

namespace moec::rt::cuda {
namespace {
CUdeviceptr device(const void *address) { return reinterpret_cast<CUdeviceptr>(address); }
constexpr unsigned kStreamNonBlocking = 1; // CU_STREAM_NON_BLOCKING
constexpr unsigned kEventDefault = 0;      // CU_EVENT_DEFAULT (timing on)
} // namespace

StatusOr<std::unique_ptr<CudaStream>> CudaStream::create(std::shared_ptr<CudaDriver> driver) {
  std::unique_ptr<CudaStream> stream(new CudaStream());
  stream->driver_ = std::move(driver);
  const CudaDriverSymbols &api = stream->driver_->api();
  if (Status s = stream->driver_->check(api.cuStreamCreate(&stream->stream_, kStreamNonBlocking),
                                        "cuStreamCreate");
      !s)
    return s;
  return stream;
}

CudaStream::~CudaStream() {
  if (stream_)
    driver_->api().cuStreamDestroy_v2(stream_);
}

Status CudaStream::copy(void *destination, const void *source, size_t bytes) {
  if (!bytes)
    return Status::ok();
  return driver_->check(
      driver_->api().cuMemcpyDtoDAsync_v2(device(destination), device(source), bytes, stream_),
      "cuMemcpyDtoDAsync");
}

Status CudaStream::upload(void *destination, const void *host, size_t bytes) {
  if (!bytes)
    return Status::ok();
  return driver_->check(
      driver_->api().cuMemcpyHtoDAsync_v2(device(destination), host, bytes, stream_),
      "cuMemcpyHtoDAsync");
}

Status CudaStream::download(void *host, const void *source, size_t bytes) {
  if (!bytes)
    return Status::ok();
  return driver_->check(
      driver_->api().cuMemcpyDtoHAsync_v2(host, device(source), bytes, stream_),
      "cuMemcpyDtoHAsync");
}

Status CudaStream::fillZero(void *destination, size_t bytes) {
  if (!bytes)
    return Status::ok();
  return driver_->check(driver_->api().cuMemsetD8Async(device(destination), 0, bytes, stream_),
                        "cuMemsetD8Async");
}

Status CudaStream::record(hal::Event &event) {
  auto *cudaEvent = dynamic_cast<CudaEvent *>(&event);
  if (!cudaEvent)
    return Status::error("a CUDA stream can only record CUDA events");
  return driver_->check(driver_->api().cuEventRecord(cudaEvent->handle(), stream_),
                        "cuEventRecord");
}

Status CudaStream::wait(const hal::Event &event) {
  auto *cudaEvent = dynamic_cast<const CudaEvent *>(&event);
  if (!cudaEvent)
    return Status::error("a CUDA stream can only wait for CUDA events");
  return driver_->check(driver_->api().cuStreamWaitEvent(stream_, cudaEvent->handle(), 0),
                        "cuStreamWaitEvent");
}

Status CudaStream::synchronize() {
  return driver_->check(driver_->api().cuStreamSynchronize(stream_), "cuStreamSynchronize");
}

StatusOr<std::unique_ptr<CudaEvent>> CudaEvent::create(std::shared_ptr<CudaDriver> driver) {
  std::unique_ptr<CudaEvent> event(new CudaEvent());
  event->driver_ = std::move(driver);
  if (Status s = event->driver_->check(
          event->driver_->api().cuEventCreate(&event->event_, kEventDefault), "cuEventCreate");
      !s)
    return s;
  return event;
}

CudaEvent::~CudaEvent() {
  if (event_)
    driver_->api().cuEventDestroy_v2(event_);
}

Status CudaEvent::synchronize() {
  return driver_->check(driver_->api().cuEventSynchronize(event_), "cuEventSynchronize");
}

StatusOr<double> CudaEvent::secondsSince(const hal::Event &start) const {
  auto *begin = dynamic_cast<const CudaEvent *>(&start);
  if (!begin)
    return Status::error("timing needs two CUDA events");
  float milliseconds = 0;
  if (Status s = driver_->check(
          driver_->api().cuEventElapsedTime(&milliseconds, begin->event_, event_),
          "cuEventElapsedTime");
      !s)
    return s;
  return milliseconds / 1000.0;
}

} // namespace moec::rt::cuda
