// ShapeKernels.cpp - the upstream tensor ops the IR uses (reshapes,
// concatenations, static slices and their insertion, the gradients of
// slices) and moe.broadcast with its gradient. Reshapes are views: the
// executor aliases their result.
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

/// Row-major strides, in elements.
std::vector<int64_t> stridesOf(const std::vector<int64_t> &shape) {
  std::vector<int64_t> strides(shape.size(), 1);
  for (int d = static_cast<int>(shape.size()) - 2; d >= 0; --d)
    strides[d] = strides[d + 1] * shape[d + 1];
  return strides;
}

/// Copies the box of extents `box` at `from` in `src` to `to` in `dst`
/// (tensors of one rank and element type), a contiguous run at a time: the
/// innermost dimensions that the box, `src` and `dst` all span whole go in
/// one run with the dimension before them.
void copyBox(const TensorRef &src, const std::vector<int64_t> &from, const TensorRef &dst,
             const std::vector<int64_t> &to, const std::vector<int64_t> &box) {
  int rank = src.rank();
  size_t element = dtypeSize(src.dtype);
  if (rank == 0) {
    std::memcpy(dst.data, src.data, element);
    return;
  }
  for (int64_t extent : box)
    if (extent == 0)
      return;
  int inner = rank - 1;
  while (inner > 0 && box[inner] == src.shape[inner] && box[inner] == dst.shape[inner])
    --inner;
  std::vector<int64_t> srcStrides = stridesOf(src.shape), dstStrides = stridesOf(dst.shape);
  size_t run = element;
  for (int d = inner; d < rank; ++d)
    run *= box[d];
  std::vector<int64_t> index(inner, 0);
  const char *in = static_cast<const char *>(src.data);
  char *out = static_cast<char *>(dst.data);
  while (true) {
    int64_t a = from[inner] * srcStrides[inner], b = to[inner] * dstStrides[inner];
    for (int d = 0; d < inner; ++d) {
      a += (from[d] + index[d]) * srcStrides[d];
      b += (to[d] + index[d]) * dstStrides[d];
    }
    std::memcpy(out + b * element, in + a * element, run);
    int d = inner - 1;
    while (d >= 0 && ++index[d] == box[d])
      index[d--] = 0;
    if (d < 0)
      return;
  }
}

Status concat(const StepContext &s) {
  int64_t dim = s.i64("dim");
  const TensorRef &out = s.out(0);
  std::vector<int64_t> to(out.rank(), 0), none(out.rank(), 0);
  for (size_t i = 0; i < s.numInputs(); ++i) {
    copyBox(s.in(i), none, out, to, s.in(i).shape);
    to[dim] += s.in(i).dim(static_cast<int>(dim));
  }
  return Status::ok();
}

/// The static offsets and unit strides of a slice step.
StatusOr<std::vector<int64_t>> sliceOffsets(const StepContext &s, int rank) {
  std::vector<int64_t> offsets = s.ints("static_offsets");
  std::vector<int64_t> strides = s.ints("static_strides");
  if (static_cast<int>(offsets.size()) != rank)
    return s.error("a slice of rank " + std::to_string(rank) + " has " +
                   std::to_string(offsets.size()) +
                   " offsets (rank-reducing slices are not "
                   "implemented)");
  for (int64_t stride : strides)
    if (stride != 1)
      return s.error("only slices with unit strides are implemented");
  return offsets;
}

Status extractSlice(const StepContext &s) {
  const TensorRef &src = s.in(0), &out = s.out(0);
  auto offsets = sliceOffsets(s, src.rank());
  if (!offsets)
    return offsets.status();
  copyBox(src, *offsets, out, std::vector<int64_t>(out.rank(), 0), out.shape);
  return Status::ok();
}

/// The destination (operand 1) with the source (operand 0) in the box.
Status insertSlice(const StepContext &s) {
  const TensorRef &src = s.in(0), &dest = s.in(1), &out = s.out(0);
  auto offsets = sliceOffsets(s, dest.rank());
  if (!offsets)
    return offsets.status();
  if (out.data != dest.data)
    std::memcpy(out.data, dest.data, dest.bytes());
  copyBox(src, std::vector<int64_t>(src.rank(), 0), out, *offsets, src.shape);
  return Status::ok();
}

