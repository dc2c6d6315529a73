//===- Report.h - explored strategies as a table, JSON or an SVG plot -*- C++ -*-===//
#ifndef MOEC_COMPILER_EXPLORE_REPORT_H
#define MOEC_COMPILER_EXPLORE_REPORT_H

#include "compiler/explore/Explorer.h"

#include <ostream>

namespace moec::explore {

struct ReportContext {
  std::string model; ///< the description's path
  const cost::Cluster *cluster = nullptr;
  int64_t world = 1;
  size_t rows = 0; ///< strategies shown in the table (0: all)
  /// The training log the routing was read from (--expert-load), and its
  /// load; absent: balanced routing.
  std::string loadLog;
  const cost::ExpertLoad *load = nullptr;
};

/// The ranked table, then the command of each row, then what was dropped
/// and why.
void printTable(std::ostream &os, const std::vector<Outcome> &outcomes, const ReportContext &c);

/// Every outcome as JSON (ranked ones first, in rank order), for scripts.
void printJson(std::ostream &os, const std::vector<Outcome> &outcomes, const ReportContext &c);

/// Predicted step time against memory per rank, one point per strategy,
/// the Pareto front drawn through its points and labelled.
void writeSvgPlot(std::ostream &os, const std::vector<Outcome> &outcomes, const ReportContext &c);

} // namespace moec::explore

#endif // MOEC_COMPILER_EXPLORE_REPORT_H
