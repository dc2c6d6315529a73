// StepChecks.h - what a plan step means, checked before anything runs.
#ifndef MOEC_RUNTIME_CORE_STEPCHECKS_H
#define MOEC_RUNTIME_CORE_STEPCHECKS_H

#include "runtime/core/Status.h"
#include "runtime/schema/plan_generated.h"

namespace moec::rt {

/// `step` (with ids, kernel index and members already in range) against its
/// op's signature (OpSignature.h), each member of a fusion group against
/// its own, and every library GEMM of the step's kernel inside the
/// arguments it names. The error does not name the step.
Status checkStepMeaning(const plan::Plan &root, const plan::Step &step);

} // namespace moec::rt

#endif // MOEC_RUNTIME_CORE_STEPCHECKS_H
