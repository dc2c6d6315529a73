// TokenData.h - flat little-endian token files and the batches drawn from them.
#ifndef MOEC_RUNTIME_CORE_TOKENDATA_H
#define MOEC_RUNTIME_CORE_TOKENDATA_H

#include "runtime/core/Status.h"

#include <cstdint>
#include <string>
#include <vector>

namespace moec::rt {

class TokenData {
public:
  /// `dtype` is "u16" or "u32". Every token must be below `vocabSize`.
  static StatusOr<TokenData> load(const std::string &path, const std::string &dtype,
                                  int64_t vocabSize);

  size_t size() const { return tokens_.size(); }
  /// FNV-1a of every 4096th token (and the last): cheap, and enough for ranks
  /// to notice that they read different files.
  uint64_t sampleHash() const;

  /// Inputs and targets of step `step`: with `shuffle` off, sequence b starts
  /// at o = ((step·B + b)·S) mod (N − S − 1); with it on, at a position drawn
  /// from `seed` and the step. Inputs are t[o .. o+S−1], targets t[o+1 .. o+S].
  Status batch(int64_t step, int64_t B, int64_t S, bool shuffle, uint64_t seed,
               std::vector<int32_t> &inputs, std::vector<int32_t> &targets) const;

private:
  std::string path_;
  std::vector<uint32_t> tokens_;
};

} // namespace moec::rt

#endif // MOEC_RUNTIME_CORE_TOKENDATA_H
