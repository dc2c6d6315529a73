//===- CostCommand.h - `moec cost`: what the cost model predicts for one plan -*- C++ -*-===//
#ifndef MOEC_TOOLS_MOEC_COSTCOMMAND_H
#define MOEC_TOOLS_MOEC_COSTCOMMAND_H

#include "compiler/cost/ExpertLoad.h"

#include "llvm/Support/CommandLine.h"

#include <optional>
#include <string>

namespace moec::tools {

extern llvm::cl::SubCommand costCommand;
extern llvm::cl::OptionCategory costCategory;

/// Runs `moec cost` with the options parsed; the exit status.
int runCost();

/// Reads the log `--expert-load` names into `load` (nothing when `path` is
/// empty); false, with the error printed for `command`, when it cannot.
bool readExpertLoadOption(const std::string &path, const char *command,
                          std::optional<cost::ExpertLoad> &load);

} // namespace moec::tools

#endif // MOEC_TOOLS_MOEC_COSTCOMMAND_H
