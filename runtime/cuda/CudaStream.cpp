// CudaStream.cpp - copies, events and synchronisation on a CUDA stream.
#include "runtime/cuda/CudaStream.h"

namespace moec::rt::cuda {
namespace {
CUdeviceptr device(const void *address) { return reinterpret_cast<CUdeviceptr>(address); }
constexpr unsigned kStreamNonBlocking = 1; // CU_STREAM_NON_BLOCKING
constexpr unsigned kEventDefault = 0;      // CU_EVENT_DEFAULT (timing on)
// CU_STREAM_CAPTURE_MODE_THREAD_LOCAL: only this thread's unsafe calls
// (such as allocations) during the capture are errors.
constexpr int kCaptureThreadLocal = 1;
} // namespace

StatusOr<std::unique_ptr<CudaStream>> CudaStream::create(std::shared_ptr<CudaContext> context) {
  std::unique_ptr<CudaStream> stream(new CudaStream());
  stream->context_ = std::move(context);
  const CudaDriverSymbols &api = stream->context_->api();
  if (Status s = stream->context_->check(api.cuStreamCreate(&stream->stream_, kStreamNonBlocking),
                                        "cuStreamCreate");
      !s)
    return s;
  return stream;
}

CudaStream::~CudaStream() {
  if (stream_)
    context_->api().cuStreamDestroy_v2(stream_);
}

Status CudaStream::copy(void *destination, const void *source, size_t bytes) {
  if (!bytes)
    return Status::ok();
  return context_->check(
      context_->api().cuMemcpyDtoDAsync_v2(device(destination), device(source), bytes, stream_),
      "cuMemcpyDtoDAsync");
}

Status CudaStream::refuseWhileCapturing(const char *what) const {
  if (!capturing_)
    return Status::ok();
  return Status::error(std::string("a CUDA graph cannot record ") + what +
                       " (run with --no-cuda-graph to see which step needs one)");
}

Status CudaStream::upload(void *destination, const void *host, size_t bytes) {
  if (Status s = refuseWhileCapturing("a copy from the host"); !s)
    return s;
  if (!bytes)
    return Status::ok();
  return context_->check(
      context_->api().cuMemcpyHtoDAsync_v2(device(destination), host, bytes, stream_),
      "cuMemcpyHtoDAsync");
}

Status CudaStream::download(void *host, const void *source, size_t bytes) {
  if (Status s = refuseWhileCapturing("a copy to the host"); !s)
    return s;
  if (!bytes)
    return Status::ok();
  return context_->check(
      context_->api().cuMemcpyDtoHAsync_v2(host, device(source), bytes, stream_),
      "cuMemcpyDtoHAsync");
}

Status CudaStream::fillZero(void *destination, size_t bytes) {
  if (!bytes)
    return Status::ok();
  return context_->check(context_->api().cuMemsetD8Async(device(destination), 0, bytes, stream_),
                        "cuMemsetD8Async");
}

Status CudaStream::record(hal::Event &event) {
  auto *cudaEvent = dynamic_cast<CudaEvent *>(&event);
  if (!cudaEvent)
    return Status::error("a CUDA stream can only record CUDA events");
  return context_->check(context_->api().cuEventRecord(cudaEvent->handle(), stream_),
                        "cuEventRecord");
}

Status CudaStream::wait(const hal::Event &event) {
  auto *cudaEvent = dynamic_cast<const CudaEvent *>(&event);
  if (!cudaEvent)
    return Status::error("a CUDA stream can only wait for CUDA events");
  return context_->check(context_->api().cuStreamWaitEvent(stream_, cudaEvent->handle(), 0),
                        "cuStreamWaitEvent");
}

Status CudaStream::synchronize() {
  if (Status s = refuseWhileCapturing("a wait for the device"); !s)
    return s;
  return context_->check(context_->api().cuStreamSynchronize(stream_), "cuStreamSynchronize");
}

Status CudaStream::beginCapture() {
  if (capturing_)
    return Status::error("the stream is already recording a graph");
  if (Status s = context_->check(
          context_->api().cuStreamBeginCapture_v2(stream_, kCaptureThreadLocal),
          "cuStreamBeginCapture");
      !s)
    return s;
  capturing_ = true;
  return Status::ok();
}

StatusOr<std::unique_ptr<hal::Graph>> CudaStream::endCapture() {
  if (!capturing_)
    return Status::error("the stream is not recording a graph");
  capturing_ = false;
  const CudaDriverSymbols &api = context_->api();
  CUgraph graph = nullptr;
  if (Status s = context_->check(api.cuStreamEndCapture(stream_, &graph), "cuStreamEndCapture");
      !s)
    return s;
  CUgraphExec exec = nullptr;
  if (Status s = context_->check(api.cuGraphInstantiateWithFlags(&exec, graph, 0),
                                 "cuGraphInstantiate");
      !s) {
    api.cuGraphDestroy(graph);
    return s;
  }
  return std::unique_ptr<hal::Graph>(new CudaGraph(context_, graph, exec));
}

CudaGraph::~CudaGraph() {
  context_->api().cuGraphExecDestroy(exec_);
  context_->api().cuGraphDestroy(graph_);
}

Status CudaGraph::launch(hal::Stream &stream) {
  auto *cudaStream = dynamic_cast<CudaStream *>(&stream);
  if (!cudaStream)
    return Status::error("a CUDA graph runs on a CUDA stream only");
  return context_->check(context_->api().cuGraphLaunch(exec_, cudaStream->handle()),
                         "cuGraphLaunch");
}

StatusOr<std::unique_ptr<CudaEvent>> CudaEvent::create(std::shared_ptr<CudaContext> context) {
  std::unique_ptr<CudaEvent> event(new CudaEvent());
  event->context_ = std::move(context);
  if (Status s = event->context_->check(
          event->context_->api().cuEventCreate(&event->event_, kEventDefault), "cuEventCreate");
      !s)
    return s;
  return event;
}

CudaEvent::~CudaEvent() {
  if (event_)
    context_->api().cuEventDestroy_v2(event_);
}

Status CudaEvent::synchronize() {
  return context_->check(context_->api().cuEventSynchronize(event_), "cuEventSynchronize");
}

StatusOr<double> CudaEvent::secondsSince(const hal::Event &start) const {
  auto *begin = dynamic_cast<const CudaEvent *>(&start);
  if (!begin)
    return Status::error("timing needs two CUDA events");
  float milliseconds = 0;
  if (Status s = context_->check(
          context_->api().cuEventElapsedTime(&milliseconds, begin->event_, event_),
          "cuEventElapsedTime");
      !s)
    return s;
  return milliseconds / 1000.0;
}

} // namespace moec::rt::cuda
