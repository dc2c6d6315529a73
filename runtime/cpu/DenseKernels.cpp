// DenseKernels.cpp - CPU kernels of the dense transformer ops.
#include "runtime/cpu/Bf16Storage.h"
#include "runtime/cpu/CpuKernels.h"
#include "runtime/cpu/Ffn.h"
#include "runtime/cpu/Math.h"
#include "runtime/cpu/OperandChecks.h"

#include <cmath>
#include <cstring>
#include <vector>

namespace moec::rt::cpu {

namespace {
Status embedding(const StepContext &s) {
  const TensorRef &table = s.in(0), &tokens = s.in(1);
  int64_t vocab = table.dim(0), d = table.dim(1), n = tokens.numel();
  if (Status bad = checkVocabularyIds(s, tokens, vocab, "token id"); !bad)
    return bad;
#pragma omp parallel for
  for (int64_t t = 0; t < n; ++t)
    std::memcpy(s.out(0).f32() + t * d, table.f32() + tokens.i32()[t] * d, d * sizeof(float));
  return Status::ok();
}

Status rmsNorm(const StepContext &s) {
  const TensorRef &x = s.in(0);
  const float *w = s.in(1).f32();
  int64_t D = x.dim(-1), rows = x.numel() / D;
  float eps = static_cast<float>(s.f64("eps"));
#pragma omp parallel for
  for (int64_t r = 0; r < rows; ++r) {
    const float *in = x.f32() + r * D;
    float *out = s.out(0).f32() + r * D;
    float sum = 0;
    for (int64_t i = 0; i < D; ++i)
      sum += in[i] * in[i];
    float scale = 1.0f / std::sqrt(sum / D + eps);
    for (int64_t i = 0; i < D; ++i)
      out[i] = w[i] * (in[i] * scale);
  }
  return Status::ok();
}

Status layerNorm(const StepContext &s) {
  const TensorRef &x = s.in(0);
  const float *w = s.in(1).f32();
  const float *b = s.numInputs() > 2 ? s.in(2).f32() : nullptr;
  int64_t D = x.dim(-1), rows = x.numel() / D;
  float eps = static_cast<float>(s.f64("eps"));
#pragma omp parallel for
  for (int64_t r = 0; r < rows; ++r) {
    const float *in = x.f32() + r * D;
    float *out = s.out(0).f32() + r * D;
    float mean = 0, var = 0;
    for (int64_t i = 0; i < D; ++i)
      mean += in[i];
    mean /= D;
    for (int64_t i = 0; i < D; ++i)
      var += (in[i] - mean) * (in[i] - mean);
    float scale = 1.0f / std::sqrt(var / D + eps);
    for (int64_t i = 0; i < D; ++i)
      out[i] = (in[i] - mean) * scale * w[i] + (b ? b[i] : 0.0f);
  }
  return Status::ok();
}

Status linear(const StepContext &s) {
  auto precision = precisionOf(s);
  if (!precision)
    return precision.status();
  const TensorRef &x = s.in(0), &w = s.in(1);
  int64_t in = x.dim(-1), out = w.dim(0), rows = x.numel() / in;
  float *y = s.out(0).f32();
  if (s.numInputs() > 2) {
    const float *b = s.in(2).f32();
    for (int64_t r = 0; r < rows; ++r)
      std::memcpy(y + r * out, b, out * sizeof(float));
  }
  linearNT(x.f32(), w.f32(), y, rows, in, out, s.numInputs() > 2 ? 1.0f : 0.0f, *precision);
  return Status::ok();
}

} // namespace

StatusOr<std::vector<float>> ropeInverseFrequencies(const StepContext &s, int64_t headDim) {
  std::vector<float> inverse;
  if (s.has("inv_freq")) {
    for (double f : s.floats("inv_freq"))
      inverse.push_back(static_cast<float>(f));
    if (static_cast<int64_t>(inverse.size()) != headDim / 2)
      return Status::error("'inv_freq' has " + std::to_string(inverse.size()) +
                           " values for heads of " + std::to_string(headDim) + ", not " +
                           std::to_string(headDim / 2));
    return inverse;
  }
  float theta = static_cast<float>(s.f64("theta"));
  for (int64_t i = 0; i < headDim / 2; ++i)
    inverse.push_back(1.0f / std::pow(theta, static_cast<float>(2 * i) / headDim));
  return inverse;
}

namespace {

Status rope(const StepContext &s) {
  const TensorRef &x = s.in(0);
  int64_t B = x.dim(0), S = x.dim(1), H = x.dim(2), D = x.dim(3), half = D / 2;
  auto inverse = ropeInverseFrequencies(s, D);
  if (!inverse)
    return inverse.status();
  float factor = static_cast<float>(s.f64("attention_factor"));
  bool interleaved = s.flag("interleaved");
  // As transformers: inverse frequencies and angles in f32.
  std::vector<float> cosines(S * half), sines(S * half);
  for (int64_t i = 0; i < half; ++i)
    for (int64_t p = 0; p < S; ++p) {
      float angle = static_cast<float>(p) * (*inverse)[i];
      cosines[p * half + i] = std::cos(angle) * factor;
      sines[p * half + i] = std::sin(angle) * factor;
    }
#pragma omp parallel for collapse(2)
  for (int64_t b = 0; b < B; ++b)
    for (int64_t p = 0; p < S; ++p)
      for (int64_t h = 0; h < H; ++h) {
        int64_t base = ((b * S + p) * H + h) * D;
        const float *in = x.f32() + base;
        float *out = s.out(0).f32() + base;
        for (int64_t i = 0; i < half; ++i) {
          float c = cosines[p * half + i], sn = sines[p * half + i];
          int64_t first = interleaved ? 2 * i : i, second = interleaved ? 2 * i + 1 : i + half;
          float x1 = in[first], x2 = in[second];
          out[first] = x1 * c - x2 * sn;
          out[second] = x2 * c + x1 * sn;
        }
      }
  return Status::ok();
}

} // namespace

AttentionOperand::AttentionOperand(const TensorRef &t, Precision precision,
                                   std::vector<uint16_t> &scratch)
    : whole(rowsOperand(t, 0, t.dim(-1) ? t.numel() / t.dim(-1) : 0, precision, scratch)),
      S(t.dim(1)), H(t.dim(2)) {}

MatrixIn AttentionOperand::headOf(int64_t b, int64_t h) const {
  MatrixIn head = whole.at(b * S * H + h, 0);
  head.ld = H * whole.ld;
  return head;
}

AttentionMask attentionMask(const StepContext &s) {
  AttentionMask mask;
  mask.causal = s.flag("causal");
  mask.window = s.has("window") ? s.i64("window") : 0;
  mask.chunk = s.has("chunk") ? s.i64("chunk") : 0;
  if (s.has("temperature_floor")) {
    mask.temperatureFloor = s.i64("temperature_floor");
    mask.temperatureScale = static_cast<float>(s.f64("temperature_scale"));
  }
  return mask;
}

StatusOr<Precision> precisionOf(const StepContext &s) {
  if (!s.has("moe.precision"))
    return Precision::fp32;
  std::string name = s.str("moe.precision");
  if (name == "fp32")
    return Precision::fp32;
  if (name == "bf16")
    return Precision::bf16;
  return s.error("unknown moe.precision '" + name + "' (fp32 or bf16)");
}

namespace {
Status attention(const StepContext &s) {
  auto precision = precisionOf(s);
  if (!precision)
    return precision.status();
  const TensorRef &q = s.in(0), &k = s.in(1), &v = s.in(2);
  int64_t B = q.dim(0), S = q.dim(1), Hq = q.dim(2), D = q.dim(3), Dv = v.dim(3), Hkv = k.dim(2),
          group = Hq / Hkv;
  float scale = s.has("scale") ? static_cast<float>(s.f64("scale"))
                               : 1.0f / std::sqrt(static_cast<float>(D));
  AttentionMask mask = attentionMask(s);
  const float *sinks = s.numInputs() > 3 ? s.in(3).f32() : nullptr;
  float *o = s.out(0).f32();
  std::vector<uint16_t> q16, k16, v16;
  AttentionOperand Q(q, *precision, q16), K(k, *precision, k16), V(v, *precision, v16);
#pragma omp parallel
  {
    std::vector<float> probs(S * S);
#pragma omp for collapse(2)
    for (int64_t b = 0; b < B; ++b)
      for (int64_t h = 0; h < Hq; ++h) {
        int64_t kvh = h / group;
        gemm(false, true, S, S, D, scale, Q.headOf(b, h), K.headOf(b, kvh), 0.0f,
             MatrixOut(probs.data(), S), *precision);
        for (int64_t i = 0; i < S; ++i)
          visibleSoftmax(probs.data() + i * S, S, i, mask, sinks ? sinks + h : nullptr);
        gemm(false, false, S, Dv, S, 1.0f, MatrixIn(probs.data(), S), V.headOf(b, kvh), 0.0f,
             MatrixOut(o + b * S * Hq * Dv + h * Dv, Hq * Dv), *precision);
      }
  }
  return Status::ok();
}

Status add(const StepContext &s) {
  const float *a = s.in(0).f32(), *b = s.in(1).f32();
  float *y = s.out(0).f32();
  int64_t n = s.out(0).numel();
#pragma omp parallel for
  for (int64_t i = 0; i < n; ++i)
    y[i] = a[i] + b[i];
  return Status::ok();
}

Status multiply(const StepContext &s) {
  const float *a = s.in(0).f32(), *b = s.in(1).f32();
  float *y = s.out(0).f32();
  int64_t n = s.out(0).numel();
#pragma omp parallel for
  for (int64_t i = 0; i < n; ++i)
    y[i] = a[i] * b[i];
  return Status::ok();
}

Status scale(const StepContext &s) {
  const float *x = s.in(0).f32();
  float *y = s.out(0).f32();
  float factor = static_cast<float>(s.f64("factor"));
  int64_t n = s.out(0).numel();
#pragma omp parallel for
  for (int64_t i = 0; i < n; ++i)
    y[i] = x[i] * factor;
  return Status::ok();
}

Status activation(const StepContext &s) {
  Act act = parseActivation(s.str("kind"));
  const float *x = s.in(0).f32();
  float *y = s.out(0).f32();
  int64_t n = s.out(0).numel();
#pragma omp parallel for
  for (int64_t i = 0; i < n; ++i)
    y[i] = activate(act, x[i]);
  return Status::ok();
}

/// Pairs (gate, up) interleaved in the input's last dimension.
Status clampedSwigluKernel(const StepContext &s) {
  const float *x = s.in(0).f32();
  float *y = s.out(0).f32();
  float alpha = static_cast<float>(s.f64("alpha")), limit = static_cast<float>(s.f64("limit"));
  int64_t n = s.out(0).numel();
#pragma omp parallel for
  for (int64_t i = 0; i < n; ++i)
    y[i] = clampedSwiglu(x[2 * i], x[2 * i + 1], alpha, limit);
  return Status::ok();
}

Status ffn(const StepContext &s) {
  auto precision = precisionOf(s);
  if (!precision)
    return precision.status();
  const TensorRef &x = s.in(0), &w1 = s.in(1);
  int64_t d = x.dim(-1), F = w1.dim(0), rows = x.numel() / d;
  FfnWeights w{w1.f32(), s.in(2).f32(), s.numInputs() > 3 ? s.in(3).f32() : nullptr};
  static thread_local std::vector<float> scratch;
  ffnRows(x.f32(), s.out(0).f32(), rows, d, F, w, parseActivation(s.str("activation")), *precision,
          scratch);
  return Status::ok();
}

Status crossEntropy(const StepContext &s) {
  const TensorRef &logits = s.in(0), &targets = s.in(1);
  int64_t V = logits.dim(-1), n = targets.numel();
  if (Status bad = checkVocabularyIds(s, targets, V, "target"); !bad)
    return bad;
  // Rows across the threads, summed in fixed blocks (the same bits for any
  // thread count).
  const float *rows = logits.f32();
  const int32_t *ids = targets.i32();
  double total = deterministicSum(n, 16, [&](int64_t t) {
    const float *row = rows + t * V;
    return static_cast<double>(logSumExp(row, V) - row[ids[t]]);
  });
  *s.out(0).f32() = static_cast<float>(total / n);
  return Status::ok();
}
} // namespace

void registerDenseKernels(KernelTable &r) {
  r.add("moe.embedding", embedding);
  r.add("moe.rms_norm", rmsNorm);
  r.add("moe.layer_norm", layerNorm);
  r.add("moe.linear", linear);
  r.add("moe.rope", rope);
  r.add("moe.attention", attention);
  r.add("moe.add", add);
  r.add("moe.multiply", multiply);
  r.add("moe.scale", scale);
  r.add("moe.activation", activation);
  r.add("moe.clamped_swiglu", clampedSwigluKernel);
  r.add("moe.ffn", ffn);
  r.add("moe.cross_entropy", crossEntropy);
}

} // namespace moec::rt::cpu
