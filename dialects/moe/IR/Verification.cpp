//===- Verification.cpp - shape checks shared by the moe op verifiers -----===//
#include "dialects/moe/IR/Verification.h"

#include "mlir/IR/BuiltinAttributes.h"
#include "llvm/Support/raw_ostream.h"

#include <sstream>

using namespace mlir;

namespace moec::moe::verify {

InFlightDiagnostic emitInferenceError(MLIRContext *context,
                                      std::optional<Location> loc,
                                      StringRef opName) {
  Location where = loc ? *loc : UnknownLoc::get(context);
  return emitError(where) << "'" << opName << "' op ";
}

std::string formatShape(ArrayRef<int64_t> shape) {
  std::string text;
  llvm::raw_string_ostream os(text);
  os << "[";
  llvm::interleaveComma(shape, os, [&](int64_t extent) {
    if (ShapedType::isDynamic(extent))
      os << "?";
    else
      os << extent;
  });
  os << "]";
  return text;
}

bool extentsMatch(int64_t a, int64_t b) {
  return ShapedType::isDynamic(a) || ShapedType::isDynamic(b) || a == b;
}

int64_t product(ArrayRef<int64_t> extents) {
  int64_t result = 1;
  for (int64_t extent : extents) {
    if (ShapedType::isDynamic(extent))
      return ShapedType::kDynamic;
    result *= extent;
  }
  return result;
}

static FailureOr<RankedTensorType> asRanked(ErrorEmitter emitError, Value value,
                                            StringRef name, StringRef layout) {
  auto type = dyn_cast<RankedTensorType>(value.getType());
  if (!type) {
    emitError() << "operand '" << name << "' must be a ranked tensor "
                << layout << ", but has type " << value.getType();
    return failure();
  }
  return type;
}

FailureOr<RankedTensorType> rankedOperand(ErrorEmitter emitError, Value value,
                                          StringRef name, int64_t rank,
                                          StringRef layout) {
  FailureOr<RankedTensorType> type = asRanked(emitError, value, name, layout);
  if (failed(type))
    return failure();
  if (type->getRank() != rank) {
    emitError() << "operand '" << name << "' must be a rank-" << rank
                << " tensor " << layout << ", but has type " << *type;
    return failure();
  }
  return type;
}

FailureOr<RankedTensorType> rankedOperandAtLeast(ErrorEmitter emitError,
                                                 Value value, StringRef name,
                                                 int64_t minRank,
                                                 StringRef layout) {
  FailureOr<RankedTensorType> type = asRanked(emitError, value, name, layout);
  if (failed(type))
    return failure();
  if (type->getRank() < minRank) {
    emitError() << "operand '" << name << "' must have rank at least "
                << minRank << " " << layout << ", but has type " << *type;
    return failure();
  }
  return type;
}

LogicalResult checkDim(ErrorEmitter emitError, StringRef name,
                       RankedTensorType type, unsigned dim, int64_t expected,
                       StringRef meaning, StringRef source) {
  int64_t actual = type.getDimSize(dim);
  if (extentsMatch(actual, expected))
    return success();
  return emitError() << "operand '" << name << "' dimension " << dim << " ("
                     << meaning << ") must be " << expected << " to match "
                     << source << ", but is " << actual;
}

LogicalResult checkShape(ErrorEmitter emitError, StringRef name,
                         RankedTensorType type, ArrayRef<int64_t> expected,
                         StringRef why) {
  ArrayRef<int64_t> actual = type.getShape();
  bool matches = actual.size() == expected.size() &&
                 llvm::all_of(llvm::zip(actual, expected), [](auto pair) {
                   return extentsMatch(std::get<0>(pair), std::get<1>(pair));
                 });
  if (matches)
    return success();
  return emitError() << "operand '" << name << "' must have shape "
                     << formatShape(expected) << " (" << why
                     << "), but has shape " << formatShape(actual);
}

/// Shortest readable form of an attribute value: 0, 1.5, -0.001, 1e-05.
static std::string formatFloat(float value) {
  std::ostringstream os;
  os << value;
  return os.str();
}

LogicalResult checkIntRange(ErrorEmitter emitError, StringRef name,
                            int64_t value, int64_t lo, int64_t hi,
                            StringRef hiMeaning) {
  if (value >= lo && (ShapedType::isDynamic(hi) || value <= hi))
    return success();
  InFlightDiagnostic diag = emitError() << "attribute '" << name << "' must be ";
  if (ShapedType::isDynamic(hi))
    diag << "at least " << lo;
  else if (hiMeaning.empty())
    diag << "between " << lo << " and " << hi;
  else
    diag << "between " << lo << " and " << hiMeaning << " (" << hi << ")";
  return diag << ", but is " << value;
}

FailureOr<int64_t> positiveShapeAttr(ErrorEmitter emitError,
                                     DictionaryAttr attributes,
                                     StringRef name) {
  Attribute found = attributes ? attributes.get(name) : Attribute();
  if (!found) {
    emitError() << "requires attribute '" << name << "'";
    return failure();
  }
  auto attr = dyn_cast<IntegerAttr>(found);
  if (!attr || !attr.getType().isSignlessInteger(64)) {
    emitError() << "attribute '" << name << "' must be an i64 integer, but is "
                << found;
    return failure();
  }
  int64_t value = attr.getInt();
  if (failed(checkIntRange(emitError, name, value, 1, ShapedType::kDynamic)))
    return failure();
  return value;
}

LogicalResult checkFloatAbove(ErrorEmitter emitError, StringRef name,
                              float value, float lo, bool inclusive) {
  if (inclusive ? value >= lo : value > lo)
    return success();
  return emitError() << "attribute '" << name << "' must be "
                     << (inclusive ? "at least " : "greater than ")
                     << formatFloat(lo) << ", but is " << formatFloat(value);
}

LogicalResult checkFloatRange(ErrorEmitter emitError, StringRef name,
                              float value, float lo, bool loInclusive,
                              float hi, bool hiInclusive) {
  bool aboveLo = loInclusive ? value >= lo : value > lo;
  bool belowHi = hiInclusive ? value <= hi : value < hi;
  if (aboveLo && belowHi)
    return success();
  return emitError() << "attribute '" << name << "' must be in "
                     << (loInclusive ? "[" : "(") << formatFloat(lo) << ", "
                     << formatFloat(hi) << (hiInclusive ? "]" : ")")
                     << ", but is " << formatFloat(value);
}

FailureOr<int64_t> checkFFNWeights(ErrorEmitter emitError, Value w1, Value w2,
                                   Value w3, bool perExpert, int64_t experts,
                                   int64_t width) {
  int64_t rank = perExpert ? 3 : 2;
  StringRef inLayout = perExpert ? "[experts, ffn width, model width]"
                                 : "[ffn width, model width]";
  StringRef outLayout = perExpert ? "[experts, model width, ffn width]"
                                  : "[model width, ffn width]";
  unsigned lead = perExpert ? 1 : 0;

  FailureOr<RankedTensorType> w1Type =
      rankedOperand(emitError, w1, "w1", rank, inLayout);
  if (failed(w1Type))
    return failure();
  if (perExpert &&
      failed(checkDim(emitError, "w1", *w1Type, 0, experts, "experts",
                      "the number of experts")))
    return failure();
  if (failed(checkDim(emitError, "w1", *w1Type, lead + 1, width, "model width",
                      "'input'")))
    return failure();
  int64_t ffnWidth = w1Type->getDimSize(lead);

  FailureOr<RankedTensorType> w2Type =
      rankedOperand(emitError, w2, "w2", rank, outLayout);
  if (failed(w2Type))
    return failure();
  SmallVector<int64_t> w2Shape;
  if (perExpert)
    w2Shape.push_back(w1Type->getDimSize(0));
  w2Shape.append({width, ffnWidth});
  if (failed(checkShape(emitError, "w2", *w2Type, w2Shape,
                        "the transpose of 'w1'")))
    return failure();

  if (w3) {
    FailureOr<RankedTensorType> w3Type =
        rankedOperand(emitError, w3, "w3", rank, inLayout);
    if (failed(w3Type) || failed(checkShape(emitError, "w3", *w3Type,
                                            w1Type->getShape(),
                                            "the shape of 'w1'")))
      return failure();
  }
  return ffnWidth;
}

FailureOr<RankedTensorType> routerOperand(ErrorEmitter emitError, Value value,
                                          StringRef name) {
  return rankedOperand(emitError, value, name, 2, "[tokens, experts]");
}

} // namespace moec::moe::verify
