//===- PlanEmitter.cpp - a planned module to a .moeb FlatBuffer -----------===//
#include "compiler/target/PlanEmitter.h"

#include "dialects/moe/IR/MoEOps.h"
#include "runtime/schema/PlanFooter.h"
#include "runtime/schema/plan_generated.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Mesh/IR/MeshOps.h"
#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/Interfaces/ViewLikeInterface.h"

#include "llvm/ADT/DenseMap.h"
#include "llvm/ADT/StringSwitch.h"
#include "llvm/Support/raw_ostream.h"

using moec::moe::MoEDialect;

using namespace mlir;
namespace fb = flatbuffers;
namespace plan = moec::plan;

namespace moec::target {

namespace {
FailureOr<plan::DType> dtypeOf(Type type, Operation *where) {
  if (type.isF32()) return plan::DType::f32;
  if (type.isF16()) return plan::DType::f16;
  if (type.isBF16()) return plan::DType::bf16;
  if (type.isF64()) return plan::DType::f64;
  if (type.isSignlessInteger(32)) return plan::DType::i32;
  if (type.isSignlessInteger(64)) return plan::DType::i64;
  where->emitError("no plan dtype for element type ") << type;
  return failure();
}

/// `#moe.score<softmax>` -> "softmax": enum attributes travel as their
/// keyword, so the schema needs no change for a new enum.
std::string enumKeyword(Attribute attr) {
  std::string text;
  llvm::raw_string_ostream os(text);
  attr.print(os);
  size_t open = text.find('<'), close = text.rfind('>');
  if (open == std::string::npos || close == std::string::npos || close < open)
    return text;
  return text.substr(open + 1, close - open - 1);
}

class Emitter {
public:
  Emitter(const frontend::ModelConfig &config, const TargetArtifacts &artifacts,
          const std::optional<PlanSource> &source)
      : config(config), artifacts(artifacts), source(source) {}

  FailureOr<std::vector<uint8_t>> run(ModuleOp module);

private:
  FailureOr<int> addTensor(Value value, std::string name, plan::TensorRole role,
                           DictionaryAttr attrs, int buffer, int64_t offset,
                           int overwrites = -1);
  FailureOr<fb::Offset<plan::Attr>> convertAttr(NamedAttribute attr,
                                                Operation *op);
  FailureOr<fb::Offset<plan::Function>> emitFunction(func::FuncOp func);
  /// The attributes of `op` with the defaults of absent ones (kernels never
  /// restate them), without the memory plan's.
  FailureOr<std::vector<fb::Offset<plan::Attr>>> convertAttrs(Operation &op);
  /// The steps of fusion group `fused`'s members, over the step's `inputs`
  /// and `outputs`; their inner values in buffer `internal`.
  FailureOr<std::vector<fb::Offset<plan::Step>>> emitMembers(moe::FusedOp fused,
                                                             ArrayRef<int> inputs,
                                                             ArrayRef<int> outputs, int internal,
                                                             int &counter);
  fb::Offset<plan::Training> emitTraining();
  fb::Offset<plan::Source> emitSource();
  /// The module's mesh.mesh, if it has one (a sharded plan).
  fb::Offset<plan::Mesh> emitMesh(ModuleOp module);
  fb::Offset<fb::Vector<fb::Offset<plan::Kernel>>> emitKernels();

