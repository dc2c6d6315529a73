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

def TokenRowKernelOpInterface : OpInterface<"TokenRowKernelOpInterface"> {
  let cppNamespace = "::moec::codegen";
  let description = [{
    An op (with the `TokenRows` trait) whose kernel is one thread per token:
    it writes the statements that compute token `t`'s rows of its results
    from that token's rows of its operands, reached through
    `TokenRowWriter::row`. Its own kernel and a `moe.fused router` kernel
    are both made of such bodies; in the latter, rows that stay inside the
    group are arrays in the thread's registers.
  }];
  let methods = [
    InterfaceMethod<[{
        Writes the statements of one token's rows (in a scope of their own).
      }],
      "::mlir::LogicalResult", "writeTokenRow",
      (ins "::moec::codegen::TokenRowWriter &":$rows)>
  ];
}

def ElementKernelOpInterface : OpInterface<"ElementKernelOpInterface"> {
  let cppNamespace = "::moec::codegen";
  let description = [{
    An op (with the `Elementwise` trait) whose result element is an
    expression of its operands' elements at the same place: its own kernel,
    a `moe.fused elementwise` kernel and the sums inside a router kernel
    compose these expressions.
  }];
  let methods = [
    InterfaceMethod<[{
        The result element as a CUDA expression of `operands`, one float
        expression per operand; device helpers it calls are added to `w`.
      }],
      "std::string", "elementExpression",
      (ins "::moec::codegen::KernelWriter &":$w,
           "::llvm::ArrayRef<std::string>":$operands)>
  ];
}

def ElementLoopKernelOpInterface : OpInterface<"ElementLoopKernelOpInterface"> {
  let cppNamespace = "::moec::codegen";
  let description = [{
    An op (with the `ParameterUpdate` trait) whose kernel is a loop over
    elements `i` after some setup (its scalars read once): its own kernel
    and a `moe.fused optimizer` kernel, which runs the loops of many such
    ops side by side, are made of these statements. `names` holds the
    pointer expression of each operand, then of each result.
  }];
  let methods = [
    InterfaceMethod<"Statements before the loop (reading scalars).",
      "void", "writeSetup",
      (ins "::llvm::raw_ostream &":$os, "::llvm::ArrayRef<std::string>":$names)>,
    InterfaceMethod<"Statements for element `i`.",
      "void", "writeElement",
      (ins "::llvm::raw_ostream &":$os, "::llvm::ArrayRef<std::string>":$names)>
  ];
}

def ScalarKernelOpInterface : OpInterface<"ScalarKernelOpInterface"> {
  let cppNamespace = "::moec::codegen";
  let description = [{
    An op of 0-D operands and results (the clip scale, the learning rate)
    computed by one thread: its own kernel, and a `moe.fused optimizer`
    kernel that computes it after the gradient norm, are made of these
    statements. `names` holds the pointer expression of each operand, then
    of each result.
  }];
  let methods = [
    InterfaceMethod<"Statements of the one thread that computes the results.",
      "void", "writeScalar",
      (ins "::llvm::raw_ostream &":$os, "::llvm::ArrayRef<std::string>":$names)>
  ];
}

