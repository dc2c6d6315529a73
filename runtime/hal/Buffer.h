// Buffer.h - a block of a device's memory.
#ifndef MOEC_RUNTIME_HAL_BUFFER_H
#define MOEC_RUNTIME_HAL_BUFFER_H

#include <cstddef>

namespace moec::rt::hal {

/// Memory a Device allocated, freed when the Buffer is destroyed. Its
/// address is what kernels receive and streams copy from and to: a host
/// pointer for host memory, a device address (as a pointer) otherwise. Code
/// above the device layer may dereference it only when `hostVisible()`.
class Buffer {
public:
  virtual ~Buffer() = default;
  Buffer(const Buffer &) = delete;
  Buffer &operator=(const Buffer &) = delete;

  size_t size() const { return size_; }
  void *address() const { return address_; }
  /// True when the host can read and write `address()` directly.
  bool hostVisible() const { return hostVisible_; }

protected:
  Buffer(void *address, size_t size, bool hostVisible)
      : address_(address), size_(size), hostVisible_(hostVisible) {}

private:
  void *address_;
  size_t size_;
  bool hostVisible_;
};

} // namespace moec::rt::hal

#endif // MOEC_RUNTIME_HAL_BUFFER_H
