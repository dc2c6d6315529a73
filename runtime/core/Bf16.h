// Bf16.h - bfloat16 on the host: fp32's upper 16 bits, rounded to nearest
// even (NaN stays NaN), as the generated kernels round (moec_bf16_bits).
#ifndef MOEC_RUNTIME_CORE_BF16_H
#define MOEC_RUNTIME_CORE_BF16_H

#include <cstdint>
#include <cstring>

namespace moec::rt {

/// `x` rounded to bf16, as its 16 bits.
inline uint16_t bf16Bits(float x) {
  uint32_t u;
  std::memcpy(&u, &x, sizeof(u));
  if ((u & 0x7fffffffu) > 0x7f800000u)
    return static_cast<uint16_t>((u >> 16) | 0x40u);
  return static_cast<uint16_t>((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

/// The float a bf16 holds.
inline float bf16Value(uint16_t bits) {
  uint32_t u = static_cast<uint32_t>(bits) << 16;
  float x;
  std::memcpy(&x, &u, sizeof(x));
  return x;
}

/// `x` rounded to bf16, as a float.
inline float roundToBf16(float x) { return bf16Value(bf16Bits(x)); }

} // namespace moec::rt

#endif // MOEC_RUNTIME_CORE_BF16_H
