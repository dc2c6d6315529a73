// PlanFooter.h - the 16 bytes after a .moeb FlatBuffer: a checksum of it and
// a magic word. The FlatBuffers verifier catches structural damage; the
// checksum catches the rest (a flipped shape or attribute would otherwise be
// trusted by the kernels). Shared by the compiler, which writes it, and the
// runtime, which checks it.
#ifndef MOEC_RUNTIME_SCHEMA_PLANFOOTER_H
#define MOEC_RUNTIME_SCHEMA_PLANFOOTER_H

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace moec::plan {

constexpr char kFooterMagic[8] = {'M', 'O', 'E', 'B', 'S', 'U', 'M', '1'};
constexpr size_t kFooterSize = 16;

/// FNV-1a, 64 bits.
inline uint64_t checksum(const uint8_t *data, size_t size) {
  uint64_t hash = 1469598103934665603ull;
  for (size_t i = 0; i < size; ++i)
    hash = (hash ^ data[i]) * 1099511628211ull;
  return hash;
}

/// Writes the footer for `size` bytes of plan into `footer` (16 bytes).
inline void writeFooter(const uint8_t *data, size_t size, uint8_t *footer) {
  uint64_t sum = checksum(data, size);
  for (int i = 0; i < 8; ++i)
    footer[i] = static_cast<uint8_t>(sum >> (8 * i));
  std::memcpy(footer + 8, kFooterMagic, 8);
}

/// True when `size` bytes end with a footer matching what precedes it.
inline bool hasFooter(const uint8_t *data, size_t size) {
  return size >= kFooterSize &&
         std::memcmp(data + size - 8, kFooterMagic, 8) == 0;
}
inline bool footerMatches(const uint8_t *data, size_t size) {
  uint8_t expected[kFooterSize];
  writeFooter(data, size - kFooterSize, expected);
  return std::memcmp(expected, data + size - kFooterSize, kFooterSize) == 0;
}

} // namespace moec::plan

#endif // MOEC_RUNTIME_SCHEMA_PLANFOOTER_H
