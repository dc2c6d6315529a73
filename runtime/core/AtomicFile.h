// AtomicFile.h - outputs written whole or not at all: the protocol every file
// moec and moe-run write (plans, checkpoints, traces) follows.
#ifndef MOEC_RUNTIME_CORE_ATOMICFILE_H
#define MOEC_RUNTIME_CORE_ATOMICFILE_H

#include "runtime/core/Status.h"

#include <functional>
#include <string>

namespace moec::rt {

/// Whether `path` can be an output, checked before any work: an existing
/// directory or special file (device, FIFO, socket) is refused, and so is a
/// directory that does not exist or cannot be written (a unique temporary is
/// created there and removed). A symbolic link is an output through its
/// target. `what` names the output in the message ("--save").
Status checkOutputPath(const std::string &path, const std::string &what);

/// Writes `path` whole or not at all: `write(fd)` fills a temporary with a
/// unique name beside it (created with O_EXCL, so that two writers never
/// share one), which is flushed to disk, renamed over `path` (over a
/// symbolic link's target, not the link) and made durable by syncing the
/// directory. `write` returns false when a write failed. On any failure
/// before the rename the temporary is removed and `path` is as it was; a
/// failure to sync the directory after it is reported too.
Status writeFileAtomically(const std::string &path, const std::string &what,
                           const std::function<bool(int fd)> &write);

/// Writes all `size` bytes to `fd`, through short writes and EINTR.
bool writeAll(int fd, const void *data, size_t size);

} // namespace moec::rt

#endif // MOEC_RUNTIME_CORE_ATOMICFILE_H
