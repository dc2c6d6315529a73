// Hash.h - FNV-1a, for names and cache keys (stable across runs and builds).
#ifndef MOEC_RUNTIME_CORE_HASH_H
#define MOEC_RUNTIME_CORE_HASH_H

#include <cstdint>
#include <string_view>

namespace moec::rt {

inline uint64_t fnv1a64(std::string_view bytes, uint64_t h = 1469598103934665603ull) {
  for (unsigned char c : bytes)
    h = (h ^ c) * 1099511628211ull;
  return h;
}

} // namespace moec::rt

#endif // MOEC_RUNTIME_CORE_HASH_H
