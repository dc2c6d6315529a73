// moe-run.cpp - runs a compiled .moeb plan.
//
//   moe-run OUT.moeb --eval --data TOKENS.bin [--init W.safetensors] [--json]
//
// The runtime never links MLIR or LLVM.
#include "runtime/core/Executor.h"
#include "runtime/core/Parameters.h"
#include "runtime/core/TokenData.h"
#include "runtime/cpu/CpuKernels.h"

#include <nlohmann/json.hpp>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <map>
#include <optional>
#include <string>
#include <vector>

using namespace moec::rt;

namespace {
const char *kUsage = R"(usage: moe-run PLAN.moeb --eval --data TOKENS [options]

  --eval                 compute the loss and metrics of one batch (no update)
  --data FILE            flat little-endian token file
  --data-dtype u16|u32   token width (default u16)
  --init FILE            parameters from a safetensors checkpoint
  --seed N               initialise parameters from seed N (default: the
                         description's training.seed)
  --save-init FILE       write the parameters (after --init or seeding)
  --batch B, --seq-len S must match the shapes the plan was compiled for
                         (default: those shapes)
  --step N               which batch of the data to use (default 0)
  --no-shuffle           sequence b of step s starts at ((s*B + b)*S) mod (N-S-1)
  --json                 print one JSON object instead of a table
)";

struct Options {
  std::string plan, data, dataDtype = "u16", init, saveInit;
  std::optional<int64_t> seed, batch, seqLen;
  int64_t step = 0;
  bool eval = false, json = false, shuffle = true;
};

int usageError(const std::string &message) {
  std::cerr << "moe-run: " << message << "\n" << kUsage;
  return 2;
}

std::optional<int64_t> parseInt(const std::string &text) {
  char *end = nullptr;
  long long value = std::strtoll(text.c_str(), &end, 10);
  if (text.empty() || *end)
    return std::nullopt;
  return value;
}

int parseArgs(int argc, char **argv, Options &o) {
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    auto value = [&](std::string &out) {
      if (i + 1 >= argc)
        return false;
      out = argv[++i];
      return true;
    };
    auto intValue = [&](std::optional<int64_t> &out) {
      std::string text;
      if (!value(text))
        return false;
      out = parseInt(text);
      return out.has_value();
    };
    bool ok = true;
    if (arg == "--eval") o.eval = true;
    else if (arg == "--json") o.json = true;
    else if (arg == "--no-shuffle") o.shuffle = false;
    else if (arg == "--data") ok = value(o.data);
    else if (arg == "--data-dtype") ok = value(o.dataDtype);
    else if (arg == "--init") ok = value(o.init);
    else if (arg == "--save-init") ok = value(o.saveInit);
    else if (arg == "--seed") ok = intValue(o.seed);
    else if (arg == "--batch") ok = intValue(o.batch);
    else if (arg == "--seq-len") ok = intValue(o.seqLen);
    else if (arg == "--step") {
      std::optional<int64_t> step;
      ok = intValue(step) && *step >= 0;
      if (ok) o.step = *step;
    } else if (arg == "-h" || arg == "--help") {
      std::cout << kUsage;
      return 0;
    } else if (!arg.empty() && arg[0] == '-') return usageError("unknown option " + arg);
    else if (o.plan.empty()) o.plan = arg;
    else return usageError("unexpected argument " + arg);
    if (!ok)
      return usageError(arg + " needs a valid value");
  }
  if (o.plan.empty())
    return usageError("no plan given");
  return -1;
}

int fail(const Status &status) {
  std::cerr << "moe-run: error: " << status.message() << "\n";
  return 1;
}
} // namespace

