//===- Cluster.cpp - the machines a plan would run on, as figures ----------===//
#include "compiler/cost/Cluster.h"

#include "compiler/cost/Quantity.h"

#include <sstream>

namespace moec::cost {

int64_t Cluster::nodesFor(int64_t world) const {
  int64_t needed = (world + devicesPerNode - 1) / devicesPerNode;
  return nodes && needed > nodes ? 0 : needed;
}

double Cluster::peak(bool bf16) const {
  double peak = bf16 ? device.peakBf16 : device.peakFp32;
  return peak > 0 ? peak : gemmRate(bf16);
}

void writeCluster(std::ostream &os, const Cluster &cluster, const std::string &comment) {
  std::istringstream lines(comment);
  for (std::string line; std::getline(lines, line);)
    os << "# " << line << "\n";
  auto q = [](double figure, QuantityKind kind) { return formatQuantity(figure, kind); };
  os << "name: \"" << cluster.name << "\"\n";
  if (cluster.nodes)
    os << "nodes: " << cluster.nodes << "\n";
  os << "devices_per_node: " << cluster.devicesPerNode << "\n";
  const DeviceFigures &d = cluster.device;
  os << "device:\n";
  os << "  name: \"" << d.name << "\"\n";
  os << "  kind: " << d.kind << "\n";
  os << "  memory: " << q(d.memory, QuantityKind::Bytes) << "\n";
  os << "  gemm: {fp32: " << q(d.gemmFp32, QuantityKind::FlopRate)
     << ", bf16: " << q(d.gemmBf16, QuantityKind::FlopRate) << "}\n";
  if (d.peakFp32 > 0 || d.peakBf16 > 0)
    os << "  peak: {fp32: " << q(cluster.peak(false), QuantityKind::FlopRate)
       << ", bf16: " << q(cluster.peak(true), QuantityKind::FlopRate) << "}\n";
  if (d.gemmCallFp32 > 0 || d.gemmCallBf16 > 0)
    os << "  gemm_call_overhead: {fp32: " << q(d.gemmCallFp32, QuantityKind::Duration)
       << ", bf16: " << q(d.gemmCallBf16, QuantityKind::Duration) << "}\n";
  if (d.transcendentalRate > 0)
    os << "  transcendentals: " << q(d.transcendentalRate, QuantityKind::FlopRate) << "\n";
  if (d.bf16Conversion > 0)
    os << "  bf16_conversion: " << q(d.bf16Conversion, QuantityKind::Bandwidth) << "\n";
  if (d.serialMemory)
    os << "  serial_memory: true\n";
  os << "  memory_bandwidth: " << q(d.memoryBandwidth, QuantityKind::Bandwidth) << "\n";
  os << "  launch_overhead: " << q(d.launchOverhead, QuantityKind::Duration) << "\n";
  for (const auto &[key, link] :
       {std::pair<const char *, const LinkFigures &>{"intra_node", cluster.intraNode},
        {"inter_node", cluster.interNode}})
    os << key << ": {bandwidth: " << q(link.bandwidth, QuantityKind::Bandwidth)
       << ", latency: " << q(link.latency, QuantityKind::Duration) << "}\n";
}

} // namespace moec::cost
