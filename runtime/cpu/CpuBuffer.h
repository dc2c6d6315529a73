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
  /// Null when the host is out of memory.
  static CpuBuffer *allocate(size_t bytes) {
    size_t rounded = (bytes + 63) / 64 * 64;
    void *memory = std::aligned_alloc(64, rounded == 0 ? 64 : rounded);
    if (!memory)
      return nullptr;
    std::memset(memory, 0, rounded == 0 ? 64 : rounded);
    return new CpuBuffer(memory, bytes);
  }
  ~CpuBuffer() override { std::free(address()); }

private:
  CpuBuffer(void *memory, size_t bytes) : hal::Buffer(memory, bytes, /*hostVisible=*/true) {}
};

} // namespace moec::rt::cpu

#endif // MOEC_RUNTIME_CPU_CPUBUFFER_H
