// CudaDriver.cpp - dlopen of the CUDA driver and resolution of its symbols.
#include "runtime/cuda/CudaDriver.h"

#include <dlfcn.h>

#include <cstdlib>

namespace moec::rt::cuda {

StatusOr<std::shared_ptr<CudaDriver>> CudaDriver::load() {
  const char *override = std::getenv("MOEC_CUDA_DRIVER");
  std::string path = override && *override ? override : "libcuda.so.1";
  void *library = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!library) {
    const char *why = dlerror();
    return Status::error("no CUDA driver: cannot load " + path + " (" +
                         (why ? why : "unknown error") +
                         "); set MOEC_CUDA_DRIVER to its path");
  }

  std::shared_ptr<CudaDriver> driver(new CudaDriver());
  driver->library_ = library;
  CudaDriverSymbols &api = driver->symbols_;
#define MOEC_CUDA_SYMBOL(name, ...)                                            \
  api.name = reinterpret_cast<decltype(api.name)>(dlsym(library, #name));      \
  if (!api.name)                                                               \
    return Status::error("CUDA driver " + path + " lacks symbol " #name);
#include "runtime/cuda/CudaDriverSymbols.def"
#undef MOEC_CUDA_SYMBOL

  if (Status status = driver->check(api.cuInit(0), "cuInit"); !status)
    return status;
  if (Status status =
          driver->check(api.cuDeviceGetCount(&driver->deviceCount_),
                        "cuDeviceGetCount");
      !status)
    return status;
  if (driver->deviceCount_ == 0)
    return Status::error("the CUDA driver sees no device");
  return driver;
}

CudaDriver::~CudaDriver() {
  if (library_)
    dlclose(library_);
}

Status CudaDriver::check(CUresult result, const char *call) const {
  if (result == 0)
    return Status::ok();
  const char *text = nullptr;
  if (symbols_.cuGetErrorString)
    symbols_.cuGetErrorString(result, &text);
  return Status::error(std::string(call) + " failed: " +
                       (text ? text : "error " + std::to_string(result)));
}

} // namespace moec::rt::cuda
