//===- Quantity.h - sizes, rates and durations written with their units -*- C++ -*-===//
//
// Cluster descriptions give figures as people write them: `80 GiB`,
// `3.35 TB/s`, `400 Gb/s` (bits), `989 TFLOP/s`, `5 us`. Each reader takes
// the text and returns the figure in base units (bytes, bytes per second,
// FLOP per second, seconds), or an error naming the units it accepts.
//
//===----------------------------------------------------------------------===//
#ifndef MOEC_COMPILER_COST_QUANTITY_H
#define MOEC_COMPILER_COST_QUANTITY_H

#include <optional>
#include <string>

namespace moec::cost {

enum class QuantityKind {
  Bytes,     ///< B, KB, MB, GB, TB (powers of 1000), KiB, MiB, GiB, TiB (of 1024)
  Bandwidth, ///< bytes per second (GB/s, GiB/s, ...) or bits (Gb/s, Mb/s, Tb/s)
  FlopRate,  ///< FLOP/s, GFLOP/s, TFLOP/s, PFLOP/s
  Duration,  ///< ns, us, ms, s
};

/// The figure `text` gives, in base units; on a bad number or unit, nullopt
/// and a message in `error`. Every figure must be positive and finite.
std::optional<double> parseQuantity(const std::string &text, QuantityKind kind, std::string &error);

/// The units `kind` accepts, for messages.
const char *quantityUnits(QuantityKind kind);

/// `figure` (base units) written back with a unit parseQuantity reads:
/// `80 GiB`, `3.35 TB/s`, `989 TFLOP/s`, `5 us`.
std::string formatQuantity(double figure, QuantityKind kind);

} // namespace moec::cost

#endif // MOEC_COMPILER_COST_QUANTITY_H
