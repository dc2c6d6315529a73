// moe-inspect.cpp - a readable summary of a .moeb plan.
#include "ArenaPeak.h"
#include "Communication.h"
#include "KernelTraffic.h"
#include "runtime/core/Plan.h"
#include "runtime/core/HumanBytes.h"

#include <algorithm>
#include <cstdio>
#include <iostream>
#include <map>
#include <string>

using namespace moec::rt;

namespace {
std::string count(double n) {
  char text[32];
  if (n >= 1e9) std::snprintf(text, sizeof text, "%.2fB", n / 1e9);
  else if (n >= 1e6) std::snprintf(text, sizeof text, "%.2fM", n / 1e6);
  else if (n >= 1e3) std::snprintf(text, sizeof text, "%.1fK", n / 1e3);
  else std::snprintf(text, sizeof text, "%.0f", n);
  return text;
}
/// The tensors that fill `function`'s arena where it is fullest: the 12
/// largest, or all of them when `verbose`.
void printArenaPeak(const LoadedPlan &plan, const moec::plan::Function &function,
                    bool verbose) {
  moec::inspect::ArenaPeak peak = moec::inspect::findArenaPeak(plan, function);
  if (peak.step < 0)
    return;
  std::printf("          peak: %s live at step %d (%s) of an arena of %s\n",
              humanBytes(peak.liveBytes).c_str(), peak.step, peak.op.c_str(),
              humanBytes(peak.arenaBytes).c_str());
  std::map<std::string, std::pair<int, double>> byProducer;
  for (const moec::inspect::LiveTensor &live : peak.live) {
    auto &[n, bytes] = byProducer[live.producer];
    ++n;
    bytes += live.bytes;
  }
  const size_t shown = verbose ? peak.live.size() : std::min<size_t>(peak.live.size(), 12);
  for (size_t i = 0; i < shown; ++i) {
    const moec::inspect::LiveTensor &live = peak.live[i];
    TensorRef ref = plan.describe(live.tensor);
    std::printf("          %10s  %-44s %-20s %s, steps %d-%d\n", humanBytes(live.bytes).c_str(),
                plan.tensor(live.tensor).name()->c_str(), formatShape(ref.shape).c_str(),
                live.producer.c_str(), live.defined, live.lastUse);
  }
  if (shown < peak.live.size()) {
    double rest = 0;
    for (size_t i = shown; i < peak.live.size(); ++i)
      rest += peak.live[i].bytes;
    std::printf("          %10s  in %zu more tensors\n", humanBytes(rest).c_str(),
                peak.live.size() - shown);
  }
  std::vector<std::pair<double, std::string>> producers;
  for (auto &[op, entry] : byProducer)
    producers.push_back({entry.second, op});
  std::sort(producers.rbegin(), producers.rend());
  std::string summary;
  for (auto &[bytes, op] : producers)
    summary += (summary.empty() ? "" : ", ") + op + " " + humanBytes(bytes);
  std::printf("          by producer: %s\n", summary.c_str());
}

/// A step's op; a fusion group's with its kind and members:
/// "moe.fused<router>(moe.score moe.topk_route)", "moe.fused<optimizer>(moe.adamw_update x29)".
std::string stepLabel(const moec::plan::Step &step) {
  std::string label = step.op()->str();
  if (!step.members())
    return label;
  if (step.attrs())
    for (const moec::plan::Attr *attr : *step.attrs())
      if (attr->name()->str() == "kind" && attr->value_as_StringAttr())
        label += "<" + attr->value_as_StringAttr()->value()->str() + ">";
  // Runs of one op as "op xN".
  std::string members;
  const auto &steps = *step.members();
  for (unsigned i = 0; i < steps.size();) {
    unsigned j = i;
    while (j < steps.size() && steps.Get(j)->op()->str() == steps.Get(i)->op()->str())
      ++j;
    members += (members.empty() ? "" : " ") + steps.Get(i)->op()->str() +
               (j - i > 1 ? " x" + std::to_string(j - i) : "");
    i = j;
  }
  return label + "(" + members + ")";
}

/// Every step of `function` that runs code: its kernel, launches and the
/// bytes it reads and writes, then the totals of one run.
void printKernels(const LoadedPlan &plan, const moec::plan::Function &function) {
  moec::inspect::KernelTraffic traffic = moec::inspect::kernelTraffic(plan, function);
  for (const moec::inspect::KernelUse &use : traffic.steps) {
    const moec::plan::Step &step = *function.steps()->Get(use.step);
    std::printf("          %4d %-44s %-34s %2d  reads %9s  writes %9s\n", use.step,
                stepLabel(step).c_str(), use.kernel.empty() ? "(op kernel)" : use.kernel.c_str(),
                use.launches, humanBytes(use.bytesRead).c_str(),
                humanBytes(use.bytesWritten).c_str());
  }
  std::printf("          %zu kernels, %d launches per run; reads %s, writes %s\n",
              traffic.steps.size(), traffic.launches, humanBytes(traffic.bytesRead).c_str(),
              humanBytes(traffic.bytesWritten).c_str());
}

} // namespace

