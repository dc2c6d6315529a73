// InputFile.h - reading the files a run is given (plans, checkpoints, token
// files) whole, refusing what is not a regular file.
#ifndef MOEC_RUNTIME_CORE_INPUTFILE_H
#define MOEC_RUNTIME_CORE_INPUTFILE_H

#include "runtime/core/Status.h"

#include <cstdint>
#include <string>
#include <vector>

namespace moec::rt {

/// The bytes of the regular file at `path` (a symbolic link is followed). A
/// directory or special file (a FIFO would block, /dev/zero never ends) is
/// an error, as is a failed or short read; `what` names the input in the
/// message ("the plan").
StatusOr<std::vector<uint8_t>> readInputFile(const std::string &path, const std::string &what);

} // namespace moec::rt

#endif // MOEC_RUNTIME_CORE_INPUTFILE_H
