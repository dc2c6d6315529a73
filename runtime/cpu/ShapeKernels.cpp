// ShapeKernels.cpp - upstream tensor ops the forward IR uses: reshapes and
// concatenation. Reshapes are views: the executor aliases their result.
#include "runtime/cpu/CpuKernels.h"

#include <cstring>

namespace moec::rt::cpu {

namespace {
Status reshape(const StepContext &s) {
  // The executor points the result at the operand's bytes; copy only when
  // the memory plan placed them apart.
  if (s.out(0).data != s.in(0).data)
    std::memcpy(s.out(0).data, s.in(0).data, s.in(0).bytes());
  return Status::ok();
}

Status concat(const StepContext &s) {
  if (s.i64("dim") != 0)
    return s.error("only concatenation along dimension 0 is implemented");
  char *out = static_cast<char *>(s.out(0).data);
  for (size_t i = 0; i < s.numInputs(); ++i) {
    std::memcpy(out, s.in(i).data, s.in(i).bytes());
    out += s.in(i).bytes();
  }
  return Status::ok();
}
} // namespace

void registerShapeKernels(KernelRegistry &r) {
  r.add("tensor.expand_shape", reshape);
  r.add("tensor.collapse_shape", reshape);
  r.add("tensor.concat", concat);
}

} // namespace moec::rt::cpu
