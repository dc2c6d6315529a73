// RoutingKernels.cpp - CPU kernels of router inputs, scores and selections.
#include "runtime/cpu/CpuKernels.h"
#include "runtime/cpu/Math.h"
#include "runtime/cpu/OperandChecks.h"
#include "runtime/cpu/SparseMixer.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <vector>

namespace moec::rt::cpu {

namespace {
Status routerInputTransform(const StepContext &s) {
  const TensorRef &x = s.in(0);
  int64_t T = x.dim(0), d = x.dim(1);
  std::string kind = s.str("kind");
  float eps = static_cast<float>(s.f64("eps"));
  for (int64_t t = 0; t < T; ++t) {
    const float *in = x.f32() + t * d;
    float *out = s.out(0).f32() + t * d;
    if (kind == "l2norm") {
      float norm = 0;
      for (int64_t i = 0; i < d; ++i)
        norm += in[i] * in[i];
      float inv = 1.0f / std::max(std::sqrt(norm), eps);
      for (int64_t i = 0; i < d; ++i)
        out[i] = in[i] * inv;
    } else if (kind == "layernorm") {
      float mean = 0, var = 0;
      for (int64_t i = 0; i < d; ++i)
        mean += in[i];
      mean /= d;
      for (int64_t i = 0; i < d; ++i)
        var += (in[i] - mean) * (in[i] - mean);
      float inv = 1.0f / std::sqrt(var / d + eps);
      for (int64_t i = 0; i < d; ++i)
        out[i] = (in[i] - mean) * inv;
    } else if (kind == "tanh") {
      for (int64_t i = 0; i < d; ++i)
        out[i] = std::tanh(in[i]);
    } else {
      std::copy(in, in + d, out);
    }
  }
  return Status::ok();
}

Status routerJitter(const StepContext &s) {
  const TensorRef &x = s.in(0);
  uint64_t seed = static_cast<uint64_t>(*s.in(1).i64());
  double eps = s.f64("epsilon");
  uint64_t key = noiseKey(seed, kJitterSalt, static_cast<uint64_t>(s.i64("stream")));
  int64_t n = x.numel();
  for (int64_t i = 0; i < n; ++i) {
    double u = uniform01(key, i);
    s.out(0).f32()[i] = x.f32()[i] * static_cast<float>(1.0 - eps + 2.0 * eps * u);
  }
  return Status::ok();
}

Status routerLogits(const StepContext &s) {
  const TensorRef &x = s.in(0), &w = s.in(1);
  linearNT(x.f32(), w.f32(), s.out(0).f32(), x.dim(0), x.dim(1), w.dim(0));
  return Status::ok();
}

Status score(const StepContext &s) {
  const TensorRef &l = s.in(0);
  int64_t T = l.dim(0), E = l.dim(1);
  bool sigmoid = s.str("function") == "sigmoid";
  float invTemperature = static_cast<float>(1.0 / s.f64("temperature"));
  float *out = s.out(0).f32();
#pragma omp parallel for
  for (int64_t t = 0; t < T; ++t) {
    for (int64_t i = t * E; i < (t + 1) * E; ++i)
      out[i] = sigmoid ? 1.0f / (1.0f + std::exp(-l.f32()[i])) : l.f32()[i] * invTemperature;
    if (!sigmoid)
      softmaxRow(out + t * E, E);
  }
  return Status::ok();
}

Status gumbelSoftmax(const StepContext &s) {
  const TensorRef &l = s.in(0);
  int64_t T = l.dim(0), E = l.dim(1);
  float tau = *s.in(1).f32();
  if (Status bad = checkGumbelTemperature(s, tau); !bad)
    return bad;
  bool noise = s.numInputs() > 2;
  uint64_t seed = noise ? static_cast<uint64_t>(*s.in(2).i64()) : 0;
  uint64_t key = noiseKey(seed, kGumbelSalt, static_cast<uint64_t>(s.i64("stream")));
  float *out = s.out(0).f32();
  for (int64_t i = 0; i < T * E; ++i) {
    float g = 0;
    if (noise)
      g = static_cast<float>(-std::log(-std::log(uniform01(key, i))));
    out[i] = (l.f32()[i] + g) / tau;
  }
  for (int64_t t = 0; t < T; ++t)
    softmaxRow(out + t * E, E);
  return Status::ok();
}

/// Indices of `values` in decreasing order (ties: lower index first).
void argsortDescending(const float *values, int64_t n, std::vector<int32_t> &order) {
  order.resize(n);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](int32_t a, int32_t b) { return values[a] > values[b]; });
}

