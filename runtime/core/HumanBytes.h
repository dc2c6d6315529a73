// HumanBytes.h - a byte count as people read it; header-only, so the
// compiler's messages and the runtime's print sizes alike.
#ifndef MOEC_RUNTIME_CORE_HUMANBYTES_H
#define MOEC_RUNTIME_CORE_HUMANBYTES_H

#include <cstdio>
#include <string>

namespace moec::rt {

/// Bytes in the largest binary unit below them: "12 B", "3.5 GiB".
inline std::string humanBytes(double bytes) {
  const char *units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB"};
  int unit = 0;
  while (bytes >= 1024 && unit < 8) {
    bytes /= 1024;
    ++unit;
  }
  char text[48];
  std::snprintf(text, sizeof text, unit ? "%.1f %s" : "%.0f %s", bytes, units[unit]);
  return text;
}

} // namespace moec::rt

#endif // MOEC_RUNTIME_CORE_HUMANBYTES_H
