// Plan.cpp - loading and checking a .moeb plan.
#include "runtime/core/Plan.h"

#include "runtime/core/Hash.h"
#include "runtime/core/InputFile.h"
#include "runtime/core/StepChecks.h"
#include "runtime/schema/PlanFooter.h"

#include <algorithm>
#include <cstring>
#include <fstream>
#include <iterator>
#include <map>
#include <set>

namespace moec::rt {

DType toDType(plan::DType dtype) {
  switch (dtype) {
  case plan::DType::f32: return DType::f32;
  case plan::DType::f16: return DType::f16;
  case plan::DType::bf16: return DType::bf16;
  case plan::DType::f64: return DType::f64;
  case plan::DType::i32: return DType::i32;
  case plan::DType::i64: return DType::i64;
  }
  return DType::f32;
}

StatusOr<std::shared_ptr<LoadedPlan>> LoadedPlan::load(const std::string &path) {
  auto bytes = readInputFile(path, "the plan");
  if (!bytes)
    return bytes.status();
  return fromBytes(std::move(*bytes), path);
}

namespace {
/// Vectors of 64-bit values start on 8 bytes: FlatBuffers' verifier checks
/// the alignment of a vector's length only, and reading an int64 through a
/// misaligned pointer is undefined.
Status checkVectorAlignment(const plan::Plan &root, const uint8_t *base, const std::string &name) {
  std::string misaligned;
  auto check = [&](const auto *vector, const std::string &what) {
    if (vector && vector->size() && misaligned.empty() && (vector->Data() - base) % 8 != 0)
      misaligned = what;
  };
  auto checkAttrs = [&](const plan::Step &step) {
    if (step.attrs())
      for (const plan::Attr *attr : *step.attrs()) {
        if (const plan::IntsAttr *ints = attr->value_as_IntsAttr())
          check(ints->values(), "attribute '" + attr->name()->str() + "'");
        if (const plan::FloatsAttr *floats = attr->value_as_FloatsAttr())
          check(floats->values(), "attribute '" + attr->name()->str() + "'");
      }
  };
  if (root.tensors())
    for (const plan::Tensor *t : *root.tensors()) {
      check(t->shape(), "the shape of tensor '" + t->name()->str() + "'");
      check(t->shard_axes(), "the shard axes of tensor '" + t->name()->str() + "'");
    }
  if (root.mesh())
    check(root.mesh()->shape(), "the mesh's shape");
  if (root.functions())
    for (const plan::Function *f : *root.functions())
      if (f->steps())
        for (const plan::Step *step : *f->steps()) {
          checkAttrs(*step);
          if (step->members())
            for (const plan::Step *member : *step->members())
              checkAttrs(*member);
        }
  if (!misaligned.empty())
    return Status::error(name + ": corrupt plan: " + misaligned +
                         " is misaligned (a damaged or hand-made file)");
  return Status::ok();
}

Status checkTensors(const plan::Plan &root, const std::string &name) {
  auto fail = [&](const std::string &message) {
    return Status::error(name + ": corrupt plan: " + message);
  };
  if (!root.tensors())
    return fail("no tensor table");
  int numBuffers = root.buffers() ? root.buffers()->size() : 0;
  for (unsigned id = 0; id < root.tensors()->size(); ++id) {
    const plan::Tensor *t = root.tensors()->Get(id);
    if (!plan::EnumNameDType(t->dtype())[0] || t->dtype() > plan::DType::MAX)
      return fail("tensor " + std::to_string(id) + " has an unknown dtype");
    uint64_t elements = 1;
    if (t->shape())
      for (int64_t extent : *t->shape()) {
        // No op takes an empty tensor (kernels divide by widths).
        if (extent < 1 || extent > (int64_t(1) << 40))
          return fail("tensor '" + t->name()->str() + "' has extent " +
                      std::to_string(extent));
        elements *= static_cast<uint64_t>(extent);
        if (elements > (uint64_t(1) << 40))
          return fail("tensor '" + t->name()->str() + "' is impossibly large");
      }
    if (t->buffer() >= numBuffers)
      return fail("tensor '" + t->name()->str() + "' names buffer " +
                  std::to_string(t->buffer()));
    if (t->buffer() >= 0) {
      uint64_t bytes = elements * dtypeSize(toDType(t->dtype()));
      uint64_t size = root.buffers()->Get(t->buffer())->size();
      if (t->offset() > size || bytes > size - t->offset())
        return fail("tensor '" + t->name()->str() + "' lies outside its arena");
    }
  }
  return Status::ok();
}

/// The mesh of a sharded plan: positive sizes, one name per axis, a world a
/// process can start; every tensor's shard axes are axes of it and divide
/// nothing impossible.
Status checkMesh(const plan::Plan &root, const std::string &name) {
  auto fail = [&](const std::string &message) {
    return Status::error(name + ": corrupt plan: " + message);
  };
  const plan::Mesh *mesh = root.mesh();
  int64_t axes = 0;
  if (mesh) {
    if (!mesh->shape() || mesh->shape()->size() == 0)
      return fail("its mesh has no shape");
    if (mesh->axes() && mesh->axes()->size() != mesh->shape()->size())
      return fail("its mesh names " + std::to_string(mesh->axes()->size()) + " axes for " +
                  std::to_string(mesh->shape()->size()) + " sizes");
    int64_t ranks = 1;
    for (int64_t extent : *mesh->shape()) {
      if (extent < 1 || extent > (int64_t(1) << 20))
        return fail("its mesh has an axis of size " + std::to_string(extent));
      ranks *= extent;
      if (ranks > (int64_t(1) << 20))
        return fail("its mesh has more than 2^20 ranks");
    }
    axes = mesh->shape()->size();
  }
  for (const plan::Tensor *t : *root.tensors())
    if (t->shard_axes())
      for (int64_t axis : *t->shard_axes())
        if (axis < 0 || axis >= axes)
          return fail("tensor '" + t->name()->str() + "' is split over mesh axis " +
                      std::to_string(axis) + ", which " +
                      (mesh ? "the mesh does not have" : "needs a mesh the plan does not have"));
  return Status::ok();
}

int64_t numElements(const plan::Tensor &t) {
  int64_t n = 1;
  if (t.shape())
    for (int64_t extent : *t.shape())
      n *= extent;
  return n;
}

/// Outputs written in place over an input of the function: that input is a
/// parameter or state of the same dtype and size, the output has no arena
/// bytes, and no later step reads the input (or a view of it): it no longer
/// holds what it held.
template <typename Fail>
Status checkOverwrites(const plan::Plan &root, const plan::Function &f, Fail fail) {
  if (!f.steps())
    return Status::ok();
  int numTensors = root.tensors()->size();
  std::string fname = f.name()->str();
  std::map<int, int> rootOf; // a view's tensor -> the function input behind it
  if (f.inputs())
    for (int id : *f.inputs())
      rootOf[id] = id;
  std::set<int> overwritten;
  for (unsigned i = 0; i < f.steps()->size(); ++i) {
    const plan::Step *step = f.steps()->Get(i);
    std::string where = "step " + std::to_string(i) + " (" + step->op()->str() + ") of '" +
                        fname + "'";
    if (step->inputs())
      for (int id : *step->inputs())
        if (auto it = rootOf.find(id); it != rootOf.end() && overwritten.count(it->second))
          return fail(where + " reads '" + root.tensors()->Get(it->second)->name()->str() +
                      "' after a step overwrote it");
    if (!step->outputs())
      continue;
    if (step->view() && step->inputs() && step->inputs()->size() == 1)
      if (auto it = rootOf.find(step->inputs()->Get(0)); it != rootOf.end())
        rootOf[step->outputs()->Get(0)] = it->second;
    for (int id : *step->outputs()) {
      const plan::Tensor *out = root.tensors()->Get(id);
      int target = out->overwrites();
      if (target < 0)
        continue;
      std::string what = where + " writes '" + out->name()->str() + "' over tensor " +
                         std::to_string(target);
      if (target >= numTensors)
        return fail(what + " of " + std::to_string(numTensors));
      const plan::Tensor *in = root.tensors()->Get(target);
      bool isInput = f.inputs() && std::find(f.inputs()->begin(), f.inputs()->end(), target) !=
                                       f.inputs()->end();
      if (!isInput || (in->role() != plan::TensorRole::parameter &&
                       in->role() != plan::TensorRole::state))
        return fail(what + ", which is not a parameter or state input of the function");
      if (in->dtype() != out->dtype() || numElements(*in) != numElements(*out))
        return fail(what + ", of another size or dtype");
      if (!step->inputs() ||
          std::find(step->inputs()->begin(), step->inputs()->end(), target) ==
              step->inputs()->end())
        return fail(what + ", which the step does not read");
      if (out->buffer() >= 0)
        return fail(what + " but also has arena bytes");
      if (!overwritten.insert(target).second)
        return fail(what + ", which an earlier step overwrote");
    }
  }
  if (f.outputs())
    for (int id : *f.outputs())
      if (auto it = rootOf.find(id); it != rootOf.end() && overwritten.count(it->second))
        return fail("function '" + fname + "' returns '" +
                    root.tensors()->Get(id)->name()->str() + "', which a step overwrote");
  return Status::ok();
}

Status checkFunctions(const plan::Plan &root, const std::string &name) {
  auto fail = [&](const std::string &message) {
    return Status::error(name + ": corrupt plan: " + message);
  };
  if (!root.functions() || root.functions()->size() == 0)
    return fail("no functions");
  int numTensors = root.tensors()->size();
  int numBuffers = root.buffers() ? root.buffers()->size() : 0;
  auto checkIds = [&](const flatbuffers::Vector<int32_t> *ids,
                      const std::string &where) -> Status {
    if (ids)
      for (int id : *ids)
        if (id < 0 || id >= numTensors)
          return fail(where + " refers to tensor " + std::to_string(id) +
                      " of " + std::to_string(numTensors));
    return Status::ok();
  };
  for (const plan::Function *f : *root.functions()) {
    std::string fname = f->name()->str();
    if (f->buffer() >= numBuffers)
      return fail("function '" + fname + "' names buffer " +
                  std::to_string(f->buffer()));
    if (f->internal_buffer() >= numBuffers)
      return fail("function '" + fname + "' names internal buffer " +
                  std::to_string(f->internal_buffer()));
    if (Status s = checkIds(f->inputs(), "function '" + fname + "'"); !s)
      return s;
    if (Status s = checkIds(f->outputs(), "function '" + fname + "'"); !s)
      return s;
    if (!f->steps())
      continue;
    for (unsigned i = 0; i < f->steps()->size(); ++i) {
      const plan::Step *step = f->steps()->Get(i);
      std::string where = "step " + std::to_string(i) + " (" +
                          step->op()->str() + ") of '" + fname + "'";
      if (Status s = checkIds(step->inputs(), where); !s)
        return s;
      if (Status s = checkIds(step->outputs(), where); !s)
        return s;
      int numKernels = root.kernels() ? root.kernels()->size() : 0;
      if (step->kernel() >= numKernels)
        return fail(where + " runs kernel " + std::to_string(step->kernel()) + " of " +
                    std::to_string(numKernels));
      if (step->kernel() >= 0) {
        const plan::Kernel *kernel = root.kernels()->Get(step->kernel());
        if (!kernel->launches() || kernel->launches()->size() == 0)
          return fail("kernel '" + kernel->name()->str() + "' has no launches");
        for (const plan::Launch *launch : *kernel->launches())
          for (const auto *extents : {launch->grid(), launch->block()})
            if (!extents || extents->size() != 3 ||
                std::find(extents->begin(), extents->end(), 0u) != extents->end())
              return fail("kernel '" + kernel->name()->str() + "' has a launch whose grid or "
                          "block is not three positive extents");
      }
      if (step->members())
        for (unsigned j = 0; j < step->members()->size(); ++j) {
          const plan::Step *member = step->members()->Get(j);
          std::string what =
              "member " + std::to_string(j) + " (" + member->op()->str() + ") of " + where;
          if (Status s = checkIds(member->inputs(), what); !s)
            return s;
          if (Status s = checkIds(member->outputs(), what); !s)
            return s;
          if (member->kernel() >= 0 || member->members() || member->view())
            return fail(what + " has a kernel, members or is a view");
        }
      if (step->view()) {
        if (!step->inputs() || !step->outputs() || step->inputs()->size() != 1 ||
            step->outputs()->size() != 1)
          return fail(where + " is a view but has not one input and one output");
        const plan::Tensor *in = root.tensors()->Get(step->inputs()->Get(0));
        const plan::Tensor *out = root.tensors()->Get(step->outputs()->Get(0));
        if (in->dtype() != out->dtype() || numElements(*in) != numElements(*out))
          return fail(where + " is a view of a tensor of another size or dtype");
      }
    }
    if (Status s = checkOverwrites(root, *f, fail); !s)
      return s;
    // What each step means, once its ids are known to be in range.
    for (unsigned i = 0; i < f->steps()->size(); ++i) {
      const plan::Step *step = f->steps()->Get(i);
      if (step->view())
        continue;
      if (Status s = checkStepMeaning(root, *step); !s)
        return fail("step " + std::to_string(i) + " (" + step->op()->str() + ") of '" + fname +
                    "': " + s.message());
    }
  }
  return Status::ok();
}
} // namespace

StatusOr<std::shared_ptr<LoadedPlan>>
LoadedPlan::fromBytes(std::vector<uint8_t> bytes, const std::string &name) {
  if (bytes.size() < 8 || !plan::PlanBufferHasIdentifier(bytes.data()))
    return Status::error(name + ": not a moec plan (no MOEB identifier); "
                                "was it written by moec?");
  if (!plan::hasFooter(bytes.data(), bytes.size()))
    return Status::error(name + ": corrupt plan: truncated (its checksum "
                                "footer is missing); compile it again");
  if (!plan::footerMatches(bytes.data(), bytes.size()))
    return Status::error(name + ": corrupt plan: checksum mismatch (the "
                                "file was modified or damaged); compile it again");
  size_t planSize = bytes.size() - plan::kFooterSize;
  flatbuffers::Verifier verifier(bytes.data(), planSize);
  if (!plan::VerifyPlanBuffer(verifier))
    return Status::error(name + ": corrupt plan: the FlatBuffers verifier "
                                "rejected it (truncated or damaged file)");
  auto plan = std::shared_ptr<LoadedPlan>(new LoadedPlan());
  plan->bytes_ = std::move(bytes);
  plan->root_ = plan::GetPlan(plan->bytes_.data());
  plan->path_ = name;
  uint32_t version = plan->root_->version();
  if (version < kMinPlanVersion || version > kMaxPlanVersion)
    return Status::error(name + ": plan version " + std::to_string(version) +
                         " is not supported by this runtime (reads " +
                         std::to_string(kMinPlanVersion) + " to " +
                         std::to_string(kMaxPlanVersion) + "); compile it again with " +
                         "this moec");
  if (Status s = checkVectorAlignment(*plan->root_, plan->bytes_.data(), name); !s)
    return s;
  if (Status s = checkTensors(*plan->root_, name); !s)
    return s;
  if (Status s = checkFunctions(*plan->root_, name); !s)
    return s;
  if (Status s = checkMesh(*plan->root_, name); !s)
    return s;
  return plan;
}

uint64_t LoadedPlan::contentHash() const {
  return fnv1a64(std::string_view(reinterpret_cast<const char *>(bytes_.data()), bytes_.size()));
}

int64_t LoadedPlan::meshRanks() const {
  int64_t ranks = 1;
  if (const plan::Mesh *mesh = root_->mesh(); mesh && mesh->shape())
    for (int64_t extent : *mesh->shape())
      ranks *= extent;
  return ranks;
}

bool LoadedPlan::hasGpuCode() const { return root_->target() && root_->target()->str() == "cuda"; }

bool LoadedPlan::hasGpuBinaries() const {
  if (!hasGpuCode())
    return false;
  if (root_->kernels())
    for (const plan::Kernel *kernel : *root_->kernels()) {
      bool hasSource = kernel->source() && kernel->source()->size() > 0;
      bool hasBinary = (kernel->ptx() && kernel->ptx()->size() > 0) ||
                       (kernel->cubin() && kernel->cubin()->size() > 0);
      if (hasSource && !hasBinary)
        return false;
    }
  return true;
}

const plan::Function *LoadedPlan::function(const std::string &name) const {
  for (const plan::Function *f : *root_->functions())
    if (f->name()->str() == name)
      return f;
  return nullptr;
}

StatusOr<std::pair<int64_t, int64_t>> LoadedPlan::tokenShape() const {
  const plan::Function *forward = function("forward");
  if (!forward)
    return Status::error(path_ + ": the plan has no 'forward' function");
  if (forward->inputs())
    for (int id : *forward->inputs())
      if (tensor(id).name()->str() == "tokens") {
        std::vector<int64_t> shape = describe(id).shape;
        if (shape.size() != 2)
          return Status::error(path_ + ": corrupt plan: 'tokens' is not [batch, seq_len]");
        return std::make_pair(shape[0], shape[1]);
      }
  return Status::error(path_ + ": 'forward' has no tokens input");
}

TensorRef LoadedPlan::describe(int tensorId) const { return describeTensor(tensor(tensorId)); }

TensorRef describeTensor(const plan::Tensor &t) {
  TensorRef ref;
  ref.dtype = toDType(t.dtype());
  if (t.shape())
    ref.shape.assign(t.shape()->begin(), t.shape()->end());
  return ref;
}

const plan::Attr *findAttr(const plan::Step &step, const char *name) {
  if (step.attrs())
    for (const plan::Attr *attr : *step.attrs())
      if (std::strcmp(attr->name()->c_str(), name) == 0)
        return attr;
  return nullptr;
}

} // namespace moec::rt