/// Writes `count` picks (padded to `slots` with -1 / 0), renormalising and
/// scaling as the attributes say.
void writeSelection(const StepContext &s, int64_t t, int64_t slots,
                    const std::vector<int32_t> &picks, const float *scores,
                    bool normalize, float normEps, float scaling) {
  float *w = s.out(0).f32() + t * slots;
  int32_t *idx = s.out(1).i32() + t * slots;
  float sum = 0;
  for (int32_t e : picks)
    sum += scores[e];
  for (int64_t j = 0; j < slots; ++j) {
    if (j < static_cast<int64_t>(picks.size())) {
      float weight = scores[picks[j]];
      if (normalize)
        weight /= (sum + normEps);
      w[j] = weight * scaling;
      idx[j] = picks[j];
    } else {
      w[j] = 0;
      idx[j] = -1;
    }
  }
}

Status topkRoute(const StepContext &s) {
  const TensorRef &scores = s.in(0);
  const float *bias = s.numInputs() > 1 ? s.in(1).f32() : nullptr;
  int64_t T = scores.dim(0), E = scores.dim(1), k = s.i64("k");
  bool normalize = s.flag("normalize");
  float normEps = static_cast<float>(s.f64("norm_eps")),
        scaling = static_cast<float>(s.f64("scaling"));
  // Tokens across the threads, each writing its own slots.
#pragma omp parallel
  {
    std::vector<float> choice(E);
    std::vector<int32_t> order;
#pragma omp for
    for (int64_t t = 0; t < T; ++t) {
      const float *row = scores.f32() + t * E;
      for (int64_t e = 0; e < E; ++e)
        choice[e] = row[e] + (bias ? bias[e] : 0.0f);
      argsortDescending(choice.data(), E, order);
      order.resize(k);
      writeSelection(s, t, k, order, row, normalize, normEps, scaling);
    }
  }
  return Status::ok();
}

Status groupTopkRoute(const StepContext &s) {
  const TensorRef &scores = s.in(0);
  const float *bias = s.numInputs() > 1 ? s.in(1).f32() : nullptr;
  int64_t T = scores.dim(0), E = scores.dim(1), k = s.i64("k"),
          G = s.i64("num_groups"), keep = s.i64("topk_groups"), size = E / G;
  bool top2 = s.str("group_score") == "top2_sum";
  float fill = s.str("mask_fill") == "zero"
                   ? 0.0f
                   : -std::numeric_limits<float>::infinity();
  bool normalize = s.flag("normalize");
  float normEps = static_cast<float>(s.f64("norm_eps")),
        scaling = static_cast<float>(s.f64("scaling"));
  std::vector<float> choice(E), groupScores(G);
  std::vector<int32_t> order, groupOrder, memberOrder;
  for (int64_t t = 0; t < T; ++t) {
    const float *row = scores.f32() + t * E;
    for (int64_t e = 0; e < E; ++e)
      choice[e] = row[e] + (bias ? bias[e] : 0.0f);
    for (int64_t g = 0; g < G; ++g) {
      const float *members = choice.data() + g * size;
      if (top2) {
        argsortDescending(members, size, memberOrder);
        groupScores[g] = members[memberOrder[0]] + members[memberOrder[1]];
      } else {
        groupScores[g] = *std::max_element(members, members + size);
      }
    }
    argsortDescending(groupScores.data(), G, groupOrder);
    std::vector<bool> kept(G, false);
    for (int64_t i = 0; i < keep; ++i)
      kept[groupOrder[i]] = true;
    for (int64_t e = 0; e < E; ++e)
      if (!kept[e / size])
        choice[e] = fill;
    argsortDescending(choice.data(), E, order);
    order.resize(k);
    writeSelection(s, t, k, order, row, normalize, normEps, scaling);
  }
  return Status::ok();
}

