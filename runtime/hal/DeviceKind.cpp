// DeviceKind.cpp - names of device kinds.
#include "runtime/hal/DeviceKind.h"

namespace moec::rt::hal {

const char *deviceKindName(DeviceKind kind) {
  switch (kind) {
  case DeviceKind::cpu:
    return "cpu";
  case DeviceKind::cuda:
    return "cuda";
  case DeviceKind::cudaEmu:
    return "cuda-emu";
  }
  return "unknown";
}

std::optional<DeviceKind> parseDeviceKind(const std::string &name) {
  for (DeviceKind kind : {DeviceKind::cpu, DeviceKind::cuda, DeviceKind::cudaEmu})
    if (name == deviceKindName(kind))
      return kind;
  return std::nullopt;
}

} // namespace moec::rt::hal
