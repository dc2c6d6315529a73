//===- ClusterFile.cpp - reading a cluster description (YAML) --------------===//
#include "compiler/cost/ClusterFile.h"

#include "compiler/cost/Quantity.h"
#include "compiler/frontend/YamlReader.h"
#include "runtime/core/InputFile.h"

namespace moec::cost {
namespace {
using frontend::MappingReader;

/// A required figure with its unit.
void readFigure(MappingReader &reader, const std::string &key, QuantityKind kind, double &out,
                bool required = true) {
  if (!reader.has(key)) {
    if (required)
      reader.diagnostics().error(reader.location(),
                                 "missing '" + key + "' (" + quantityUnits(kind) + ")");
    return;
  }
  std::string text;
  reader.read(key, text);
  std::string error;
  if (std::optional<double> figure = parseQuantity(text, kind, error))
    out = *figure;
  else
    reader.diagnostics().error(reader.location(key), "'" + key + "': " + error);
}

void readCount(MappingReader &reader, const std::string &key, int64_t &out, bool required) {
  if (!reader.has(key)) {
    if (required)
      reader.diagnostics().error(reader.location(), "missing '" + key + "'");
    return;
  }
  reader.read(key, out);
  if (out < 1 || out > (int64_t(1) << 20))
    reader.diagnostics().error(reader.location(key), "'" + key + "' must be between 1 and 1048576");
}

void readLink(MappingReader &reader, const std::string &key, LinkFigures &link) {
  if (!reader.has(key)) {
    reader.diagnostics().error(reader.location(),
                               "missing '" + key + "' (a mapping with bandwidth and latency)");
    return;
  }
  reader.section(key, [&](MappingReader &r) {
    readFigure(r, "bandwidth", QuantityKind::Bandwidth, link.bandwidth);
    readFigure(r, "latency", QuantityKind::Duration, link.latency);
  });
}

void readDevice(MappingReader &reader, DeviceFigures &d) {
  reader.read("name", d.name);
  reader.readChoice("kind", d.kind, {"cuda", "cpu"});
  readFigure(reader, "memory", QuantityKind::Bytes, d.memory);
  if (!reader.has("gemm"))
    reader.diagnostics().error(reader.location(), "missing 'gemm' (the fp32 and bf16 rates of "
                                                  "large GEMMs: {fp32: ..., bf16: ...})");
  reader.section("gemm", [&](MappingReader &r) {
    readFigure(r, "fp32", QuantityKind::FlopRate, d.gemmFp32);
    readFigure(r, "bf16", QuantityKind::FlopRate, d.gemmBf16);
  });
  reader.section("peak", [&](MappingReader &r) {
    readFigure(r, "fp32", QuantityKind::FlopRate, d.peakFp32, /*required=*/false);
    readFigure(r, "bf16", QuantityKind::FlopRate, d.peakBf16, /*required=*/false);
  });
  reader.section("gemm_call_overhead", [&](MappingReader &r) {
    readFigure(r, "fp32", QuantityKind::Duration, d.gemmCallFp32);
    readFigure(r, "bf16", QuantityKind::Duration, d.gemmCallBf16);
  });
  readFigure(reader, "transcendentals", QuantityKind::FlopRate, d.transcendentalRate,
             /*required=*/false);
  readFigure(reader, "bf16_conversion", QuantityKind::Bandwidth, d.bf16Conversion,
             /*required=*/false);
  if (reader.has("serial_memory"))
    reader.read("serial_memory", d.serialMemory);
  readFigure(reader, "memory_bandwidth", QuantityKind::Bandwidth, d.memoryBandwidth);
  readFigure(reader, "launch_overhead", QuantityKind::Duration, d.launchOverhead);
}
} // namespace

std::optional<Cluster> readClusterFile(const std::string &path,
                                       frontend::DiagnosticList &diagnostics) {
  // A directory or special file is refused before yaml-cpp reads it.
  if (rt::StatusOr<std::vector<uint8_t>> bytes = rt::readInputFile(path, "the cluster file");
      !bytes.isOk()) {
    // The message names the file already.
    diagnostics.error({"moec", 0, 0}, bytes.status().message());
    return std::nullopt;
  }
  std::optional<YAML::Node> root = frontend::loadYamlFile(path, {}, diagnostics);
  if (!root)
    return std::nullopt;
  if (!root->IsMap()) {
    diagnostics.error({path, 1, 1}, "a cluster description is a mapping (name, "
                                    "devices_per_node, device, intra_node, inter_node)");
    return std::nullopt;
  }
  Cluster cluster;
  cluster.file = path;
  std::map<std::string, frontend::SourceLoc> locations;
  MappingReader reader(*root, path, "", diagnostics, locations);
  reader.read("name", cluster.name);
  readCount(reader, "devices_per_node", cluster.devicesPerNode, /*required=*/true);
  readCount(reader, "nodes", cluster.nodes, /*required=*/false);
  if (!reader.has("device"))
    diagnostics.error(reader.location(), "missing 'device' (the figures of one device)");
  reader.section("device", [&](MappingReader &r) { readDevice(r, cluster.device); });
  readLink(reader, "intra_node", cluster.intraNode);
  readLink(reader, "inter_node", cluster.interNode);
  reader.rejectUnknownKeys();
  if (diagnostics.hasErrors())
    return std::nullopt;
  if (cluster.name.empty())
    cluster.name = path;
  return cluster;
}

} // namespace moec::cost
