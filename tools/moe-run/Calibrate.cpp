// Calibrate.cpp - `moe-run --calibrate FILE`: this machine as a cluster description.
#include "Calibrate.h"

#include "compiler/cost/Cluster.h"
#include "runtime/core/AtomicFile.h"
#include "runtime/devices/Calibration.h"

#include <sstream>

namespace moec::tools {

rt::Status calibrate(const std::string &path, const std::string &device,
                     rt::hal::Channel &channel) {
  if (device != "auto" && device != "cpu")
    return rt::Status::error(
        "--calibrate measures the cpu device; for '" + device +
        "', whose kernels are the plans' own, trace plans there (moe-run PLAN --device " + device +
        " --steps 5 --trace T.json) and fit a cluster description to them with moec calibrate");
  rt::StatusOr<rt::CalibratedFigures> measured = rt::calibrateCpu(channel);
  if (!measured.isOk())
    return measured.status();
  if (channel.rank() != 0)
    return rt::Status::ok();
  const rt::CalibratedFigures &f = *measured;
  cost::Cluster cluster;
  cluster.name = "calibrated";
  cluster.devicesPerNode = f.ranks;
  cluster.nodes = 1;
  cluster.device.name = f.device;
  cluster.device.kind = "cpu";
  cluster.device.memory = f.memory / f.ranks;
  cluster.device.gemmFp32 = f.gemmFp32;
  cluster.device.gemmBf16 = f.gemmBf16;
  cluster.device.gemmCallFp32 = f.gemmCallFp32;
  cluster.device.gemmCallBf16 = f.gemmCallBf16;
  cluster.device.transcendentalRate = f.transcendentals;
  cluster.device.bf16Conversion = f.bf16Conversion;
  cluster.device.serialMemory = true; // the cpu backend's kernels (Cluster.h)
  cluster.device.memoryBandwidth = f.memoryBandwidth;
  cluster.device.launchOverhead = f.launchOverhead;
  std::string links;
  if (f.ranks > 1) {
    cluster.intraNode = {f.linkBandwidth, f.linkLatency};
    links = "intra_node: all-reduces through the channel among the " + std::to_string(f.ranks) +
            " ranks.\ninter_node: not measured (one node); the same figures.";
  } else {
    // One rank exchanges nothing; the figures keep the format whole.
    cluster.intraNode = {f.memoryBandwidth, 0};
    links = "intra_node, inter_node: not measured (one rank); memory bandwidth, no latency.";
  }
  cluster.interNode = cluster.intraNode;
  std::ostringstream text;
  cost::writeCluster(
      text, cluster,
      "Measured by moe-run --calibrate on " + std::to_string(f.ranks) + " rank" +
          (f.ranks == 1 ? "" : "s") +
          " (one device each; memory is the machine's divided among them).\n"
          "gemm: products through the runtime's GEMM library (C = A B^T) from 128x128x64\n"
          "to 1024^3, each call's B another fp32 weight from 64 MiB (as weights come from\n"
          "memory in a step; bf16 ones multiply it as the runtime does, rounded first into\n"
          "a buffer, the rounding not timed), fitted to t = gemm_call_overhead +\n"
          "FLOPs / rate (least squares of the relative error).\n"
          "bf16_conversion: rounding 64 MiB of fp32 to bf16, 6 bytes per element (OpenMP).\n"
          "serial_memory: the cpu backend's products read and write memory, then multiply.\n"
          "transcendentals: exp over 4M floats (OpenMP).\n"
          "memory_bandwidth: y = a + b over 64 MiB arrays (OpenMP, as the "
          "elementwise kernels).\n"
          "launch_overhead: the same on 16 elements.\n" +
          links);
  std::string bytes = text.str();
  return rt::writeFileAtomically(
      path, "--calibrate", [&](int fd) { return rt::writeAll(fd, bytes.data(), bytes.size()); });
}

} // namespace moec::tools
