// OpSignature.cpp - parsing op signatures and checking plan steps against them.
#include "runtime/core/OpSignature.h"

#include "runtime/core/Plan.h"
#include "runtime/core/signatures/Signatures.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <optional>

namespace moec::rt {

//===----------------------------------------------------------------------===//
// The parsed form
//===----------------------------------------------------------------------===//

namespace {

/// A dimension expression: a sum of signed products of factors.
struct Factor {
  std::string symbol; // empty: the literal
  int64_t literal = 0;
};
struct Term {
  bool negative = false;
  std::vector<Factor> factors;
  std::vector<bool> divides; // factors[i] divides instead of multiplying
};
struct Expr {
  std::vector<Term> terms;
  std::string text;
  /// The symbol when the expression is exactly one symbol (it can bind).
  const std::string *single() const {
    if (terms.size() == 1 && !terms[0].negative && terms[0].factors.size() == 1 &&
        !terms[0].factors[0].symbol.empty())
      return &terms[0].factors[0].symbol;
    return nullptr;
  }
};

enum DTypeBit : unsigned {
  kF32 = 1u << static_cast<int>(DType::f32),
  kF16 = 1u << static_cast<int>(DType::f16),
  kBf16 = 1u << static_cast<int>(DType::bf16),
  kF64 = 1u << static_cast<int>(DType::f64),
  kI32 = 1u << static_cast<int>(DType::i32),
  kI64 = 1u << static_cast<int>(DType::i64),
};

} // namespace

struct OpSignature::Pattern {
  enum class Quantity { one, optional, many, oneOrMore };
  std::string name;
  unsigned dtypes = 0;
  std::string dtypeText;
  bool anyShape = false;
  std::string group;                     // leading dimensions, when non-empty
  std::vector<std::optional<Expr>> dims; // nullopt: `_`
  Quantity quantity = Quantity::one;
};

struct OpSignature::Attribute {
  enum class Kind { i64, f64, boolean, string, ints, floats };
  std::string name;
  Kind kind = Kind::i64;
  bool optional = false;
  std::optional<Expr> low, high; // int, ints
  std::optional<double> lowF, highF;
  bool lowFExclusive = false;
  std::vector<std::string> words; // str
};

//===----------------------------------------------------------------------===//
// Parsing
//===----------------------------------------------------------------------===//

namespace {

class Parser {
public:
  explicit Parser(const std::string &text) : text_(text) {}

