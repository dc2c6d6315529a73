//===- YamlReader.h - typed, located reads from a YAML/JSON mapping -*- C++ -*-===//
//
// Both description formats are read through yaml-cpp (JSON is YAML flow
// syntax), which keeps the line and column of every node. A MappingReader
// reads the keys it knows, records where each was written, and at the end
// reports the keys nobody read, with the nearest valid key as suggestion.
//
//===----------------------------------------------------------------------===//
#ifndef MOEC_COMPILER_FRONTEND_YAMLREADER_H
#define MOEC_COMPILER_FRONTEND_YAMLREADER_H

#include "compiler/frontend/Diagnostics.h"

#include <yaml-cpp/yaml.h>

#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace moec::frontend {

/// Parses a file with yaml-cpp, then applies `key=value` overrides; a syntax
/// error becomes a located diagnostic.
std::optional<YAML::Node> loadYamlFile(const std::string &path,
                                       const std::vector<std::string> &overrides,
                                       DiagnosticList &diagnostics);

class MappingReader {
public:
  /// `path` is the dotted key path of `node` ("" at the top level);
  /// `locations` receives the location of every key read.
  MappingReader(YAML::Node node, std::string file, std::string path,
                DiagnosticList &diagnostics,
                std::map<std::string, SourceLoc> &locations);

  bool has(const std::string &key) const;
  /// Whether `key` is present with a null value (`null` in JSON).
  bool isNull(const std::string &key) const;
  /// Whether `key` is present with a list value.
  bool isList(const std::string &key) const { return has(key) && node_[key].IsSequence(); }
  SourceLoc location(const std::string &key) const;
  SourceLoc location() const { return nodeLoc(node_); }

  void read(const std::string &key, int64_t &out);
  void read(const std::string &key, double &out);
  void read(const std::string &key, bool &out);
  void read(const std::string &key, std::string &out);
  void read(const std::string &key, std::optional<double> &out);
  void read(const std::string &key, std::vector<int64_t> &out);
  void read(const std::string &key, std::vector<double> &out);
  /// A list of strings, each one of `choices`.
  void readChoices(const std::string &key, std::vector<std::string> &out,
                   const std::vector<std::string> &choices);
  /// A string that must be one of `choices`.
  void readChoice(const std::string &key, std::string &out,
                  const std::vector<std::string> &choices);
  /// Reads a nested mapping with `body`; absent keys leave defaults.
  void section(const std::string &key,
               const std::function<void(MappingReader &)> &body);
  /// As section, for a body that reports the mapping's unknown keys itself.
  void sectionReportingItself(const std::string &key,
                              const std::function<void(MappingReader &)> &body);
  /// Marks a key as known without reading it (its meaning is elsewhere).
  void ignore(const std::string &key) { known_.insert(key); }
  /// Reports every key that was not read (or ignored), suggesting the
  /// nearest key that exists here.
  void rejectUnknownKeys(const std::vector<std::string> &extraValid = {});
  /// Like rejectUnknownKeys, for formats whose readers ignore keys they do
  /// not know (transformers' config.json): a key within a typo of a known
  /// one is still an error, any other gets a warning that says `why` it
  /// cannot matter.
  void warnUnknownKeys(const std::vector<std::string> &extraValid, const std::string &why);

  const std::string &file() const { return file_; }
  DiagnosticList &diagnostics() { return diagnostics_; }

private:
  template <typename T, typename Parse>
  void readList(const std::string &key, std::vector<T> &out, const char *what, Parse parse);
  SourceLoc nodeLoc(const YAML::Node &node) const;
  /// Unknown keys: errors, or (with `warnWhy`) warnings unless a typo.
  void reportUnknownKeys(const std::vector<std::string> &extraValid, const std::string *warnWhy);
  std::string fullKey(const std::string &key) const;
  /// The scalar at `key`, or nullopt when absent (recording the key).
  std::optional<YAML::Node> scalar(const std::string &key, const char *what);
  void typeError(const std::string &key, const YAML::Node &node,
                 const char *what);

  YAML::Node node_;
  std::string file_;
  std::string path_;
  DiagnosticList &diagnostics_;
  std::map<std::string, SourceLoc> &locations_;
  std::set<std::string> known_;
};

} // namespace moec::frontend

#endif // MOEC_COMPILER_FRONTEND_YAMLREADER_H
