// StepChecks.cpp - a step's signature and its library GEMMs' bounds.
#include "runtime/core/StepChecks.h"

#include "runtime/core/LibraryGemm.h"
#include "runtime/core/OpSignature.h"
#include "runtime/core/Plan.h"

#include <string>
#include <vector>

namespace moec::rt {

namespace {

/// The elements of each argument of `step`'s launches: its inputs, its
/// outputs, then (when the kernel has one) the workspace, in f32 elements.
std::vector<__int128> argumentElements(const plan::Plan &root, const plan::Step &step,
                                       const plan::Kernel &kernel) {
  std::vector<__int128> elements;
  for (const auto *ids : {step.inputs(), step.outputs()})
    if (ids)
      for (int id : *ids) {
        __int128 n = 1;
        if (const auto *shape = root.tensors()->Get(id)->shape())
          for (int64_t extent : *shape)
            n *= extent;
        elements.push_back(n);
      }
  if (kernel.workspace() > 0)
    elements.push_back(kernel.workspace() / sizeof(float));
  return elements;
}

/// The elements a row-major `rows` x `cols` operand with leading dimension
/// `ld` spans.
__int128 span(int64_t rows, int64_t cols, int64_t ld) {
  return static_cast<__int128>(rows - 1) * ld + cols;
}

Status checkLibraryGemms(const plan::Plan &root, const plan::Step &step,
                         const plan::Kernel &kernel) {
  std::vector<__int128> elements = argumentElements(root, step, kernel);
  for (const plan::Launch *launch : *kernel.launches()) {
    const plan::GemmCall *call = launch->gemm();
    if (!call)
      continue;
    auto gemm = LibraryGemm::fromPlan(*call, launch->entry()->str());
    if (!gemm)
      return gemm.status();
    if (!gemm->argumentsWithin(elements.size()))
      return Status::error("library GEMM " + launch->entry()->str() +
                           " names an argument past the " + std::to_string(elements.size()) +
                           " of its step");
    const LibraryGemm &g = *gemm;
    struct Operand {
      const char *name;
      unsigned argument;
      __int128 needs;
    } operands[] = {
        {"A", g.a, g.aTransposed ? span(g.k, g.m, g.lda) : span(g.m, g.k, g.lda)},
        {"B", g.b, g.bTransposed ? span(g.n, g.k, g.ldb) : span(g.k, g.n, g.ldb)},
        {"C", g.c, span(g.m, g.n, g.ldc)},
    };
    for (const Operand &o : operands)
      if (o.needs > elements[o.argument])
        return Status::error(
            "library GEMM " + launch->entry()->str() + " (" + std::to_string(g.m) + " x " +
            std::to_string(g.n) + " x " + std::to_string(g.k) + ") reads its " + o.name +
            " past argument " + std::to_string(o.argument) + " of " +
            std::to_string(static_cast<int64_t>(elements[o.argument])) + " elements");
  }
  return Status::ok();
}

} // namespace

Status checkStepMeaning(const plan::Plan &root, const plan::Step &step) {
  if (Status s = checkStepSignature(root, step); !s)
    return s;
  if (step.members())
    for (unsigned j = 0; j < step.members()->size(); ++j) {
      const plan::Step *member = step.members()->Get(j);
      if (Status s = checkStepSignature(root, *member); !s)
        return Status::error("member " + std::to_string(j) + " (" + member->op()->str() +
                             "): " + s.message());
    }
  if (step.kernel() >= 0)
    return checkLibraryGemms(root, step, *root.kernels()->Get(step.kernel()));
  return Status::ok();
}

} // namespace moec::rt
