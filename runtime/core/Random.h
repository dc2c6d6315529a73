// Random.h - the counter-based random numbers of the runtime: the value at
// (key, index) never depends on the order of evaluation, so threads, resumed
// runs and the backward pass (which replays router noise) all agree.
// test/parity/moe_reference.py implements the same functions.
#ifndef MOEC_RUNTIME_CORE_RANDOM_H
#define MOEC_RUNTIME_CORE_RANDOM_H

#include <cmath>
#include <cstdint>

namespace moec::rt {

/// The SplitMix64 finaliser.
inline uint64_t mix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

/// 64 random bits for (key, index).
inline uint64_t randomBits(uint64_t key, uint64_t index) {
  return mix64(mix64(key) ^ (index * 0xd1b54a32d192ed03ull));
}

/// The salts of the router's noise draws: each draw of a step has its own
/// key, seed ^ salt ^ stream · φ (stream: the layer; 0 keeps the seed).
enum NoiseSalt : uint64_t {
  kJitterSalt = 0x6a09e667f3bcc909ull,
  kGumbelSalt = 0xbb67ae8584caa73bull,
  kSparseMixerGumbelSalt1 = 0x3c6ef372fe94f82bull,
  kSparseMixerGumbelSalt2 = 0xa54ff53a5f1d36f1ull,
  kSparseMixerMidpointSalt1 = 0x510e527fade682d1ull,
  kSparseMixerMidpointSalt2 = 0x9b05688c2b3e6c1full,
};

/// The key of one noise draw.
inline uint64_t noiseKey(uint64_t seed, uint64_t salt, uint64_t stream) {
  return seed ^ salt ^ (stream * 0x9e3779b97f4a7c15ull);
}

/// Uniform in (0, 1).
inline double uniform01(uint64_t key, uint64_t index) {
  return ((randomBits(key, index) >> 11) + 0.5) * (1.0 / 9007199254740992.0);
}

/// Standard normal (Box-Muller).
inline double normal01(uint64_t key, uint64_t index) {
  double u1 = uniform01(key, 2 * index), u2 = uniform01(key, 2 * index + 1);
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
}

} // namespace moec::rt

#endif // MOEC_RUNTIME_CORE_RANDOM_H
