// CpuBuffer.h - host memory as a device buffer.
#ifndef MOEC_RUNTIME_CPU_CPUBUFFER_H
#define MOEC_RUNTIME_CPU_CPUBUFFER_H

#include "runtime/hal/Buffer.h"

#include <cstdlib>
#include <cstring>

namespace moec::rt::cpu {

/// 64-byte aligned, zeroed host memory.
class CpuBuffer final : public hal::Buffer {
public:
  /// Null when the host is out of memory. A buffer that says it is not
  /// host-visible makes the layers above copy through the stream, as they
  /// must for a GPU (cuda-emu uses that to stand in for one).
  static CpuBuffer *allocate(size_t bytes, bool hostVisible = true) {
    size_t rounded = (bytes + 63) / 64 * 64;
    void *memory = std::aligned_alloc(64, rounded == 0 ? 64 : rounded);
    if (!memory)
      return nullptr;
    std::memset(memory, 0, rounded == 0 ? 64 : rounded);
    return new CpuBuffer(memory, bytes, hostVisible);
  }
  ~CpuBuffer() override { std::free(address()); }

private:
  CpuBuffer(void *memory, size_t bytes, bool hostVisible)
      : hal::Buffer(memory, bytes, hostVisible) {}
};

} // namespace moec::rt::cpu

#endif // MOEC_RUNTIME_CPU_CPUBUFFER_H
