//===- Quantity.cpp - sizes, rates and durations written with their units --===//
#include "compiler/cost/Quantity.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <utility>
#include <vector>

namespace moec::cost {
namespace {
using Units = std::vector<std::pair<const char *, double>>;

const Units &unitsOf(QuantityKind kind) {
  static const Units bytes = {{"B", 1},           {"KB", 1e3},           {"MB", 1e6},
                              {"GB", 1e9},        {"TB", 1e12},          {"KiB", 1024.0},
                              {"MiB", 1048576.0}, {"GiB", 1073741824.0}, {"TiB", 1099511627776.0}};
  static const Units bandwidth = {
      {"B/s", 1},           {"KB/s", 1e3},           {"MB/s", 1e6},
      {"GB/s", 1e9},        {"TB/s", 1e12},          {"KiB/s", 1024.0},
      {"MiB/s", 1048576.0}, {"GiB/s", 1073741824.0}, {"TiB/s", 1099511627776.0},
      {"Mb/s", 1e6 / 8},    {"Gb/s", 1e9 / 8},       {"Tb/s", 1e12 / 8}};
  static const Units flops = {
      {"FLOP/s", 1}, {"MFLOP/s", 1e6}, {"GFLOP/s", 1e9}, {"TFLOP/s", 1e12}, {"PFLOP/s", 1e15}};
  static const Units durations = {{"ns", 1e-9}, {"us", 1e-6}, {"ms", 1e-3}, {"s", 1}};
  switch (kind) {
  case QuantityKind::Bytes:
    return bytes;
  case QuantityKind::Bandwidth:
    return bandwidth;
  case QuantityKind::FlopRate:
    return flops;
  case QuantityKind::Duration:
    break;
  }
  return durations;
}
} // namespace

const char *quantityUnits(QuantityKind kind) {
  switch (kind) {
  case QuantityKind::Bytes:
    return "B, KB, MB, GB, TB, KiB, MiB, GiB or TiB";
  case QuantityKind::Bandwidth:
    return "B/s, KB/s, MB/s, GB/s, TB/s, KiB/s, MiB/s, GiB/s, TiB/s, or bits: Mb/s, Gb/s, Tb/s";
  case QuantityKind::FlopRate:
    return "FLOP/s, MFLOP/s, GFLOP/s, TFLOP/s or PFLOP/s";
  case QuantityKind::Duration:
    break;
  }
  return "ns, us, ms or s";
}

std::optional<double> parseQuantity(const std::string &text, QuantityKind kind,
                                    std::string &error) {
  const char *begin = text.c_str();
  char *end = nullptr;
  double value = std::strtod(begin, &end);
  bool zeroAllowed = kind == QuantityKind::Duration;
  if (end == begin || !std::isfinite(value) || !(value > 0 || (zeroAllowed && value == 0))) {
    error = "'" + text + "' is not a " + (zeroAllowed ? "non-negative" : "positive") +
            " number with a unit (" + quantityUnits(kind) + ")";
    return std::nullopt;
  }
  std::string unit(end);
  unit.erase(0, unit.find_first_not_of(' '));
  unit.erase(unit.find_last_not_of(' ') + 1);
  for (const auto &[name, scale] : unitsOf(kind))
    if (unit == name) {
      double figure = value * scale;
      if (!std::isfinite(figure))
        break;
      return figure;
    }
  error = "'" + text + "' needs one of the units " + quantityUnits(kind) +
          (unit.empty() ? "" : ", not '" + unit + "'");
  return std::nullopt;
}

std::string formatQuantity(double figure, QuantityKind kind) {
  // The largest unit of the kind's usual family in which it is at least 1.
  Units family;
  switch (kind) {
  case QuantityKind::Bytes:
    family = {{"B", 1},
              {"KiB", 1024.0},
              {"MiB", 1048576.0},
              {"GiB", 1073741824.0},
              {"TiB", 1099511627776.0}};
    break;
  case QuantityKind::Bandwidth:
    family = {{"B/s", 1}, {"KB/s", 1e3}, {"MB/s", 1e6}, {"GB/s", 1e9}, {"TB/s", 1e12}};
    break;
  default:
    family = unitsOf(kind);
  }
  // Judged on the figure as printed (4 significant digits): 999.99996
  // MFLOP/s is 1 GFLOP/s, not "1000 MFLOP/s".
  char rounded[64];
  std::snprintf(rounded, sizeof rounded, "%.4g", figure);
  const double shown = std::strtod(rounded, nullptr);
  auto chosen = family.front();
  for (const auto &unit : family)
    if (shown >= unit.second)
      chosen = unit;
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "%.4g %s", figure / chosen.second, chosen.first);
  return buffer;
}

} // namespace moec::cost
