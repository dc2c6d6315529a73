// OptimizerKernels.cpp - CPU kernels of gradient norms, schedules and updates.
#include "runtime/cpu/CpuKernels.h"
#include "runtime/cpu/Math.h"

#include <algorithm>
#include <cmath>

namespace moec::rt::cpu {

namespace {
Status globalNorm(const StepContext &s) {
  double sum = 0;
  for (size_t i = 0; i < s.numInputs(); ++i) {
    const TensorRef &g = s.in(i);
    const float *data = g.f32();
    sum += deterministicSum(g.numel(), 1 << 14, [data](int64_t j) {
      return static_cast<double>(data[j]) * data[j];
    });
  }
  *s.out(0).f32() = static_cast<float>(std::sqrt(sum));
  return Status::ok();
}

Status clipScale(const StepContext &s) {
  double norm = *s.in(0).f32(), maxNorm = *s.in(1).f32();
  *s.out(0).f32() = maxNorm > 0 ? static_cast<float>(std::min(1.0, maxNorm / (norm + 1e-6)))
                                : 1.0f;
  return Status::ok();
}

Status lrSchedule(const StepContext &s) {
  int64_t step = *s.in(0).i64(), warmup = *s.in(2).i64(), total = *s.in(3).i64();
  double lr = *s.in(1).f32(), ratio = *s.in(4).f32();
  std::string kind = s.str("kind");
  double value = lr;
  if (step < warmup) {
    value = lr * static_cast<double>(step + 1) / warmup;
  } else if (kind != "constant") {
    double p = std::clamp(static_cast<double>(step - warmup) /
                              std::max<int64_t>(1, total - warmup),
                          0.0, 1.0);
    value = kind == "cosine" ? lr * (ratio + (1 - ratio) * 0.5 * (1 + std::cos(M_PI * p)))
                             : lr * (1 - (1 - ratio) * p);
  }
  *s.out(0).f32() = static_cast<float>(value);
  return Status::ok();
}

Status temperatureSchedule(const StepContext &s) {
  int64_t step = *s.in(0).i64(), steps = std::max<int64_t>(1, s.i64("steps"));
  double start = s.f64("start"), end = s.f64("end");
  double progress = std::min<double>(1.0, static_cast<double>(step) / steps);
  *s.out(0).f32() = static_cast<float>(start * std::pow(end / start, progress));
  return Status::ok();
}

Status adamwUpdate(const StepContext &s) {
  const TensorRef &p = s.in(0), &g = s.in(1), &m = s.in(2), &v = s.in(3);
  int64_t t = *s.in(4).i64() + 1;
  float lr = *s.in(5).f32(), clip = *s.in(6).f32();
  float beta1 = *s.in(7).f32(), beta2 = *s.in(8).f32(), eps = *s.in(9).f32(),
        wd = *s.in(10).f32();
  double correction1 = 1.0 - std::pow(static_cast<double>(beta1), t);
  double correction2 = 1.0 - std::pow(static_cast<double>(beta2), t);
  float stepSize = static_cast<float>(lr / correction1);
  float sqrtCorrection2 = static_cast<float>(std::sqrt(correction2));
  // Plain pointers, so that the loop vectorises. Outputs may share the
  // inputs' storage (in-place updates): element i only touches index i.
  const float *pIn = p.f32(), *gIn = g.f32(), *mIn = m.f32(), *vIn = v.f32();
  float *pOut = s.out(0).f32(), *mOut = s.out(1).f32(), *vOut = s.out(2).f32();
  int64_t n = p.numel();
#pragma omp parallel for simd
  for (int64_t i = 0; i < n; ++i) {
    float grad = gIn[i] * clip;
    float param = pIn[i] * (1.0f - lr * wd);
    float mi = beta1 * mIn[i] + (1.0f - beta1) * grad;
    float vi = beta2 * vIn[i] + (1.0f - beta2) * grad * grad;
    mOut[i] = mi;
    vOut[i] = vi;
    pOut[i] = param - stepSize * mi / (std::sqrt(vi) / sqrtCorrection2 + eps);
  }
  return Status::ok();
}

Status sgdUpdate(const StepContext &s) {
  const TensorRef &p = s.in(0), &g = s.in(1), &buf = s.in(2);
  int64_t step = *s.in(3).i64();
  float lr = *s.in(4).f32(), clip = *s.in(5).f32();
  float momentum = *s.in(6).f32(), wd = *s.in(7).f32();
  const float *pIn = p.f32(), *gIn = g.f32(), *bufIn = buf.f32();
  float *pOut = s.out(0).f32(), *bufOut = s.out(1).f32();
  bool useMomentum = momentum != 0, hasHistory = useMomentum && step > 0;
  int64_t n = p.numel();
#pragma omp parallel for simd
  for (int64_t i = 0; i < n; ++i) {
    float d = gIn[i] * clip + wd * pIn[i];
    float b = hasHistory ? momentum * bufIn[i] + d : d;
    bufOut[i] = b;
    pOut[i] = pIn[i] - lr * (useMomentum ? b : d);
  }
  return Status::ok();
}
} // namespace

void registerOptimizerKernels(KernelTable &r) {
  r.add("moe.global_norm", globalNorm);
  r.add("moe.clip_scale", clipScale);
  r.add("moe.lr_schedule", lrSchedule);
  r.add("moe.temperature_schedule", temperatureSchedule);
  r.add("moe.adamw_update", adamwUpdate);
  r.add("moe.sgd_update", sgdUpdate);
}

} // namespace moec::rt::cpu