def TokenStatisticKernelOpInterface : OpInterface<"TokenStatisticKernelOpInterface"> {
  let cppNamespace = "::moec::codegen";
  let description = [{
    An op (with the `TokenStatistic` trait) whose 0-D result is computed
    from sums over tokens, in a fixed order: first, optionally, each token's
    terms in f64 (`perToken`, `tokenTermWidth` values a token, written by
    the token's thread); then sums over each slice of tokens (`sliceWidth`
    f64 values a slice: slice s holds tokens s·128 ... s·128 + 127, the
    tokens that one block of the loop over tokens takes, so that the block
    can sum them once its threads are done); then one block of 1024 threads
    that adds the slices in order and writes the result. Its own kernel runs these as launches of their own; a
    `moe.fused router` kernel computes the terms in its loop over tokens
    and the slices' sums at the end of each block, so only the last step
    is a launch of its own. `operands` holds the pointer to the first
    element of each operand.
  }];
  let methods = [
    InterfaceMethod<"f64 values each token stores for the final sum (0: none).",
      "int64_t", "tokenTermWidth", (ins), "", "return 0;">,
    InterfaceMethod<[{
        Statements for token `t`, whose operands' rows `rows` gives: its
        terms into `perToken` (`tokenTermWidth` values a token).
      }],
      "::mlir::LogicalResult", "writeTokenTerms",
      (ins "::moec::codegen::TokenRowWriter &":$rows, "::llvm::StringRef":$perToken),
      "", "return ::mlir::success();">,
    InterfaceMethod<"f64 sums each block keeps over its slice of tokens (0: none).",
      "int64_t", "sliceWidth", (ins), "", "return 0;">,
    InterfaceMethod<[{
        Statements of a block of 128 threads: the sums over the tokens of
        one slice, `t0` ≤ t < `t1` (variables of the kernel), into
        `partial` (`sliceWidth` values).
      }],
      "void", "writeSliceSums",
      (ins "::llvm::raw_ostream &":$os, "::llvm::ArrayRef<std::string>":$operands,
           "::llvm::StringRef":$partial),
      "", "return;">,
    InterfaceMethod<[{
        Statements of one block of 1024 threads (`scratch`: 1024 doubles of
        shared memory): the result into `result`[0] from the slices' sums
        (`partials`, `sliceWidth` values each, in slice order) and the
        tokens' terms (`perToken`); fails with a diagnostic on the
        op when its shapes are outside what the kernel supports.
      }],
      "::mlir::LogicalResult", "writeResult",
      (ins "::llvm::raw_ostream &":$os, "::llvm::ArrayRef<std::string>":$operands,
           "::llvm::StringRef":$partials, "::llvm::StringRef":$perToken,
           "::llvm::StringRef":$result)>
  ];
}

def TokenStatisticGradientKernelOpInterface
    : OpInterface<"TokenStatisticGradientKernelOpInterface"> {
  let cppNamespace = "::moec::codegen";
  let description = [{
    An op (with the `TokenStatisticGradient` trait) whose result rows, one
    per token, come from sums over every token of its operands: first sums
    over each slice of tokens (`sliceWidth` f64 values a slice, slices as
    TokenStatisticKernelOpInterface's), then one block of 1024 threads that
    adds the slices in order and makes `valueCount` f32 values, then each
    token's row from those values. Its own kernel runs the three as
    launches; a `moe.fused router` kernel runs the first two before its loop
    over tokens and makes each row in the loop, where the group's other
    members read it in registers. `operands` holds the pointer to the first
    element of each operand (all made before the kernel).
  }];
  let methods = [
    InterfaceMethod<"f64 sums each block keeps over its slice of tokens.",
      "int64_t", "sliceWidth", (ins)>,
    InterfaceMethod<[{
        Statements of a block of 128 threads: the sums over the tokens of
        one slice, `t0` ≤ t < `t1` (variables of the kernel), into
        `partial` (`sliceWidth` values).
      }],
      "void", "writeSliceSums",
      (ins "::llvm::raw_ostream &":$os, "::llvm::ArrayRef<std::string>":$operands,
           "::llvm::StringRef":$partial)>,
    InterfaceMethod<"f32 values the rows are made of.",
      "int64_t", "valueCount", (ins)>,
    InterfaceMethod<[{
        Statements of one block of 1024 threads (`scratch`: 1024 doubles of
        shared memory): the values into `values` from the slices' sums
        (`partials`, in slice order); fails with a diagnostic on the op
        when its shapes are outside what the kernel supports.
      }],
      "::mlir::LogicalResult", "writeValues",
      (ins "::llvm::raw_ostream &":$os, "::llvm::ArrayRef<std::string>":$operands,
           "::llvm::StringRef":$partials, "::llvm::StringRef":$values)>,
    InterfaceMethod<[{
        Statements for token `t`, whose result row `rows` gives: the row
        from `values`.
      }],
      "::mlir::LogicalResult", "writeTokenRow",
      (ins "::moec::codegen::TokenRowWriter &":$rows, "::llvm::StringRef":$values)>
  ];
}

#endif // MOEC_CODEGEN_CUDAKERNELINTERFACE_TD
