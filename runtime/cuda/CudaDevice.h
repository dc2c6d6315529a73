// CudaDevice.h - an NVIDIA GPU through the dlopen'ed driver API.
#ifndef MOEC_RUNTIME_CUDA_CUDADEVICE_H
#define MOEC_RUNTIME_CUDA_CUDADEVICE_H

#include "runtime/cuda/CudaContext.h"
#include "runtime/hal/Device.h"

#include <map>

namespace moec::rt::cuda {

class CudaStream;

/// One GPU (its primary context, current on the thread that created the
/// device, which runs the plan) and a non-blocking default stream. Memory
/// is device memory (not host-visible); executables are the plan's modules,
/// loaded from the cubin when the plan's arch is the GPU's, else JIT from the
/// PTX. Every step must run generated code: the device has no op kernels.
class CudaDevice final : public hal::Device {
public:
  /// The GPU `ordinal`; the error says why there is none (no driver, no
  /// device, an ordinal out of range).
  static StatusOr<std::unique_ptr<CudaDevice>> create(int ordinal = 0);
  /// The GPU of the process of local rank `localRank` on its node: that
  /// ordinal modulo the GPUs the driver sees (a launcher that gives each
  /// process its own GPU through CUDA_VISIBLE_DEVICES leaves it one).
  static StatusOr<std::unique_ptr<CudaDevice>> createForLocalRank(int localRank);
  ~CudaDevice() override;

  hal::DeviceKind kind() const override { return hal::DeviceKind::cuda; }
  std::string description() const override;
  StatusOr<std::unique_ptr<hal::Buffer>> allocate(size_t bytes) override;
  /// The GPU's free memory (cuMemGetInfo); 0 when the driver does not say.
  double allocatableBytes() const override;
  hal::Stream &defaultStream() override;
  StatusOr<std::unique_ptr<hal::Stream>> createStream() override;
  StatusOr<std::unique_ptr<hal::Event>> createEvent() override;
  bool runsGeneratedCode() const override { return true; }
  StatusOr<std::shared_ptr<hal::Executable>>
  loadExecutable(const std::vector<const plan::Kernel *> &kernels) override;

  /// "sm_90" for compute capability 9.0.
  const std::string &arch() const { return arch_; }
  const CudaDriver &driver() const { return context_->driver(); }

private:
  CudaDevice() = default;
  std::shared_ptr<CudaContext> context_; // held by everything the device hands out
  std::unique_ptr<CudaStream> stream_;
  std::string name_, arch_;
  /// Loaded executables by their kernels' names (which end in source
  /// hashes), while someone holds them.
  std::map<std::string, std::weak_ptr<hal::Executable>> loaded_;
  int computeCapability_ = 0; // 90 for 9.0
};

} // namespace moec::rt::cuda

#endif // MOEC_RUNTIME_CUDA_CUDADEVICE_H
