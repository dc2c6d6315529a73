// OpenDevice.h - a device of any backend, by the name users give it.
#ifndef MOEC_RUNTIME_DEVICES_OPENDEVICE_H
#define MOEC_RUNTIME_DEVICES_OPENDEVICE_H

#include "runtime/core/Plan.h"
#include "runtime/hal/Device.h"

#include <memory>
#include <string>

namespace moec::rt {

/// Opens the device `name` names (auto, cpu, cuda, cuda-emu) to run `plan`:
/// `auto` picks cuda for a plan with GPU code when a GPU is there, else cpu;
/// cuda needs a plan compiled with --target=cuda. The error names the flag
/// `flag` the name came from.
StatusOr<std::unique_ptr<hal::Device>> openDevice(const std::string &name, const LoadedPlan &plan,
                                                   const std::string &flag = "--device");

} // namespace moec::rt

#endif // MOEC_RUNTIME_DEVICES_OPENDEVICE_H
