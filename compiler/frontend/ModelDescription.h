//===- ModelDescription.h - read model descriptions into a ModelConfig -*- C++ -*-===//
#ifndef MOEC_COMPILER_FRONTEND_MODELDESCRIPTION_H
#define MOEC_COMPILER_FRONTEND_MODELDESCRIPTION_H

#include "compiler/frontend/ModelConfig.h"

#include <optional>
#include <string>
#include <vector>

namespace moec::frontend {

/// Explicit substitutions a user may ask for when importing a Hugging Face
/// config whose features moec does not implement.
struct ImportOptions {
  /// Replace DeepSeek's multi-head latent attention by grouped-query
  /// attention of the same head count (weights are not HF-compatible then).
  bool substituteMlaWithGqa = false;
  /// Ignore sliding windows (attend causally over the whole sequence).
  bool ignoreSlidingWindow = false;
  /// Ignore `rope_scaling` (plain RoPE with `rope_theta`).
  bool ignoreRopeScaling = false;
};

/// Overrides are `key=value` settings from the command line (`moec --set`),
/// applied to the file's tree before it is read: keys are the file's own
/// dotted paths (`num_layers=2`, `moe.router.k=1` in YAML;
/// `num_hidden_layers=2` in a Hugging Face config), values YAML scalars or
/// flow lists.

/// Parses a moec YAML description. Returns nullopt when the file cannot be
/// read or parsed; otherwise the configuration, with keys that had invalid
/// values left at their defaults and every problem in `diagnostics`.
std::optional<ModelConfig>
parseYamlDescription(const std::string &path,
                     const std::vector<std::string> &overrides,
                     DiagnosticList &diagnostics);

/// Imports a Hugging Face `config.json` (mixtral, qwen2_moe, qwen3_moe,
/// olmoe, deepseek_v2, deepseek_v3) with the semantics of REFERENCE.md §8.
std::optional<ModelConfig>
importHuggingFaceConfig(const std::string &path, const ImportOptions &options,
                        const std::vector<std::string> &overrides,
                        DiagnosticList &diagnostics);

/// Picks the parser from the file name (`.json`: Hugging Face, otherwise
/// YAML), parses with the overrides and validates.
std::optional<ModelConfig> loadModel(const std::string &path,
                                     const ImportOptions &options,
                                     const std::vector<std::string> &overrides,
                                     DiagnosticList &diagnostics);

} // namespace moec::frontend

#endif // MOEC_COMPILER_FRONTEND_MODELDESCRIPTION_H
