// Kernel.cpp - attribute access for kernels.
#include "runtime/core/Kernel.h"

#include <cstring>

namespace moec::rt {

const plan::Attr *StepContext::find(const char *name) const {
  if (!step_.attrs())
    return nullptr;
  for (const plan::Attr *attr : *step_.attrs())
    if (std::strcmp(attr->name()->c_str(), name) == 0)
      return attr;
  return nullptr;
}

int64_t StepContext::i64(const char *name, int64_t fallback) const {
  if (const AttrOverride *o = overridden(name))
    return o->kind == AttrOverride::Int ? o->i : static_cast<int64_t>(o->f);
  const plan::Attr *attr = find(name);
  if (!attr)
    return fallback;
  if (auto v = attr->value_as_IntAttr())
    return v->value();
  if (auto v = attr->value_as_FloatAttr())
    return static_cast<int64_t>(v->value());
  return fallback;
}

double StepContext::f64(const char *name, double fallback) const {
  if (const AttrOverride *o = overridden(name))
    return o->kind == AttrOverride::Float ? o->f : static_cast<double>(o->i);
  const plan::Attr *attr = find(name);
  if (!attr)
    return fallback;
  if (auto v = attr->value_as_FloatAttr())
    return v->value();
  if (auto v = attr->value_as_IntAttr())
    return static_cast<double>(v->value());
  return fallback;
}

bool StepContext::flag(const char *name, bool fallback) const {
  const plan::Attr *attr = find(name);
  if (!attr)
    return fallback;
  if (auto v = attr->value_as_BoolAttr())
    return v->value();
  return fallback;
}

std::string StepContext::str(const char *name, const std::string &fallback) const {
  if (const AttrOverride *o = overridden(name); o && o->kind == AttrOverride::String)
    return o->s;
  const plan::Attr *attr = find(name);
  if (!attr)
    return fallback;
  if (auto v = attr->value_as_StringAttr())
    return v->value() ? v->value()->str() : fallback;
  return fallback;
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
