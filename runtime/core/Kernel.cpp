// Kernel.cpp - attribute access for kernels.
#include "runtime/core/Kernel.h"

#include "runtime/core/Plan.h"

#include <cstring>

namespace moec::rt {

const plan::Attr *StepContext::find(const char *name) const { return findAttr(step_, name); }

const plan::Attr *StepContext::require(const char *name) const {
  const plan::Attr *attr = find(name);
  if (!attr && missing_.empty())
    missing_ = name;
  return attr;
}

int64_t StepContext::i64(const char *name) const {
  const plan::Attr *attr = require(name);
  if (!attr)
    return 0;
  if (auto v = attr->value_as_IntAttr())
    return v->value();
  if (auto v = attr->value_as_FloatAttr())
    return static_cast<int64_t>(v->value());
  return 0;
}

double StepContext::f64(const char *name) const {
  const plan::Attr *attr = require(name);
  if (!attr)
    return 0;
  if (auto v = attr->value_as_FloatAttr())
    return v->value();
  if (auto v = attr->value_as_IntAttr())
    return static_cast<double>(v->value());
  return 0;
}

bool StepContext::flag(const char *name) const {
  // Unit attributes: absent means false.
  const plan::Attr *attr = find(name);
  if (auto v = attr ? attr->value_as_BoolAttr() : nullptr)
    return v->value();
  return false;
}

std::string StepContext::str(const char *name) const {
  const plan::Attr *attr = require(name);
  if (auto v = attr ? attr->value_as_StringAttr() : nullptr)
    return v->value() ? v->value()->str() : "";
  return "";
}

std::vector<int64_t> StepContext::ints(const char *name) const {
  const plan::Attr *attr = find(name);
  if (attr)
    if (auto v = attr->value_as_IntsAttr(); v && v->values())
      return {v->values()->begin(), v->values()->end()};
  return {};
}

std::vector<double> StepContext::floats(const char *name) const {
  const plan::Attr *attr = find(name);
  if (attr)
    if (auto v = attr->value_as_FloatsAttr(); v && v->values())
      return {v->values()->begin(), v->values()->end()};
  return {};
}

KernelRegistry &KernelRegistry::global() {
  static KernelRegistry registry;
  return registry;
}

std::vector<std::string> KernelTable::ops() const {
  std::vector<std::string> names;
  for (const auto &entry : kernels_)
    names.push_back(entry.first);
  return names;
}

} // namespace moec::rt
