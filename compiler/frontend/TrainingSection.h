//===- TrainingSection.h - the `training` section of a description -*- C++ -*-===//
//
// Shared by the YAML description and the Hugging Face import (whose configs
// carry no training settings; `--set training.optimizer.lr=...` adds them).
//
//===----------------------------------------------------------------------===//
#ifndef MOEC_COMPILER_FRONTEND_TRAININGSECTION_H
#define MOEC_COMPILER_FRONTEND_TRAININGSECTION_H

#include "compiler/frontend/ModelConfig.h"
#include "compiler/frontend/YamlReader.h"

namespace moec::frontend {

void readTrainingSection(MappingReader &reader, TrainingConfig &training);

} // namespace moec::frontend

#endif // MOEC_COMPILER_FRONTEND_TRAININGSECTION_H
