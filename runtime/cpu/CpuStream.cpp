// CpuStream.cpp - copies and events of the host's stream.
#include "runtime/cpu/CpuStream.h"

#include <cstring>

namespace moec::rt::cpu {

Status CpuStream::copy(void *destination, const void *source, size_t bytes) {
  if (bytes)
    std::memmove(destination, source, bytes);
  return Status::ok();
}

Status CpuStream::upload(void *destination, const void *host, size_t bytes) {
  return copy(destination, host, bytes);
}

Status CpuStream::download(void *host, const void *source, size_t bytes) {
  return copy(host, source, bytes);
}

Status CpuStream::fillZero(void *destination, size_t bytes) {
  if (bytes)
    std::memset(destination, 0, bytes);
  return Status::ok();
}

Status CpuStream::record(hal::Event &event) {
  auto *cpuEvent = dynamic_cast<CpuEvent *>(&event);
  if (!cpuEvent)
    return Status::error("a cpu stream can only record cpu events");
  cpuEvent->time_ = std::chrono::steady_clock::now();
  cpuEvent->recorded_ = true;
  return Status::ok();
}

StatusOr<double> CpuEvent::secondsSince(const hal::Event &start) const {
  auto *begin = dynamic_cast<const CpuEvent *>(&start);
  if (!begin || !begin->recorded_ || !recorded_)
    return Status::error("timing needs two recorded cpu events");
  return std::chrono::duration<double>(time_ - begin->time_).count();
}

} // namespace moec::rt::cpu