  Status fail(const std::string &message) const {
    return Status::error("signature '" + text_ + "', at " + std::to_string(pos_) + ": " + message);
  }
  void skipSpace() {
    while (pos_ < text_.size() && std::isspace(static_cast<unsigned char>(text_[pos_])))
      ++pos_;
  }
  bool atEnd() {
    skipSpace();
    return pos_ >= text_.size();
  }
  bool peek(const char *token) {
    skipSpace();
    return text_.compare(pos_, std::strlen(token), token) == 0;
  }
  bool consume(const char *token) {
    if (!peek(token))
      return false;
    pos_ += std::strlen(token);
    return true;
  }
  /// Letters, digits and '_' (and '.' when `dots`: attribute names).
  std::string word(bool dots = false) {
    skipSpace();
    size_t start = pos_;
    while (pos_ < text_.size() && (std::isalnum(static_cast<unsigned char>(text_[pos_])) ||
                                   text_[pos_] == '_' || (dots && text_[pos_] == '.')))
      ++pos_;
    return text_.substr(start, pos_ - start);
  }
  std::optional<double> number() {
    skipSpace();
    const char *begin = text_.c_str() + pos_;
    char *end = nullptr;
    double value = std::strtod(begin, &end);
    if (end == begin)
      return std::nullopt;
    // "0..1": the number is 0, not "0.".
    if (end[-1] == '.' && end[0] == '.') {
      --end;
      value = std::strtod(std::string(begin, static_cast<size_t>(end - begin)).c_str(), nullptr);
    }
    pos_ += end - begin;
    return value;
  }
  size_t pos() const { return pos_; }
  const std::string &text() const { return text_; }

private:
  const std::string &text_;
  size_t pos_ = 0;
};

StatusOr<Factor> parseFactor(Parser &p) {
  std::string w = p.word();
  if (w.empty())
    return p.fail("expected a number or a symbol");
  Factor f;
  if (std::isdigit(static_cast<unsigned char>(w[0]))) {
    if (!std::all_of(w.begin(), w.end(), [](char c) { return std::isdigit(c); }))
      return p.fail("'" + w + "' is not a number");
    f.literal = std::stoll(w);
  } else {
    f.symbol = w;
  }
  return f;
}

StatusOr<Expr> parseExpr(Parser &p) {
  Expr e;
  p.skipSpace();
  size_t start = p.pos();
  bool negative = false;
  while (true) {
    Term term;
    term.negative = negative;
    auto first = parseFactor(p);
    if (!first)
      return first.status();
    term.factors.push_back(*first);
    term.divides.push_back(false);
    while (p.peek("*") || p.peek("/")) {
      bool divide = p.consume("/");
      if (!divide)
        p.consume("*");
      auto next = parseFactor(p);
      if (!next)
        return next.status();
      term.factors.push_back(*next);
      term.divides.push_back(divide);
    }
    e.terms.push_back(std::move(term));
    if (p.consume("+"))
      negative = false;
    else if (p.peek("-") && !p.peek("->"))
      negative = p.consume("-");
    else
      break;
  }
  e.text = p.text().substr(start, p.pos() - start);
  return e;
}

StatusOr<unsigned> parseDType(const std::string &w) {
  static const std::map<std::string, unsigned> kinds = {
      {"f32", kF32},
      {"f16", kF16},
      {"bf16", kBf16},
      {"f64", kF64},
      {"i32", kI32},
      {"i64", kI64},
      {"float", kF32 | kBf16},
      {"int", kI32 | kI64},
      {"any", kF32 | kF16 | kBf16 | kF64 | kI32 | kI64}};
  auto it = kinds.find(w);
  if (it == kinds.end())
    return Status::error("unknown dtype '" + w + "'");
  return it->second;
}

StatusOr<std::shared_ptr<const OpSignature::Pattern>> parsePattern(Parser &p) {
  using Pattern = OpSignature::Pattern;
  auto pattern = std::make_shared<Pattern>();
  pattern->name = p.word();
  if (pattern->name.empty() || !p.consume(":"))
    return p.fail("expected 'name:dtype[shape]'");
  pattern->dtypeText = p.word();
  auto dtypes = parseDType(pattern->dtypeText);
  if (!dtypes)
    return p.fail(dtypes.status().message());
  pattern->dtypes = *dtypes;
  if (!p.consume("["))
    return p.fail("expected '[' after the dtype");
  if (p.consume("*")) {
    pattern->anyShape = true;
  } else if (!p.peek("]")) {
    if (p.consume("..")) {
      pattern->group = p.word();
      if (pattern->group.empty())
        return p.fail("expected a group name after '..'");
      if (!p.peek("]") && !p.consume(","))
        return p.fail("expected ',' or ']' after the group");
    }
    while (!p.peek("]")) {
      if (p.consume("_")) {
        pattern->dims.push_back(std::nullopt);
      } else {
        auto e = parseExpr(p);
        if (!e)
          return e.status();
        pattern->dims.push_back(std::move(*e));
      }
      if (p.peek("]"))
        break;
      if (!p.consume(",") || p.peek("]"))
        return p.fail("expected ',' and a dimension, or ']'");
    }
  }
  if (!p.consume("]"))
    return p.fail("expected ']'");
  if (p.consume("?"))
    pattern->quantity = Pattern::Quantity::optional;
  else if (p.consume("*"))
    pattern->quantity = Pattern::Quantity::many;
  else if (p.consume("+"))
    pattern->quantity = Pattern::Quantity::oneOrMore;
  return std::shared_ptr<const Pattern>(std::move(pattern));
}

StatusOr<std::shared_ptr<const OpSignature::Attribute>> parseAttribute(Parser &p) {
  using Attribute = OpSignature::Attribute;
  static const std::map<std::string, Attribute::Kind> kinds = {
      {"int", Attribute::Kind::i64},      {"float", Attribute::Kind::f64},
      {"bool", Attribute::Kind::boolean}, {"str", Attribute::Kind::string},
      {"ints", Attribute::Kind::ints},    {"floats", Attribute::Kind::floats}};
  auto a = std::make_shared<Attribute>();
  a->name = p.word(/*dots=*/true);
  if (a->name.empty() || !p.consume(":"))
    return p.fail("expected 'name:kind'");
  std::string kind = p.word();
  auto it = kinds.find(kind);
  if (it == kinds.end())
    return p.fail("unknown attribute kind '" + kind + "'");
  a->kind = it->second;
  a->optional = p.consume("?");
  if (!p.consume("("))
    return std::shared_ptr<const Attribute>(std::move(a));
  switch (a->kind) {
  case Attribute::Kind::i64:
  case Attribute::Kind::ints:
    if (!p.peek("..")) {
      auto low = parseExpr(p);
      if (!low)
        return low.status();
      a->low = std::move(*low);
    }
    if (!p.consume(".."))
      return p.fail("expected '..' in an int range");
    if (!p.peek(")")) {
      auto high = parseExpr(p);
      if (!high)
        return high.status();
      a->high = std::move(*high);
    }
    break;
  case Attribute::Kind::f64:
  case Attribute::Kind::floats:
    if (p.consume(">=") || (p.consume(">") && (a->lowFExclusive = true))) {
      a->lowF = p.number();
      if (!a->lowF)
        return p.fail("expected a number");
      break;
    }
    if (!p.peek("..")) {
      a->lowF = p.number();
      if (!a->lowF)
        return p.fail("expected a number or '..'");
    }
    if (!p.consume(".."))
      return p.fail("expected '..' in a float range");
    if (!p.peek(")")) {
      a->highF = p.number();
      if (!a->highF)
        return p.fail("expected a number");
    }
    break;
  case Attribute::Kind::string:
    do {
      std::string w = p.word();
      if (w.empty())
        return p.fail("expected a word");
      a->words.push_back(w);
    } while (p.consume("|"));
    break;
  case Attribute::Kind::boolean:
    return p.fail("a bool attribute takes no constraint");
  }
  if (!p.consume(")"))
    return p.fail("expected ')'");
  return std::shared_ptr<const Attribute>(std::move(a));
}

} // namespace

StatusOr<OpSignature> OpSignature::parse(const std::string &text, ExtraCheck extra) {
  Parser p(text);
  OpSignature sig;
  sig.extra_ = extra;
  while (!p.peek("->")) {
    if (p.atEnd())
      return p.fail("expected '->'");
    auto pattern = parsePattern(p);
    if (!pattern)
      return pattern.status();
    sig.inputs_.push_back(*pattern);
  }
  p.consume("->");
  while (!p.atEnd() && !p.peek(";")) {
    auto pattern = parsePattern(p);
    if (!pattern)
      return pattern.status();
    sig.outputs_.push_back(*pattern);
  }
  if (p.consume(";"))
    while (!p.atEnd()) {
      auto attribute = parseAttribute(p);
      if (!attribute)
        return attribute.status();
      sig.attributes_.push_back(*attribute);
    }
  return sig;
}

//===----------------------------------------------------------------------===//
// Checking
//===----------------------------------------------------------------------===//

const plan::Attr *StepTensors::attr(const char *name) const { return findAttr(step, name); }

int64_t StepTensors::intAttr(const char *name, int64_t fallback) const {
  const plan::Attr *a = attr(name);
  const plan::IntAttr *v = a ? a->value_as_IntAttr() : nullptr;
  return v ? v->value() : fallback;
}

std::vector<int64_t> StepTensors::intsAttr(const char *name) const {
  const plan::Attr *a = attr(name);
  const plan::IntsAttr *v = a ? a->value_as_IntsAttr() : nullptr;
  if (!v || !v->values())
    return {};
  return {v->values()->begin(), v->values()->end()};
}

namespace {

using Pattern = OpSignature::Pattern;
using Attribute = OpSignature::Attribute;

/// Symbol values, each with where it was bound (for messages).
class Bindings {
public:
  struct Value {
    int64_t value;
    std::string origin;
  };
  const Value *find(const std::string &symbol) const {
    auto it = values_.find(symbol);
    return it == values_.end() ? nullptr : &it->second;
  }
  void bind(const std::string &symbol, int64_t value, std::string origin) {
    values_.emplace(symbol, Value{value, std::move(origin)});
  }
  const std::vector<int64_t> *group(const std::string &name) const {
    auto it = groups_.find(name);
    return it == groups_.end() ? nullptr : &it->second.first;
  }
  const std::string &groupOrigin(const std::string &name) const { return groups_.at(name).second; }
  void bindGroup(const std::string &name, std::vector<int64_t> dims, std::string origin) {
    groups_.emplace(name, std::make_pair(std::move(dims), std::move(origin)));
  }

