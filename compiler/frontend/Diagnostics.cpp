//===- Diagnostics.cpp - errors in model descriptions ---------------------===//
#include "compiler/frontend/Diagnostics.h"

#include "llvm/ADT/StringRef.h"

#include <algorithm>

namespace moec::frontend {

std::string SourceLoc::str() const {
  std::string text = file.empty() ? "<input>" : file;
  if (line > 0) {
    text += ":" + std::to_string(line);
    if (column > 0)
      text += ":" + std::to_string(column);
  }
  return text;
}

void DiagnosticList::error(SourceLoc loc, std::string message) {
  errors_.push_back({std::move(loc), std::move(message)});
}

void DiagnosticList::print(std::ostream &os) const {
  std::vector<Diagnostic> sorted = errors_;
  std::stable_sort(sorted.begin(), sorted.end(),
                   [](const Diagnostic &a, const Diagnostic &b) {
                     return std::tie(a.loc.line, a.loc.column) <
                            std::tie(b.loc.line, b.loc.column);
                   });
  for (const Diagnostic &d : sorted)
    os << d.loc.str() << ": error: " << d.message << "\n";
}

std::string nearestKey(const std::string &key,
                       const std::vector<std::string> &validKeys) {
  std::string best;
  unsigned bestDistance = ~0u;
  for (const std::string &candidate : validKeys) {
    unsigned distance = llvm::StringRef(key).edit_distance(candidate);
    if (distance < bestDistance) {
      bestDistance = distance;
      best = candidate;
    }
  }
  // Suggest only what a typo could explain.
  unsigned limit = std::max<unsigned>(2, key.size() / 3);
  return bestDistance <= limit ? best : "";
}

} // namespace moec::frontend
