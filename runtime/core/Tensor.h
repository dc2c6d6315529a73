// Tensor.h - a view of a tensor's bytes with its dtype and shape.
#ifndef MOEC_RUNTIME_CORE_TENSOR_H
#define MOEC_RUNTIME_CORE_TENSOR_H

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace moec::rt {

enum class DType { f32, f16, bf16, f64, i32, i64 };

size_t dtypeSize(DType dtype);
const char *dtypeName(DType dtype);

/// Non-owning: the bytes live in a parameter store, an input buffer or a
/// function's arena.
struct TensorRef {
  void *data = nullptr;
  DType dtype = DType::f32;
  std::vector<int64_t> shape;

  int64_t numel() const {
    int64_t n = 1;
    for (int64_t extent : shape)
      n *= extent;
    return n;
  }
  size_t bytes() const { return numel() * dtypeSize(dtype); }
  int64_t dim(int i) const { return shape[i < 0 ? shape.size() + i : i]; }
  int rank() const { return static_cast<int>(shape.size()); }
  float *f32() const { return static_cast<float *>(data); }
  int32_t *i32() const { return static_cast<int32_t *>(data); }
  int64_t *i64() const { return static_cast<int64_t *>(data); }
};

/// `[2, 16, 32]`.
std::string formatShape(const std::vector<int64_t> &shape);

} // namespace moec::rt

#endif // MOEC_RUNTIME_CORE_TENSOR_H