Status prototypeRoute(const StepContext &s) {
  const TensorRef &scores = s.in(0);
  int64_t T = scores.dim(0), E = scores.dim(1), P = s.i64("num_prototypes"),
          size = E / P;
  bool normalize = s.flag("normalize");
  std::vector<int32_t> picks(P);
  for (int64_t t = 0; t < T; ++t) {
    const float *row = scores.f32() + t * E;
    for (int64_t p = 0; p < P; ++p)
      picks[p] = static_cast<int32_t>(
          std::max_element(row + p * size, row + (p + 1) * size) - row);
    writeSelection(s, t, P, picks, row, normalize, 0.0f, 1.0f);
  }
  return Status::ok();
}

/// The smallest prefix of `order` whose scores sum to at least p, clamped to
/// [1, maxK].
void nucleus(const float *row, std::vector<int32_t> &order, float p, int64_t maxK) {
  float cumulative = 0;
  size_t count = 0;
  while (count < order.size()) {
    cumulative += row[order[count]];
    ++count;
    if (cumulative >= p)
      break;
  }
  order.resize(std::max<size_t>(1, std::min<size_t>(count, maxK)));
}

Status topPRoute(const StepContext &s) {
  const TensorRef &scores = s.in(0);
  int64_t T = scores.dim(0), E = scores.dim(1), maxK = s.i64("max_k");
  float p = static_cast<float>(s.f64("p"));
  bool normalize = s.flag("normalize");
  std::vector<int32_t> order;
  for (int64_t t = 0; t < T; ++t) {
    const float *row = scores.f32() + t * E;
    argsortDescending(row, E, order);
    nucleus(row, order, p, maxK);
    writeSelection(s, t, maxK, order, row, normalize, 0.0f, 1.0f);
  }
  return Status::ok();
}

/// Tsallis entropy S_q of one distribution (Shannon at q = 1).
float tsallis(const float *row, int64_t n, float q) {
  double sum = 0;
  if (q == 1.0f) {
    for (int64_t i = 0; i < n; ++i)
      if (row[i] > 0)
        sum -= row[i] * std::log(row[i]);
    return static_cast<float>(sum);
  }
  for (int64_t i = 0; i < n; ++i)
    sum += std::pow(static_cast<double>(row[i]), q);
  return static_cast<float>((1.0 - sum) / (q - 1.0));
}

Status entropyHybridRoute(const StepContext &s) {
  const TensorRef &scores = s.in(0);
  int64_t T = scores.dim(0), E = scores.dim(1), maxK = s.i64("max_k"),
          k = s.i64("k");
  float q = static_cast<float>(s.f64("q")), threshold = static_cast<float>(s.f64("threshold")),
        p = static_cast<float>(s.f64("p"));
  bool normalize = s.flag("normalize");
  std::vector<int32_t> order;
  for (int64_t t = 0; t < T; ++t) {
    const float *row = scores.f32() + t * E;
    argsortDescending(row, E, order);
    if (tsallis(row, E, q) > threshold)
      nucleus(row, order, p, maxK);
    else
      order.resize(k);
    writeSelection(s, t, maxK, order, row, normalize, 0.0f, 1.0f);
  }
  return Status::ok();
}

Status thresholdRoute(const StepContext &s) {
  const TensorRef &scores = s.in(0);
  int64_t T = scores.dim(0), E = scores.dim(1), maxK = s.i64("max_k");
  float threshold = static_cast<float>(s.f64("threshold"));
  std::vector<int32_t> order;
  for (int64_t t = 0; t < T; ++t) {
    const float *row = scores.f32() + t * E;
    argsortDescending(row, E, order);
    size_t count = 0;
    while (count < order.size() && row[order[count]] > threshold)
      ++count;
    order.resize(std::max<size_t>(1, std::min<size_t>(count, maxK)));
    writeSelection(s, t, maxK, order, row, /*normalize=*/true, 0.0f, 1.0f);
  }
  return Status::ok();
}

