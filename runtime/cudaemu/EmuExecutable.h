// EmuExecutable.h - a plan's generated kernels compiled for the host.
#ifndef MOEC_RUNTIME_CUDAEMU_EMUEXECUTABLE_H
#define MOEC_RUNTIME_CUDAEMU_EMUEXECUTABLE_H

#include "runtime/core/LibraryGemm.h"
#include "runtime/hal/Executable.h"
#include "runtime/schema/plan_generated.h"

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace moec::rt::cudaemu {

/// The kernels' CUDA C++, compiled by the host C++ compiler ($MOEC_EMU_CXX,
/// else `c++`) with moec_cuda_emu.h force-included into one shared object,
/// and loaded with dlopen. Shared objects are cached by content in
/// $MOEC_CACHE_DIR/emu (else ~/.cache/moec/emu), so a plan compiles once.
/// Library GEMMs (moec --gemm=cublaslt) run on the host in k order.
class EmuExecutable final : public hal::Executable {
public:
  static StatusOr<std::unique_ptr<EmuExecutable>>
  load(const std::vector<const plan::Kernel *> &kernels);
  ~EmuExecutable() override;

  bool hasKernel(const std::string &name) const override { return entries_.count(name) > 0; }
  Status launch(hal::Stream &stream, const std::string &kernel, const hal::LaunchConfig &config,
                void **arguments) override;

private:
  /// A compiled entry, or a library GEMM run on the host (HostGemm.h).
  using Entry = std::function<void(void **arguments, const unsigned *grid, const unsigned *block)>;
  EmuExecutable() = default;
  void *library_ = nullptr;
  std::map<std::string, Entry> entries_;
  std::map<std::string, LibraryGemm> gemms_; // the library GEMMs among them
};

/// The text of moec_cuda_emu.h, embedded at build time.
extern const char *const kEmuHeader;

} // namespace moec::rt::cudaemu

#endif // MOEC_RUNTIME_CUDAEMU_EMUEXECUTABLE_H
