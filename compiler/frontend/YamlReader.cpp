//===- YamlReader.cpp - typed, located reads from a YAML/JSON mapping -----===//
#include "compiler/frontend/YamlReader.h"

#include <nlohmann/json.hpp>
#include <yaml-cpp/eventhandler.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>

namespace moec::frontend {

/// Sets `root[a][b]...` for the dotted `key` to the YAML value `text`.
static bool applyOverride(YAML::Node root, const std::string &setting,
                          DiagnosticList &diagnostics) {
  size_t eq = setting.find('=');
  SourceLoc where{"--set " + setting, 0, 0};
  if (eq == std::string::npos || eq == 0) {
    diagnostics.error(where, "expected key=value");
    return false;
  }
  std::string key = setting.substr(0, eq);
  YAML::Node value;
  try {
    value = YAML::Load(setting.substr(eq + 1));
  } catch (const YAML::Exception &e) {
    diagnostics.error(where, "invalid value: " + e.msg);
    return false;
  }
  std::vector<std::string> parts;
  for (size_t start = 0;;) {
    size_t dot = key.find('.', start);
    parts.push_back(key.substr(start, dot - start));
    if (dot == std::string::npos)
      break;
    start = dot + 1;
  }
  // yaml-cpp nodes are handles: walking by assignment would rebind them, so
  // descend with reset() on a copy of each child handle.
  YAML::Node node = root;
  for (size_t i = 0; i + 1 < parts.size(); ++i) {
    YAML::Node child = node[parts[i]];
    if (child.IsDefined() && !child.IsNull() && !child.IsMap()) {
      diagnostics.error(where, "'" + parts[i] + "' is not a section");
      return false;
    }
    if (!child.IsDefined() || child.IsNull())
      node[parts[i]] = YAML::Node(YAML::NodeType::Map);
    YAML::Node next = node[parts[i]];
    node.reset(next);
  }
  node[parts.back()] = value;
  return true;
}

/// The first key under `node`, depth first, for which `bad(key, keysBefore)`
/// holds, `keysBefore` being the scalar keys of its mapping before it.
template <typename Bad> static std::optional<YAML::Node> findKey(const YAML::Node &node, Bad bad) {
  if (node.IsMap()) {
    std::set<std::string> before;
    for (auto it = node.begin(); it != node.end(); ++it) {
      if (bad(it->first, before))
        return it->first;
      if (it->first.IsScalar())
        before.insert(it->first.Scalar());
      if (auto inner = findKey(it->second, bad))
        return inner;
    }
  } else if (node.IsSequence()) {
    for (const YAML::Node &child : node)
      if (auto inner = findKey(child, bad))
        return inner;
  }
  return std::nullopt;
}

/// The second occurrence of the first key given twice in one mapping under
/// `node`: YAML readers keep one of the two silently (yaml-cpp the first,
/// Python's json the last), so a description would mean different things
/// to moec and to the tools beside it.
static std::optional<YAML::Node> duplicateKey(const YAML::Node &node) {
  return findKey(node, [](const YAML::Node &key, const std::set<std::string> &before) {
    return key.IsScalar() && before.count(key.Scalar());
  });
}

/// The first key in `node` that is not a plain scalar (YAML allows a
/// mapping or a sequence as a key, `? {a: 1}: x`; a description's keys are
/// names), if any.
static std::optional<YAML::Node> nonScalarKey(const YAML::Node &node) {
  return findKey(
      node, [](const YAML::Node &key, const std::set<std::string> &) { return !key.IsScalar(); });
}

namespace {
/// The 1-based line and column of byte `byte` of `content`.
std::pair<int, int> lineAndColumn(const std::string &content, size_t byte) {
  int line = 1, column = 1;
  for (size_t i = 0; i < std::min(byte, content.size()); ++i) {
    if (content[i] == '\n') {
      ++line;
      column = 1;
    } else {
      ++column;
    }
  }
  return {line, column};
}

/// Where each document of `text` starts (the token) and where its value
/// does, up to two documents. yaml-cpp's LoadAll loops forever, allocating,
/// on streams where a document consumes nothing (a lone ',': yaml-cpp
/// #1040); a second document that starts where the first did is that case.
struct DocumentStart {
  YAML::Mark document, value;
};
std::vector<DocumentStart> documentStarts(const std::string &text) {
  class Starts : public YAML::EventHandler {
  public:
    std::vector<DocumentStart> starts;
    void OnDocumentStart(const YAML::Mark &mark) override {
      starts.push_back({mark, mark});
      first_ = true;
    }
    void OnDocumentEnd() override {}
    void OnNull(const YAML::Mark &mark, YAML::anchor_t) override { value(mark); }
    void OnAlias(const YAML::Mark &mark, YAML::anchor_t) override { value(mark); }
    void OnScalar(const YAML::Mark &mark, const std::string &, YAML::anchor_t,
                  const std::string &) override {
      value(mark);
    }
    void OnSequenceStart(const YAML::Mark &mark, const std::string &, YAML::anchor_t,
                         YAML::EmitterStyle::value) override {
      value(mark);
    }
    void OnSequenceEnd() override {}
    void OnMapStart(const YAML::Mark &mark, const std::string &, YAML::anchor_t,
                    YAML::EmitterStyle::value) override {
      value(mark);
    }
    void OnMapEnd() override {}

  private:
    bool first_ = false;
    /// The document's first event is its value.
    void value(const YAML::Mark &mark) {
      if (first_)
        starts.back().value = mark;
      first_ = false;
    }
  } handler;
  std::istringstream stream(text);
  YAML::Parser parser(stream);
  while (handler.starts.size() < 2 && parser.HandleNextDocument(handler))
    ;
  return handler.starts;
}
} // namespace

std::optional<YAML::Node> loadYamlFile(const std::string &path,
                                       const std::vector<std::string> &overrides,
                                       DiagnosticList &diagnostics) {
  std::ifstream in(path);
  if (!in) {
    diagnostics.error({path, 0, 0}, "cannot open the file");
    return std::nullopt;
  }
  std::stringstream text;
  text << in.rdbuf();
  // YAML accepts more than JSON (",," is a null key to it): check a .json
  // file against JSON's grammar first.
  bool isJson = path.size() >= 5 && path.compare(path.size() - 5, 5, ".json") == 0;
  if (isJson) {
    try {
      // Only the grammar matters here; the tree is read through yaml-cpp.
      nlohmann::json checked = nlohmann::json::parse(text.str());
      (void)checked;
    } catch (const nlohmann::json::parse_error &e) {
      std::string content = text.str();
      auto [line, column] = lineAndColumn(content, e.byte ? e.byte - 1 : 0);
      std::string message = e.what();
      size_t colon = message.find(": ", message.find("parse error"));
      diagnostics.error({path, line, column},
                        "JSON syntax error: " +
                            (colon == std::string::npos ? message : message.substr(colon + 2)));
      return std::nullopt;
    } catch (const nlohmann::json::exception &e) {
      // A number beyond a double's range ("1e999"), which JSON's grammar
      // allows and no setting can hold.
      std::string message = e.what();
      message = message.substr(message.find("] ") + 2);
      // At the number the message quotes.
      size_t quote = message.find('\'');
      std::string number = message.substr(quote + 1, message.rfind('\'') - quote - 1);
      std::string content = text.str();
      auto [line, column] = lineAndColumn(content, std::min(content.find(number), content.size()));
      diagnostics.error({path, line, column}, "JSON: " + message);
      return std::nullopt;
    }
  }
  try {
    std::vector<DocumentStart> starts = documentStarts(text.str());
    if (starts.size() > 1 && starts[1].document.pos == starts[0].document.pos) {
      YAML::Mark at = starts[0].document;
      diagnostics.error({path, at.line + 1, at.column + 1},
                        "syntax error: no YAML value starts here");
      return std::nullopt;
    }
    if (starts.size() > 1) {
      YAML::Mark at = starts[1].value;
      diagnostics.error({path, at.line + 1, at.column + 1},
                        "a second YAML document (after '---'): a description is one document");
      return std::nullopt;
    }
    YAML::Node node = YAML::Load(text.str());
    if (auto key = nonScalarKey(node)) {
      diagnostics.error({path, key->Mark().line + 1, key->Mark().column + 1},
                        std::string("a ") +
                            (key->IsMap()        ? "mapping"
                             : key->IsSequence() ? "sequence"
                                                 : "missing value") +
                            " as a key: keys are names");
      return std::nullopt;
    }
    if (auto repeated = duplicateKey(node)) {
      diagnostics.error({path, repeated->Mark().line + 1, repeated->Mark().column + 1},
                        "'" + repeated->Scalar() + "' is given twice in the same mapping");
      return std::nullopt;
    }
    if (!node.IsMap()) {
      diagnostics.error({path, node.Mark().line + 1, node.Mark().column + 1},
                        "expected a mapping of keys to values at the top "
                        "level");
      return std::nullopt;
    }
    for (const std::string &setting : overrides)
      if (!applyOverride(node, setting, diagnostics))
        return std::nullopt;
    return node;
  } catch (const YAML::ParserException &e) {
    diagnostics.error({path, e.mark.line + 1, e.mark.column + 1},
                      "syntax error: " + e.msg);
  } catch (const YAML::Exception &e) {
    diagnostics.error({path, e.mark.line + 1, e.mark.column + 1}, e.msg);
  }
  return std::nullopt;
}

MappingReader::MappingReader(YAML::Node node, std::string file,
                             std::string path, DiagnosticList &diagnostics,
                             std::map<std::string, SourceLoc> &locations)
    : node_(node), file_(std::move(file)), path_(std::move(path)),
      diagnostics_(diagnostics), locations_(locations) {}

SourceLoc MappingReader::nodeLoc(const YAML::Node &node) const {
  YAML::Mark mark = node.Mark();
  if (mark.is_null())
    return {file_ + " (set on the command line)", 0, 0};
  return {file_, mark.line + 1, mark.column + 1};
}

std::string MappingReader::fullKey(const std::string &key) const {
  return path_.empty() ? key : path_ + "." + key;
}

bool MappingReader::has(const std::string &key) const {
  return node_.IsMap() && node_[key].IsDefined() && !node_[key].IsNull();
}

bool MappingReader::isNull(const std::string &key) const {
  return node_.IsMap() && node_[key].IsDefined() && node_[key].IsNull();
}

SourceLoc MappingReader::location(const std::string &key) const {
  auto it = locations_.find(fullKey(key));
  if (it != locations_.end())
    return it->second;
  // A key not read (yet): where its value is.
  if (node_.IsMap())
    for (const auto &entry : node_)
      if (entry.first.as<std::string>() == key)
        return nodeLoc(entry.second);
  return nodeLoc(node_);
}

void MappingReader::typeError(const std::string &key, const YAML::Node &node,
                              const char *what) {
  std::string shown = node.IsScalar() ? "'" + node.Scalar() + "'"
                      : node.IsMap()  ? "a mapping"
                                      : "a list";
  diagnostics_.error(nodeLoc(node), "'" + fullKey(key) + "' must be " + what +
                                        ", but is " + shown);
}

std::optional<YAML::Node> MappingReader::scalar(const std::string &key,
                                                const char *what) {
  known_.insert(key);
  if (!has(key))
    return std::nullopt;
  YAML::Node value = node_[key];
  locations_[fullKey(key)] = nodeLoc(value);
  if (!value.IsScalar()) {
    typeError(key, value, what);
    return std::nullopt;
  }
  return value;
}

void MappingReader::read(const std::string &key, int64_t &out) {
  std::optional<YAML::Node> value = scalar(key, "an integer");
  if (!value)
    return;
  const std::string &text = value->Scalar();
  char *end = nullptr;
  errno = 0;
  long long parsed = std::strtoll(text.c_str(), &end, 10);
  if (text.empty() || *end != '\0' || errno == ERANGE)
    return typeError(key, *value, "an integer");
  out = parsed;
}

void MappingReader::read(const std::string &key, double &out) {
  std::optional<YAML::Node> value = scalar(key, "a number");
  if (!value)
    return;
  const std::string &text = value->Scalar();
  char *end = nullptr;
  double parsed = std::strtod(text.c_str(), &end);
  if (text.empty() || *end != '\0' || !std::isfinite(parsed))
    return typeError(key, *value, "a finite number");
  out = parsed;
}

void MappingReader::read(const std::string &key, std::optional<double> &out) {
  double value = 0.0;
  bool present = has(key);
  size_t before = diagnostics_.errors().size();
  read(key, value);
  if (present && diagnostics_.errors().size() == before)
    out = value;
}

void MappingReader::read(const std::string &key, bool &out) {
  std::optional<YAML::Node> value = scalar(key, "true or false");
  if (!value)
    return;
  const std::string &text = value->Scalar();
  if (text == "true" || text == "True")
    out = true;
  else if (text == "false" || text == "False")
    out = false;
  else
    typeError(key, *value, "true or false");
}

void MappingReader::read(const std::string &key, std::string &out) {
  if (std::optional<YAML::Node> value = scalar(key, "a string"))
    out = value->Scalar();
}

/// Each scalar of the list at `key` through `parse` (false: not a valid
/// item, reported as not `what`).
template <typename T, typename Parse>
void MappingReader::readList(const std::string &key, std::vector<T> &out, const char *what,
                             Parse parse) {
  known_.insert(key);
  if (!has(key))
    return;
  YAML::Node list = node_[key];
  locations_[fullKey(key)] = nodeLoc(list);
  if (!list.IsSequence())
    return typeError(key, list, what);
  out.clear();
  for (const YAML::Node &item : list) {
    T parsed{};
    if (!item.IsScalar() || item.Scalar().empty() || !parse(item.Scalar(), parsed))
      return typeError(key, item, what);
    out.push_back(parsed);
  }
}

void MappingReader::read(const std::string &key, std::vector<int64_t> &out) {
  readList(key, out, "a list of integers", [](const std::string &text, int64_t &value) {
    char *end = nullptr;
    value = std::strtoll(text.c_str(), &end, 10);
    return *end == '\0';
  });
}

void MappingReader::read(const std::string &key, std::vector<double> &out) {
  readList(key, out, "a list of finite numbers", [](const std::string &text, double &value) {
    char *end = nullptr;
    value = std::strtod(text.c_str(), &end);
    return *end == '\0' && std::isfinite(value);
  });
}

void MappingReader::readChoices(const std::string &key, std::vector<std::string> &out,
                                const std::vector<std::string> &choices) {
  known_.insert(key);
  if (!has(key))
    return;
  YAML::Node list = node_[key];
  locations_[fullKey(key)] = nodeLoc(list);
  std::string expected = "a list of";
  for (const std::string &choice : choices)
    expected += (&choice == &choices.front() ? " " : ", ") + choice;
  if (!list.IsSequence())
    return typeError(key, list, expected.c_str());
  out.clear();
  for (const YAML::Node &item : list) {
    if (!item.IsScalar() ||
        std::find(choices.begin(), choices.end(), item.Scalar()) == choices.end())
      return typeError(key, item, expected.c_str());
    out.push_back(item.Scalar());
  }
}

void MappingReader::readChoice(const std::string &key, std::string &out,
                               const std::vector<std::string> &choices) {
  std::string value = out;
  bool present = has(key);
  read(key, value);
  if (!present)
    return;
  for (const std::string &choice : choices)
    if (choice == value) {
      out = value;
      return;
    }
  std::string list;
  for (const std::string &choice : choices)
    list += (list.empty() ? "" : ", ") + choice;
  std::string message = "'" + fullKey(key) + "' must be one of " + list +
                        ", but is '" + value + "'";
  std::string suggestion = nearestKey(value, choices);
  if (!suggestion.empty())
    message += "; did you mean '" + suggestion + "'?";
  diagnostics_.error(location(key), message);
}

void MappingReader::section(const std::string &key,
                            const std::function<void(MappingReader &)> &body) {
  sectionReportingItself(key, [&](MappingReader &reader) {
    body(reader);
    reader.rejectUnknownKeys();
  });
}

void MappingReader::sectionReportingItself(const std::string &key,
                                           const std::function<void(MappingReader &)> &body) {
  known_.insert(key);
  if (!has(key))
    return;
  YAML::Node child = node_[key];
  locations_[fullKey(key)] = nodeLoc(child);
  if (!child.IsMap())
    return typeError(key, child, "a mapping");
  MappingReader reader(child, file_, fullKey(key), diagnostics_, locations_);
  body(reader);
}

void MappingReader::rejectUnknownKeys(
    const std::vector<std::string> &extraValid) {
  reportUnknownKeys(extraValid, nullptr);
}

void MappingReader::warnUnknownKeys(const std::vector<std::string> &extraValid,
                                    const std::string &why) {
  reportUnknownKeys(extraValid, &why);
}

void MappingReader::reportUnknownKeys(const std::vector<std::string> &extraValid,
                                      const std::string *warnWhy) {
  if (!node_.IsMap())
    return;
  std::vector<std::string> valid(known_.begin(), known_.end());
  valid.insert(valid.end(), extraValid.begin(), extraValid.end());
  for (const auto &entry : node_) {
    std::string key = entry.first.as<std::string>();
    if (known_.count(key) ||
        std::find(extraValid.begin(), extraValid.end(), key) != extraValid.end())
      continue;
    std::string message = "unknown key '" + fullKey(key) + "'";
    std::string suggestion = nearestKey(key, valid);
    if (!suggestion.empty())
      message += "; did you mean '" + suggestion + "'?";
    if (warnWhy && suggestion.empty())
      diagnostics_.warning(nodeLoc(entry.first), message + " (" + *warnWhy + ")");
    else
      diagnostics_.error(nodeLoc(entry.first), message);
  }
}

} // namespace moec::frontend
