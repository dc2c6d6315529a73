//===- ClusterFile.h - reading a cluster description (YAML) -*- C++ -*-===//
#ifndef MOEC_COMPILER_COST_CLUSTERFILE_H
#define MOEC_COMPILER_COST_CLUSTERFILE_H

#include "compiler/cost/Cluster.h"
#include "compiler/frontend/Diagnostics.h"

#include <optional>
#include <string>

namespace moec::cost {

/// Reads the cluster description at `path`; every error (a missing key, a
/// figure without its unit, an unknown key) is reported at its line.
std::optional<Cluster> readClusterFile(const std::string &path,
                                       frontend::DiagnosticList &diagnostics);

} // namespace moec::cost

#endif // MOEC_COMPILER_COST_CLUSTERFILE_H
