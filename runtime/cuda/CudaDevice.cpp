// CudaDevice.cpp - a GPU as a device of the runtime.
#include "runtime/cuda/CudaDevice.h"
#include "runtime/cuda/CudaExecutable.h"
#include "runtime/cuda/CudaStream.h"

namespace moec::rt::cuda {
namespace {
constexpr int kComputeCapabilityMajor = 75; // CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR
constexpr int kComputeCapabilityMinor = 76;

/// Device memory, freed with the buffer.
class CudaBuffer final : public hal::Buffer {
public:
  CudaBuffer(std::shared_ptr<CudaDriver> driver, CUdeviceptr address, size_t bytes)
      : hal::Buffer(reinterpret_cast<void *>(address), bytes, /*hostVisible=*/false),
        driver_(std::move(driver)) {}
  ~CudaBuffer() override {
    driver_->api().cuMemFree_v2(reinterpret_cast<CUdeviceptr>(address()));
  }

private:
  std::shared_ptr<CudaDriver> driver_;
};
} // namespace

StatusOr<std::unique_ptr<CudaDevice>> CudaDevice::create(int ordinal) {
  auto driver = CudaDriver::load();
  if (!driver)
    return driver.status();
  if (ordinal < 0 || ordinal >= (*driver)->deviceCount())
    return Status::error("no CUDA device " + std::to_string(ordinal) + " (the driver sees " +
                         std::to_string((*driver)->deviceCount()) + ")");
  std::unique_ptr<CudaDevice> device(new CudaDevice());
  device->driver_ = *driver;
  const CudaDriver &d = *device->driver_;
  const CudaDriverSymbols &api = d.api();
  if (Status s = d.check(api.cuDeviceGet(&device->device_, ordinal), "cuDeviceGet"); !s)
    return s;
  char name[256] = {};
  if (Status s = d.check(api.cuDeviceGetName(name, sizeof(name) - 1, device->device_),
                         "cuDeviceGetName");
      !s)
    return s;
  device->name_ = name;
  int major = 0, minor = 0;
  if (Status s = d.check(api.cuDeviceGetAttribute(&major, kComputeCapabilityMajor,
                                                  device->device_),
                         "cuDeviceGetAttribute");
      !s)
    return s;
  if (Status s = d.check(api.cuDeviceGetAttribute(&minor, kComputeCapabilityMinor,
                                                  device->device_),
                         "cuDeviceGetAttribute");
      !s)
    return s;
  device->computeCapability_ = major * 10 + minor;
  device->arch_ = "sm_" + std::to_string(device->computeCapability_);
  if (Status s = d.check(api.cuDevicePrimaryCtxRetain(&device->context_, device->device_),
                         "cuDevicePrimaryCtxRetain");
      !s)
    return s;
  if (Status s = d.check(api.cuCtxSetCurrent(device->context_), "cuCtxSetCurrent"); !s)
    return s;
  auto stream = CudaStream::create(device->driver_);
  if (!stream)
    return stream.status();
  device->stream_ = std::move(*stream);
  return device;
}

CudaDevice::~CudaDevice() {
  stream_.reset();
  if (context_)
    driver_->api().cuDevicePrimaryCtxRelease_v2(device_);
}

std::string CudaDevice::description() const { return "cuda (" + name_ + ", " + arch_ + ")"; }

hal::Stream &CudaDevice::defaultStream() { return *stream_; }

StatusOr<std::unique_ptr<hal::Buffer>> CudaDevice::allocate(size_t bytes) {
  CUdeviceptr address = 0;
  // The driver refuses empty allocations; a byte keeps addresses distinct.
  if (Status s = driver_->check(driver_->api().cuMemAlloc_v2(&address, bytes ? bytes : 1),
                                "cuMemAlloc");
      !s)
    return Status::error("cuda: cannot allocate " + std::to_string(bytes) + " bytes: " +
                         s.message());
  std::unique_ptr<hal::Buffer> buffer(new CudaBuffer(driver_, address, bytes));
  if (Status s = stream_->fillZero(buffer->address(), bytes); !s)
    return s;
  if (Status s = stream_->synchronize(); !s)
    return s;
  return buffer;
}

StatusOr<std::unique_ptr<hal::Stream>> CudaDevice::createStream() {
  auto stream = CudaStream::create(driver_);
  if (!stream)
    return stream.status();
  return std::unique_ptr<hal::Stream>(std::move(*stream));
}

StatusOr<std::unique_ptr<hal::Event>> CudaDevice::createEvent() {
  auto event = CudaEvent::create(driver_);
  if (!event)
    return event.status();
  return std::unique_ptr<hal::Event>(std::move(*event));
}

StatusOr<std::unique_ptr<hal::Executable>>
CudaDevice::loadExecutable(const std::vector<const plan::Kernel *> &kernels) {
  auto executable = CudaExecutable::load(driver_, arch_, computeCapability_, kernels);
  if (!executable)
    return executable.status();
  return std::unique_ptr<hal::Executable>(std::move(*executable));
}

} // namespace moec::rt::cuda
