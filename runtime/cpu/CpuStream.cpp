// CpuStream.cpp - copies and events of the host's stream.
#include "runtime/cpu/CpuStream.h"

#include <cstring>
#include <string>

namespace moec::rt::cpu {

void CpuStream::run(std::function<void()> work) {
  if (recording_)
    recording_->push_back(std::move(work));
  else
    work();
}

Status CpuStream::refuseWhileCapturing(const char *what) const {
  if (!recording_)
    return Status::ok();
  return Status::error(std::string("a graph cannot record ") + what);
}

Status CpuStream::copy(void *destination, const void *source, size_t bytes) {
  if (bytes)
    run([=] { std::memmove(destination, source, bytes); });
  return Status::ok();
}

Status CpuStream::upload(void *destination, const void *host, size_t bytes) {
  if (Status s = refuseWhileCapturing("a copy from the host"); !s)
    return s;
  return copy(destination, host, bytes);
}

Status CpuStream::download(void *host, const void *source, size_t bytes) {
  if (Status s = refuseWhileCapturing("a copy to the host"); !s)
    return s;
  return copy(host, source, bytes);
}

Status CpuStream::fillZero(void *destination, size_t bytes) {
  if (bytes)
    run([=] { std::memset(destination, 0, bytes); });
  return Status::ok();
}

Status CpuStream::synchronize() { return refuseWhileCapturing("a wait for the device"); }

Status CpuStream::beginCapture() {
  if (recording_)
    return Status::error("the stream is already recording a graph");
  recording_ = std::make_unique<std::vector<std::function<void()>>>();
  return Status::ok();
}

StatusOr<std::unique_ptr<hal::Graph>> CpuStream::endCapture() {
  if (!recording_)
    return Status::error("the stream is not recording a graph");
  std::unique_ptr<hal::Graph> graph(new CpuGraph(std::move(*recording_)));
  recording_.reset();
  return graph;
}

Status CpuGraph::launch(hal::Stream &stream) {
  auto *cpuStream = dynamic_cast<CpuStream *>(&stream);
  if (!cpuStream)
    return Status::error("a cpu graph runs on a cpu stream only");
  for (const auto &work : work_)
    cpuStream->run(work);
  return Status::ok();
}

Status CpuStream::record(hal::Event &event) {
  auto *cpuEvent = dynamic_cast<CpuEvent *>(&event);
  if (!cpuEvent)
    return Status::error("a cpu stream can only record cpu events");
  run([cpuEvent] {
    cpuEvent->time_ = std::chrono::steady_clock::now();
    cpuEvent->recorded_ = true;
  });
  return Status::ok();
}

StatusOr<double> CpuEvent::secondsSince(const hal::Event &start) const {
  auto *begin = dynamic_cast<const CpuEvent *>(&start);
  if (!begin || !begin->recorded_ || !recorded_)
    return Status::error("timing needs two recorded cpu events");
  return std::chrono::duration<double>(time_ - begin->time_).count();
}

} // namespace moec::rt::cpu
