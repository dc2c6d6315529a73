// DeviceKind.h - the kinds of devices the runtime can execute a plan on.
#ifndef MOEC_RUNTIME_HAL_DEVICEKIND_H
#define MOEC_RUNTIME_HAL_DEVICEKIND_H

#include <optional>
#include <string>

namespace moec::rt::hal {

enum class DeviceKind {
  cpu,     // op-level kernels on the host
  cuda,    // NVIDIA GPU: the plan's generated kernels, cuBLAS(Lt)
  cudaEmu, // the plan's generated kernels compiled for and run on the host
};

/// "cpu", "cuda", "cuda-emu": the names moe-run's --device takes.
const char *deviceKindName(DeviceKind kind);
std::optional<DeviceKind> parseDeviceKind(const std::string &name);

} // namespace moec::rt::hal

#endif // MOEC_RUNTIME_HAL_DEVICEKIND_H
