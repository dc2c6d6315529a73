// ShapeKernels.cpp - upstream tensor ops the IR uses: reshapes, concatenation
// and slices (gradients of concatenations). Reshapes are views: the executor
// aliases their result.
#include "runtime/cpu/CpuKernels.h"

#include <algorithm>
#include <cstring>
#include <vector>

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
Status extractSlice(const StepContext &s) {
  std::vector<int64_t> offsets = s.ints("static_offsets");
  const TensorRef &src = s.in(0);
  TensorRef &out = s.out(0);
  for (size_t i = 1; i < offsets.size(); ++i)
    if (offsets[i] != 0 || out.dim(i) != src.dim(i))
      return s.error("only slices along dimension 0 are implemented");
  size_t rowBytes = out.bytes() / std::max<int64_t>(1, out.dim(0));
  std::memcpy(out.data, static_cast<char *>(src.data) + offsets[0] * rowBytes, out.bytes());
  return Status::ok();
}
} // namespace

void registerShapeKernels(KernelTable &r) {
  r.add("tensor.expand_shape", reshape);
  r.add("tensor.collapse_shape", reshape);
  r.add("tensor.concat", concat);
  r.add("tensor.extract_slice", extractSlice);
}

} // namespace moec::rt::cpu
