// OperandChecks.h - checks of the values a step's operands hold, where a kernel indexes memory
// with them: a plan may feed any tensor its signature admits, so an index out of range is an
// error naming the step and the value, never a read or write out of bounds. A forward op and its
// gradient share the check, and so accept the same values.
#ifndef MOEC_RUNTIME_CPU_OPERANDCHECKS_H
#define MOEC_RUNTIME_CPU_OPERANDCHECKS_H

#include "runtime/core/Kernel.h"

#include <cstdint>
#include <string>

namespace moec::rt::cpu {

/// A selected expert index: -1 (no expert) or one of [0, E).
inline Status checkIndex(const StepContext &s, int32_t e, int64_t E) {
  if (e < -1 || e >= E)
    return s.error("expert index " + std::to_string(e) + " is outside [0, " + std::to_string(E) +
                   ")");
  return Status::ok();
}

/// Checks that every selected expert index is -1 or in [0, E).
inline Status checkIndices(const StepContext &s, const TensorRef &indices, int64_t E) {
  for (int64_t i = 0; i < indices.numel(); ++i)
    if (Status bad = checkIndex(s, indices.i32()[i], E); !bad)
      return bad;
  return Status::ok();
}

/// A slot holds a token index in [0, T), or -1 when it is empty.
inline Status checkSlotToken(const StepContext &s, int32_t t, int64_t T) {
  if (t < -1 || t >= T)
    return s.error("slot token " + std::to_string(t) + " is outside [0, " + std::to_string(T) +
                   ")");
  return Status::ok();
}

/// Every slot's token: -1 or one of [0, T).
inline Status checkSlotTokens(const StepContext &s, const TensorRef &slots, int64_t T) {
  for (int64_t i = 0; i < slots.numel(); ++i)
    if (Status bad = checkSlotToken(s, slots.i32()[i], T); !bad)
      return bad;
  return Status::ok();
}

/// Every id of `ids` (token ids, targets: `what`) in [0, vocab).
inline Status checkVocabularyIds(const StepContext &s, const TensorRef &ids, int64_t vocab,
                                 const char *what) {
  for (int64_t t = 0; t < ids.numel(); ++t) {
    int32_t id = ids.i32()[t];
    if (id < 0 || id >= vocab)
      return s.error(what + (" " + std::to_string(id)) + " at position " + std::to_string(t) +
                     " is outside the vocabulary [0, " + std::to_string(vocab) + ")");
  }
  return Status::ok();
}

/// The Gumbel-softmax temperature, which divides the logits: positive.
inline Status checkGumbelTemperature(const StepContext &s, float tau) {
  if (!(tau > 0))
    return s.error("the Gumbel temperature must be positive, but is " + std::to_string(tau));
  return Status::ok();
}

} // namespace moec::rt::cpu

#endif // MOEC_RUNTIME_CPU_OPERANDCHECKS_H
