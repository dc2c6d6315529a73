//===- CudaKernelInterface.td - ops the cuda target generates code for -===//

#ifndef MOEC_CODEGEN_CUDAKERNELINTERFACE_TD
#define MOEC_CODEGEN_CUDAKERNELINTERFACE_TD

include "mlir/IR/OpBase.td"

def CudaKernelOpInterface : OpInterface<"CudaKernelOpInterface"> {
  let cppNamespace = "::moec::codegen";
  let description = [{
    An op that `moec --target=cuda` lowers to a kernel of its own: CUDA C++
    specialised to the op's static shapes, dtypes and attributes. The kernel
    takes one device pointer per operand, then one per result, in order
    (the runtime passes a step's tensors so); scalars are 0-d tensors read
    through their pointer. External models in compiler/codegen attach it,
    so the dialect does not depend on code generation. Ops without it run
    as library calls (GEMMs) or on the device's op kernels.
  }];
  let methods = [
    InterfaceMethod<[{
        Writes this op's kernel; fails with a diagnostic on the op when a
        shape or dtype is outside what the kernel supports.
      }],
      "::mlir::FailureOr<::moec::codegen::CudaKernel>", "buildCudaKernel", (ins)>
  ];
}

#endif // MOEC_CODEGEN_CUDAKERNELINTERFACE_TD
