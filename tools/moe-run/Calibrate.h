// Calibrate.h - `moe-run --calibrate FILE`: this machine as a cluster
// description (docs/design/cost-model.md).
#ifndef MOEC_TOOLS_MOE_RUN_CALIBRATE_H
#define MOEC_TOOLS_MOE_RUN_CALIBRATE_H

#include "runtime/core/Status.h"
#include "runtime/hal/Channel.h"

#include <string>

namespace moec::tools {

/// Measures the device (`cpu`; `auto` is cpu here) and the channel's
/// collectives on every rank, and has rank 0 write the cluster description
/// to `path` (atomically). The ranks of the channel are the devices of one
/// node.
rt::Status calibrate(const std::string &path, const std::string &device, rt::hal::Channel &channel);

} // namespace moec::tools

#endif // MOEC_TOOLS_MOE_RUN_CALIBRATE_H
