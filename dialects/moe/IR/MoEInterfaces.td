//===- MoEInterfaces.td - interfaces of moe ops ------------*- tablegen -*-===//

#ifndef MOE_INTERFACES_TD
#define MOE_INTERFACES_TD

include "mlir/IR/OpBase.td"

def MoE_GradientOpInterface : OpInterface<"GradientOpInterface"> {
  let cppNamespace = "::moec::moe";
  let description = [{
    An op that reverse-mode autodiff (`--moe-autodiff`) can differentiate:
    it builds its vector-Jacobian product. Integer results (selections,
    indices, counts) have no gradient; their consumers receive none.
  }];
  let methods = [
    InterfaceMethod<[{
        Builds, at the builder's insertion point, the gradients of the
        operands from `resultGrads` (one per result, null when that result
        does not reach the loss). Appends one value per operand to
        `operandGrads`, null for operands that get no gradient.
      }],
      "::mlir::LogicalResult", "buildVJP",
      (ins "::mlir::OpBuilder &":$builder,
           "::mlir::ArrayRef<::mlir::Value>":$resultGrads,
           "::llvm::SmallVectorImpl<::mlir::Value> &":$operandGrads)>
  ];
}

def MoE_InPlaceOpInterface : OpInterface<"InPlaceOpInterface"> {
  let cppNamespace = "::moec::moe";
  let description = [{
    An op whose kernels (cpu and generated) stay correct when a result is
    written over the bytes of one of its operands: every element of that
    operand that any thread or iteration reads is read before the element
    of the result at the same place is written (an elementwise update, or a
    row that is reduced before it is rewritten). `--moe-plan-memory` gives
    such a result the operand's bytes when nothing reads the operand after
    the op: arena tensors share an offset, and a function argument (a
    parameter or optimizer state) is updated where it lives.
  }];
  let methods = [
    InterfaceMethod<[{
        The operand whose bytes result `resultIndex` may overwrite, if any.
      }],
      "::std::optional<unsigned>", "getOverwrittenOperand",
      (ins "unsigned":$resultIndex)>
  ];
}

#endif // MOE_INTERFACES_TD
