// StructureSignatures.cpp - what steps of the upstream tensor ops (reshapes,
// concatenations, static slices), the mesh collectives and fusion groups
// must look like. Their shapes relate through list attributes and axes, so
// most of the checking is in ExtraChecks; the executor checks a collective's
// shapes against its group's size when it prepares the step.
#include "runtime/core/OpSignature.h"
#include "runtime/core/signatures/Signatures.h"

namespace moec::rt::signatures {

namespace {

std::string shapeOf(const TensorRef &t) { return dtypeName(t.dtype) + formatShape(t.shape); }

Status sameDTypes(const StepTensors &s) {
  DType dtype = s.inputs.empty() ? s.outputs[0].dtype : s.inputs[0].dtype;
  for (const auto *list : {&s.inputs, &s.outputs})
    for (const TensorRef &t : *list)
      if (t.dtype != dtype)
        return Status::error("mixes dtypes (" + std::string(dtypeName(dtype)) + " and " +
                             dtypeName(t.dtype) + ")");
  return Status::ok();
}

/// A reshape: the same elements in another shape.
Status sameElements(const StepTensors &s) {
  if (Status st = sameDTypes(s); !st)
    return st;
  if (s.inputs[0].numel() != s.outputs[0].numel())
    return Status::error("reshapes " + shapeOf(s.inputs[0]) + " into " + shapeOf(s.outputs[0]) +
                         ", which has another number of elements");
  return Status::ok();
}

/// Operands of one rank that agree outside `dim`, whose extents along it add
/// up to the result's.
Status concatenation(const StepTensors &s) {
  if (Status st = sameDTypes(s); !st)
    return st;
  const TensorRef &out = s.outputs[0];
  int64_t dim = s.intAttr("dim");
  if (dim >= out.rank())
    return Status::error("attribute 'dim' is " + std::to_string(dim) + " for a result of rank " +
                         std::to_string(out.rank()));
  int64_t total = 0;
  for (size_t i = 0; i < s.inputs.size(); ++i) {
    const TensorRef &in = s.inputs[i];
    bool fits = in.rank() == out.rank();
    for (int d = 0; fits && d < out.rank(); ++d)
      fits = d == dim || in.shape[d] == out.shape[d];
    if (!fits)
      return Status::error("operand " + std::to_string(i) + " is " + shapeOf(in) +
                           ", which does not fit the result " + shapeOf(out) + " along " +
                           std::to_string(dim));
    total += in.shape[dim];
  }
  if (total != out.shape[dim])
    return Status::error("its operands add up to " + std::to_string(total) + " along " +
                         std::to_string(dim) + ", the result has " +
                         std::to_string(out.shape[dim]));
  return Status::ok();
}

/// `box` (the slice, its extents `static_sizes`) at `static_offsets` inside
/// `whole`, with unit strides and no dynamic offsets or sizes.
Status sliceInside(const StepTensors &s, const TensorRef &box, const TensorRef &whole) {
  if (Status st = sameDTypes(s); !st)
    return st;
  std::vector<int64_t> offsets = s.intsAttr("static_offsets");
  std::vector<int64_t> sizes = s.intsAttr("static_sizes");
  std::vector<int64_t> strides = s.intsAttr("static_strides");
  size_t rank = whole.shape.size();
  if (box.shape.size() != rank || offsets.size() != rank || sizes.size() != rank ||
      strides.size() != rank)
    return Status::error("slices " + shapeOf(box) + " of " + shapeOf(whole) + " with " +
                         std::to_string(offsets.size()) + " offsets, " +
                         std::to_string(sizes.size()) + " sizes and " +
                         std::to_string(strides.size()) +
                         " strides (the runtime slices with one of each per dimension)");
  for (size_t d = 0; d < rank; ++d)
    if (sizes[d] != box.shape[d] || strides[d] != 1 || offsets[d] > whole.shape[d] - sizes[d])
      return Status::error("slices " + shapeOf(box) + " at offset " + std::to_string(offsets[d]) +
                           " of dimension " + std::to_string(d) + " (size " +
                           std::to_string(sizes[d]) + ", stride " + std::to_string(strides[d]) +
                           ") out of " + shapeOf(whole));
  return Status::ok();
}

Status extractSlice(const StepTensors &s) { return sliceInside(s, s.outputs[0], s.inputs[0]); }

Status insertSlice(const StepTensors &s) {
  if (s.inputs[1].shape != s.outputs[0].shape)
    return Status::error("inserts into " + shapeOf(s.inputs[1]) + " but returns " +
                         shapeOf(s.outputs[0]));
  return sliceInside(s, s.inputs[0], s.inputs[1]);
}

/// All-reduce: the result has the operand's type.
Status sameType(const StepTensors &s) {
  if (s.inputs[0].dtype != s.outputs[0].dtype || s.inputs[0].shape != s.outputs[0].shape)
    return Status::error("changes its tensor's type: " + shapeOf(s.inputs[0]) + " into " +
                         shapeOf(s.outputs[0]));
  return Status::ok();
}

/// Gathers and slices along axis 0: the part's extent divides the whole's,
/// the other extents agree.
Status partOfWhole(const StepTensors &s, const TensorRef &part, const TensorRef &whole) {
  bool fits = part.dtype == whole.dtype && part.rank() == whole.rank() && part.rank() > 0;
  for (int d = 1; fits && d < part.rank(); ++d)
    fits = part.shape[d] == whole.shape[d];
  if (fits)
    fits = part.shape[0] > 0 ? whole.shape[0] % part.shape[0] == 0 : whole.shape[0] == 0;
  if (!fits)
    return Status::error(shapeOf(part) + " is not a part along axis 0 of " + shapeOf(whole));
  return Status::ok();
}

Status gathered(const StepTensors &s) { return partOfWhole(s, s.inputs[0], s.outputs[0]); }
Status sliced(const StepTensors &s) { return partOfWhole(s, s.outputs[0], s.inputs[0]); }

} // namespace

void addStructureSignatures(SignatureTable &t) {
  // Reshapes are views (the executor aliases them; Plan.cpp checks views).
  t.add("tensor.expand_shape", "x:any[*] -> y:any[*]; static_output_shape:ints?(0..)",
        sameElements);
  t.add("tensor.collapse_shape", "x:any[*] -> y:any[*]", sameElements);
  t.add("tensor.concat", "x:any[*]+ -> y:any[*]; dim:int(0..)", concatenation);
  t.add("tensor.extract_slice",
        "x:any[*] -> y:any[*]; static_offsets:ints(0..) static_sizes:ints(0..) "
        "static_strides:ints(1..1)",
        extractSlice);
  t.add("tensor.insert_slice",
        "source:any[*] dest:any[*] -> y:any[*]; static_offsets:ints(0..) static_sizes:ints(0..) "
        "static_strides:ints(1..1)",
        insertSlice);

  // Collectives: mesh_axes index Plan.mesh (the executor resolves them).
  t.add("mesh.all_reduce",
        "x:any[*] -> y:any[*]; mesh:str mesh_axes:ints(0..) reduction:str?(sum|average)", sameType);
  t.add("mesh.all_gather",
        "x:any[*] -> y:any[*]; mesh:str mesh_axes:ints(0..) gather_axis:int(0..0)", gathered);
  t.add("mesh.all_slice", "x:any[*] -> y:any[*]; mesh:str mesh_axes:ints(0..) slice_axis:int(0..0)",
        sliced);
  t.add("mesh.all_to_all", "x:any[*] -> y:any[*]; mesh:str mesh_axes:ints(0..) split_axis:int(0..) "
                           "concat_axis:int(0..)");

  // A fusion group: its members are checked one by one.
  t.add("moe.fused", "x:any[*]* -> y:any[*]*; kind:str(router|elementwise|optimizer|dispatch|"
                     "expert|norm|lm_head|rope)");
}

} // namespace moec::rt::signatures
