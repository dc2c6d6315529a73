// HostMemory.h - the machine's physical memory, which the host devices
// (cpu, cuda-emu) allocate from.
#ifndef MOEC_RUNTIME_HAL_HOSTMEMORY_H
#define MOEC_RUNTIME_HAL_HOSTMEMORY_H

#include <unistd.h>

namespace moec::rt::hal {

/// Bytes of physical memory, 0 when the system does not say.
inline double hostPhysicalMemory() {
  long pages = sysconf(_SC_PHYS_PAGES), pageSize = sysconf(_SC_PAGESIZE);
  return pages > 0 && pageSize > 0 ? static_cast<double>(pages) * pageSize : 0;
}

} // namespace moec::rt::hal

#endif // MOEC_RUNTIME_HAL_HOSTMEMORY_H
