// CudaDriver.h - the CUDA driver API, loaded at run time with dlopen.
//
// The runtime never links libcuda: machines without a GPU (CI, this
// project's build hosts) have only a link stub. The driver is looked up as
// $MOEC_CUDA_DRIVER, then libcuda.so.1 on the loader's path.
#ifndef MOEC_RUNTIME_CUDA_CUDADRIVER_H
#define MOEC_RUNTIME_CUDA_CUDADRIVER_H

#include "runtime/core/Status.h"

#include <cstddef>
#include <memory>
#include <string>

namespace moec::rt::cuda {

// The driver API's handle types, declared here so that no CUDA header is
// needed to build the runtime. They match cuda.h's definitions.
using CUresult = int;
using CUdevice = int;
using CUdeviceptr = unsigned long long;
struct CUctx_st;
struct CUmod_st;
struct CUfunc_st;
struct CUstream_st;
struct CUevent_st;
struct CUgraph_st;
struct CUgraphExec_st;
using CUcontext = CUctx_st *;
using CUmodule = CUmod_st *;
using CUfunction = CUfunc_st *;
using CUstream = CUstream_st *;
using CUevent = CUevent_st *;
using CUgraph = CUgraph_st *;
using CUgraphExec = CUgraphExec_st *;

/// The driver entry points moec uses, resolved from the loaded library.
struct CudaDriverSymbols {
#define MOEC_CUDA_SYMBOL(name, ...) CUresult (*name)(__VA_ARGS__) = nullptr;
#include "runtime/cuda/CudaDriverSymbols.def"
#undef MOEC_CUDA_SYMBOL
};

/// A loaded and initialised CUDA driver.
class CudaDriver {
public:
  /// Loads the driver and calls cuInit; the error says why it is unusable
  /// (no library, a missing symbol, no device).
  static StatusOr<std::shared_ptr<CudaDriver>> load();

  ~CudaDriver();
  CudaDriver(const CudaDriver &) = delete;
  CudaDriver &operator=(const CudaDriver &) = delete;

  const CudaDriverSymbols &api() const { return symbols_; }
  int deviceCount() const { return deviceCount_; }

  /// Turns a driver result into a Status naming the failed call.
  Status check(CUresult result, const char *call) const;

private:
  CudaDriver() = default;
  void *library_ = nullptr;
  CudaDriverSymbols symbols_;
  int deviceCount_ = 0;
};

} // namespace moec::rt::cuda

#endif // MOEC_RUNTIME_CUDA_CUDADRIVER_H
