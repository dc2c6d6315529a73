//===- ExploreCommand.h - `moec explore`: strategies ranked by the cost model -*- C++ -*-===//
#ifndef MOEC_TOOLS_MOEC_EXPLORECOMMAND_H
#define MOEC_TOOLS_MOEC_EXPLORECOMMAND_H

#include "llvm/Support/CommandLine.h"

namespace moec::tools {

/// The subcommand, for cl::ParseCommandLineOptions to select.
extern llvm::cl::SubCommand exploreCommand;
extern llvm::cl::OptionCategory exploreCategory;

/// Runs `moec explore` with the options parsed; the exit status.
int runExplore();

} // namespace moec::tools

#endif // MOEC_TOOLS_MOEC_EXPLORECOMMAND_H
