//===- CostCommand.h - `moec cost`: what the cost model predicts for one plan -*- C++ -*-===//
#ifndef MOEC_TOOLS_MOEC_COSTCOMMAND_H
#define MOEC_TOOLS_MOEC_COSTCOMMAND_H

#include "llvm/Support/CommandLine.h"

namespace moec::tools {

extern llvm::cl::SubCommand costCommand;
extern llvm::cl::OptionCategory costCategory;

/// Runs `moec cost` with the options parsed; the exit status.
int runCost();

} // namespace moec::tools

#endif // MOEC_TOOLS_MOEC_COSTCOMMAND_H
