// Calibration.h - what this machine's device and channel reach, measured
// (`moe-run --calibrate`): the figures of a cluster description.
#ifndef MOEC_RUNTIME_DEVICES_CALIBRATION_H
#define MOEC_RUNTIME_DEVICES_CALIBRATION_H

#include "runtime/core/Status.h"
#include "runtime/hal/Channel.h"

#include <string>

namespace moec::rt {

struct CalibratedFigures {
  std::string device;         // the device's description
  double memory = 0;          // bytes a plan may use
  double gemmFp32 = 0;        // FLOP/s of large products
  double gemmBf16 = 0;        // FLOP/s
  double gemmCallFp32 = 0;    // seconds a product costs beyond its FLOPs at that rate
  double gemmCallBf16 = 0;
  double transcendentals = 0; // exp evaluations per second
  double bf16Conversion = 0;  // bytes/s of rounding fp32 operands to bf16 (6 per element)
  double memoryBandwidth = 0; // bytes/s of an elementwise kernel (two reads, one write)
  double launchOverhead = 0;  // seconds of an op on a few elements
  int ranks = 1;              // of the channel
  double linkBandwidth = 0;   // bytes/s each rank sends in a ring all-reduce (0: one rank)
  double linkLatency = 0;     // seconds per message in sequence (rt::allReduceRounds)
};

/// Measures the cpu device (the runtime's GEMM library in fp32 and bf16 at
/// several shapes, fitted to a rate and a cost per call, t = t0 + FLOPs /
/// rate; rounding fp32 operands to bf16; its OpenMP elementwise kernels and
/// exp) and, when `channel` has more than one
/// rank, all-reduces through it: a small one for the latency per message
/// in sequence, a large one for the bandwidth. Every rank must call it; each
/// measurement takes about `seconds`.
StatusOr<CalibratedFigures> calibrateCpu(hal::Channel &channel, double seconds = 0.5);

} // namespace moec::rt

#endif // MOEC_RUNTIME_DEVICES_CALIBRATION_H