  const frontend::ModelConfig &config;
  const TargetArtifacts &artifacts;
  const std::optional<PlanSource> &source;
  fb::FlatBufferBuilder fbb;
  std::vector<fb::Offset<plan::Tensor>> tensors;
  std::vector<fb::Offset<plan::Buffer>> buffers;
  llvm::DenseMap<Value, int> tensorOf;
};

FailureOr<int> Emitter::addTensor(Value value, std::string name,
                                  plan::TensorRole role, DictionaryAttr attrs,
                                  int buffer, int64_t offset, int overwrites) {
  auto type = dyn_cast<RankedTensorType>(value.getType());
  Operation *where = value.getDefiningOp() ? value.getDefiningOp()
                                           : value.getParentBlock()->getParentOp();
  if (!type || !type.hasStaticShape()) {
    where->emitError("plan tensors need static shapes, but '")
        << name << "' has type " << value.getType();
    return failure();
  }
  FailureOr<plan::DType> dtype = dtypeOf(type.getElementType(), where);
  if (failed(dtype))
    return failure();

  plan::InitKind init = plan::InitKind::none;
  float initStd = 0, initHigh = 0;
  bool trainable = true;
  double hyperValue = 0;
  std::vector<fb::Offset<fb::String>> parts;
  std::vector<int64_t> shardAxes;
  if (attrs) {
    if (auto axes = attrs.getAs<DenseI16ArrayAttr>(MoEDialect::kShardAxesAttrName))
      shardAxes.assign(axes.asArrayRef().begin(), axes.asArrayRef().end());
    if (auto number = attrs.getAs<FloatAttr>(MoEDialect::kValueAttrName))
      hyperValue = number.getValueAsDouble();
    else if (auto number = attrs.getAs<IntegerAttr>(MoEDialect::kValueAttrName))
      hyperValue = static_cast<double>(number.getInt());
    if (auto kind = attrs.getAs<StringAttr>(MoEDialect::kInitAttrName)) {
      init = llvm::StringSwitch<plan::InitKind>(kind.getValue())
                 .Case("normal", plan::InitKind::normal)
                 .Case("zeros", plan::InitKind::zeros)
                 .Case("ones", plan::InitKind::ones)
                 .Case("log_uniform", plan::InitKind::log_uniform)
                 .Default(plan::InitKind::none);
    }
    if (auto std = attrs.getAs<FloatAttr>(MoEDialect::kInitStdAttrName))
      initStd = std.getValueAsDouble();
    if (auto high = attrs.getAs<FloatAttr>(MoEDialect::kInitHighAttrName))
      initHigh = high.getValueAsDouble();
    if (auto flag = attrs.getAs<BoolAttr>(MoEDialect::kTrainableAttrName))
      trainable = flag.getValue();
    if (auto names = attrs.getAs<ArrayAttr>(MoEDialect::kPartsAttrName))
      for (Attribute part : names)
        parts.push_back(fbb.CreateString(cast<StringAttr>(part).getValue().str()));
  }
  auto nameOffset = fbb.CreateString(name);
  auto shapeOffset = fbb.CreateVector(type.getShape().vec());
  auto partsOffset = fbb.CreateVector(parts);
  auto shardAxesOffset = fbb.CreateVector(shardAxes);
  plan::TensorBuilder tb(fbb);
  tb.add_name(nameOffset);
  tb.add_dtype(*dtype);
  tb.add_shape(shapeOffset);
  tb.add_role(role);
  tb.add_init(init);
  tb.add_init_std(initStd);
  tb.add_init_high(initHigh);
  tb.add_trainable(trainable);
  tb.add_parts(partsOffset);
  tb.add_buffer(buffer);
  tb.add_offset(static_cast<uint64_t>(std::max<int64_t>(offset, 0)));
  tb.add_value(hyperValue);
  tb.add_overwrites(overwrites);
  if (!shardAxes.empty())
    tb.add_shard_axes(shardAxesOffset);
  tensors.push_back(tb.Finish());
  int id = tensors.size() - 1;
  tensorOf[value] = id;
  return id;
}

FailureOr<fb::Offset<plan::Attr>> Emitter::convertAttr(NamedAttribute named,
                                                       Operation *op) {
  Attribute attr = named.getValue();
  plan::AttrValue kind;
  fb::Offset<void> value;
  if (auto boolean = dyn_cast<BoolAttr>(attr)) {
    kind = plan::AttrValue::BoolAttr;
    value = plan::CreateBoolAttr(fbb, boolean.getValue()).Union();
  } else if (auto integer = dyn_cast<IntegerAttr>(attr)) {
    kind = plan::AttrValue::IntAttr;
    value = plan::CreateIntAttr(fbb, integer.getInt()).Union();
  } else if (auto real = dyn_cast<FloatAttr>(attr)) {
    kind = plan::AttrValue::FloatAttr;
    value = plan::CreateFloatAttr(fbb, real.getValueAsDouble()).Union();
  } else if (isa<UnitAttr>(attr)) {
    kind = plan::AttrValue::BoolAttr;
    value = plan::CreateBoolAttr(fbb, true).Union();
  } else if (auto ints = dyn_cast<DenseI64ArrayAttr>(attr)) {
    std::vector<int64_t> values = ints.asArrayRef().vec();
    kind = plan::AttrValue::IntsAttr;
    value = plan::CreateIntsAttrDirect(fbb, &values).Union();
  } else if (auto ints32 = dyn_cast<DenseI32ArrayAttr>(attr)) {
    std::vector<int64_t> widened(ints32.asArrayRef().begin(), ints32.asArrayRef().end());
    kind = plan::AttrValue::IntsAttr;
    value = plan::CreateIntsAttrDirect(fbb, &widened).Union();
  } else if (auto floats = dyn_cast<DenseF32ArrayAttr>(attr)) {
    std::vector<double> widened(floats.asArrayRef().begin(), floats.asArrayRef().end());
    kind = plan::AttrValue::FloatsAttr;
    value = plan::CreateFloatsAttrDirect(fbb, &widened).Union();
  } else if (auto str = dyn_cast<StringAttr>(attr)) {
    kind = plan::AttrValue::StringAttr;
    value = plan::CreateStringAttrDirect(fbb, str.getValue().str().c_str()).Union();
  } else if (auto ints16 = dyn_cast<DenseI16ArrayAttr>(attr)) {
    std::vector<int64_t> widened(ints16.asArrayRef().begin(), ints16.asArrayRef().end());
    kind = plan::AttrValue::IntsAttr;
    value = plan::CreateIntsAttrDirect(fbb, &widened).Union();
  } else if (auto symbol = dyn_cast<FlatSymbolRefAttr>(attr)) {
    kind = plan::AttrValue::StringAttr;
    value = plan::CreateStringAttrDirect(fbb, symbol.getValue().str().c_str()).Union();
  } else if (attr.getDialect().getNamespace() == "moe" ||
             attr.getDialect().getNamespace() == "mesh") {
    kind = plan::AttrValue::StringAttr;
    value = plan::CreateStringAttrDirect(fbb, enumKeyword(attr).c_str()).Union();
  } else if (auto array = dyn_cast<ArrayAttr>(attr)) {
    // Reassociation indices of reshapes: views need none of it at run time.
    return fb::Offset<plan::Attr>();
  } else {
    op->emitOpError("attribute '") << named.getName().getValue()
                                   << "' cannot be written to a plan: " << attr;
    return failure();
  }
  return plan::CreateAttr(fbb, fbb.CreateString(named.getName().getValue().str()),
                          kind, value);
}

FailureOr<fb::Offset<plan::Function>> Emitter::emitFunction(func::FuncOp func) {
  auto arenaSize = func->getAttrOfType<IntegerAttr>(MoEDialect::kArenaSizeAttrName);
  if (!arenaSize) {
    func.emitError("function '") << func.getName()
                                 << "' has no memory plan: run --moe-plan-memory";
    return failure();
  }
  int buffer = buffers.size();
  buffers.push_back(plan::CreateBuffer(fbb, arenaSize.getInt(), 64));

  std::vector<int> inputs;
  for (BlockArgument arg : func.getArguments()) {
    DictionaryAttr attrs = func.getArgAttrDict(arg.getArgNumber());
    StringAttr param = attrs ? attrs.getAs<StringAttr>(MoEDialect::kParamAttrName) : StringAttr();
    StringAttr input = attrs ? attrs.getAs<StringAttr>(MoEDialect::kInputAttrName) : StringAttr();
    StringAttr state = attrs ? attrs.getAs<StringAttr>(MoEDialect::kStateAttrName) : StringAttr();
    StringAttr hyper =
        attrs ? attrs.getAs<StringAttr>(MoEDialect::kHyperparameterAttrName) : StringAttr();
    StringAttr name = param ? param : input ? input : state ? state : hyper;
    if (!name) {
      func.emitError("argument ")
          << arg.getArgNumber()
          << " is neither a parameter, a state, an input nor a hyperparameter";
      return failure();
    }
    if (hyper && !attrs.get(MoEDialect::kValueAttrName)) {
      func.emitError("hyperparameter '") << hyper.getValue() << "' has no moe.value";
      return failure();
    }
    plan::TensorRole role = param   ? plan::TensorRole::parameter
                            : input ? plan::TensorRole::input
                            : state ? plan::TensorRole::state
                                    : plan::TensorRole::hyperparameter;
    FailureOr<int> id = addTensor(arg, name.getValue().str(), role, attrs, -1, 0);
    if (failed(id))
      return failure();
    inputs.push_back(*id);
  }

  // Names of the returned values.
  auto returnOp = cast<func::ReturnOp>(func.getBody().front().getTerminator());
  llvm::DenseMap<Value, std::string> outputNames;
  for (auto [i, value] : llvm::enumerate(returnOp.getOperands())) {
    DictionaryAttr attrs = func.getResultAttrDict(i);
    // Outputs are named by kind: metrics as they are, gradients "grad:<param>",
    // updated parameters and state "update:<tensor>".
    std::string name = "output" + std::to_string(i);
    if (auto metric = attrs ? attrs.getAs<StringAttr>(MoEDialect::kOutputAttrName) : StringAttr())
      name = metric.getValue().str();
    else if (auto grad = attrs ? attrs.getAs<StringAttr>(MoEDialect::kGradAttrName) : StringAttr())
      name = "grad:" + grad.getValue().str();
    else if (auto update =
                 attrs ? attrs.getAs<StringAttr>(MoEDialect::kUpdateAttrName) : StringAttr())
      name = "update:" + update.getValue().str();
    if (outputNames.count(value)) {
      // One value returned twice (e.g. a zero gradient shared): rare; the
      // plan gives each output its own tensor name only once.
      func.emitError("value returned twice: '") << outputNames[value] << "' and '"
                                                << name << "'";
      return failure();
    }
    outputNames[value] = name;
  }

  std::vector<fb::Offset<plan::Step>> steps;
  int counter = 0;
  int internalBuffer = -1; // made with the first fusion group
  for (Operation &op : func.getBody().front().without_terminator()) {
    auto offsets = op.getAttrOfType<DenseI64ArrayAttr>(MoEDialect::kOffsetsAttrName);
    if (!offsets || offsets.size() != static_cast<int64_t>(op.getNumResults())) {
      op.emitOpError("has no memory plan: run --moe-plan-memory");
      return failure();
    }
    std::vector<int> stepInputs, stepOutputs;
    for (Value operand : op.getOperands())
      stepInputs.push_back(tensorOf.lookup(operand));
    // Results written over a function argument (moe-plan-memory's
    // moe.overwrites): the plan names the argument's tensor.
    auto overwrites = op.getAttrOfType<DenseI64ArrayAttr>(MoEDialect::kOverwritesAttrName);
    if (overwrites && overwrites.size() != static_cast<int64_t>(op.getNumResults())) {
      op.emitOpError("has moe.overwrites with ")
          << overwrites.size() << " entries for " << op.getNumResults() << " results";
      return failure();
    }
    for (auto [i, result] : llvm::enumerate(op.getResults())) {
      int64_t offset = offsets[i];
      int overwritten = -1;
      if (overwrites && overwrites[i] >= 0) {
        if (overwrites[i] >= static_cast<int64_t>(op.getNumOperands()) ||
            !isa<BlockArgument>(op.getOperand(overwrites[i]))) {
          op.emitOpError("result ") << i << " overwrites operand " << overwrites[i]
                                    << ", which is not an argument of the function";
          return failure();
        }
        overwritten = tensorOf.lookup(op.getOperand(overwrites[i]));
      }
      bool returned = outputNames.count(result);
      std::string name = returned ? outputNames[result]
                                  : "%" + std::to_string(counter++);
      // A view of an argument (offset -1) aliases that argument's storage.
      FailureOr<int> id = addTensor(
          result, name,
          returned ? plan::TensorRole::output : plan::TensorRole::intermediate,
          DictionaryAttr(), offset < 0 ? -1 : buffer, offset, overwritten);
      if (failed(id))
        return failure();
      stepOutputs.push_back(*id);
    }
    FailureOr<std::vector<fb::Offset<plan::Attr>>> attrs = convertAttrs(op);
    if (failed(attrs))
      return failure();
    std::vector<fb::Offset<plan::Step>> members;
    if (auto fused = dyn_cast<moe::FusedOp>(op)) {
      if (internalBuffer < 0) {
        auto size = func->getAttrOfType<IntegerAttr>(MoEDialect::kInternalArenaSizeAttrName);
        internalBuffer = buffers.size();
        buffers.push_back(plan::CreateBuffer(fbb, size ? size.getInt() : 0, 64));
      }
      FailureOr<std::vector<fb::Offset<plan::Step>>> emitted =
          emitMembers(fused, stepInputs, stepOutputs, internalBuffer, counter);
      if (failed(emitted))
        return failure();
      members = std::move(*emitted);
    }
    auto view = dyn_cast<ViewLikeOpInterface>(op);
    if (view && (op.getNumResults() != 1 || view.getViewSource() != op.getOperand(0))) {
      op.emitOpError("is a view with more than one result or a source other than "
                     "operand 0, which plans cannot express");
      return failure();
    }
    auto kernel = artifacts.kernelOf.find(&op);
    steps.push_back(plan::CreateStepDirect(
        fbb, op.getName().getStringRef().str().c_str(), &stepInputs, &stepOutputs, &*attrs,
        kernel == artifacts.kernelOf.end() ? -1 : kernel->second, /*view=*/view != nullptr,
        members.empty() ? nullptr : &members));
  }
  std::vector<int> outputs;
  for (Value value : returnOp.getOperands())
    outputs.push_back(tensorOf.lookup(value));
  return plan::CreateFunctionDirect(fbb, func.getName().str().c_str(), &inputs, &outputs, &steps,
                                    buffer, /*rank=*/-1, internalBuffer);
}

FailureOr<std::vector<fb::Offset<plan::Attr>>> Emitter::convertAttrs(Operation &op) {
  NamedAttrList withDefaults(op.getAttrDictionary());
  op.getName().populateDefaultAttrs(withDefaults);
  std::vector<fb::Offset<plan::Attr>> attrs;
  for (NamedAttribute named : withDefaults) {
    if (named.getName() == MoEDialect::kOffsetsAttrName ||
        named.getName() == MoEDialect::kOverwritesAttrName)
      continue;
    FailureOr<fb::Offset<plan::Attr>> attr = convertAttr(named, &op);
    if (failed(attr))
      return failure();
    if (!attr->IsNull())
      attrs.push_back(*attr);
  }
  return attrs;
}

FailureOr<std::vector<fb::Offset<plan::Step>>> Emitter::emitMembers(moe::FusedOp fused,
                                                                    ArrayRef<int> inputs,
                                                                    ArrayRef<int> outputs,
                                                                    int internal, int &counter) {
  llvm::DenseMap<Value, int> idOf;
  for (auto [argument, id] : llvm::zip(fused.getBody()->getArguments(), inputs))
    idOf[argument] = id;
  for (auto [value, id] : llvm::zip(fused.getBody()->getTerminator()->getOperands(), outputs))
    idOf.try_emplace(value, id);
  std::vector<fb::Offset<plan::Step>> members;
  for (Operation &member : fused.getMembers()) {
    auto offsets = member.getAttrOfType<DenseI64ArrayAttr>(MoEDialect::kOffsetsAttrName);
    if (!offsets || offsets.size() != static_cast<int64_t>(member.getNumResults()))
      return member.emitOpError("has no memory plan: run --moe-plan-memory");
    std::vector<int> memberInputs, memberOutputs;
    for (Value operand : member.getOperands())
      memberInputs.push_back(idOf.lookup(operand));
    for (auto [i, result] : llvm::enumerate(member.getResults())) {
      if (!idOf.count(result)) {
        FailureOr<int> id =
            addTensor(result, "%" + std::to_string(counter++), plan::TensorRole::intermediate,
                      DictionaryAttr(), internal, offsets[i]);
        if (failed(id))
          return failure();
        idOf[result] = *id;
      }
      memberOutputs.push_back(idOf[result]);
    }
    FailureOr<std::vector<fb::Offset<plan::Attr>>> attrs = convertAttrs(member);
    if (failed(attrs))
      return failure();
    members.push_back(plan::CreateStepDirect(fbb, member.getName().getStringRef().str().c_str(),
                                             &memberInputs, &memberOutputs, &*attrs));
  }
  return members;
}

fb::Offset<plan::Training> Emitter::emitTraining() {
  const frontend::TrainingConfig &t = config.training;
  const frontend::OptimizerConfig &o = t.optimizer;
  auto optimizer = plan::CreateOptimizerDirect(fbb, o.kind.c_str(), o.lr, o.beta1,
                                               o.beta2, o.eps, o.weightDecay, o.momentum);
  auto schedule = plan::CreateScheduleDirect(
      fbb, t.schedule.kind.c_str(), t.schedule.warmupSteps, t.schedule.totalSteps,
      t.schedule.minLrRatio);
  fb::Offset<plan::RouterSchedule> gumbel;
  if (config.moe) {
    const frontend::GumbelConfig &g = config.moe->router.gumbel;
    gumbel = plan::CreateRouterSchedule(fbb, g.tauStart, g.tauEnd, g.steps);
  }
  return plan::CreateTraining(fbb, t.batchSize, t.seqLen, t.seed, t.gradClip,
                              optimizer, schedule, gumbel);
}

fb::Offset<plan::Mesh> Emitter::emitMesh(ModuleOp module) {
  auto meshes = module.getOps<mesh::MeshOp>();
  if (meshes.empty())
    return {};
  mesh::MeshOp meshOp = *meshes.begin();
  std::vector<int64_t> shape = meshOp.getShape().vec();
  std::vector<fb::Offset<fb::String>> axes;
  if (auto names = module->getAttrOfType<ArrayAttr>(moe::MoEDialect::kMeshAxesAttrName))
    for (auto name : names.getAsValueRange<StringAttr>())
      axes.push_back(fbb.CreateString(name.str()));
  return plan::CreateMesh(fbb, fbb.CreateVector(shape), fbb.CreateVector(axes));
}

fb::Offset<plan::Source> Emitter::emitSource() {
  if (!source)
    return {};
  // CreateString(std::string) keeps every byte (the *Direct helpers stop at a NUL).
  std::vector<fb::Offset<fb::String>> options;
  for (const std::string &option : source->options)
    options.push_back(fbb.CreateString(option));
  auto fileName = fbb.CreateString(source->fileName);
  auto text = fbb.CreateString(source->text);
  return plan::CreateSource(fbb, fileName, text, fbb.CreateVector(options));
}

fb::Offset<fb::Vector<fb::Offset<plan::Kernel>>> Emitter::emitKernels() {
  std::vector<fb::Offset<plan::Kernel>> kernels;
  for (size_t i = 0; i < artifacts.kernels.size(); ++i) {
    const codegen::CudaKernel &kernel = artifacts.kernels[i];
    // Sources only (no compile): the plan then carries no device binary.
    const codegen::CompiledKernel *binary =
        i < artifacts.binaries.size() ? &artifacts.binaries[i] : nullptr;
    auto name = fbb.CreateString(kernel.name);
    auto arch = fbb.CreateString(artifacts.arch);
    auto ptx = fbb.CreateString(binary ? binary->ptx : "");
    auto cubin = fbb.CreateVector(binary ? binary->cubin : std::vector<uint8_t>());
    // The name ends in the source's hash.
    auto hash = fbb.CreateString(kernel.name.substr(kernel.name.rfind('_') + 1));
    auto text = fbb.CreateString(kernel.source);
    std::vector<fb::Offset<plan::Launch>> launches;
    for (const codegen::KernelLaunch &launch : kernel.launches) {
      std::vector<uint32_t> grid(launch.grid.begin(), launch.grid.end());
      std::vector<uint32_t> block(launch.block.begin(), launch.block.end());
      fb::Offset<plan::GemmCall> gemm;
      if (const std::optional<codegen::LibraryGemm> &g = launch.gemm)
        gemm = plan::CreateGemmCall(fbb, g->m, g->n, g->k, g->a, g->b, g->c, g->lda, g->ldb,
                                    g->ldc, g->aTransposed, g->bTransposed, g->accumulate,
                                    g->bf16);
      launches.push_back(
          plan::CreateLaunchDirect(fbb, launch.entry.c_str(), &grid, &block, gemm));
    }
    auto launchesOffset = fbb.CreateVector(launches);
    kernels.push_back(plan::CreateKernel(fbb, name, arch, ptx, cubin, hash, text,
                                         launchesOffset, kernel.workspaceBytes));
  }
  return fbb.CreateVector(kernels);
}

FailureOr<std::vector<uint8_t>> Emitter::run(ModuleOp module) {
  std::vector<fb::Offset<plan::Function>> functions;
  for (auto func : module.getOps<func::FuncOp>()) {
    FailureOr<fb::Offset<plan::Function>> function = emitFunction(func);
    if (failed(function))
      return failure();
    functions.push_back(*function);
  }
  auto training = emitTraining();
  auto sourceOffset = emitSource();
  auto producer = fbb.CreateString("moec 0.1.0");
  auto name = fbb.CreateString(config.name);
  auto sourceKind = fbb.CreateString(config.sourceKind);
  auto tensorsOffset = fbb.CreateVector(tensors);
  auto buffersOffset = fbb.CreateVector(buffers);
  auto functionsOffset = fbb.CreateVector(functions);
  auto kernelsOffset = emitKernels();
  auto target = fbb.CreateString(artifacts.target);
  auto precision = fbb.CreateString(precisionOf(module));
  auto mesh = emitMesh(module);
  plan::PlanBuilder pb(fbb);
  pb.add_version(kPlanVersion);
  pb.add_producer(producer);
  pb.add_model_name(name);
  pb.add_model_source(sourceKind);
  pb.add_vocab_size(config.vocabSize);
  pb.add_tensors(tensorsOffset);
  pb.add_buffers(buffersOffset);
  pb.add_functions(functionsOffset);
  pb.add_training(training);
  pb.add_source(sourceOffset);
  pb.add_kernels(kernelsOffset);
  pb.add_target(target);
  pb.add_precision(precision);
  pb.add_mesh(mesh);
  plan::FinishPlanBuffer(fbb, pb.Finish());
  std::vector<uint8_t> bytes(fbb.GetBufferPointer(),
                             fbb.GetBufferPointer() + fbb.GetSize());
  bytes.resize(bytes.size() + plan::kFooterSize);
  plan::writeFooter(bytes.data(), bytes.size() - plan::kFooterSize,
                    bytes.data() + bytes.size() - plan::kFooterSize);
  return bytes;
}
} // namespace

std::string precisionOf(ModuleOp module) {
  bool bf16 = false;
  module.walk([&](Operation *op) {
    auto precision = op->getAttrOfType<moe::PrecisionAttr>(moe::MoEDialect::kPrecisionAttrName);
    bf16 |= precision && precision.getValue() == moe::Precision::bf16;
  });
  return bf16 ? "bf16" : "fp32";
}

FailureOr<std::vector<uint8_t>> emitPlan(ModuleOp module,
                                         const frontend::ModelConfig &config,
                                         const TargetArtifacts &artifacts,
                                         const std::optional<PlanSource> &source) {
  return Emitter(config, artifacts, source).run(module);
}

} // namespace moec::target
