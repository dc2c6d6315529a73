//===- ArenaPeak.h - what fills a function's arena at its fullest ---------===//
//
// A function's intermediates share one arena; the compiler gives each an
// offset so that tensors whose lifetimes overlap never share bytes. This
// finds the step at which the most bytes are live and which tensors they
// are, so a user can see what a model's activation memory is made of.
//
//===----------------------------------------------------------------------===//
#ifndef MOEC_TOOLS_MOE_INSPECT_ARENAPEAK_H
#define MOEC_TOOLS_MOE_INSPECT_ARENAPEAK_H

#include "runtime/core/Plan.h"

#include <cstdint>
#include <string>
#include <vector>

namespace moec::inspect {

/// One arena allocation: a tensor and the views that alias its bytes.
struct LiveTensor {
  int tensor = -1;       // the id of the tensor that owns the bytes
  uint64_t bytes = 0;
  int defined = 0;       // index of the step that writes it
  int lastUse = 0;       // index of the last step that reads it (or the end)
  std::string producer;  // that step's op
};

struct ArenaPeak {
  uint64_t arenaBytes = 0;  // the arena the compiler planned
  uint64_t liveBytes = 0;   // the most bytes live at once
  int step = -1;            // where that happens
  std::string op;           // the op of that step
  std::vector<LiveTensor> live; // what is live there, largest first
};

/// The step of `function` with the most live arena bytes (every
/// intermediate counted from the step that writes it to the last that reads
/// it; outputs of the function to its end).
ArenaPeak findArenaPeak(const rt::LoadedPlan &plan, const plan::Function &function);

} // namespace moec::inspect

#endif // MOEC_TOOLS_MOE_INSPECT_ARENAPEAK_H
