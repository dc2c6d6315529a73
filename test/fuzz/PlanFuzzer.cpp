// PlanFuzzer.cpp - the plan loader on any bytes: an error, never a crash.
//
// The input is a .moeb whose checksum footer the harness writes again, so
// that mutations reach the FlatBuffers verifier and the checks of what a
// plan means (as a forged plan would), not only the checksum.
#include "runtime/core/Plan.h"
#include "runtime/core/PlanMemory.h"
#include "runtime/schema/PlanFooter.h"

#include <cstdint>
#include <vector>

using namespace moec;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  std::vector<uint8_t> bytes(data, data + size);
  if (bytes.size() >= plan::kFooterSize)
    plan::writeFooter(bytes.data(), bytes.size() - plan::kFooterSize,
                      bytes.data() + bytes.size() - plan::kFooterSize);
  auto loaded = rt::LoadedPlan::fromBytes(std::move(bytes), "fuzz.moeb");
  if (!loaded)
    return 0;
  // What moe-run and moe-inspect do next with a plan that loads.
  const rt::LoadedPlan &plan = **loaded;
  (void)plan.meshRanks();
  (void)plan.tokenShape();
  (void)rt::largestPlanMemory(plan);
  for (int id = 0; id < plan.numTensors(); ++id)
    (void)plan.describe(id);
  return 0;
}
