// EmuKernelRunner.h - runs a generated kernel (compiler/codegen) on the
// cuda-emu device, as a plan step would: its launches in order, over
// operand and result pointers, with a workspace of its own; and the MLIR
// context the kernels' ops need.
#ifndef MOEC_TEST_UNIT_CODEGEN_EMUKERNELRUNNER_H
#define MOEC_TEST_UNIT_CODEGEN_EMUKERNELRUNNER_H

#include "compiler/codegen/CudaKernel.h"
#include "compiler/codegen/CudaKernelInterface.h"
#include "dialects/moe/IR/MoEDialect.h"
#include "runtime/cudaemu/CudaEmuDevice.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/DialectRegistry.h"
#include "mlir/IR/MLIRContext.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <vector>

namespace moec::test {

/// Loads the moe and func dialects into `context`, with the kernel models
/// of the cuda target attached.
inline void loadKernelDialects(mlir::MLIRContext &context) {
  mlir::DialectRegistry registry;
  registry.insert<moe::MoEDialect, mlir::func::FuncDialect>();
  codegen::registerCudaKernelModels(registry);
  context.appendDialectRegistry(registry);
  context.loadAllAvailableDialects();
}

/// Compiles `kernel` for `device` and launches it over `pointers` (its
/// operands, then its results); false, with a gtest failure, when it does
/// not load or a launch fails.
inline bool runOnEmu(rt::cudaemu::CudaEmuDevice &device, const codegen::CudaKernel &kernel,
                     std::vector<void *> pointers) {
  flatbuffers::FlatBufferBuilder fbb;
  std::vector<flatbuffers::Offset<plan::Launch>> launches;
  for (const codegen::KernelLaunch &launch : kernel.launches) {
    std::vector<uint32_t> grid(launch.grid.begin(), launch.grid.end());
    std::vector<uint32_t> block(launch.block.begin(), launch.block.end());
    launches.push_back(plan::CreateLaunchDirect(fbb, launch.entry.c_str(), &grid, &block));
  }
  fbb.Finish(plan::CreateKernelDirect(fbb, kernel.name.c_str(), "sm_90", "", nullptr, "",
                                      kernel.source.c_str(), &launches, kernel.workspaceBytes));
  const plan::Kernel *stored = flatbuffers::GetRoot<plan::Kernel>(fbb.GetBufferPointer());
  auto executable = device.loadExecutable({stored});
  EXPECT_TRUE(executable.isOk()) << executable.status().message();
  if (!executable.isOk())
    return false;
  std::vector<char> workspace(kernel.workspaceBytes);
  if (kernel.workspaceBytes)
    pointers.push_back(workspace.data());
  std::vector<void *> args;
  for (void *&pointer : pointers)
    args.push_back(&pointer);
  for (const codegen::KernelLaunch &launch : kernel.launches) {
    rt::hal::LaunchConfig config;
    std::copy(launch.grid.begin(), launch.grid.end(), config.grid);
    std::copy(launch.block.begin(), launch.block.end(), config.block);
    config.argumentCount = args.size();
    rt::Status launched =
        (*executable)->launch(device.defaultStream(), launch.entry, config, args.data());
    EXPECT_TRUE(launched.isOk()) << launched.message();
    if (!launched.isOk())
      return false;
  }
  return true;
}

} // namespace moec::test

#endif // MOEC_TEST_UNIT_CODEGEN_EMUKERNELRUNNER_H
