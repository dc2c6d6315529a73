// CpuStream.h - the host's stream: work runs when it is queued.
#ifndef MOEC_RUNTIME_CPU_CPUSTREAM_H
#define MOEC_RUNTIME_CPU_CPUSTREAM_H

#include "runtime/hal/Event.h"
#include "runtime/hal/Stream.h"

#include <chrono>
#include <functional>
#include <memory>
#include <vector>

namespace moec::rt::cpu {

/// CPU kernels run synchronously on the calling thread (and its OpenMP
/// team), so every queued operation is complete when the call returns.
/// While capturing, device work (copies, fills, and what `run` is given)
/// is recorded instead, and the graph replays it: so cuda-emu replays
/// graphs as a GPU does.
class CpuStream final : public hal::Stream {
public:
  Status copy(void *destination, const void *source, size_t bytes) override;
  Status upload(void *destination, const void *host, size_t bytes) override;
  Status download(void *host, const void *source, size_t bytes) override;
  Status fillZero(void *destination, size_t bytes) override;
  Status record(hal::Event &event) override;
  Status wait(const hal::Event &) override { return Status::ok(); }
  Status synchronize() override;
  bool supportsCapture() const override { return true; }
  Status beginCapture() override;
  StatusOr<std::unique_ptr<hal::Graph>> endCapture() override;

  /// Runs `work` now, or records it while capturing.
  void run(std::function<void()> work);
  bool capturing() const { return recording_ != nullptr; }

private:
  Status refuseWhileCapturing(const char *what) const;
  std::unique_ptr<std::vector<std::function<void()>>> recording_;
};

/// Work a CpuStream recorded, run again in order.
class CpuGraph final : public hal::Graph {
public:
  explicit CpuGraph(std::vector<std::function<void()>> work) : work_(std::move(work)) {}
  Status launch(hal::Stream &stream) override;

private:
  std::vector<std::function<void()>> work_;
};

/// The time it was recorded.
class CpuEvent final : public hal::Event {
public:
  Status synchronize() override { return Status::ok(); }
  StatusOr<double> secondsSince(const hal::Event &start) const override;

private:
  friend class CpuStream;
  std::chrono::steady_clock::time_point time_{};
  bool recorded_ = false;
};

} // namespace moec::rt::cpu

#endif // MOEC_RUNTIME_CPU_CPUSTREAM_H
