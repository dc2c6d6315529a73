// TokenData.cpp - flat little-endian token files and their batches.
#include "runtime/core/TokenData.h"
#include "runtime/core/Hash.h"
#include "runtime/core/InputFile.h"
#include "runtime/core/Random.h"

#include <cstring>
#include <fstream>
#include <iterator>

namespace moec::rt {

StatusOr<TokenData> TokenData::load(const std::string &path, const std::string &dtype,
                                    int64_t vocabSize) {
  if (dtype != "u16" && dtype != "u32")
    return Status::error("--data-dtype must be u16 or u32, but is '" + dtype + "'");
  auto read = readInputFile(path, "the token file");
  if (!read)
    return read.status();
  const std::vector<uint8_t> &bytes = *read;
  size_t width = dtype == "u16" ? 2 : 4;
  if (bytes.size() % width != 0)
    return Status::error(path + ": " + std::to_string(bytes.size()) +
                         " bytes is not a whole number of " + dtype + " tokens");
  TokenData data;
  data.path_ = path;
  data.tokens_.resize(bytes.size() / width);
  for (size_t i = 0; i < data.tokens_.size(); ++i) {
    if (width == 2) {
      uint16_t v;
      std::memcpy(&v, bytes.data() + 2 * i, 2);
      data.tokens_[i] = v;
    } else {
      std::memcpy(&data.tokens_[i], bytes.data() + 4 * i, 4);
    }
    if (data.tokens_[i] >= static_cast<uint64_t>(vocabSize))
      return Status::error(path + ": token " + std::to_string(data.tokens_[i]) +
                           " at index " + std::to_string(i) +
                           " is outside the model's vocabulary (" +
                           std::to_string(vocabSize) + " tokens); wrong file or --data-dtype?");
  }
  return data;
}

Status TokenData::batch(int64_t step, int64_t B, int64_t S, bool shuffle, uint64_t seed,
                        std::vector<int32_t> &inputs, std::vector<int32_t> &targets) const {
  int64_t N = tokens_.size();
  // Token ids and positions are 32-bit in the kernels: a batch has at most
  // 2^31 tokens (moe-run checks that before any plan is compiled).
  if (step < 0 || B < 1 || S < 1 || B > (int64_t(1) << 31) / S)
    return Status::error(path_ + ": no batch " + std::to_string(step) + " of " + std::to_string(B) +
                         " x " + std::to_string(S) + " tokens");
  if (N < S + 2)
    return Status::error(path_ + ": " + std::to_string(N) +
                         " tokens are too few for sequences of " + std::to_string(S) +
                         " (need at least " + std::to_string(S + 2) + ")");
  uint64_t span = static_cast<uint64_t>(N - S - 1);
  inputs.resize(B * S);
  targets.resize(B * S);
  for (int64_t b = 0; b < B; ++b) {
    // Unsigned 128-bit arithmetic: any step (a resumed run at step 2^58, an
    // --eval --step near 2^63) lands inside the file, as the formula says.
    unsigned __int128 sequence =
        static_cast<unsigned __int128>(step) * static_cast<uint64_t>(B) + static_cast<uint64_t>(b);
    uint64_t o = shuffle ? randomBits(seed, static_cast<uint64_t>(sequence)) % span
                         : static_cast<uint64_t>(sequence % span * static_cast<uint64_t>(S) % span);
    for (int64_t i = 0; i < S; ++i) {
      inputs[b * S + i] = static_cast<int32_t>(tokens_[o + i]);
      targets[b * S + i] = static_cast<int32_t>(tokens_[o + i + 1]);
    }
  }
  return Status::ok();
}

} // namespace moec::rt

namespace moec::rt {

uint64_t TokenData::sampleHash() const {
  std::string sample;
  for (size_t i = 0; i < tokens_.size(); i += 4096)
    sample.append(reinterpret_cast<const char *>(&tokens_[i]), sizeof(uint32_t));
  if (!tokens_.empty())
    sample.append(reinterpret_cast<const char *>(&tokens_.back()), sizeof(uint32_t));
  return fnv1a64(sample);
}

} // namespace moec::rt
