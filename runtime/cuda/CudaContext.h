// CudaContext.h - a GPU's primary context, kept alive by what uses it.
#ifndef MOEC_RUNTIME_CUDA_CUDACONTEXT_H
#define MOEC_RUNTIME_CUDA_CUDACONTEXT_H

#include "runtime/cuda/CudaDriver.h"

#include <memory>

namespace moec::rt::cuda {

/// Retains the primary context of one GPU and releases it when the last
/// holder goes: the device and every buffer, stream, event and module it
/// hands out hold it, so freeing them after the device never touches a
/// released context. `makeCurrent` binds it to the calling thread.
class CudaContext {
public:
  static StatusOr<std::shared_ptr<CudaContext>> retain(std::shared_ptr<CudaDriver> driver,
                                                        CUdevice device);
  ~CudaContext();
  CudaContext(const CudaContext &) = delete;
  CudaContext &operator=(const CudaContext &) = delete;

  Status makeCurrent() const;
  const CudaDriver &driver() const { return *driver_; }
  const CudaDriverSymbols &api() const { return driver_->api(); }
  Status check(CUresult result, const char *call) const { return driver_->check(result, call); }

private:
  CudaContext() = default;
  std::shared_ptr<CudaDriver> driver_;
  CUdevice device_ = 0;
  CUcontext context_ = nullptr;
};

} // namespace moec::rt::cuda

#endif // MOEC_RUNTIME_CUDA_CUDACONTEXT_H