  /// The expression's value; nullopt when a symbol is unbound or it
  /// overflows or divides inexactly (then it matches nothing).
  std::optional<int64_t> evaluate(const Expr &e, std::string *unbound = nullptr) const {
    __int128 sum = 0;
    for (const Term &term : e.terms) {
      __int128 product = 1;
      for (size_t i = 0; i < term.factors.size(); ++i) {
        const Factor &f = term.factors[i];
        int64_t v = f.literal;
        if (!f.symbol.empty()) {
          const Value *bound = find(f.symbol);
          if (!bound) {
            if (unbound)
              *unbound = f.symbol;
            return std::nullopt;
          }
          v = bound->value;
        }
        if (term.divides[i]) {
          if (v == 0 || product % v != 0)
            return std::nullopt;
          product /= v;
        } else {
          product *= v;
        }
        if (product > INT64_MAX || product < INT64_MIN)
          return std::nullopt;
      }
      sum += term.negative ? -product : product;
      if (sum > INT64_MAX || sum < INT64_MIN)
        return std::nullopt;
    }
    return static_cast<int64_t>(sum);
  }

private:
  std::map<std::string, Value> values_;
  std::map<std::string, std::pair<std::vector<int64_t>, std::string>> groups_;
};

std::string describeTensor(const TensorRef &t) {
  return std::string(dtypeName(t.dtype)) + formatShape(t.shape);
}

/// Which patterns the `count` tensors match, in order: each tensor's pattern
/// index. Follows `segmentSizes` when given for these patterns.
StatusOr<std::vector<size_t>>
assignPatterns(const std::vector<std::shared_ptr<const Pattern>> &patterns, size_t count,
               const std::vector<int64_t> &segmentSizes, const char *what) {
  using Q = Pattern::Quantity;
  std::vector<int64_t> sizes(patterns.size(), 1);
  if (segmentSizes.size() == patterns.size() && !patterns.empty()) {
    sizes = segmentSizes;
  } else {
    size_t fixed = 0, variable = 0;
    for (const auto &p : patterns) {
      fixed += p->quantity == Q::one || p->quantity == Q::oneOrMore;
      variable += p->quantity != Q::one;
    }
    if (count < fixed)
      return Status::error("has " + std::to_string(count) + " " + what + "s, needs " +
                           (variable ? "at least " : "") + std::to_string(fixed));
    size_t surplus = count - fixed;
    for (size_t i = 0; i < patterns.size(); ++i) {
      Q q = patterns[i]->quantity;
      if (q == Q::one)
        continue;
      int64_t base = q == Q::oneOrMore ? 1 : 0;
      int64_t extra = q == Q::optional ? std::min<size_t>(surplus, 1) : surplus;
      sizes[i] = base + extra;
      surplus -= extra;
    }
    if (surplus)
      return Status::error("has " + std::to_string(count) + " " + what + "s, expected " +
                           std::to_string(count - surplus));
  }
  std::vector<size_t> assignment;
  for (size_t i = 0; i < patterns.size(); ++i) {
    Q q = patterns[i]->quantity;
    int64_t n = sizes[i];
    bool fits = n >= 0 && (q == Q::one         ? n == 1
                           : q == Q::optional  ? n <= 1
                           : q == Q::oneOrMore ? n >= 1
                                               : true);
    if (!fits)
      return Status::error("has " + std::to_string(n) + " " + what + "s for '" + patterns[i]->name +
                           "'");
    assignment.insert(assignment.end(), static_cast<size_t>(n), i);
  }
  if (assignment.size() != count)
    return Status::error("has " + std::to_string(count) + " " + what + "s, its " +
                         "segment sizes say " + std::to_string(assignment.size()));
  return assignment;
}

struct Deferred {
  const Expr *expr;
  int64_t actual;
  std::string where;
};

Status matchTensor(const Pattern &pattern, const TensorRef &t, const std::string &where,
                   Bindings &bindings, std::vector<Deferred> &deferred) {
  unsigned bit = 1u << static_cast<int>(t.dtype);
  if (!(pattern.dtypes & bit))
    return Status::error(where + " is " + describeTensor(t) + ", expected dtype " +
                         pattern.dtypeText);
  if (pattern.anyShape)
    return Status::ok();
  size_t fixed = pattern.dims.size();
  size_t rank = t.shape.size();
  if (pattern.group.empty() ? rank != fixed : rank < fixed)
    return Status::error(where + " is " + describeTensor(t) + ", expected rank " +
                         (pattern.group.empty() ? "" : "at least ") + std::to_string(fixed));
  size_t lead = rank - fixed;
  if (!pattern.group.empty()) {
    std::vector<int64_t> leading(t.shape.begin(), t.shape.begin() + lead);
    if (const std::vector<int64_t> *bound = bindings.group(pattern.group)) {
      if (*bound != leading)
        return Status::error(where + " is " + describeTensor(t) + ", its leading dimensions " +
                             formatShape(leading) + " differ from " + formatShape(*bound) + " of " +
                             bindings.groupOrigin(pattern.group));
    } else {
      bindings.bindGroup(pattern.group, leading, where);
    }
  }
  for (size_t i = 0; i < fixed; ++i) {
    if (!pattern.dims[i])
      continue;
    const Expr &e = *pattern.dims[i];
    int64_t actual = t.shape[lead + i];
    std::string dimWhere = where + " dimension " + std::to_string(lead + i);
    if (const std::string *symbol = e.single(); symbol && !bindings.find(*symbol)) {
      bindings.bind(*symbol, actual, dimWhere);
      continue;
    }
    deferred.push_back({&e, actual, dimWhere + " of " + describeTensor(t)});
  }
  return Status::ok();
}

Status checkDeferred(const Deferred &d, const Bindings &bindings) {
  std::string unbound;
  std::optional<int64_t> expected = bindings.evaluate(*d.expr, &unbound);
  if (!unbound.empty())
    return Status::error("internal: the signature never binds '" + unbound + "'");
  if (expected && *expected == d.actual)
    return Status::ok();
  std::string message = d.where + " is " + std::to_string(d.actual) + ", expected " + d.expr->text;
  if (const std::string *symbol = d.expr->single()) {
    const Bindings::Value *v = bindings.find(*symbol);
    message += " = " + std::to_string(v->value) + " (" + v->origin + ")";
  } else if (expected) {
    message += " = " + std::to_string(*expected);
  }
  return Status::error(message);
}

std::string attributeKindName(Attribute::Kind kind) {
  switch (kind) {
  case Attribute::Kind::i64:
    return "an int";
  case Attribute::Kind::f64:
    return "a float";
  case Attribute::Kind::boolean:
    return "a bool";
  case Attribute::Kind::string:
    return "a string";
  case Attribute::Kind::ints:
    return "a list of ints";
  case Attribute::Kind::floats:
    return "a list of floats";
  }
  return "?";
}

Status checkIntRange(const Attribute &a, int64_t value, const std::string &what,
                     const Bindings &bindings) {
  for (const auto *bound : {&a.low, &a.high}) {
    if (!*bound)
      continue;
    std::string unbound;
    std::optional<int64_t> limit = bindings.evaluate(**bound, &unbound);
    if (!unbound.empty())
      return Status::error("internal: the signature never binds '" + unbound + "'");
    bool isLow = bound == &a.low;
    if (!limit || (isLow ? value < *limit : value > *limit))
      return Status::error(what + " is " + std::to_string(value) + ", must be " +
                           (isLow ? "at least " : "at most ") + (*bound)->text +
                           (limit && std::to_string(*limit) != (*bound)->text
                                ? " = " + std::to_string(*limit)
                                : std::string()));
  }
  return Status::ok();
}

Status checkFloatRange(const Attribute &a, double value, const std::string &what) {
  auto text = [](double v) {
    char buffer[32];
    std::snprintf(buffer, sizeof buffer, "%g", v);
    return std::string(buffer);
  };
  if (!std::isfinite(value))
    return Status::error(what + " is " + text(value) + ", must be finite");
  if (a.lowF && (a.lowFExclusive ? value <= *a.lowF : value < *a.lowF))
    return Status::error(what + " is " + text(value) + ", must be " +
                         (a.lowFExclusive ? "above " : "at least ") + text(*a.lowF));
  if (a.highF && value > *a.highF)
    return Status::error(what + " is " + text(value) + ", must be at most " + text(*a.highF));
  return Status::ok();
}

Status checkAttribute(const Attribute &a, const StepTensors &step, const Bindings &bindings) {
  const plan::Attr *attr = step.attr(a.name.c_str());
  std::string what = "attribute '" + a.name + "'";
  if (!attr)
    return a.optional ? Status::ok() : Status::error("lacks " + what);
  auto wrongKind = [&] { return Status::error(what + " is not " + attributeKindName(a.kind)); };
  switch (a.kind) {
  case Attribute::Kind::i64: {
    const plan::IntAttr *v = attr->value_as_IntAttr();
    return v ? checkIntRange(a, v->value(), what, bindings) : wrongKind();
  }
  case Attribute::Kind::ints: {
    const plan::IntsAttr *v = attr->value_as_IntsAttr();
    if (!v)
      return wrongKind();
    if (v->values())
      for (unsigned i = 0; i < v->values()->size(); ++i)
        if (Status s = checkIntRange(a, v->values()->Get(i), what + " value " + std::to_string(i),
                                     bindings);
            !s)
          return s;
    return Status::ok();
  }
  case Attribute::Kind::f64: {
    const plan::FloatAttr *v = attr->value_as_FloatAttr();
    return v ? checkFloatRange(a, v->value(), what) : wrongKind();
  }
  case Attribute::Kind::floats: {
    const plan::FloatsAttr *v = attr->value_as_FloatsAttr();
    if (!v)
      return wrongKind();
    if (v->values())
      for (unsigned i = 0; i < v->values()->size(); ++i)
        if (Status s =
                checkFloatRange(a, v->values()->Get(i), what + " value " + std::to_string(i));
            !s)
          return s;
    return Status::ok();
  }
  case Attribute::Kind::boolean:
    return attr->value_as_BoolAttr() ? Status::ok() : wrongKind();
  case Attribute::Kind::string: {
    const plan::StringAttr *v = attr->value_as_StringAttr();
    if (!v)
      return wrongKind();
    std::string value = v->value() ? v->value()->str() : "";
    if (!a.words.empty() && std::find(a.words.begin(), a.words.end(), value) == a.words.end()) {
      std::string allowed;
      for (const std::string &w : a.words)
        allowed += (allowed.empty() ? "" : ", ") + w;
      return Status::error(what + " is '" + value + "', must be one of " + allowed);
    }
    return Status::ok();
  }
  }
  return Status::ok();
}

} // namespace

Status OpSignature::check(const StepTensors &step) const {
  Bindings bindings;
  if (step.step.attrs())
    for (const plan::Attr *a : *step.step.attrs())
      if (const plan::IntAttr *v = a->value_as_IntAttr())
        bindings.bind(a->name()->str(), v->value(), "attribute '" + a->name()->str() + "'");
  std::vector<Deferred> deferred;
  auto matchAll = [&](const std::vector<std::shared_ptr<const Pattern>> &patterns,
                      const std::vector<TensorRef> &tensors, const char *what,
                      const char *segments) -> Status {
    auto assignment = assignPatterns(patterns, tensors.size(), step.intsAttr(segments), what);
    if (!assignment)
      return assignment.status();
    for (size_t i = 0; i < tensors.size(); ++i) {
      const Pattern &p = *patterns[(*assignment)[i]];
      std::string where = std::string(what) + " " + std::to_string(i) + " (" + p.name + ")";
      if (Status s = matchTensor(p, tensors[i], where, bindings, deferred); !s)
        return s;
    }
    return Status::ok();
  };
  if (Status s = matchAll(inputs_, step.inputs, "operand", "operandSegmentSizes"); !s)
    return s;
  if (Status s = matchAll(outputs_, step.outputs, "result", "resultSegmentSizes"); !s)
    return s;
  // Attributes before the dimensions that depend on them: "'k' is -1" says
  // more than a shape that disagrees with it.
  for (const auto &a : attributes_)
    if (Status s = checkAttribute(*a, step, bindings); !s)
      return s;
  for (const Deferred &d : deferred)
    if (Status s = checkDeferred(d, bindings); !s)
      return s;
  return extra_ ? extra_(step) : Status::ok();
}

//===----------------------------------------------------------------------===//
// The table
//===----------------------------------------------------------------------===//

void SignatureTable::add(const std::string &op, const std::string &text, ExtraCheck extra) {
  auto sig = OpSignature::parse(text, extra);
  if (!sig) {
    std::fprintf(stderr, "moec runtime: op '%s': %s\n", op.c_str(), sig.status().message().c_str());
    std::abort();
  }
  signatures_.emplace_back(op, std::move(*sig));
}

const OpSignature *SignatureTable::find(const std::string &op) const {
  for (const auto &[name, sig] : signatures_)
    if (name == op)
      return &sig;
  return nullptr;
}

std::vector<std::string> SignatureTable::ops() const {
  std::vector<std::string> names;
  for (const auto &entry : signatures_)
    names.push_back(entry.first);
  return names;
}

const SignatureTable &SignatureTable::global() {
  static const SignatureTable table = [] {
    SignatureTable t;
    signatures::addAll(t);
    return t;
  }();
  return table;
}

Status checkStepSignature(const plan::Plan &root, const plan::Step &step) {
  const OpSignature *sig = SignatureTable::global().find(step.op()->str());
  if (!sig)
    return Status::error("op '" + step.op()->str() + "' is not one this runtime knows");
  StepTensors tensors{step, {}, {}};
  auto describe = [&](const flatbuffers::Vector<int32_t> *ids, std::vector<TensorRef> &into) {
    if (ids)
      for (int id : *ids)
        into.push_back(describeTensor(*root.tensors()->Get(id)));
  };
  describe(step.inputs(), tensors.inputs);
  describe(step.outputs(), tensors.outputs);
  return sig->check(tensors);
}

} // namespace moec::rt
