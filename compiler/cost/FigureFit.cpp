//===- FigureFit.cpp - a device's figures fitted to measured step times ---===//
#include "compiler/cost/FigureFit.h"

#include "compiler/cost/PlanCost.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <vector>

namespace moec::cost {
namespace {

/// The unknowns, in which computeSeconds is linear: reciprocal rates and
/// seconds per product or launch.
enum Unknown {
  GemmFp32,
  CallFp32,
  GemmBf16,
  CallBf16,
  Transcendental,
  Memory,
  Launch,
  Rounding,
  kUnknowns
};
using Vector = std::array<double, kUnknowns>;

constexpr const char *kNames[kUnknowns] = {
    "gemm.fp32",       "gemm_call_overhead.fp32", "gemm.bf16",       "gemm_call_overhead.bf16",
    "transcendentals", "memory_bandwidth",        "launch_overhead", "bf16_conversion"};

/// Unknowns that are the reciprocal of a rate the model divides by: 0 would
/// make the rate infinite. (A transcendental rate of 0 means "not counted".)
bool isRate(int u) { return u == GemmFp32 || u == GemmBf16 || u == Memory || u == Rounding; }

double reciprocal(double x) { return x > 0 ? 1 / x : 0; }

Vector unknownsOf(const DeviceFigures &d) {
  return {reciprocal(d.gemmFp32),
          d.gemmCallFp32,
          reciprocal(d.gemmBf16),
          d.gemmCallBf16,
          reciprocal(d.transcendentalRate),
          reciprocal(d.memoryBandwidth),
          d.launchOverhead,
          d.bf16Conversion > 0 ? 6 / d.bf16Conversion : 0};
}

/// Sets the figures of the unknowns marked in `which` (the others keep
/// their exact values: 1/(1/r) need not be r).
void setUnknowns(const Vector &x, const std::array<bool, kUnknowns> &which, DeviceFigures &d) {
  auto set = [&](int u, double &figure, double value) {
    if (which[u])
      figure = value;
  };
  set(GemmFp32, d.gemmFp32, reciprocal(x[GemmFp32]));
  set(CallFp32, d.gemmCallFp32, x[CallFp32]);
  set(GemmBf16, d.gemmBf16, reciprocal(x[GemmBf16]));
  set(CallBf16, d.gemmCallBf16, x[CallBf16]);
  set(Transcendental, d.transcendentalRate, reciprocal(x[Transcendental]));
  set(Memory, d.memoryBandwidth, reciprocal(x[Memory]));
  set(Launch, d.launchOverhead, x[Launch]);
  if (d.bf16Conversion > 0)
    set(Rounding, d.bf16Conversion, 6 * reciprocal(x[Rounding]));
}

double dot(const Vector &a, const Vector &b) {
  double sum = 0;
  for (int u = 0; u < kUnknowns; ++u)
    sum += a[u] * b[u];
  return sum;
}

/// The coefficients of the unknowns in `step`'s seconds, as computeSeconds
/// adds them up: its arithmetic and its memory traffic, each alone.
struct Sides {
  Vector arithmetic{}, memory{}, always{};
};
Sides sidesOf(const TimedStep &step, const DeviceFigures &device) {
  const StepWork &w = step.work;
  Sides s;
  if (w.gemmFlops > 0) {
    s.arithmetic[w.bf16 ? GemmBf16 : GemmFp32] = w.gemmFlops;
    s.arithmetic[w.bf16 ? CallBf16 : CallFp32] = w.gemmCalls;
  }
  s.arithmetic[Transcendental] = w.transcendentals;
  s.memory[Memory] = w.bytes;
  s.always[Launch] = step.launches;
  if (device.bf16Conversion > 0)
    s.always[Rounding] = w.bf16Operands;
  return s;
}

/// Whether both sides add up (products on a device that does one after
/// the other) rather than the longer counting alone.
bool bothSides(const TimedStep &step, const DeviceFigures &device) {
  return device.serialMemory && step.work.gemmFlops > 0;
}

/// The row of a step: `arithmetic` says which side is the longer where
/// only that one counts.
Vector rowOf(const Sides &s, bool both, bool arithmetic) {
  Vector row{};
  for (int u = 0; u < kUnknowns; ++u)
    row[u] = s.always[u] + (both || arithmetic ? s.arithmetic[u] : 0) +
             (both || !arithmetic ? s.memory[u] : 0);
  return row;
}

/// Minimises Σ (row·x - t)² / t over the unknowns marked free, x ≥ 0, the
/// others held: projected coordinate descent on the normal equations,
/// from `x` (each coordinate's step is exact and scale-free).
void solve(const std::vector<Vector> &rows, const std::vector<double> &times,
           const std::array<bool, kUnknowns> &free, Vector &x) {
  std::array<Vector, kUnknowns> gram{};
  Vector rhs{};
  for (size_t i = 0; i < rows.size(); ++i) {
    double weight = 1 / times[i], target = times[i];
    for (int u = 0; u < kUnknowns; ++u)
      if (!free[u])
        target -= rows[i][u] * x[u];
    for (int u = 0; u < kUnknowns; ++u) {
      if (!free[u])
        continue;
      rhs[u] += weight * rows[i][u] * target;
      for (int v = 0; v < kUnknowns; ++v)
        if (free[v])
          gram[u][v] += weight * rows[i][u] * rows[i][v];
    }
  }
  for (int sweep = 0; sweep < 20000; ++sweep) {
    double change = 0, size = 0;
    for (int u = 0; u < kUnknowns; ++u) {
      if (!free[u] || gram[u][u] <= 0)
        continue;
      double gradient = -rhs[u];
      for (int v = 0; v < kUnknowns; ++v)
        if (free[v])
          gradient += gram[u][v] * x[v];
      double next = std::max(0.0, x[u] - gradient / gram[u][u]);
      change += std::abs(next - x[u]) * std::sqrt(gram[u][u]);
      size += std::abs(next) * std::sqrt(gram[u][u]);
      x[u] = next;
    }
    if (change <= 1e-13 * size)
      break;
  }
  // Coordinate descent crawls along correlated unknowns: finish with the
  // exact least squares over the ones it left positive, if that keeps them
  // positive (Gaussian elimination on the scaled normal equations).
  std::vector<int> active;
  for (int u = 0; u < kUnknowns; ++u)
    if (free[u] && x[u] > 0 && gram[u][u] > 0)
      active.push_back(u);
  const size_t n = active.size();
  std::vector<std::vector<double>> a(n, std::vector<double>(n + 1));
  for (size_t i = 0; i < n; ++i) {
    double si = std::sqrt(gram[active[i]][active[i]]);
    for (size_t j = 0; j < n; ++j)
      a[i][j] = gram[active[i]][active[j]] / (si * std::sqrt(gram[active[j]][active[j]]));
    a[i][n] = rhs[active[i]] / si;
  }
  for (size_t c = 0; c < n; ++c) {
    size_t pivot = c;
    for (size_t r = c + 1; r < n; ++r)
      if (std::abs(a[r][c]) > std::abs(a[pivot][c]))
        pivot = r;
    if (std::abs(a[pivot][c]) < 1e-12)
      return; // singular: keep the descent's answer
    std::swap(a[c], a[pivot]);
    for (size_t r = 0; r < n; ++r)
      if (r != c) {
        double f = a[r][c] / a[c][c];
        for (size_t k = c; k <= n; ++k)
          a[r][k] -= f * a[c][k];
      }
  }
  Vector exact = x;
  for (size_t i = 0; i < n; ++i) {
    exact[active[i]] = a[i][n] / a[i][i] / std::sqrt(gram[active[i]][active[i]]);
    if (exact[active[i]] <= 0)
      return;
  }
  x = exact;
}

/// The median of |predicted - measured| / measured, and the predicted sum.
std::pair<double, double> errors(const std::vector<TimedStep> &steps, const Cluster &cluster) {
  std::vector<double> relative;
  double predicted = 0;
  for (const TimedStep &s : steps) {
    double p = computeSeconds(s.work, s.launches, cluster);
    predicted += p;
    relative.push_back(std::abs(p - s.seconds) / s.seconds);
  }
  if (relative.empty())
    return {0, 0};
  std::nth_element(relative.begin(), relative.begin() + relative.size() / 2, relative.end());
  return {relative[relative.size() / 2], predicted};
}

/// Σ (predicted - measured)² / measured over `steps`, as computeSeconds
/// predicts them with `device`.
double objective(const std::vector<TimedStep> &steps, const Cluster &cluster) {
  double sum = 0;
  for (const TimedStep &s : steps) {
    double d = computeSeconds(s.work, s.launches, cluster) - s.seconds;
    sum += d * d / s.seconds;
  }
  return sum;
}

/// The fit from `longer` (each step's longer side at the start): solve,
/// then choose the sides again at the solution, until they stay. Unknowns
/// no row depends on are held at `base`, and so are rates the solution
/// makes infinite; `free` says which were fitted.
Vector fitFrom(const std::vector<TimedStep> &steps, const DeviceFigures &device, const Vector &base,
               std::vector<bool> longer, std::array<bool, kUnknowns> &free) {
  std::vector<Sides> sides;
  std::vector<double> times;
  for (const TimedStep &s : steps) {
    sides.push_back(sidesOf(s, device));
    times.push_back(s.seconds);
  }
  Vector x = base;
  std::array<bool, kUnknowns> held{};
  for (int round = 0; round < 20; ++round) {
    std::vector<Vector> rows;
    for (size_t i = 0; i < steps.size(); ++i)
      rows.push_back(rowOf(sides[i], bothSides(steps[i], device), longer[i]));
    free = {};
    for (const Vector &row : rows)
      for (int u = 0; u < kUnknowns; ++u)
        free[u] = free[u] || (row[u] > 0 && !held[u]);
    for (;;) {
      Vector tried = x;
      solve(rows, times, free, tried);
      bool again = false;
      for (int u = 0; u < kUnknowns; ++u)
        if (free[u] && isRate(u) && tried[u] <= 0) {
          held[u] = true;
          free[u] = false;
          tried[u] = base[u];
          again = true;
        }
      x = tried;
      if (!again)
        break;
    }
    // An unknown that may be 0 and adds under a millionth to every step
    // is 0 (a transcendental rate of 1e20/s is "not counted").
    for (int u = 0; u < kUnknowns; ++u) {
      double largest = 0;
      for (size_t i = 0; i < rows.size(); ++i)
        largest = std::max(largest, rows[i][u] * x[u] / times[i]);
      if (free[u] && !isRate(u) && largest < 1e-6)
        x[u] = 0;
    }
    bool changed = false;
    for (size_t i = 0; i < steps.size(); ++i) {
      bool arithmetic = dot(sides[i].arithmetic, x) >= dot(sides[i].memory, x);
      changed |= arithmetic != longer[i];
      longer[i] = arithmetic;
    }
    if (!changed)
      break;
  }
  // An unknown no row of the final sides depends on was not fitted, though
  // an earlier round may have moved it: back to the base.
  for (int u = 0; u < kUnknowns; ++u)
    if (!free[u])
      x[u] = base[u];
  return x;
}
} // namespace

FigureFit fitDeviceFigures(const std::vector<TimedStep> &allSteps, Cluster &cluster) {
  FigureFit fit;
  // Steps measured as taking no time say nothing (and cannot be weighed).
  std::vector<TimedStep> steps;
  for (const TimedStep &s : allSteps)
    if (s.seconds > 0) {
      steps.push_back(s);
      fit.measured += s.seconds;
    }
  fit.steps = steps.size();
  std::tie(fit.medianErrorBefore, fit.predictedBefore) = errors(steps, cluster);
  if (steps.empty())
    return fit;

  // Three starts, the best fit kept: each step's longer side as the base
  // figures make it (they may be another device's: a datasheet's);
  // products bound by their arithmetic, everything else by memory; and
  // steps with transcendentals bound by arithmetic too (so that a base
  // that does not count them, as the shipped GPU files, can learn a rate).
  DeviceFigures &device = cluster.device;
  const Vector base = unknownsOf(device);
  std::vector<bool> fromBase, productsArithmetic, transcendentalsArithmetic;
  for (const TimedStep &s : steps) {
    Sides sides = sidesOf(s, device);
    fromBase.push_back(dot(sides.arithmetic, base) >= dot(sides.memory, base));
    productsArithmetic.push_back(s.work.gemmFlops > 0);
    transcendentalsArithmetic.push_back(s.work.gemmFlops > 0 || s.work.transcendentals > 0);
  }
  double best = std::numeric_limits<double>::infinity();
  Vector chosen = base;
  std::array<bool, kUnknowns> free{};
  for (const std::vector<bool> &start : {fromBase, productsArithmetic, transcendentalsArithmetic}) {
    std::array<bool, kUnknowns> fitted{};
    Vector x = fitFrom(steps, device, base, start, fitted);
    Cluster trial = cluster;
    setUnknowns(x, fitted, trial.device);
    double value = objective(steps, trial);
    if (value < best) {
      best = value;
      chosen = x;
      free = fitted;
    }
  }
  setUnknowns(chosen, free, device);
  for (int u = 0; u < kUnknowns; ++u)
    if (u != Rounding || device.bf16Conversion > 0) // else the device has no such pass
      (free[u] ? fit.fitted : fit.kept).push_back(kNames[u]);
  std::tie(fit.medianErrorAfter, fit.predictedAfter) = errors(steps, cluster);
  return fit;
}

} // namespace moec::cost
