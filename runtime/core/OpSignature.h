// OpSignature.h - what a plan step of one op must look like.
//
// A plan is checked for its meaning, not only its bytes: each step's operand
// and result counts, dtypes and shapes against what its op requires, and its
// attributes in range, so that a plan edited on purpose is an error message
// rather than an out-of-bounds kernel. Each op's requirements are written as a
// short signature, e.g. for the router's logits:
//
//   "x:f32[T,D] w:f32[E,D] -> logits:f32[T,E]"
//
// Grammar (whitespace separates operands and attributes):
//   signature := operand* "->" operand* [";" attribute*]
//   operand   := name ":" dtype shape [quantifier]
//   dtype     := f32 | bf16 | f16 | f64 | i32 | i64 | float (f32, bf16)
//              | int (i32, i64) | any
//   shape     := "[" "]" (a scalar) | "[" "*" "]" (any shape)
//              | "[" [".." group ","] dim ("," dim)* "]" | "[" ".." group "]"
//   dim       := "_" (any extent) | expr
//   expr      := term (("+" | "-") term)*;  term := factor (("*" | "/") factor)*
//   factor    := integer | symbol
//   quantifier:= "?" (zero or one) | "*" (any number) | "+" (one or more)
//   attribute := name ":" kind ["?"] ["(" constraint ")"]
//   kind      := int | float | bool | str | ints | floats
//   constraint:= [expr] ".." [expr] (int, ints: each value; float: numbers)
//              | ">" number | ">=" number (float) | word ("|" word)* (str)
//
// A symbol is bound by its first appearance as a whole dimension, in order:
// int attributes first (by name), then operands, then results; later
// appearances, and expressions, must agree. A group (`..B`) stands for any
// number of leading dimensions, the same wherever the group appears. Every
// repetition of a quantified operand matches the same pattern. Float
// attributes must be finite. Attributes not named in a signature are not
// checked (`moe.precision`, `operandSegmentSizes`); an operand list with
// several optional or variadic operands follows `operandSegmentSizes` (as
// MLIR's ops do), else the one variable operand takes the surplus.
#ifndef MOEC_RUNTIME_CORE_OPSIGNATURE_H
#define MOEC_RUNTIME_CORE_OPSIGNATURE_H

#include "runtime/core/Status.h"
#include "runtime/core/Tensor.h"
#include "runtime/schema/plan_generated.h"

#include <memory>
#include <string>
#include <vector>

namespace moec::rt {

/// One step with the dtypes and shapes of its tensors (no data).
struct StepTensors {
  const plan::Step &step;
  std::vector<TensorRef> inputs;
  std::vector<TensorRef> outputs;

  const plan::Attr *attr(const char *name) const;
  /// The int attribute `name`, or `fallback` when absent or not an int.
  int64_t intAttr(const char *name, int64_t fallback = 0) const;
  std::vector<int64_t> intsAttr(const char *name) const;
};

/// A check a signature cannot state (a concatenation's sizes add up); runs
/// after the signature matched.
using ExtraCheck = Status (*)(const StepTensors &);

class OpSignature {
public:
  /// Parses `text` (grammar above); an error names the position.
  static StatusOr<OpSignature> parse(const std::string &text, ExtraCheck extra = nullptr);

  /// Whether `step` satisfies the signature; the error says which operand,
  /// dimension or attribute does not and why (without naming the step).
  Status check(const StepTensors &step) const;

  struct Pattern;
  struct Attribute;

private:
  std::vector<std::shared_ptr<const Pattern>> inputs_, outputs_;
  std::vector<std::shared_ptr<const Attribute>> attributes_;
  ExtraCheck extra_ = nullptr;
};

/// The signatures of every op a plan may contain, by op name.
class SignatureTable {
public:
  static const SignatureTable &global();
  /// Adds `op`'s signature; a signature that does not parse is a
  /// programming error (the unit test parses them all) and aborts.
  void add(const std::string &op, const std::string &text, ExtraCheck extra = nullptr);
  const OpSignature *find(const std::string &op) const;
  std::vector<std::string> ops() const;

private:
  std::vector<std::pair<std::string, OpSignature>> signatures_;
};

/// `step` (an op's step, or a member of a fusion group) against its op's
/// signature: an op without one is an error too.
Status checkStepSignature(const plan::Plan &root, const plan::Step &step);

} // namespace moec::rt

#endif // MOEC_RUNTIME_CORE_OPSIGNATURE_H
