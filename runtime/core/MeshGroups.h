// MeshGroups.h - the channel of the ranks that share a slice of the mesh.
#ifndef MOEC_RUNTIME_CORE_MESHGROUPS_H
#define MOEC_RUNTIME_CORE_MESHGROUPS_H

#include "runtime/core/Status.h"
#include "runtime/hal/Channel.h"
#include "runtime/schema/plan_generated.h"

#include <cstdint>
#include <vector>

namespace moec::rt {

/// This rank's group over `axes` of `mesh`: the ranks whose mesh coordinates
/// differ only along those axes, ordered by their coordinates along them
/// (rank r of `world` sits at the row-major coordinates of r in the mesh).
/// Every axis: `world` itself. Every rank must ask for the same groups, in
/// the same order (a group is formed collectively, once per set of axes).
StatusOr<hal::Channel *> meshGroup(hal::Channel &world, const plan::Mesh &mesh,
                                   const std::vector<int64_t> &axes);

} // namespace moec::rt

#endif // MOEC_RUNTIME_CORE_MESHGROUPS_H
