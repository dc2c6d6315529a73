// TokenDataFuzzer.cpp - token files (--data) on any bytes, and batches
// drawn from the ones that load at any step: an error, never a crash.
#include "FuzzInput.h"
#include "runtime/core/TokenData.h"

#include <cstring>
#include <vector>

using namespace moec;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  // The first 10 bytes choose the reading: dtype, vocabulary, step.
  if (size < 10)
    return 0;
  const char *dtype = data[0] & 1 ? "u32" : "u16";
  int64_t vocab = 1 + data[1] * 256;
  int64_t step;
  std::memcpy(&step, data + 2, sizeof step);
  auto tokens = rt::TokenData::load(fuzz::writeInput(data + 10, size - 10, ".bin"), dtype, vocab);
  if (!tokens)
    return 0;
  std::vector<int32_t> inputs, targets;
  for (bool shuffle : {false, true})
    (void)tokens->batch(step, 2, 4, shuffle, 1234, inputs, targets);
  return 0;
}
