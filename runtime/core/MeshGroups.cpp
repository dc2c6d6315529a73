// MeshGroups.cpp - the channel of the ranks that share a slice of the mesh.
#include "runtime/core/MeshGroups.h"

#include <algorithm>
#include <string>

namespace moec::rt {

StatusOr<hal::Channel *> meshGroup(hal::Channel &world, const plan::Mesh &mesh,
                                   const std::vector<int64_t> &axes) {
  if (!mesh.shape())
    return Status::error("the plan's mesh has no shape");
  const auto &shape = *mesh.shape();
  int64_t ranks = 1;
  for (int64_t extent : shape)
    ranks *= extent;
  if (ranks != world.size())
    return Status::error("the plan's mesh has " + std::to_string(ranks) +
                         " ranks, but this run has " + std::to_string(world.size()));
  for (int64_t axis : axes)
    if (axis < 0 || axis >= static_cast<int64_t>(shape.size()))
      return Status::error("mesh axis " + std::to_string(axis) + " is not one of the plan's " +
                           std::to_string(shape.size()));
  // This rank's coordinates, row-major (the last axis varies fastest).
  std::vector<int64_t> coordinates(shape.size());
  for (int64_t i = static_cast<int64_t>(shape.size()) - 1, r = world.rank(); i >= 0; --i) {
    coordinates[i] = r % shape.Get(i);
    r /= shape.Get(i);
  }
  int64_t color = 0, key = 0, size = 1;
  std::string name = "mesh axes";
  for (unsigned i = 0; i < shape.size(); ++i) {
    bool inGroup = std::find(axes.begin(), axes.end(), int64_t(i)) != axes.end();
    if (inGroup) {
      key = key * shape.Get(i) + coordinates[i];
      size *= shape.Get(i);
      name += " " + std::to_string(i);
    } else {
      color = color * shape.Get(i) + coordinates[i];
    }
  }
  if (size == world.size())
    return &world;
  return world.group(name, static_cast<int>(color), static_cast<int>(key));
}

} // namespace moec::rt
