// Safetensors.h - reading and (atomically) writing .safetensors files.
#ifndef MOEC_RUNTIME_CORE_SAFETENSORS_H
#define MOEC_RUNTIME_CORE_SAFETENSORS_H

#include "runtime/core/Status.h"
#include "runtime/core/Tensor.h"

#include <map>
#include <string>
#include <vector>

namespace moec::rt {

/// One tensor of a safetensors file: dtype name as in the format ("F32",
/// "BF16", ...), shape and bytes.
struct SafetensorEntry {
  std::string dtype;
  std::vector<int64_t> shape;
  const uint8_t *data = nullptr;
  size_t bytes = 0;
};

class SafetensorsFile {
public:
  /// Reads and validates the header (JSON, offsets inside the file, byte
  /// counts matching dtype × shape).
  static StatusOr<SafetensorsFile> load(const std::string &path);

  const std::string &path() const { return path_; }
  const std::map<std::string, SafetensorEntry> &entries() const { return entries_; }
  /// The string entries of the header's `__metadata__`.
  const std::map<std::string, std::string> &metadata() const { return metadata_; }
  const SafetensorEntry *find(const std::string &name) const;
  /// Copies `name` into `out` (f32), converting from F16/BF16/F64; the
  /// error names the tensor and the expected shape.
  Status readF32(const std::string &name, const std::vector<int64_t> &shape,
                 float *out) const;

private:
  std::string path_;
  std::vector<uint8_t> bytes_;
  std::map<std::string, SafetensorEntry> entries_;
  std::map<std::string, std::string> metadata_;
};

struct TensorToSave {
  std::string name;
  std::vector<int64_t> shape;
  const float *data;
};

/// Writes f32 tensors to `path` through a temporary file and a rename, so
/// that an interrupted write never damages an existing file.
Status saveSafetensors(const std::string &path, const std::vector<TensorToSave> &tensors,
                       const std::map<std::string, std::string> &metadata = {});

} // namespace moec::rt

#endif // MOEC_RUNTIME_CORE_SAFETENSORS_H