int main(int argc, char **argv) {
  Options o;
  if (int code = parseArgs(argc, argv, o); code >= 0)
    return code;
  if (!o.eval)
    return usageError("only --eval runs are implemented so far; training steps "
                      "are not yet part of the plan");
  if (o.data.empty())
    return usageError("--eval needs --data TOKENS");

  auto plan = LoadedPlan::load(o.plan);
  if (!plan)
    return fail(plan.status());
  KernelRegistry kernels;
  cpu::registerCpuKernels(kernels);
  auto executor = Executor::create(*plan, "forward", kernels);
  if (!executor)
    return fail(executor.status());
  Executor &ex = **executor;

  int tokensId = ex.inputId("tokens"), targetsId = ex.inputId("targets");
  if (tokensId < 0 || targetsId < 0)
    return fail(Status::error(o.plan + ": 'forward' has no tokens/targets inputs"));
  std::vector<int64_t> shape = (*plan)->describe(tokensId).shape;
  int64_t B = shape[0], S = shape[1];
  if ((o.batch && *o.batch != B) || (o.seqLen && *o.seqLen != S))
    return fail(Status::error(
        o.plan + " was compiled for --batch " + std::to_string(B) + " --seq-len " +
        std::to_string(S) + "; recompile with `moec ... --batch " +
        std::to_string(o.batch.value_or(B)) + " --seq-len " +
        std::to_string(o.seqLen.value_or(S)) + "`"));

  auto params = ParameterStore::create(*plan);
  if (!params)
    return fail(params.status());
  const moec::plan::Training *training = (*plan)->root().training();
  if (!o.init.empty()) {
    auto file = SafetensorsFile::load(o.init);
    if (!file)
      return fail(file.status());
    if (Status s = params->load(*file); !s)
      return fail(Status::error(o.init + ": " + s.message()));
  } else {
    params->initialize(o.seed.value_or(training ? training->seed() : 0));
  }
  if (!o.saveInit.empty())
    if (Status s = params->save(o.saveInit); !s)
      return fail(s);
  for (auto &[id, buffer] : params->buffers())
    ex.bind(id, const_cast<float *>(buffer.data()));

  auto data = TokenData::load(o.data, o.dataDtype, (*plan)->root().vocab_size());
  if (!data)
    return fail(data.status());
  std::vector<int32_t> inputs, targets;
  if (Status s = data->batch(o.step, B, S, o.shuffle,
                             o.seed.value_or(training ? training->seed() : 0), inputs,
                             targets);
      !s)
    return fail(s);
  ex.bind(tokensId, inputs.data());
  ex.bind(targetsId, targets.data());

  float temperature = 1.0f;
  if (int id = ex.inputId("gumbel_temperature"); id >= 0) {
    const moec::plan::RouterSchedule *g = training ? training->gumbel() : nullptr;
    if (g) {
      double progress = std::min<double>(1.0, double(o.step) / std::max<int64_t>(1, g->steps()));
      temperature = static_cast<float>(g->tau_start() *
                                       std::pow(g->tau_end() / g->tau_start(), progress));
    }
    ex.bind(id, &temperature);
  }

  auto start = std::chrono::steady_clock::now();
  if (Status s = ex.run(); !s)
    return fail(s);
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

  // Collect outputs: scalar losses, then per-layer metrics.
  nlohmann::ordered_json result;
  std::map<int64_t, nlohmann::ordered_json> layers;
  for (int id : *ex.function().outputs()) {
    std::string name = (*plan)->tensor(id).name()->str();
    const TensorRef &t = ex.tensor(id);
    if (name.rfind("layers.", 0) == 0) {
      size_t dot = name.find('.', 7);
      int64_t layer = std::stoll(name.substr(7, dot - 7));
      std::string metric = name.substr(dot + 1);
      layers[layer]["layer"] = layer;
      if (t.dtype == DType::i32)
        layers[layer][metric] = std::vector<int32_t>(t.i32(), t.i32() + t.numel());
      else
        layers[layer][metric] = *t.f32();
    } else {
      result[name] = *t.f32();
    }
  }
  result["layers"] = nlohmann::ordered_json::array();
  for (auto &[layer, metrics] : layers)
    result["layers"].push_back(metrics);
  result["tokens"] = B * S;
  result["step"] = o.step;
  result["seconds"] = seconds;

  if (!std::isfinite(result["loss"].get<double>()))
    std::cerr << "moe-run: warning: the loss is not finite\n";
  if (o.json) {
    std::cout << result.dump() << "\n";
    return 0;
  }
  std::printf("%s: %lld tokens (batch %lld x seq %lld), step %lld, %.3f s\n",
              (*plan)->root().model_name()->c_str(), (long long)(B * S), (long long)B,
              (long long)S, (long long)o.step, seconds);
  for (auto &[name, value] : result.items())
    if (value.is_number_float() && name != "seconds")
      std::printf("  %-22s %.6f\n", name.c_str(), value.get<double>());
  if (!layers.empty()) {
    std::printf("  %-6s %-10s %s\n", "layer", "dropped", "tokens per expert");
    for (auto &[layer, metrics] : layers) {
      std::string counts;
      for (auto &count : metrics["expert_tokens"])
        counts += std::to_string(count.get<int>()) + " ";
      std::printf("  %-6lld %8.2f%%  %s\n", (long long)layer,
                  100.0 * metrics["dropped_fraction"].get<double>(), counts.c_str());
    }
  }
  return 0;
}
