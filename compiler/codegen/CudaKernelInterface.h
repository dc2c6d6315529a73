//===- CudaKernelInterface.h - ops the cuda target generates code for -*- C++ -*-===//
#ifndef MOEC_COMPILER_CODEGEN_CUDAKERNELINTERFACE_H
#define MOEC_COMPILER_CODEGEN_CUDAKERNELINTERFACE_H

#include "compiler/codegen/CudaKernel.h"

#include "mlir/IR/OpDefinition.h"

#include <string>

namespace moec::codegen {
class KernelWriter;
class TokenRowWriter;
} // namespace moec::codegen

#include "compiler/codegen/CudaKernelInterface.h.inc"

namespace mlir {
class DialectRegistry;
} // namespace mlir

namespace moec::codegen {

/// Attaches CudaKernelOpInterface to every op moec generates kernels for.
void registerCudaKernelModels(mlir::DialectRegistry &registry);

} // namespace moec::codegen

#endif // MOEC_COMPILER_CODEGEN_CUDAKERNELINTERFACE_H
