// CudaDevice.cpp - a GPU as a device of the runtime.
#include "runtime/cuda/CudaDevice.h"
#include "runtime/cuda/CudaExecutable.h"
#include "runtime/cuda/CudaStream.h"

namespace moec::rt::cuda {
namespace {
constexpr int kComputeCapabilityMajor = 75; // CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR
constexpr int kComputeCapabilityMinor = 76;

/// Device memory, freed with the buffer (which keeps its context alive).
class CudaBuffer final : public hal::Buffer {
public:
  CudaBuffer(std::shared_ptr<CudaContext> context, CUdeviceptr address, size_t bytes)
      : hal::Buffer(reinterpret_cast<void *>(address), bytes, /*hostVisible=*/false),
        context_(std::move(context)) {}
  ~CudaBuffer() override {
    context_->api().cuMemFree_v2(reinterpret_cast<CUdeviceptr>(address()));
  }

private:
  std::shared_ptr<CudaContext> context_;
};
} // namespace

StatusOr<std::unique_ptr<CudaDevice>> CudaDevice::createForLocalRank(int localRank) {
  auto driver = CudaDriver::load();
  if (!driver)
    return driver.status();
  int count = (*driver)->deviceCount();
  return create(count > 0 ? localRank % count : localRank);
}

StatusOr<std::unique_ptr<CudaDevice>> CudaDevice::create(int ordinal) {
  auto driver = CudaDriver::load();
  if (!driver)
    return driver.status();
  const CudaDriver &d = **driver;
  if (ordinal < 0 || ordinal >= d.deviceCount())
    return Status::error("no CUDA device " + std::to_string(ordinal) + " (the driver sees " +
                         std::to_string(d.deviceCount()) + ")");
  const CudaDriverSymbols &api = d.api();
  CUdevice handle = 0;
  if (Status s = d.check(api.cuDeviceGet(&handle, ordinal), "cuDeviceGet"); !s)
    return s;
  std::unique_ptr<CudaDevice> device(new CudaDevice());
  char name[256] = {};
  if (Status s = d.check(api.cuDeviceGetName(name, sizeof(name) - 1, handle), "cuDeviceGetName");
      !s)
    return s;
  device->name_ = name;
  int major = 0, minor = 0;
  if (Status s = d.check(api.cuDeviceGetAttribute(&major, kComputeCapabilityMajor, handle),
                         "cuDeviceGetAttribute");
      !s)
    return s;
  if (Status s = d.check(api.cuDeviceGetAttribute(&minor, kComputeCapabilityMinor, handle),
                         "cuDeviceGetAttribute");
      !s)
    return s;
  device->computeCapability_ = major * 10 + minor;
  device->arch_ = "sm_" + std::to_string(device->computeCapability_);
  auto context = CudaContext::retain(*driver, handle);
  if (!context)
    return context.status();
  device->context_ = std::move(*context);
  auto stream = CudaStream::create(device->context_);
  if (!stream)
    return stream.status();
  device->stream_ = std::move(*stream);
  return device;
}

CudaDevice::~CudaDevice() = default;

std::string CudaDevice::description() const { return "cuda (" + name_ + ", " + arch_ + ")"; }

hal::Stream &CudaDevice::defaultStream() { return *stream_; }

double CudaDevice::allocatableBytes() const {
  // The driver answers for the calling thread's current context.
  size_t free = 0, total = 0;
  if (!context_->makeCurrent() ||
      !context_->check(context_->api().cuMemGetInfo_v2(&free, &total), "cuMemGetInfo"))
    return 0;
  return static_cast<double>(free);
}

StatusOr<std::unique_ptr<hal::Buffer>> CudaDevice::allocate(size_t bytes) {
  CUdeviceptr address = 0;
  // The driver refuses empty allocations; a byte keeps addresses distinct.
  if (Status s = context_->check(context_->api().cuMemAlloc_v2(&address, bytes ? bytes : 1),
                                 "cuMemAlloc");
      !s)
    return Status::error("cuda: cannot allocate " + std::to_string(bytes) + " bytes: " +
                         s.message());
  std::unique_ptr<hal::Buffer> buffer(new CudaBuffer(context_, address, bytes));
  if (Status s = stream_->fillZero(buffer->address(), bytes); !s)
    return s;
  if (Status s = stream_->synchronize(); !s)
    return s;
  return tracked(std::move(buffer));
}

StatusOr<std::unique_ptr<hal::Stream>> CudaDevice::createStream() {
  auto stream = CudaStream::create(context_);
  if (!stream)
    return stream.status();
  return std::unique_ptr<hal::Stream>(std::move(*stream));
}

StatusOr<std::unique_ptr<hal::Event>> CudaDevice::createEvent() {
  auto event = CudaEvent::create(context_);
  if (!event)
    return event.status();
  return std::unique_ptr<hal::Event>(std::move(*event));
}

StatusOr<std::shared_ptr<hal::Executable>>
CudaDevice::loadExecutable(const std::vector<const plan::Kernel *> &kernels) {
  std::string key;
  for (const plan::Kernel *kernel : kernels)
    key += kernel->name()->str() + "/" + (kernel->arch() ? kernel->arch()->str() : "") + ";";
  if (std::shared_ptr<hal::Executable> cached = loaded_[key].lock())
    return cached;
  auto executable = CudaExecutable::load(context_, arch_, computeCapability_, kernels);
  if (!executable)
    return executable.status();
  std::shared_ptr<hal::Executable> shared(std::move(*executable));
  loaded_[key] = shared;
  return shared;
}

} // namespace moec::rt::cuda