/// PhiMoE's sparsemixer: two picks from the logits, each from the gates of
/// what the earlier one left (SparseMixer.h); in training (a seed) Gumbel
/// sampled and scaled by 1/3 unless the pick is the best gate or a uniform
/// draw exceeds 0.75.
Status sparseMixerRoute(const StepContext &s) {
  const TensorRef &logits = s.in(0);
  int64_t T = logits.dim(0), E = logits.dim(1);
  float eps = static_cast<float>(s.f64("epsilon"));
  bool training = s.numInputs() > 1;
  uint64_t seed = training ? static_cast<uint64_t>(*s.in(1).i64()) : 0;
  uint64_t stream = static_cast<uint64_t>(s.i64("stream"));
  const uint64_t gumbelKeys[2] = {noiseKey(seed, kSparseMixerGumbelSalt1, stream),
                                  noiseKey(seed, kSparseMixerGumbelSalt2, stream)};
  const uint64_t midpointKeys[2] = {noiseKey(seed, kSparseMixerMidpointSalt1, stream),
                                    noiseKey(seed, kSparseMixerMidpointSalt2, stream)};
  std::vector<float> p(E), masked(E); // one token's gates at a time
  for (int64_t t = 0; t < T; ++t) {
    const float *l = logits.f32() + t * E;
    float *w = s.out(0).f32() + t * 2;
    int32_t *idx = s.out(1).i32() + t * 2;
    int32_t excluded = -1;
    for (int j = 0; j < 2; ++j) {
      int32_t pick = sparseMixerGates(l, E, excluded, eps, masked.data(), p.data());
      float weight;
      if (training) {
        // Gumbel sampling: argmax(masked + g), g = −log(−log u).
        for (int64_t e = 0; e < E; ++e)
          masked[e] -= static_cast<float>(
              std::log(-std::log(uniform01(gumbelKeys[j], static_cast<uint64_t>(t * E + e)))));
        pick = argmax(masked.data(), E);
        bool one = pick == argmax(p.data(), E) ||
                   uniform01(midpointKeys[j], static_cast<uint64_t>(t)) > 0.75;
        weight = p[pick] * (0.3333f + 0.6667f * (one ? 1.0f : 0.0f));
      } else {
        weight = p[pick];
      }
      w[j] = weight;
      idx[j] = pick;
      excluded = pick;
    }
  }
  return Status::ok();
}

Status expertChoiceRoute(const StepContext &s) {
  const TensorRef &scores = s.in(0);
  int64_t T = scores.dim(0), E = scores.dim(1), C = s.out(0).dim(1);
  std::vector<float> column(T);
  std::vector<int32_t> order;
  for (int64_t e = 0; e < E; ++e) {
    for (int64_t t = 0; t < T; ++t)
      column[t] = scores.f32()[t * E + e];
    argsortDescending(column.data(), T, order);
    for (int64_t c = 0; c < C; ++c) {
      s.out(0).i32()[e * C + c] = order[c];
      s.out(1).f32()[e * C + c] = column[order[c]];
    }
  }
  return Status::ok();
}

Status updateSelectionBias(const StepContext &s) {
  const TensorRef &bias = s.in(0), &load = s.in(1);
  int64_t E = bias.dim(0);
  double mean = 0;
  for (int64_t e = 0; e < E; ++e)
    mean += load.i32()[e];
  mean /= E;
  float rate = static_cast<float>(s.f64("rate"));
  for (int64_t e = 0; e < E; ++e) {
    double diff = mean - load.i32()[e];
    float sign = diff > 0 ? 1.0f : (diff < 0 ? -1.0f : 0.0f);
    s.out(0).f32()[e] = bias.f32()[e] + rate * sign;
  }
  return Status::ok();
}
} // namespace

void registerRoutingKernels(KernelTable &r) {
  r.add("moe.router_input_transform", routerInputTransform);
  r.add("moe.router_jitter", routerJitter);
  r.add("moe.router_logits", routerLogits);
  r.add("moe.score", score);
  r.add("moe.gumbel_softmax", gumbelSoftmax);
  r.add("moe.topk_route", topkRoute);
  r.add("moe.group_topk_route", groupTopkRoute);
  r.add("moe.prototype_route", prototypeRoute);
  r.add("moe.top_p_route", topPRoute);
  r.add("moe.entropy_hybrid_route", entropyHybridRoute);
  r.add("moe.threshold_route", thresholdRoute);
  r.add("moe.sparsemixer_route", sparseMixerRoute);
  r.add("moe.expert_choice_route", expertChoiceRoute);
  r.add("moe.update_selection_bias", updateSelectionBias);
}

} // namespace moec::rt::cpu
