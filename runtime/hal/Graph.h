// Graph.h - a recorded sequence of a stream's work, replayed as one.
#ifndef MOEC_RUNTIME_HAL_GRAPH_H
#define MOEC_RUNTIME_HAL_GRAPH_H

#include "runtime/core/Status.h"

namespace moec::rt::hal {

class Stream;

/// What a stream recorded between beginCapture and endCapture (a CUDA
/// graph on a GPU): launching it queues that work again, with the argument
/// values it had when it was recorded, at the cost of one launch.
class Graph {
public:
  virtual ~Graph() = default;
  virtual Status launch(Stream &stream) = 0;
};

} // namespace moec::rt::hal

#endif // MOEC_RUNTIME_HAL_GRAPH_H
