//===- CalibrateCommand.h - `moec calibrate`: figures fitted to traced plans -*- C++ -*-===//
#ifndef MOEC_TOOLS_MOEC_CALIBRATECOMMAND_H
#define MOEC_TOOLS_MOEC_CALIBRATECOMMAND_H

#include "llvm/Support/CommandLine.h"

namespace moec::tools {

extern llvm::cl::SubCommand calibrateCommand;
extern llvm::cl::OptionCategory calibrateCategory;

/// Runs `moec calibrate` with the options parsed; the exit status.
int runCalibrate();

} // namespace moec::tools

#endif // MOEC_TOOLS_MOEC_CALIBRATECOMMAND_H
