// MemoryUsage.h - the bytes a device's buffers hold, now and at most.
#ifndef MOEC_RUNTIME_HAL_MEMORYUSAGE_H
#define MOEC_RUNTIME_HAL_MEMORYUSAGE_H

#include "runtime/hal/Buffer.h"

#include <atomic>
#include <cstdint>
#include <memory>

namespace moec::rt::hal {

/// The bytes of the live buffers a device allocated, and the most they
/// reached (what torch.cuda.max_memory_allocated reports for PyTorch: the
/// driver's own memory, modules and contexts are not counted).
class MemoryUsage {
public:
  uint64_t current() const { return current_.load(); }
  uint64_t peak() const { return peak_.load(); }

  /// `buffer`, counted here from now until it is destroyed.
  static std::unique_ptr<Buffer> track(std::shared_ptr<MemoryUsage> usage,
                                       std::unique_ptr<Buffer> buffer);

private:
  class TrackedBuffer;
  void add(uint64_t bytes) {
    uint64_t now = current_.fetch_add(bytes) + bytes;
    for (uint64_t peak = peak_.load(); now > peak && !peak_.compare_exchange_weak(peak, now);) {
    }
  }
  void remove(uint64_t bytes) { current_.fetch_sub(bytes); }

  std::atomic<uint64_t> current_{0}, peak_{0};
};

/// A buffer that gives its bytes back to a MemoryUsage when destroyed.
class MemoryUsage::TrackedBuffer final : public Buffer {
public:
  TrackedBuffer(std::shared_ptr<MemoryUsage> usage, std::unique_ptr<Buffer> inner)
      : Buffer(inner->address(), inner->size(), inner->hostVisible()), usage_(std::move(usage)),
        inner_(std::move(inner)) {
    usage_->add(size());
  }
  ~TrackedBuffer() override { usage_->remove(size()); }

private:
  std::shared_ptr<MemoryUsage> usage_;
  std::unique_ptr<Buffer> inner_;
};

inline std::unique_ptr<Buffer> MemoryUsage::track(std::shared_ptr<MemoryUsage> usage,
                                                  std::unique_ptr<Buffer> buffer) {
  return std::make_unique<TrackedBuffer>(std::move(usage), std::move(buffer));
}

} // namespace moec::rt::hal

#endif // MOEC_RUNTIME_HAL_MEMORYUSAGE_H
