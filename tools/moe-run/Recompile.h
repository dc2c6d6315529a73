// Recompile.h - a plan compiled again for another batch shape or schedule.
//
// Plans have static shapes (the arena is planned for them) and the kind of
// learning-rate schedule is part of their code. When moe-run is asked for
// another --batch, --seq-len or --schedule, it runs the moec compiler as a
// separate process on the description the plan carries (plan.fbs: Source);
// the runtime itself never links the compiler.
#ifndef MOEC_TOOLS_MOE_RUN_RECOMPILE_H
#define MOEC_TOOLS_MOE_RUN_RECOMPILE_H

#include "runtime/core/Plan.h"

#include <cstdint>
#include <memory>
#include <string>

namespace moec::rt {

/// The moec executable: $MOEC when set (a path, or a name looked up on PATH),
/// else `moec` beside this program, else `moec` on PATH; empty when none.
std::string findCompiler();

/// Compiles `plan` (loaded from `planPath`) again for `batch` x `seqLen` and,
/// unless empty, learning-rate schedule `schedule`, with the options it was
/// compiled with, and loads the result. Fails with the reason when the plan
/// carries no description, moec cannot be found, or moec rejects the shape
/// (its own messages go to stderr).
StatusOr<std::shared_ptr<LoadedPlan>> recompile(const LoadedPlan &plan,
                                                const std::string &planPath, int64_t batch,
                                                int64_t seqLen, const std::string &schedule);

} // namespace moec::rt

#endif // MOEC_TOOLS_MOE_RUN_RECOMPILE_H
