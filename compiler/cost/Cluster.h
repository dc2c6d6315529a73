//===- Cluster.h - the machines a plan would run on, as figures -*- C++ -*-===//
//
// A cluster description (docs/design/cost-model.md): identical nodes of
// `devices_per_node` devices, each with its memory, GEMM rates and memory
// bandwidth, joined inside a node by one link (NVLink, or shared memory on
// a CPU) and across nodes by another (InfiniBand, Ethernet). The cost
// model reads these figures; `moe-run --calibrate` measures them.
//
//===----------------------------------------------------------------------===//
#ifndef MOEC_COMPILER_COST_CLUSTER_H
#define MOEC_COMPILER_COST_CLUSTER_H

#include <cstdint>
#include <ostream>
#include <string>

namespace moec::cost {

/// A link as each device sees it: the bandwidth one device sends at in one
/// direction, and the latency of one message.
struct LinkFigures {
  double bandwidth = 0; ///< bytes per second
  double latency = 0;   ///< seconds
};

struct DeviceFigures {
  std::string name;
  std::string kind = "cuda";  ///< "cuda" (plans of --target=cuda) or "cpu"
  double memory = 0;          ///< bytes a plan may use
  double gemmFp32 = 0;        ///< FLOP/s of large fp32 GEMMs, as measured
  double gemmBf16 = 0;        ///< FLOP/s of large bf16 GEMMs (fp32 accumulation)
  double peakFp32 = 0;        ///< the datasheet's FLOP/s, for MFU (0: gemmFp32)
  double peakBf16 = 0;        ///< (0: gemmBf16)
  double memoryBandwidth = 0; ///< bytes per second a memory-bound kernel reaches
  double launchOverhead = 0;  ///< seconds each kernel launch (each op on a CPU) costs
  /// Seconds each matrix product costs beyond its FLOPs at the GEMM rate
  /// (small products, one per expert or head, reach less than large ones).
  double gemmCallFp32 = 0, gemmCallBf16 = 0;
  /// exp, log and sigmoid evaluations per second (0: not counted).
  double transcendentalRate = 0;
  /// Where a device rounds the fp32 operands of bf16 products to bf16 in a
  /// pass of their own before multiplying (the cpu backend): that pass's
  /// bytes per second, 6 per element (read 4, write 2). 0: rounding is part
  /// of the product's loads (generated GPU kernels) and costs nothing more.
  double bf16Conversion = 0;
  /// Whether a product's operand and result traffic adds to its arithmetic
  /// instead of overlapping it (`serial_memory: true`, the cpu backend: one
  /// core packs, rounds and multiplies in turn, and a step's weights and
  /// rows come cold from memory). false: the longer of the two (GPUs, whose
  /// warps hide one behind the other).
  bool serialMemory = false;
};

struct Cluster {
  std::string name;
  std::string file; ///< where it was read from
  int64_t devicesPerNode = 1;
  int64_t nodes = 0; ///< 0: as many as a world size needs
  DeviceFigures device;
  LinkFigures intraNode, interNode;

  /// The nodes `world` devices fill; 0 when the cluster has fewer devices.
  int64_t nodesFor(int64_t world) const;
  double peak(bool bf16) const;
  double gemmRate(bool bf16) const { return bf16 ? device.gemmBf16 : device.gemmFp32; }
  double gemmCall(bool bf16) const { return bf16 ? device.gemmCallBf16 : device.gemmCallFp32; }
};

/// Writes `cluster` in the format readClusterFile reads (what `moe-run
/// --calibrate` saves), with `comment` lines first.
void writeCluster(std::ostream &os, const Cluster &cluster, const std::string &comment);

} // namespace moec::cost

#endif // MOEC_COMPILER_COST_CLUSTER_H
