// ModelFileFuzzer.cpp - the frontends on any bytes: a moec YAML
// description (MOEC_FUZZ_EXTENSION ".yaml") or a Hugging Face config.json
// (".json"), parsed and validated as moec does before building IR: a list
// of diagnostics, never a crash or a hang.
#include "FuzzInput.h"
#include "compiler/frontend/ModelDescription.h"

using namespace moec;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  frontend::DiagnosticList diagnostics;
  (void)frontend::loadModel(fuzz::writeInput(data, size, MOEC_FUZZ_EXTENSION),
                            frontend::ImportOptions(), {}, diagnostics);
  return 0;
}
