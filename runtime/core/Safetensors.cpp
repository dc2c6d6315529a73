// Safetensors.cpp - reading and (atomically) writing .safetensors files.
#include "runtime/core/Safetensors.h"

#include "runtime/core/AtomicFile.h"
#include "runtime/core/InputFile.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <limits>
#include <set>
#include <tuple>
#include <unistd.h>

namespace moec::rt {

namespace {
size_t safetensorDtypeSize(const std::string &dtype) {
  if (dtype == "F32" || dtype == "I32") return 4;
  if (dtype == "F16" || dtype == "BF16" || dtype == "I16") return 2;
  if (dtype == "F64" || dtype == "I64") return 8;
  if (dtype == "U8" || dtype == "I8" || dtype == "BOOL") return 1;
  return 0;
}

float halfToFloat(uint16_t h) {
  uint32_t sign = (h & 0x8000u) << 16, exponent = (h >> 10) & 0x1f, mantissa = h & 0x3ff;
  uint32_t bits;
  if (exponent == 0) {
    if (mantissa == 0) {
      bits = sign;
    } else {
      exponent = 127 - 15 + 1;
      while (!(mantissa & 0x400)) {
        mantissa <<= 1;
        --exponent;
      }
      bits = sign | (exponent << 23) | ((mantissa & 0x3ff) << 13);
    }
  } else if (exponent == 31) {
    bits = sign | 0x7f800000u | (mantissa << 13);
  } else {
    bits = sign | ((exponent + 127 - 15) << 23) | (mantissa << 13);
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}
} // namespace

StatusOr<SafetensorsFile> SafetensorsFile::load(const std::string &path) {
  auto bytes = readInputFile(path, "the safetensors file");
  if (!bytes)
    return bytes.status();
  SafetensorsFile file;
  file.path_ = path;
  file.bytes_ = std::move(*bytes);
  auto fail = [&](const std::string &why) {
    return Status::error(path + ": not a valid safetensors file: " + why);
  };
  if (file.bytes_.size() < 8)
    return fail("shorter than its 8-byte header length");
  uint64_t headerSize = 0;
  std::memcpy(&headerSize, file.bytes_.data(), 8);
  if (headerSize > file.bytes_.size() - 8)
    return fail("header length " + std::to_string(headerSize) +
                " exceeds the file size");
  // A name given twice would otherwise keep its last entry silently.
  std::set<std::string> names;
  std::string duplicate;
  auto noteKey = [&](int depth, nlohmann::json::parse_event_t event, nlohmann::json &parsed) {
    if (event == nlohmann::json::parse_event_t::key && depth == 1 &&
        !names.insert(parsed.get<std::string>()).second && duplicate.empty())
      duplicate = parsed.get<std::string>();
    return true;
  };
  nlohmann::json header = nlohmann::json::parse(
      file.bytes_.begin() + 8, file.bytes_.begin() + 8 + headerSize, noteKey, false);
  if (header.is_discarded() || !header.is_object())
    return fail("the header is not a JSON object");
  if (!duplicate.empty())
    return fail("the header names '" + duplicate + "' twice");
  std::vector<std::tuple<uint64_t, uint64_t, std::string>> ranges; // to find overlaps
  const uint8_t *dataStart = file.bytes_.data() + 8 + headerSize;
  size_t dataSize = file.bytes_.size() - 8 - headerSize;
  for (auto &[name, info] : header.items()) {
    if (name == "__metadata__") {
      if (!info.is_object())
        return fail("__metadata__ is not an object");
      for (auto &[key, value] : info.items())
        if (value.is_string())
          file.metadata_[key] = value.get<std::string>();
      continue;
    }
    if (!info.is_object() || !info.contains("dtype") || !info.contains("shape") ||
        !info.contains("data_offsets") || !info["dtype"].is_string() ||
        !info["shape"].is_array() || !info["data_offsets"].is_array() ||
        info["data_offsets"].size() != 2)
      return fail("entry '" + name + "' lacks dtype, shape or data_offsets");
    SafetensorEntry entry;
    entry.dtype = info["dtype"].get<std::string>();
    size_t elementSize = safetensorDtypeSize(entry.dtype);
    if (!elementSize)
      return fail("entry '" + name + "' has unknown dtype " + entry.dtype);
    uint64_t elements = 1;
    for (auto &extent : info["shape"]) {
      if (!extent.is_number_unsigned())
        return fail("entry '" + name + "' has a bad shape");
      uint64_t size = extent.get<uint64_t>();
      if (size > uint64_t(std::numeric_limits<int64_t>::max()) ||
          (size != 0 && elements > std::numeric_limits<uint64_t>::max() / 8 / size))
        return fail("entry '" + name + "' has a shape too large for any file");
      entry.shape.push_back(static_cast<int64_t>(size));
      elements *= size;
    }
    auto &offsets = info["data_offsets"];
    if (!offsets[0].is_number_unsigned() || !offsets[1].is_number_unsigned())
      return fail("entry '" + name + "' has bad data_offsets");
    uint64_t begin = offsets[0].get<uint64_t>(), end = offsets[1].get<uint64_t>();
    if (begin > end || end > dataSize)
      return fail("entry '" + name + "' lies outside the file");
    if (end - begin != elements * elementSize)
      return fail("entry '" + name + "' has " + std::to_string(end - begin) +
                  " bytes, but its dtype and shape need " +
                  std::to_string(elements * elementSize));
    entry.data = dataStart + begin;
    entry.bytes = end - begin;
    file.entries_[name] = entry;
    if (begin != end)
      ranges.emplace_back(begin, end, name);
  }
  // Two tensors sharing bytes (the reference loader refuses them too).
  std::sort(ranges.begin(), ranges.end());
  for (size_t i = 1; i < ranges.size(); ++i)
    if (std::get<0>(ranges[i]) < std::get<1>(ranges[i - 1]))
      return fail("entries '" + std::get<2>(ranges[i - 1]) + "' and '" + std::get<2>(ranges[i]) +
                  "' overlap");
  return file;
}

const SafetensorEntry *SafetensorsFile::find(const std::string &name) const {
  auto it = entries_.find(name);
  return it == entries_.end() ? nullptr : &it->second;
}

Status SafetensorsFile::readF32(const std::string &name,
                                const std::vector<int64_t> &shape, float *out) const {
  const SafetensorEntry *entry = find(name);
  if (!entry)
    return Status::error(path_ + ": missing tensor '" + name + "' (expected shape " +
                         formatShape(shape) + ")");
  if (entry->shape != shape)
    return Status::error(path_ + ": tensor '" + name + "' has shape " +
                         formatShape(entry->shape) + ", expected " + formatShape(shape));
  size_t n = 1;
  for (int64_t extent : shape)
    n *= extent;
  if (entry->dtype == "F32") {
    std::memcpy(out, entry->data, n * 4);
  } else if (entry->dtype == "BF16" || entry->dtype == "F16") {
    for (size_t i = 0; i < n; ++i) {
      uint16_t h;
      std::memcpy(&h, entry->data + 2 * i, 2);
      if (entry->dtype == "F16") {
        out[i] = halfToFloat(h);
      } else {
        uint32_t bits = static_cast<uint32_t>(h) << 16;
        std::memcpy(&out[i], &bits, 4);
      }
    }
  } else if (entry->dtype == "F64") {
    for (size_t i = 0; i < n; ++i) {
      double v;
      std::memcpy(&v, entry->data + 8 * i, 8);
      out[i] = static_cast<float>(v);
    }
  } else {
    return Status::error(path_ + ": tensor '" + name + "' has dtype " + entry->dtype +
                         ", expected a floating-point dtype");
  }
  return Status::ok();
}

Status saveSafetensors(const std::string &path, const std::vector<TensorToSave> &tensors,
                       const std::map<std::string, std::string> &metadata) {
  nlohmann::ordered_json header;
  if (!metadata.empty())
    header["__metadata__"] = metadata;
  uint64_t offset = 0;
  for (const TensorToSave &t : tensors) {
    uint64_t n = 1;
    for (int64_t extent : t.shape)
      n *= extent;
    header[t.name] = {{"dtype", "F32"}, {"shape", t.shape},
                      {"data_offsets", {offset, offset + n * 4}}};
    offset += n * 4;
  }
  std::string text = header.dump();
  while (text.size() % 8)
    text += ' ';
  return writeFileAtomically(path, "checkpoint", [&](int fd) {
    uint64_t headerSize = text.size();
    bool ok = writeAll(fd, &headerSize, 8) && writeAll(fd, text.data(), text.size());
    for (const TensorToSave &t : tensors) {
      uint64_t n = 1;
      for (int64_t extent : t.shape)
        n *= extent;
      ok = ok && writeAll(fd, t.data, n * 4);
    }
    return ok;
  });
}

} // namespace moec::rt
