// FuzzInput.h - the fuzzers' input as a file: the loaders read paths.
#ifndef MOEC_TEST_FUZZ_FUZZINPUT_H
#define MOEC_TEST_FUZZ_FUZZINPUT_H

#include <cstdint>
#include <cstdio>
#include <string>
#include <unistd.h>

namespace moec::fuzz {

/// Writes `size` bytes to a file of this process named with `extension`
/// (the frontends choose their reader by it) and returns its path.
inline std::string writeInput(const uint8_t *data, size_t size, const char *extension) {
  static const std::string base = "/tmp/moec-fuzz-" + std::to_string(getpid());
  std::string path = base + extension;
  FILE *file = std::fopen(path.c_str(), "wb");
  if (!file)
    __builtin_trap();
  if (size && std::fwrite(data, 1, size, file) != size)
    __builtin_trap();
  std::fclose(file);
  return path;
}

} // namespace moec::fuzz

#endif // MOEC_TEST_FUZZ_FUZZINPUT_H
