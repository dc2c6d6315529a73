// CudaContext.cpp - retaining and releasing a GPU's primary context.
#include "runtime/cuda/CudaContext.h"

namespace moec::rt::cuda {

StatusOr<std::shared_ptr<CudaContext>> CudaContext::retain(std::shared_ptr<CudaDriver> driver,
                                                            CUdevice device) {
  std::shared_ptr<CudaContext> context(new CudaContext());
  context->driver_ = std::move(driver);
  context->device_ = device;
  if (Status s = context->check(context->api().cuDevicePrimaryCtxRetain(&context->context_, device),
                                "cuDevicePrimaryCtxRetain");
      !s)
    return s;
  if (Status s = context->makeCurrent(); !s)
    return s;
  return context;
}

CudaContext::~CudaContext() {
  if (context_)
    api().cuDevicePrimaryCtxRelease_v2(device_);
}

Status CudaContext::makeCurrent() const {
  return check(api().cuCtxSetCurrent(context_), "cuCtxSetCurrent");
}

} // namespace moec::rt::cuda
