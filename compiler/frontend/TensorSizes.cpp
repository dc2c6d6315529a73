//===- TensorSizes.cpp - every tensor of a module within a byte limit -----===//
#include "compiler/frontend/TensorSizes.h"
#include "runtime/core/HumanBytes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/BuiltinTypes.h"

#include <string>

namespace moec::frontend {

double tensorBytes(mlir::Type type) {
  auto tensor = mlir::dyn_cast<mlir::RankedTensorType>(type);
  if (!tensor || !tensor.hasStaticShape())
    return 0;
  double elements = 1;
  for (int64_t size : tensor.getShape())
    elements *= static_cast<double>(size);
  mlir::Type element = tensor.getElementType();
  unsigned bits = 64; // index, and anything without a width
  if (element.isIntOrFloat())
    bits = element.getIntOrFloatBitWidth();
  return elements * ((bits + 7) / 8);
}

namespace {
/// The error for `type` at `loc`: its shape, bytes and the limit.
mlir::LogicalResult tooLarge(mlir::Location loc, const std::string &what, mlir::Type type,
                             double bytes, double limit) {
  mlir::emitError(loc) << what << " of type " << type << " needs " << moec::rt::humanBytes(bytes)
                       << ", more than moec's limit of " << moec::rt::humanBytes(limit)
                       << " (--max-memory) for the whole plan";
  return mlir::failure();
}
} // namespace

mlir::LogicalResult checkTensorSizes(mlir::ModuleOp module, double limitBytes) {
  mlir::LogicalResult result = mlir::success();
  module.walk([&](mlir::Operation *op) {
    // Function arguments (parameters, inputs) first, then results.
    if (auto func = mlir::dyn_cast<mlir::func::FuncOp>(op)) {
      for (unsigned i = 0; i < func.getNumArguments(); ++i) {
        mlir::Type input = func.getArgument(i).getType();
        double bytes = tensorBytes(input);
        if (bytes <= limitBytes)
          continue;
        std::string what = "argument " + std::to_string(i) + " of @" + func.getSymName().str();
        for (const char *role : {"moe.param", "moe.input"})
          if (auto name = func.getArgAttrOfType<mlir::StringAttr>(i, role))
            what = std::string(role == std::string("moe.param") ? "parameter '" : "input '") +
                   name.getValue().str() + "'";
        result = tooLarge(func.getArgument(i).getLoc(), what, input, bytes, limitBytes);
        return mlir::WalkResult::interrupt();
      }
      return mlir::WalkResult::advance();
    }
    for (mlir::Value value : op->getResults())
      if (double bytes = tensorBytes(value.getType()); bytes > limitBytes) {
        result = tooLarge(op->getLoc(), "a result of " + op->getName().getStringRef().str(),
                          value.getType(), bytes, limitBytes);
        return mlir::WalkResult::interrupt();
      }
    return mlir::WalkResult::advance();
  });
  return result;
}

} // namespace moec::frontend