/// The input element that result element `i` repeats, for every `i` in
/// order, to `visit(resultIndex, inputIndex)`.
template <typename Visit>
void forEachRepeat(const TensorRef &input, const TensorRef &result, Visit visit) {
  int rank = result.rank();
  std::vector<int64_t> inStrides = stridesOf(input.shape), index(rank, 0);
  int64_t n = result.numel();
  for (int64_t i = 0; i < n; ++i) {
    int64_t source = 0;
    for (int d = 0; d < rank; ++d)
      source += input.shape[d] == 1 ? 0 : index[d] * inStrides[d];
    visit(i, source);
    for (int d = rank - 1; d >= 0 && ++index[d] == result.shape[d]; --d)
      index[d] = 0;
  }
}

/// Result element i from the input element at its index permuted back.
Status transpose(const StepContext &s) {
  const TensorRef &input = s.in(0), &result = s.out(0);
  std::vector<int64_t> permutation = s.ints("permutation");
  std::vector<int64_t> inStrides = stridesOf(input.shape);
  int rank = result.rank();
  if (static_cast<int>(permutation.size()) != rank || input.rank() != rank)
    return s.error("permutation of " + std::to_string(permutation.size()) +
                   " dimensions for tensors of rank " + std::to_string(rank));
  for (int d = 0; d < rank; ++d)
    if (permutation[d] < 0 || permutation[d] >= rank ||
        input.shape[permutation[d]] != result.shape[d])
      return s.error("permutation entry " + std::to_string(d) +
                     " does not map the input's shape onto the result's");
  // The stride in the input of each result dimension.
  std::vector<int64_t> strides(rank);
  for (int d = 0; d < rank; ++d)
    strides[d] = inStrides[permutation[d]];
  const float *in = input.f32();
  float *out = result.f32();
  int64_t n = result.numel();
  // Blocks of the result across the threads, each from its first index.
  constexpr int64_t kBlock = 1 << 14;
#pragma omp parallel for schedule(static)
  for (int64_t begin = 0; begin < n; begin += kBlock) {
    std::vector<int64_t> index(rank);
    for (int64_t d = rank - 1, rest = begin; d >= 0; --d) {
      index[d] = rest % result.shape[d];
      rest /= result.shape[d];
    }
    for (int64_t i = begin, end = std::min(n, begin + kBlock); i < end; ++i) {
      int64_t source = 0;
      for (int d = 0; d < rank; ++d)
        source += index[d] * strides[d];
      out[i] = in[source];
      for (int d = rank - 1; d >= 0 && ++index[d] == result.shape[d]; --d)
        index[d] = 0;
    }
  }
  return Status::ok();
}

Status broadcast(const StepContext &s) {
  const float *in = s.in(0).f32();
  float *out = s.out(0).f32();
  forEachRepeat(s.in(0), s.out(0), [&](int64_t i, int64_t source) { out[i] = in[source]; });
  return Status::ok();
}

Status broadcastGrad(const StepContext &s) {
  const float *dy = s.in(0).f32();
  float *dx = s.out(0).f32();
  std::memset(dx, 0, s.out(0).bytes());
  forEachRepeat(s.out(0), s.in(0), [&](int64_t i, int64_t source) { dx[source] += dy[i]; });
  return Status::ok();
}
} // namespace

void registerShapeKernels(KernelTable &r) {
  r.add("tensor.expand_shape", reshape);
  r.add("tensor.collapse_shape", reshape);
  r.add("tensor.concat", concat);
  r.add("tensor.extract_slice", extractSlice);
  r.add("tensor.insert_slice", insertSlice);
  r.add("moe.transpose", transpose);
  r.add("moe.broadcast", broadcast);
  r.add("moe.broadcast_grad", broadcastGrad);
}

} // namespace moec::rt::cpu
