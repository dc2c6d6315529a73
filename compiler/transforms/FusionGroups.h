//===- FusionGroups.h - forming moe.fused groups from legal ops -*- C++ -*-===//
//
// The mechanics every fusion pass shares: growing groups of ops along
// producer-consumer edges without creating cycles, and moving a group into a
// `moe.fused` region. What may join a group (the legality) is the pass's,
// read from op traits and interfaces.
//
//===----------------------------------------------------------------------===//
#ifndef MOEC_COMPILER_TRANSFORMS_FUSIONGROUPS_H
#define MOEC_COMPILER_TRANSFORMS_FUSIONGROUPS_H

#include "dialects/moe/IR/MoEOps.h"

#include "llvm/ADT/STLFunctionalExtras.h"
#include "llvm/ADT/SmallVector.h"

namespace moec {

/// The legality of one fusion: `canJoin(op, anchor)` says whether `op` may
/// be in a group with `anchor`, a member of that group (its producer or
/// another member); `canStart(op)` whether `op` may be a group's first member.
struct FusionRule {
  moe::FusionKind kind;
  llvm::function_ref<bool(mlir::Operation *)> canStart;
  llvm::function_ref<bool(mlir::Operation *, mlir::Operation *)> canJoin;
  /// Whether an op may also join the group of an op that reads one of the
  /// same values (horizontal fusion of independent ops), not only its
  /// producers'.
  bool siblings = false;
  /// The most ops a group may hold (a kernel's parameters are bounded);
  /// 0: no bound.
  unsigned maxMembers = 0;
  /// The kind of a group of these members (in block order), when a rule
  /// that unites two fusions forms groups of either; unset: `kind`.
  llvm::function_ref<moe::FusionKind(llvm::ArrayRef<mlir::Operation *>)> kindOf = nullptr;
};

/// Groups the ops of `block` by `rule` and moves each group of two or more
/// ops into a `moe.fused` region placed where its last member was. An op
/// joins the groups of its producers (and with `rule.siblings`, of the ops
/// that read one of its operands), merging them, when the rule allows
/// and no path outside the merged group leads from one of its members to
/// another (which would make the group depend on itself). Returns the
/// number of groups formed.
unsigned formFusionGroups(mlir::Block &block, const FusionRule &rule);

/// Moves `members` (ops of one block, in block order, forming no cycle)
/// into a `moe.fused` op of `kind` at the last member's place; ops between
/// the members that read a member's result move after it.
moe::FusedOp fuse(llvm::ArrayRef<mlir::Operation *> members, moe::FusionKind kind);

/// Moves the members of `fused` back out, in order, where it was, and
/// erases it: what `fuse` did, undone. Returns the members, now ops of the
/// block.
llvm::SmallVector<mlir::Operation *> unfuse(moe::FusedOp fused);

} // namespace moec

#endif // MOEC_COMPILER_TRANSFORMS_FUSIONGROUPS_H
