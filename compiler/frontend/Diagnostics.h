//===- Diagnostics.h - errors in model descriptions, all reported at once -*- C++ -*-===//
#ifndef MOEC_COMPILER_FRONTEND_DIAGNOSTICS_H
#define MOEC_COMPILER_FRONTEND_DIAGNOSTICS_H

#include <ostream>
#include <string>
#include <vector>

namespace moec::frontend {

/// A position in a description file; line and column count from 1, 0 when
/// unknown.
struct SourceLoc {
  std::string file;
  int line = 0;
  int column = 0;
  std::string str() const;
};

struct Diagnostic {
  SourceLoc loc;
  std::string message;
};

/// Collects every error found in a description, so that one run reports
/// them all, and the warnings: what was read but ignored or substituted.
class DiagnosticList {
public:
  void error(SourceLoc loc, std::string message);
  void warning(SourceLoc loc, std::string message);
  bool hasErrors() const { return !errors_.empty(); }
  const std::vector<Diagnostic> &errors() const { return errors_; }
  const std::vector<Diagnostic> &warnings() const { return warnings_; }
  /// `file:line:col: error: message` (and `warning:`), one per line, in
  /// file order.
  void print(std::ostream &os) const;

private:
  std::vector<Diagnostic> errors_, warnings_;
};

/// The valid key closest to `key` by edit distance, or "" when none is close.
std::string nearestKey(const std::string &key,
                       const std::vector<std::string> &validKeys);

} // namespace moec::frontend

#endif // MOEC_COMPILER_FRONTEND_DIAGNOSTICS_H
