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

void DiagnosticList::warning(SourceLoc loc, std::string message) {
  warnings_.push_back({std::move(loc), std::move(message)});
}

void DiagnosticList::print(std::ostream &os) const {
  std::vector<std::pair<Diagnostic, const char *>> sorted;
  for (const Diagnostic &d : errors_)
    sorted.push_back({d, "error"});
  for (const Diagnostic &d : warnings_)
    sorted.push_back({d, "warning"});
  std::stable_sort(sorted.begin(), sorted.end(), [](const auto &a, const auto &b) {
    return std::tie(a.first.loc.line, a.first.loc.column) <
           std::tie(b.first.loc.line, b.first.loc.column);
  });
  for (const auto &[d, kind] : sorted)
    os << d.loc.str() << ": " << kind << ": " << d.message << "\n";
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
