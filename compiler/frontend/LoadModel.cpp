//===- LoadModel.cpp - any description format to a validated ModelConfig --===//
#include "compiler/frontend/ModelDescription.h"

namespace moec::frontend {

std::optional<ModelConfig> loadModel(const std::string &path,
                                     const ImportOptions &options,
                                     const std::vector<std::string> &overrides,
                                     DiagnosticList &diagnostics) {
  bool isJson = path.size() >= 5 && path.compare(path.size() - 5, 5, ".json") == 0;
  std::optional<ModelConfig> config =
      isJson ? importHuggingFaceConfig(path, options, overrides, diagnostics)
             : parseYamlDescription(path, overrides, diagnostics);
  if (!config)
    return std::nullopt;
  validate(*config, diagnostics);
  if (diagnostics.hasErrors())
    return std::nullopt;
  return config;
}

} // namespace moec::frontend
