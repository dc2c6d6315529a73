//===- KernelWriter.cpp - the common frame of every generated kernel -----===//
#include "compiler/codegen/KernelWriter.h"

#include "dialects/moe/IR/MoEDialect.h"

#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/BuiltinTypes.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/xxhash.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

using namespace mlir;

namespace moec::codegen {

StringRef cudaPrelude() {
  return R"cuda(// moec generated kernel
#define MOEC_KERNEL extern "C" __global__ void
// bf16 elements are unsigned shorts: fp32's upper 16 bits. x rounded to
// bf16 (to nearest even; NaN stays NaN), as its 16 bits, and back.
__device__ __forceinline__ unsigned moec_bf16_bits(float x) {
  unsigned u = __float_as_uint(x);
  if ((u & 0x7fffffffu) > 0x7f800000u)
    return (u >> 16) | 0x40u;
  return (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
}
__device__ __forceinline__ float moec_bf16_value(unsigned short bits) {
  return __uint_as_float((unsigned)bits << 16);
}
// An element of a tensor stored in fp32 or bf16, as fp32.
__device__ __forceinline__ float moec_load(const float *p) { return *p; }
__device__ __forceinline__ float moec_load(const unsigned short *p) { return moec_bf16_value(*p); }
__device__ __forceinline__ void moec_store(float *p, float x) { *p = x; }
__device__ __forceinline__ void moec_store(unsigned short *p, float x) {
  *p = (unsigned short)moec_bf16_bits(x);
}
// The sum of `value` over the block, in a fixed order (so the same bits on
// every run); blockDim.x is a power of two and `scratch` holds blockDim.x
// values. Every thread gets the total.
template <typename T> __device__ T moec_block_sum(T value, T *scratch) {
  unsigned t = threadIdx.x;
  scratch[t] = value;
  __syncthreads();
  for (unsigned s = blockDim.x / 2; s > 0; s >>= 1) {
    if (t < s)
      scratch[t] += scratch[t + s];
    __syncthreads();
  }
  T total = scratch[0];
  __syncthreads();
  return total;
}
// The maximum of `value` over the block (as moec_block_sum).
__device__ float moec_block_max(float value, float *scratch) {
  unsigned t = threadIdx.x;
  scratch[t] = value;
  __syncthreads();
  for (unsigned s = blockDim.x / 2; s > 0; s >>= 1) {
    if (t < s)
      scratch[t] = fmaxf(scratch[t], scratch[t + s]);
    __syncthreads();
  }
  float total = scratch[0];
  __syncthreads();
  return total;
}
)cuda";
}

unsigned threadsFor(int64_t n) {
  unsigned threads = 32;
  while (threads < n && threads < 1024)
    threads *= 2;
  return threads;
}

unsigned blocksFor(int64_t n, unsigned threads) {
  int64_t blocks = (n + threads - 1) / threads;
  return static_cast<unsigned>(std::clamp<int64_t>(blocks, 1, 65535));
}

std::string forEachElement(int64_t n, StringRef index) {
  std::string i = index.str();
  return "  for (long long " + i + " = blockIdx.x * (long long)blockDim.x + threadIdx.x; " + i +
         " < " + std::to_string(n) + "LL; " + i + " += (long long)gridDim.x * blockDim.x)\n";
}

void writeColumnSums(KernelWriter &w, StringRef label, int64_t rows, int64_t D,
                     StringRef prelude, ArrayRef<ColumnSum> sums) {
  // Slices of at least 32 rows, at most 256 of them.
  int64_t slices = std::clamp<int64_t>(rows / 32, 1, 256);
  int64_t chunk = (rows + slices - 1) / slices;
  std::vector<std::string> partials;
  for (size_t k = 0; k < sums.size(); ++k)
    partials.push_back(w.workspaceFloats(slices * D));
  w.beginEntry(label, {blocksFor(D, 256), static_cast<unsigned>(slices), 1}, {256, 1, 1}, false);
  w.os() << prelude << "  const long long first = blockIdx.y * " << chunk
         << "LL, last = first + " << chunk << "LL < " << rows << "LL ? first + " << chunk
         << "LL : " << rows << "LL;\n"
         << "  for (long long j = blockIdx.x * (long long)blockDim.x + threadIdx.x; j < " << D
         << "LL; j += (long long)gridDim.x * blockDim.x) {\n";
  for (size_t k = 0; k < sums.size(); ++k)
    w.os() << "    float sum" << k << " = 0.0f;\n";
  w.os() << "    for (long long r = first; r < last; ++r) {\n";
  for (size_t k = 0; k < sums.size(); ++k)
    w.os() << "      sum" << k << " += " << sums[k].term << ";\n";
  w.os() << "    }\n";
  for (size_t k = 0; k < sums.size(); ++k)
    w.os() << "    " << partials[k] << "[blockIdx.y * " << D << "LL + j] = sum" << k << ";\n";
  w.os() << "  }\n";
  w.beginEntry((label + "_sum").str(), {blocksFor(D, 256), 1, 1}, {256, 1, 1}, false);
  w.os() << forEachElement(D, "j") << "  {\n";
  for (size_t k = 0; k < sums.size(); ++k)
    w.os() << "    float sum" << k << " = 0.0f;\n"
           << "    for (int s = 0; s < " << slices << "; ++s)\n"
           << "      sum" << k << " += " << partials[k] << "[s * " << D << "LL + j];\n"
           << "    " << sums[k].out << "[j] = sum" << k << ";\n";
  w.os() << "  }\n";
}

std::string floatLiteral(double value) {
  if (std::isnan(value))
    return "__int_as_float(0x7fc00000)";
  if (std::isinf(value))
    return value > 0 ? "__int_as_float(0x7f800000)" : "__int_as_float(0xff800000)";
  char text[40];
  std::snprintf(text, sizeof(text), "%.9ef", static_cast<float>(value));
  return text;
}

int64_t numElements(Value value) {
  return cast<RankedTensorType>(value.getType()).getNumElements();
}

std::pair<int64_t, int64_t> routerShape(Value value) {
  auto type = cast<RankedTensorType>(value.getType());
  return {type.getDimSize(0), type.getDimSize(1)};
}

static Attribute attributeOf(Operation *op, StringRef name) {
  NamedAttrList attributes(op->getAttrDictionary());
  op->getName().populateDefaultAttrs(attributes);
  return attributes.get(name);
}

double floatAttr(Operation *op, StringRef name) {
  auto attr = dyn_cast_or_null<FloatAttr>(attributeOf(op, name));
  return attr ? attr.getValueAsDouble() : 0.0;
}

int64_t intAttr(Operation *op, StringRef name) {
  auto attr = dyn_cast_or_null<IntegerAttr>(attributeOf(op, name));
  return attr ? attr.getInt() : 0;
}

bool boolAttr(Operation *op, StringRef name) {
  auto attr = dyn_cast_or_null<BoolAttr>(attributeOf(op, name));
  return attr && attr.getValue();
}

KernelWriter::KernelWriter(Operation *op, StringRef stem) : op_(op), stem_(stem.str()) {}

std::string KernelWriter::name(Value value) const {
  for (auto [n, operand] : llvm::enumerate(op_->getOperands()))
    if (operand == value)
      return "in" + std::to_string(n);
  for (auto [n, result] : llvm::enumerate(op_->getResults()))
    if (result == value)
      return "out" + std::to_string(n);
  return "<not a value of the op>";
}

bool KernelWriter::bf16Products() const {
  auto precision = op_->getAttrOfType<moe::PrecisionAttr>(moe::MoEDialect::kPrecisionAttrName);
  return precision && precision.getValue() == moe::Precision::bf16;
}

FailureOr<std::string> KernelWriter::elementType(Value value) const {
  auto type = dyn_cast<RankedTensorType>(value.getType());
  Type element = type ? type.getElementType() : Type();
  if (element && element.isF32())
    return std::string("float");
  if (element && element.isBF16() && llvm::is_contained(bf16Values_, value))
    return std::string("unsigned short"); // moec_load / moec_store
  if (element && element.isSignlessInteger(32))
    return std::string("int");
  if (element && element.isSignlessInteger(64))
    return std::string("long long");
  return op_->emitOpError("the cuda target has no kernel for element type ")
         << value.getType();
}

void KernelWriter::beginEntry(StringRef label, std::array<unsigned, 3> grid,
                              std::array<unsigned, 3> block, bool usesBarriers,
                              unsigned minBlocksPerSM) {
  auto entry = std::make_unique<Entry>();
  entry->label = label.str();
  entry->grid = grid;
  entry->block = block;
  entry->usesBarriers = usesBarriers;
  entry->minBlocksPerSM = minBlocksPerSM;
  entries_.push_back(std::move(entry));
}

void KernelWriter::addLibraryGemm(StringRef label, const LibraryGemm &gemm) {
  auto entry = std::make_unique<Entry>();
  entry->label = label.str();
  entry->grid = entry->block = {1, 1, 1}; // unused: the library chooses
  entry->usesBarriers = false;
  entry->gemm = gemm;
  entries_.push_back(std::move(entry));
}

bool KernelWriter::copiesBf16Operands() const {
  auto module = op_->getParentOfType<ModuleOp>();
  return bf16Products() && !(module && module->hasAttr(kStagedBf16TileAttr));
}

bool KernelWriter::libraryGemms() const {
  auto module = op_->getParentOfType<ModuleOp>();
  return module && module->hasAttr(kLibraryGemmsAttr);
}

unsigned KernelWriter::argumentIndex(Value value) const {
  for (auto [n, operand] : llvm::enumerate(op_->getOperands()))
    if (operand == value)
      return n;
  for (auto [n, result] : llvm::enumerate(op_->getResults()))
    if (result == value)
      return op_->getNumOperands() + n;
  llvm_unreachable("not an operand or result of the kernel's op");
}

llvm::raw_string_ostream &KernelWriter::os() {
  if (entries_.empty())
    beginEntry("main", {1, 1, 1}, {1, 1, 1}, false);
  return entries_.back()->body;
}

void KernelWriter::useHelper(const char *code) {
  if (llvm::is_contained(usedHelpers_, code))
    return;
  usedHelpers_.push_back(code);
  helpers_ << code;
}

std::string KernelWriter::workspaceFloats(int64_t n) {
  uint64_t offset = (workspaceEnd_ + 255) / 256 * 256;
  workspaceEnd_ = offset + static_cast<uint64_t>(n) * sizeof(float);
  workspaceBytes_ = std::max(workspaceBytes_, workspaceEnd_);
  return "((float *)(workspace + " + std::to_string(offset) + "LL))";
}

std::string KernelWriter::workspaceBf16(int64_t n) {
  return "((unsigned short *)" + workspaceFloats((n + 1) / 2) + ")";
}

void KernelWriter::releaseWorkspace(uint64_t mark) {
  workspaceEnd_ = mark;
  llvm::erase_if(bf16Copies_, [&](const Bf16Copy &copy) { return copy.offset >= mark; });
}

std::string KernelWriter::bf16Operand(Value value, StringRef name) {
  auto type = cast<RankedTensorType>(value.getType());
  if (!copiesBf16Operands() || !type.getElementType().isF32())
    return name.str();
  for (const Bf16Copy &copy : bf16Copies_)
    if (copy.name == name)
      return copy.copy;
  int64_t n = type.getNumElements();
  uint64_t offset = (workspaceEnd_ + 255) / 256 * 256;
  std::string copy = workspaceBf16(n);
  bool identifier = llvm::all_of(name, [](char c) { return llvm::isAlnum(c) || c == '_'; });
  beginEntry("bf16_" + (identifier ? name.str() : std::to_string(bf16Copies_.size())),
             {blocksFor((n + 7) / 8, 256), 1, 1}, {256, 1, 1}, /*usesBarriers=*/false);
  // Eight elements a thread: two 16-byte loads, one 16-byte store, when the
  // source is 16-byte aligned (the copy is: workspace blocks are 256-byte
  // aligned); the rest one at a time.
  os() << "  const float *from = " << name << ";\n"
       << "  unsigned short *to = " << copy << ";\n"
       << "  long long done = 0;\n"
       << "  if ((unsigned long long)from % 16 == 0) {\n"
       << "  " << forEachElement(n / 8, "v") << "    {\n"
       << "      const float4 a = reinterpret_cast<const float4 *>(from)[2 * v];\n"
       << "      const float4 b = reinterpret_cast<const float4 *>(from)[2 * v + 1];\n"
       << "      reinterpret_cast<uint4 *>(to)[v] = uint4{\n"
       << "          moec_bf16_bits(a.x) | moec_bf16_bits(a.y) << 16,\n"
       << "          moec_bf16_bits(a.z) | moec_bf16_bits(a.w) << 16,\n"
       << "          moec_bf16_bits(b.x) | moec_bf16_bits(b.y) << 16,\n"
       << "          moec_bf16_bits(b.z) | moec_bf16_bits(b.w) << 16};\n"
       << "    }\n"
       << "    done = " << n / 8 * 8 << "LL;\n"
       << "  }\n"
       << "  for (long long i = done + blockIdx.x * (long long)blockDim.x + threadIdx.x; i < " << n
       << "LL; i += (long long)gridDim.x * blockDim.x)\n"
       << "    moec_store(to + i, from[i]);\n";
  bf16Copies_.push_back({name.str(), copy, offset});
  return copy;
}

FailureOr<CudaKernel> KernelWriter::finish(std::array<unsigned, 3> grid,
                                           std::array<unsigned, 3> block,
                                           bool usesBarriers) {
  os(); // the single entry, `main`
  Entry &entry = *entries_.back();
  entry.grid = grid;
  entry.block = block;
  entry.usesBarriers = usesBarriers;
  return finish();
}

FailureOr<CudaKernel> KernelWriter::finish() {
  // Parameters: inputs then results, as the runtime passes a step's tensors.
  std::string params, casts;
  unsigned index = 0;
  auto addParam = [&](Value value, bool isInput, unsigned n) -> LogicalResult {
    FailureOr<std::string> type = elementType(value);
    if (failed(type))
      return failure();
    std::string pointer = (isInput ? "const " : "") + *type + " *";
    std::string name = (isInput ? "in" : "out") + std::to_string(n);
    params += (params.empty() ? "" : ", ") + pointer + name;
    casts += std::string(casts.empty() ? "" : ", ") + "*static_cast<" + pointer +
             " const *>(args[" + std::to_string(index++) + "])";
    return success();
  };
  for (auto [n, operand] : llvm::enumerate(op_->getOperands()))
    if (failed(addParam(operand, /*isInput=*/true, n)))
      return failure();
  for (auto [n, result] : llvm::enumerate(op_->getResults()))
    if (failed(addParam(result, /*isInput=*/false, n)))
      return failure();
  if (workspaceBytes_) {
    params += ", char *workspace";
    casts += ", *static_cast<char *const *>(args[" + std::to_string(index++) + "])";
  }

  std::string text;
  llvm::raw_string_ostream os(text);
  std::string opText;
  llvm::raw_string_ostream opOs(opText);
  op_->getName().print(opOs);
  opOs << " : ";
  llvm::interleaveComma(op_->getOperandTypes(), opOs);
  opOs << " -> ";
  llvm::interleaveComma(op_->getResultTypes(), opOs);
  os << cudaPrelude() << "// " << opText << "\n" << helperText_;
  for (const auto &entry : entries_) {
    if (const std::optional<LibraryGemm> &g = entry->gemm) {
      os << "// " << entry->label << ": library GEMM C(arg " << g->c << ")[" << g->m << ", "
         << g->n << "] " << (g->accumulate ? "+=" : "=") << " A(arg " << g->a << (g->aTransposed ? ", transposed" : "")
         << ", ld " << g->lda << ") B(arg " << g->b << (g->bTransposed ? ", transposed" : "")
         << ", ld " << g->ldb << ") over " << g->k << ", ld " << g->ldc
         << (g->bf16 ? ", bf16 operands" : "") << "\n";
      continue;
    }
    os << "MOEC_KERNEL __launch_bounds__(" << entry->block[0] * entry->block[1] * entry->block[2]
       << (entry->minBlocksPerSM ? ", " + std::to_string(entry->minBlocksPerSM) : std::string())
       << ") @NAME@_" << entry->label << "(" << params << ") {\n"
       << entry->text << "}\n";
  }
  os << "#ifdef MOEC_CUDA_EMU\n";
  for (const auto &entry : entries_)
    if (!entry->gemm)
      os << "extern \"C\" void @NAME@_" << entry->label
       << "_emu(void **args, const unsigned *grid, const unsigned *block) {\n"
       << "  moec_emu::launch(grid, block, " << (entry->usesBarriers ? "true" : "false")
       << ", [args] { @NAME@_" << entry->label << "(" << casts << "); });\n"
       << "}\n";
  os << "#endif\n";
  std::string name = stem_ + "_" + llvm::utohexstr(llvm::xxh3_64bits(text), /*LowerCase=*/true);
  CudaKernel kernel;
  kernel.name = name;
  kernel.source = llvm::join(llvm::split(text, "@NAME@"), name);
  kernel.workspaceBytes = workspaceBytes_;
  for (const auto &entry : entries_)
    kernel.launches.push_back({name + "_" + entry->label, entry->grid, entry->block, entry->gemm});
  return kernel;
}

} // namespace moec::codegen