/// The collectives of a sharded function, per run and per rank.
void printCommunication(const LoadedPlan &plan, const moec::plan::Function &function) {
  moec::inspect::Communication c = moec::inspect::communication(plan, function);
  if (c.total.count == 0)
    return;
  std::printf("          communication per run, per rank of %lld: %d collectives, payload %s, "
              "sends %s (ring algorithm)\n",
              (long long)c.ranks, c.total.count, humanBytes(c.total.payload).c_str(),
              humanBytes(c.total.sent).c_str());
  for (auto &[kind, totals] : c.byKind)
    std::printf("            %-26s x%-4d payload %10s  sends %10s\n", kind.c_str(), totals.count,
                humanBytes(totals.payload).c_str(), humanBytes(totals.sent).c_str());
}

int main(int argc, char **argv) {
  bool verbose = false, memory = false, kernels = false;
  std::string path;
  const char *usage = "usage: moe-inspect [-v] [--memory] [--kernels] PLAN.moeb\n"
                      "  -v, --verbose  list every parameter (with --memory: every live tensor)\n"
                      "  --memory       per function, the step where the most arena bytes are\n"
                      "                 live and the tensors that fill it, largest first\n"
                      "  --kernels      per function, every step that runs code: its kernel,\n"
                      "                 launches and the bytes it reads and writes\n";
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "-v" || arg == "--verbose") verbose = true;
    else if (arg == "--memory") memory = true;
    else if (arg == "--kernels")
      kernels = true;
    else if (arg == "-h" || arg == "--help") {
      std::cout << usage;
      return 0;
    } else if (!arg.empty() && arg[0] == '-') {
      std::cerr << "moe-inspect: error: unknown option '" << arg << "'\n" << usage;
      return 2;
    } else path = arg;
  }
  if (path.empty()) {
    std::cerr << usage;
    return 2;
  }
  auto loaded = LoadedPlan::load(path);
  if (!loaded) {
    std::cerr << "moe-inspect: error: " << loaded.status().message() << "\n";
    return 1;
  }
  const LoadedPlan &plan = **loaded;
  const moec::plan::Plan &root = plan.root();
  std::printf("plan      %s (version %u, by %s)\n", path.c_str(), root.version(),
              root.producer() ? root.producer()->c_str() : "?");
  std::printf("model     %s from %s, vocabulary %lld\n",
              root.model_name() ? root.model_name()->c_str() : "?",
              root.model_source() ? root.model_source()->c_str() : "?",
              (long long)root.vocab_size());

  if (const moec::plan::Mesh *mesh = root.mesh(); mesh && mesh->shape()) {
    std::string axes;
    for (unsigned i = 0; i < mesh->shape()->size(); ++i)
      axes += (axes.empty() ? "" : " x ") +
              (mesh->axes() && i < mesh->axes()->size() ? mesh->axes()->Get(i)->str() + "=" : "") +
              std::to_string(mesh->shape()->Get(i));
    std::printf("mesh      %s: %lld ranks (mpirun -np %lld moe-run), each runs 1/%lld of the "
                "batch\n",
                axes.c_str(), (long long)plan.meshRanks(), (long long)plan.meshRanks(),
                (long long)plan.meshRanks());
  }
  double paramCount = 0, paramBytes = 0, frozen = 0;
  int numParams = 0;
  std::map<std::string, double> byGroup;
  std::map<std::string, bool> seen; // functions share parameters by name
  for (int id = 0; id < plan.numTensors(); ++id) {
    const moec::plan::Tensor &t = plan.tensor(id);
    if (t.role() != moec::plan::TensorRole::parameter || seen.count(t.name()->str()))
      continue;
    seen[t.name()->str()] = true;
    TensorRef ref = plan.describe(id);
    paramCount += ref.numel();
    paramBytes += ref.bytes();
    if (!t.trainable())
      frozen += ref.numel();
    ++numParams;
    std::string name = t.name()->str();
    auto has = [&](const char *part) { return name.find(part) != std::string::npos; };
    // DeepSeek-V3's MTP modules: their own tensors (their layer's go with
    // its kind).
    bool mtp = has(".eh_proj.") || has(".enorm.") || has(".hnorm.") || has(".shared_head.");
    // Granite's experts are block_sparse_moe.{input,output}_linear, its
    // shared expert shared_mlp; JetMoE's mlp.{input,output}_linear and
    // mlp.bias, and its attention experts self_attention.experts.*, which
    // count as attention.
    bool jetmoeAttention = has("self_attention.");
    bool routed = (has(".experts.") && !jetmoeAttention) || has("block_sparse_moe.input_linear") ||
                  has("block_sparse_moe.output_linear") || has(".mlp.input_linear") ||
                  has(".mlp.output_linear") || has(".mlp.bias");
    // Qwen3-Next's gated DeltaNet (linear_attn.*) and MiniMax's lightning
    // attention (self_attn.qkv_proj, .output_gate, .out_proj, .norm).
    bool linearAttention = has("linear_attn") || has("self_attn.qkv_proj") ||
                           has("self_attn.output_gate") || has("self_attn.out_proj") ||
                           has("self_attn.norm.");
    std::string group = mtp                                          ? "MTP modules"
                        : routed                                     ? "routed experts"
                        : has("shared_expert") || has("shared_mlp.") ? "shared experts"
                        : has(".gate.") || has(".router.")           ? "routers"
                        : linearAttention                            ? "linear attention"
                        : has("self_attn") || jetmoeAttention        ? "attention"
                        : has("embed") || has("lm_head")             ? "embeddings"
                        : has("norm")                                ? "norms"
                                                                     : "dense FFN";
    byGroup[group] += ref.numel();
    if (verbose)
      std::printf("  param   %-60s %-16s %s%s\n", name.c_str(), formatShape(ref.shape).c_str(),
                  dtypeName(ref.dtype), t.trainable() ? "" : " (frozen)");
  }
  std::printf("params    %s in %d tensors (%s), %s frozen\n", count(paramCount).c_str(), numParams,
              humanBytes(paramBytes).c_str(), count(frozen).c_str());
  for (auto &[group, n] : byGroup)
    std::printf("          %-16s %s\n", group.c_str(), count(n).c_str());

  for (const moec::plan::Function *f : *root.functions()) {
    std::map<std::string, int> ops;
    int steps = f->steps() ? f->steps()->size() : 0;
    if (f->steps())
      for (const moec::plan::Step *step : *f->steps())
        ++ops[stepLabel(*step)];
    double arena = f->buffer() >= 0 ? root.buffers()->Get(f->buffer())->size() : 0;
    std::printf("function  %s: %d steps, arena %s, %u inputs, %u outputs\n", f->name()->c_str(),
                steps, humanBytes(arena).c_str(), f->inputs() ? f->inputs()->size() : 0,
                f->outputs() ? f->outputs()->size() : 0);
    for (auto &[op, n] : ops)
      std::printf("          %-28s x%d\n", op.c_str(), n);
    if (f->outputs()) {
      std::string names;
      for (int id : *f->outputs())
        names += (names.empty() ? "" : ", ") + plan.tensor(id).name()->str();
      std::printf("          outputs: %s\n", names.c_str());
    }
    std::string hyperparameters;
    if (f->inputs())
      for (int id : *f->inputs())
        if (const moec::plan::Tensor &t = plan.tensor(id);
            t.role() == moec::plan::TensorRole::hyperparameter) {
          char value[32];
          std::snprintf(value, sizeof(value), "%g", t.value());
          hyperparameters += (hyperparameters.empty() ? "" : " ") + t.name()->str() + "=" + value;
        }
    if (!hyperparameters.empty())
      std::printf("          hyperparameters: %s\n", hyperparameters.c_str());
    double functionState = 0;
    if (f->inputs())
      for (int id : *f->inputs())
        if (plan.tensor(id).role() == moec::plan::TensorRole::state)
          functionState += plan.describe(id).bytes();
    bool training = functionState > 0;
    // Generated kernels share one device workspace: the largest any step needs.
    double workspace = 0;
    if (f->steps() && root.kernels())
      for (const moec::plan::Step *step : *f->steps())
        if (step->kernel() >= 0)
          workspace = std::max<double>(workspace, root.kernels()->Get(step->kernel())->workspace());
    double total = paramBytes + arena + functionState + workspace;
    std::printf("memory    parameters %s%s + arena %s%s = %s\n", humanBytes(paramBytes).c_str(),
                training ? (" + optimizer state " + humanBytes(functionState)).c_str() : "",
                humanBytes(arena).c_str(),
                workspace > 0 ? (" + kernel workspace " + humanBytes(workspace)).c_str() : "",
                humanBytes(total).c_str());
    if (memory)
      printArenaPeak(plan, *f, verbose);
    if (kernels)
      printKernels(plan, *f);
    printCommunication(plan, *f);
  }
  std::string target = root.target() ? root.target()->str() : "cpu";
  std::printf("precision %s\n", root.precision() ? root.precision()->c_str() : "fp32");
  if (!root.kernels() || root.kernels()->size() == 0) {
    std::printf("target    %s (no generated kernels)\n", target.c_str());
  } else {
    double ptx = 0, cubin = 0;
    int withCubin = 0, libraryGemms = 0;
    for (const moec::plan::Kernel *k : *root.kernels()) {
      ptx += k->ptx() ? k->ptx()->size() : 0;
      cubin += k->cubin() ? k->cubin()->size() : 0;
      withCubin += k->cubin() && k->cubin()->size() > 0;
      if (k->launches())
        for (const moec::plan::Launch *launch : *k->launches())
          libraryGemms += launch->gemm() != nullptr;
    }
    const moec::plan::Kernel *first = root.kernels()->Get(0);
    std::printf("target    %s %s: %u generated kernels ", target.c_str(),
                first->arch() ? first->arch()->c_str() : "?", root.kernels()->size());
    if (plan.hasGpuBinaries())
      std::printf("(PTX %s; %d with a cubin, %s)\n", humanBytes(ptx).c_str(), withCubin,
                  humanBytes(cubin).c_str());
    else
      std::printf("(CUDA sources only, for cuda-emu: moec --kernel-binaries=false)\n");
    if (libraryGemms)
      std::printf("          %d library GEMMs (cuBLASLt; moec --gemm=cublaslt)\n", libraryGemms);
  }
  if (const moec::plan::Training *t = root.training()) {
    // The shape the graphs were compiled for (moec --batch/--seq-len may
    // differ from the description's training section).
    auto shape = plan.tokenShape();
    std::pair<int64_t, int64_t> bs = shape ? *shape : std::make_pair(t->batch_size(), t->seq_len());
    int64_t ranks = plan.meshRanks();
    std::string perRank =
        ranks > 1 ? " (" + std::to_string(bs.first) + " per rank)" : std::string();
    std::printf("training  batch %lld%s x seq %lld, seed %lld, optimizer %s lr %g\n",
                (long long)(bs.first * ranks), perRank.c_str(), (long long)bs.second,
                (long long)t->seed(),
                t->optimizer() && t->optimizer()->kind() ? t->optimizer()->kind()->c_str() : "?",
                t->optimizer() ? t->optimizer()->lr() : 0.0);
  }
  if (const moec::plan::Source *source = root.source(); source && source->file_name()) {
    std::string options;
    if (source->options())
      for (const flatbuffers::String *option : *source->options())
        options += " " + option->str();
    std::printf("source    %s (%u bytes)%s%s\n", source->file_name()->c_str(),
                source->text() ? source->text()->size() : 0u,
                options.empty() ? "" : ", compiled with", options.c_str());
  } else if (root.model_source() && root.model_source()->str() == "mlir") {
    std::printf("source    none (compiled from hand-written IR: the batch shape is fixed)\n");
  } else {
    std::printf("source    none (compiled by an older moec)\n");
  }
  return 0;
}
