// Executable.h - a loaded module of generated kernels.
#ifndef MOEC_RUNTIME_HAL_EXECUTABLE_H
#define MOEC_RUNTIME_HAL_EXECUTABLE_H

#include "runtime/core/Status.h"

#include <string>

namespace moec::rt::hal {

class Stream;

/// Grid and block extents of one launch, its dynamic shared memory, and
/// how many arguments it takes (each a pointer-sized value: generated
/// kernels take only pointers).
struct LaunchConfig {
  unsigned grid[3] = {1, 1, 1};
  unsigned block[3] = {1, 1, 1};
  unsigned sharedBytes = 0;
  unsigned argumentCount = 0;
};

/// Compiled code of a plan (a CUDA module from the plan's PTX or cubin),
/// loaded on one device. Its kernels take their arguments as an array of
/// pointers to the values, as cuLaunchKernel does.
class Executable {
public:
  virtual ~Executable() = default;
  virtual bool hasKernel(const std::string &name) const = 0;
  virtual Status launch(Stream &stream, const std::string &kernel,
                        const LaunchConfig &config, void **arguments) = 0;
};

} // namespace moec::rt::hal

#endif // MOEC_RUNTIME_HAL_EXECUTABLE_H
