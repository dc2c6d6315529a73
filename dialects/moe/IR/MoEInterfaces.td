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

#endif // MOE_INTERFACES_TD
