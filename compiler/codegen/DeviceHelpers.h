//===- DeviceHelpers.h - CUDA device functions some kernels share -*- C++ -*-===//
//
// Written into a kernel's module (KernelWriter::helpers) when its code
// calls them; each mirrors a function of the CPU kernels so that results
// agree (runtime/cpu/Math.h, runtime/core/Random.h).
//
//===----------------------------------------------------------------------===//
#ifndef MOEC_COMPILER_CODEGEN_DEVICEHELPERS_H
#define MOEC_COMPILER_CODEGEN_DEVICEHELPERS_H

namespace moec::codegen {

/// moec_row_lse: log Σ exp of a row by one thread (maximum in f32, sum in
/// f64), as logSumExp.
inline constexpr const char *kRowLseHelper = R"cuda(__device__ float moec_row_lse(const float *row, long long n) {
  float maximum = row[0];
  for (long long i = 1; i < n; ++i)
    maximum = fmaxf(maximum, row[i]);
  double sum = 0.0;
  for (long long i = 0; i < n; ++i)
    sum += exp((double)(row[i] - maximum));
  return maximum + (float)log(sum);
}
)cuda";

/// moec_inverse_std: a row's mean (into *mean) and 1 / sqrt(var + eps),
/// with sequential f32 sums as the CPU LayerNorm kernels compute them.
inline constexpr const char *kLayerNormHelper = R"cuda(__device__ float moec_inverse_std(const float *x, int n, float eps, float *mean) {
  float m = 0.0f, var = 0.0f;
  for (int i = 0; i < n; ++i)
    m += x[i];
  m /= n;
  for (int i = 0; i < n; ++i)
    var += (x[i] - m) * (x[i] - m);
  *mean = m;
  return 1.0f / sqrtf(var / n + eps);
}
)cuda";

/// moec_softmax_row: softmaxRow in place (f32 exponentials, their f64 sum,
/// one f32 reciprocal). moec_softmax_grad_row: the softmax's backward,
/// s · (g − Σ g s) · scale, as the score and Gumbel gradients compute it.
inline constexpr const char *kSoftmaxHelpers = R"cuda(__device__ void moec_softmax_row(float *row, int n) {
  float maximum = row[0];
  for (int e = 1; e < n; ++e)
    maximum = fmaxf(maximum, row[e]);
  double sum = 0.0;
  for (int e = 0; e < n; ++e) {
    row[e] = expf(row[e] - maximum);
    sum += row[e];
  }
  float inverse = (float)(1.0 / sum);
  for (int e = 0; e < n; ++e)
    row[e] *= inverse;
}
__device__ void moec_softmax_grad_row(const float *s, const float *g, float *out, int n,
                                      float scale) {
  float dot = 0.0f;
  for (int e = 0; e < n; ++e)
    dot += g[e] * s[e];
  for (int e = 0; e < n; ++e)
    out[e] = s[e] * (g[e] - dot) * scale;
}
)cuda";

/// moec_order_desc: the first `count` indices of `values` in decreasing
/// order, ties to the lower index (a stable descending sort's prefix).
/// moec_write_selection: as writeSelection, the weights of `count` picks
/// padded to `slots` with 0 / -1, renormalised and scaled.
inline constexpr const char *kSelectionHelpers = R"cuda(__device__ void moec_order_desc(const float *values, int n, int count, int *order) {
  for (int j = 0; j < count; ++j) {
    int best = -1;
    float bestValue = 0.0f;
    for (int e = 0; e < n; ++e) {
      bool taken = false;
      for (int p = 0; p < j; ++p)
        taken = taken || order[p] == e;
      if (!taken && (best < 0 || values[e] > bestValue)) {
        best = e;
        bestValue = values[e];
      }
    }
    order[j] = best;
  }
}
__device__ void moec_write_selection(float *weights, int *indices, int slots, const int *picks,
                                     int count, const float *scores, bool normalize,
                                     float normEps, float scaling) {
  float sum = 0.0f;
  for (int j = 0; j < count; ++j)
    sum += scores[picks[j]];
  for (int j = 0; j < slots; ++j) {
    if (j < count) {
      float weight = scores[picks[j]];
      if (normalize)
        weight /= (sum + normEps);
      weights[j] = weight * scaling;
      indices[j] = picks[j];
    } else {
      weights[j] = 0.0f;
      indices[j] = -1;
    }
  }
}
)cuda";

/// The runtime's counter-based random numbers (SplitMix64), bit for bit.
inline constexpr const char *kRandomHelpers = R"cuda(__device__ unsigned long long moec_mix64(unsigned long long x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}
__device__ double moec_uniform01(unsigned long long key, unsigned long long index) {
  unsigned long long bits = moec_mix64(moec_mix64(key) ^ (index * 0xd1b54a32d192ed03ull));
  return ((bits >> 11) + 0.5) * (1.0 / 9007199254740992.0);
}
)cuda";

/// moec_sparsemixer_gates: as the runtime's sparseMixerGates
/// (runtime/cpu/SparseMixer.h): one SparseMixer pick's masked logits and
/// their softmax, returning the best remaining expert. moec_argmax: the
/// largest value's index, ties to the lower. Needs kSoftmaxHelpers.
inline constexpr const char *kSparseMixerHelpers =
    R"cuda(__device__ int moec_sparsemixer_gates(const float *l, int n, int excluded, float eps,
                                       float *masked, float *p) {
  int best = -1;
  for (int e = 0; e < n; ++e)
    if (e != excluded && (best < 0 || l[e] > l[best]))
      best = e;
  float m = l[best], threshold = 2.0f * eps;
  for (int e = 0; e < n; ++e) {
    bool far = e == excluded || (m - l[e]) / fmaxf(fabsf(l[e]), m) > threshold;
    masked[e] = far ? __int_as_float(0xff800000) : l[e];
    p[e] = masked[e];
  }
  moec_softmax_row(p, n);
  return best;
}
__device__ int moec_argmax(const float *values, int n) {
  int best = 0;
  for (int i = 1; i < n; ++i)
    if (values[i] > values[best])
      best = i;
  return best;
}
)cuda";

/// moec_expert_block: expert e's block of rows [first, first + count) of an
/// expert input: grouped rows (`sizes` of E experts, blocks in expert
/// order) or capacity rows (`sizes` null: e · capacity on).
inline constexpr const char *kExpertBlockHelper = R"cuda(__device__ void moec_expert_block(const int *sizes, int e, long long capacity, long long *first,
                                  long long *count) {
  if (!sizes) {
    *first = e * capacity;
    *count = capacity;
    return;
  }
  long long start = 0;
  for (int x = 0; x < e; ++x)
    start += sizes[x];
  *first = start;
  *count = sizes[e];
}
)cuda";

/// moec_block_exclusive_scan: each thread's exclusive prefix of `value`
/// over the block in thread order (*total: the block's sum); integers, so
/// exact. `scratch` holds blockDim.x values.
inline constexpr const char *kBlockScanHelper = R"cuda(__device__ long long moec_block_exclusive_scan(long long value, long long *scratch, long long *total) {
  unsigned t = threadIdx.x;
  scratch[t] = value;
  __syncthreads();
  for (unsigned step = 1; step < blockDim.x; step <<= 1) {
    long long add = t >= step ? scratch[t - step] : 0;
    __syncthreads();
    scratch[t] += add;
    __syncthreads();
  }
  long long inclusive = scratch[t];
  *total = scratch[blockDim.x - 1];
  __syncthreads();
  return inclusive - value;
}
)cuda";

} // namespace moec::codegen

#endif // MOEC_COMPILER_CODEGEN_DEVICEHELPERS_H
