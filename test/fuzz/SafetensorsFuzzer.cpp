// SafetensorsFuzzer.cpp - the safetensors reader (checkpoints, --init) on
// any bytes: an error, never a crash; every tensor it accepts reads whole.
#include "FuzzInput.h"
#include "runtime/core/Safetensors.h"

#include <vector>

using namespace moec;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  auto file = rt::SafetensorsFile::load(fuzz::writeInput(data, size, ".safetensors"));
  if (!file)
    return 0;
  for (const auto &[name, entry] : file->entries()) {
    int64_t elements = 1;
    for (int64_t extent : entry.shape)
      elements *= extent;
    if (elements > (1 << 20))
      continue;
    std::vector<float> values(static_cast<size_t>(elements));
    (void)file->readF32(name, entry.shape, values.data());
  }
  return 0;
}
