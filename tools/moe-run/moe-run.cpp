// moe-run.cpp - runs a compiled .moeb plan: evaluation or training on a device.
//
//   moe-run OUT.moeb --eval --data TOKENS.bin [--init W.safetensors] [--json]
//   moe-run OUT.moeb --data TOKENS.bin --steps N [--log run.jsonl] [--save ckpt]
//
// The runtime never links MLIR or LLVM.
#include "Calibrate.h"
#include "Recompile.h"
#include "runtime/core/AtomicFile.h"
#include "runtime/core/Executor.h"
#include "runtime/core/Hash.h"
#include "runtime/core/Hyperparameters.h"
#include "runtime/core/Parameters.h"
#include "runtime/core/PlanMemory.h"
#include "runtime/core/TokenData.h"
#include "runtime/core/TraceFile.h"
#include "runtime/devices/OpenChannel.h"
#include "runtime/devices/OpenDevice.h"

#include <nlohmann/json.hpp>

#include <cerrno>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

using namespace moec::rt;
using json = nlohmann::ordered_json;

namespace {
const char *kUsage = R"(usage: moe-run PLAN.moeb --data TOKENS (--eval | --steps N) [options]
       moe-run --calibrate CLUSTER.yaml [--channel C]   (under mpirun: one device per rank)

  --eval                 compute the loss and metrics of one batch (no update)
  --steps N              train N steps (AdamW or SGD as compiled)
  --data FILE            flat little-endian token file
  --data-dtype u16|u32   token width (default u16)
  --device auto|cpu|cuda|cuda-emu
                         the device (default auto: cuda when the plan has GPU
                         code, moec --target=cuda, and a GPU is present, else
                         cpu; a plan of kernel sources only, moec
                         --kernel-binaries=false, runs on cpu). cuda-emu runs
                         the plan's generated CUDA kernels on the host (for
                         testing)
  --init FILE            parameters from a safetensors checkpoint
  --seed N               initialisation, data order and router noise seed
                         (default: the description's training.seed)
  --save-init FILE       write the parameters before any step
  --batch B, --seq-len S
                         run with another batch shape than compiled (moe-run
                         has moec compile the plan's description again)
  --step N               (--eval) which batch of the data to use (default 0)
  --no-shuffle           sequence b of step s starts at ((s*B + b)*S) mod (N-S-1)
  --json                 (--eval) print one JSON object instead of a table
  --verbose              say which device runs the plan and how: threads and
                         the GEMM library and instruction set on the cpu

training:
  --log FILE             one JSON line per step
  --save FILE            checkpoint at the end (parameters, optimizer state,
                         step, seed; written atomically)
  --checkpoint-every K   also checkpoint to --save every K steps
  --resume FILE          continue from a checkpoint
  --grads-out FILE       gradients of the first step's objective, by parameter name
  --trace FILE           a Chrome/Perfetto trace (JSON) of every op of every step
  --no-cuda-graph        launch every kernel of every step (by default a step
                         whose kernels are all generated is recorded once as a
                         CUDA graph and replayed)
  --lr, --weight-decay, --beta1, --beta2, --eps, --momentum, --grad-clip,
  --warmup-steps, --total-steps, --min-lr-ratio
                         override the description's values (inputs of the
                         training step: no recompile)
  --schedule constant|cosine|linear
                         another schedule than compiled (moe-run has moec
                         compile the plan's description again)
  --optimizer adamw|sgd  the optimizer (default: the description's)

several ranks (a plan compiled with moec --mesh dp=D,ep=E):
  mpirun -np D*E moe-run PLAN.moeb ...   (or srun): each rank runs its share of
                         every batch; rank 0 prints, logs and saves
  --channel auto|local|mpi|nccl
                         how ranks exchange data (default auto: mpi when mpirun
                         or srun started moe-run, nccl under torchrun (RANK,
                         WORLD_SIZE, MASTER_ADDR, MASTER_PORT), else local, one
                         rank); nccl moves GPU memory (--device cuda)
  --collective-timeout S a collective that waits more than S seconds for the
                         other ranks stops the run with an error naming the
                         ranks that never reached it (default 300)
)";

struct Options {
  std::string channel = "auto";
  double collectiveTimeout = 300;
  std::string plan, data, dataDtype = "u16", device = "auto", init, saveInit, log, save, resume, gradsOut, trace;
  std::string calibrate; // --calibrate FILE: measure this machine, run no plan
  std::optional<int64_t> seed, batch, seqLen, steps, checkpointEvery;
  int64_t step = 0;
  bool eval = false, json = false, shuffle = true, cudaGraph = true, verbose = false;
  std::map<std::string, std::string> hyper; // --lr ... as given
  std::string schedule;                      // --schedule, when given
};

int usageError(const std::string &message) {
  std::cerr << "moe-run: " << message << "\n" << kUsage;
  return 2;
}

/// A whole number in int64's range (strtoll clamps what is beyond it to
/// the bound: refused rather than silently changed).
std::optional<int64_t> parseInt(const std::string &text) {
  char *end = nullptr;
  errno = 0;
  long long value = std::strtoll(text.c_str(), &end, 10);
  if (text.empty() || *end || errno == ERANGE)
    return std::nullopt;
  return value;
}

std::optional<double> parseDouble(const std::string &text) {
  char *end = nullptr;
  double value = std::strtod(text.c_str(), &end);
  if (text.empty() || *end || !std::isfinite(value))
    return std::nullopt;
  return value;
}

/// Token ids and positions are 32-bit in the kernels.
constexpr int64_t kMaxBatchTokens = int64_t(1) << 31;

/// The flags that set a hyperparameter input of the training step, and the
/// input each sets.
const std::map<std::string, std::string> kHyperFlags = {
    {"--lr", "lr"},
    {"--weight-decay", "weight_decay"},
    {"--beta1", "beta1"},
    {"--beta2", "beta2"},
    {"--eps", "eps"},
    {"--momentum", "momentum"},
    {"--grad-clip", "max_grad_norm"},
    {"--warmup-steps", "warmup_steps"},
    {"--total-steps", "total_steps"},
    {"--min-lr-ratio", "min_lr_ratio"}};

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
      return out.has_value() && *out >= 0;
    };
    bool ok = true;
    if (arg == "--eval") o.eval = true;
    else if (arg == "--json") o.json = true;
    else if (arg == "--verbose")
      o.verbose = true;
    else if (arg == "--no-shuffle") o.shuffle = false;
    else if (arg == "--no-cuda-graph") o.cudaGraph = false;
    else if (arg == "--data") ok = value(o.data);
    else if (arg == "--data-dtype") ok = value(o.dataDtype);
    else if (arg == "--device") ok = value(o.device);
    else if (arg == "--calibrate")
      ok = value(o.calibrate);
    else if (arg == "--channel")
      ok = value(o.channel);
    else if (arg == "--collective-timeout") {
      std::string text;
      ok = value(text);
      std::optional<double> seconds = ok ? parseDouble(text) : std::nullopt;
      ok = seconds && *seconds > 0;
      if (ok)
        o.collectiveTimeout = *seconds;
    } else if (arg == "--init")
      ok = value(o.init);
    else if (arg == "--save-init") ok = value(o.saveInit);
    else if (arg == "--log") ok = value(o.log);
    else if (arg == "--save") ok = value(o.save);
    else if (arg == "--resume") ok = value(o.resume);
    else if (arg == "--grads-out") ok = value(o.gradsOut);
    else if (arg == "--trace") ok = value(o.trace);
    else if (arg == "--seed") ok = intValue(o.seed);
    else if (arg == "--batch") ok = intValue(o.batch) && *o.batch > 0;
    else if (arg == "--seq-len") ok = intValue(o.seqLen) && *o.seqLen > 0;
    else if (arg == "--steps") ok = intValue(o.steps);
    else if (arg == "--checkpoint-every") ok = intValue(o.checkpointEvery) && *o.checkpointEvery > 0;
    else if (arg == "--step") {
      std::optional<int64_t> step;
      ok = intValue(step);
      if (ok) o.step = *step;
    } else if (kHyperFlags.count(arg) || arg == "--optimizer") {
      ok = value(o.hyper[arg]);
    } else if (arg == "--schedule") {
      ok = value(o.schedule);
    } else if (arg == "-h" || arg == "--help") {
      std::cout << kUsage;
      return 0;
    } else if (!arg.empty() && arg[0] == '-') return usageError("unknown option " + arg);
    else if (o.plan.empty()) o.plan = arg;
    else return usageError("unexpected argument " + arg);
    if (!ok)
      return usageError(arg + " needs a valid value");
  }
  if (!o.calibrate.empty()) {
    if (!o.plan.empty() || o.eval || o.steps || !o.data.empty())
      return usageError("--calibrate measures this machine and writes a cluster description; "
                        "give it no plan, --data, --eval or --steps");
    return -1;
  }
  if (o.plan.empty())
    return usageError("no plan given");
  if (o.eval == o.steps.has_value())
    return usageError("give either --eval or --steps N");
  if (o.data.empty())
    return usageError("--data TOKENS is required");
  int64_t batch = o.batch.value_or(1), seqLen = o.seqLen.value_or(1);
  if (batch > kMaxBatchTokens || seqLen > kMaxBatchTokens || batch * seqLen > kMaxBatchTokens)
    return usageError("--batch x --seq-len must be at most " + std::to_string(kMaxBatchTokens) +
                      " tokens");
  if (o.checkpointEvery && o.save.empty())
    return usageError("--checkpoint-every needs --save FILE");
  if (!o.init.empty() && !o.resume.empty())
    return usageError("--init and --resume both give the parameters: use one (--resume also "
                      "continues the step count, the optimizer state and the seed)");
  if (o.eval) {
    // Evaluation trains nothing: what only training uses is a mistake.
    std::vector<std::string> training;
    for (auto [given, flag] : {std::pair{!o.save.empty(), "--save"},
                               {!o.log.empty(), "--log"},
                               {o.checkpointEvery.has_value(), "--checkpoint-every"},
                               {!o.schedule.empty(), "--schedule"}})
      if (given)
        training.push_back(flag);
    for (const auto &[flag, text] : o.hyper)
      training.push_back(flag);
    if (!training.empty()) {
      std::string list;
      for (const std::string &flag : training)
        list += (list.empty() ? "" : ", ") + flag;
      return usageError("--eval trains nothing, so " + list +
                        (training.size() == 1 ? " does" : " do") + " not apply");
    }
  }
  if (!o.schedule.empty() && o.schedule != "constant" && o.schedule != "cosine" &&
      o.schedule != "linear")
    return usageError("--schedule must be constant, cosine or linear, but is '" + o.schedule +
                      "'");
  return -1;
}

/// Set by SIGINT/SIGTERM to the signal: training stops after the current
/// step, saves, and exits with 128 + the signal, as a killed process would,
/// so that scripts see the run did not finish.
volatile std::sig_atomic_t interrupted = 0;
void onInterrupt(int signal) { interrupted = signal; }
int finishedCode() { return interrupted ? 128 + interrupted : 0; }

/// Fails early when an output cannot be written, rather than after hours of
/// training: a directory or special file, or a directory it cannot write in.
Status checkWritable(const std::string &path, const char *flag) {
  if (path.empty())
    return Status::ok();
  return checkOutputPath(path, flag);
}

/// An output that is one of the run's inputs would destroy it: refused,
/// except --save over the checkpoint the run resumes from (written whole,
/// after the run has read it).
Status checkNotAnInput(const Options &o, const std::string &path, const char *flag) {
  struct stat output;
  if (path.empty() || stat(path.c_str(), &output) != 0)
    return Status::ok();
  for (auto [input, name] : {std::pair{&o.plan, "the plan"},
                             {&o.data, "--data"},
                             {&o.init, "--init"},
                             {&o.resume, "--resume"}}) {
    struct stat in;
    if (input->empty() || stat(input->c_str(), &in) != 0)
      continue;
    if (in.st_dev != output.st_dev || in.st_ino != output.st_ino)
      continue;
    if (input == &o.resume && std::string(flag) == "--save")
      continue;
    return Status::error(std::string(flag) + " " + path + " is " + name + " of this run (" +
                         *input + "): writing there would destroy it");
  }
  return Status::ok();
}

/// This process's rank and the run's, for messages (set once the channel is open).
int processRank = 0, processRanks = 1;
hal::Channel *processChannel = nullptr;

int fail(const Status &status) {
  if (processRanks > 1) {
    // One write: mpirun interleaves what the ranks print, and a line written
    // in pieces would come out mixed with another rank's.
    std::string line = "moe-run: rank " + std::to_string(processRank) + " of " +
                       std::to_string(processRanks) + ": error: " + status.message() + "\n";
    std::cerr.flush();
    ssize_t written = ::write(STDERR_FILENO, line.data(), line.size());
    (void)written;
    // The other ranks would wait for this one in their next collective.
    processChannel->abort(1);
  }
  std::cerr << "moe-run: error: " << status.message() << "\n";
  return 1;
}

/// Whether this process writes what a run prints, logs and saves (rank 0).
bool writesOutput() { return processRank == 0; }

/// MOEC_FAULT=RANK:STEP:hang|kill makes rank RANK hang (sleep for good) or
/// die (SIGKILL) before training step STEP: how the tests check that the
/// other ranks stop, with an error naming it, instead of waiting forever.
void injectFault(int64_t step) {
  const char *fault = std::getenv("MOEC_FAULT");
  int rank = -1;
  long long at = -1;
  char what[8] = {0};
  if (!fault || std::sscanf(fault, "%d:%lld:%7s", &rank, &at, what) != 3 || rank != processRank ||
      at != step)
    return;
  if (std::strcmp(what, "kill") == 0)
    std::raise(SIGKILL);
  if (std::strcmp(what, "hang") == 0)
    for (;;)
      pause();
}

/// The process's peak resident memory.
double peakResidentBytes() {
  struct rusage usage;
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_maxrss * 1024.0;
}

/// Everything a run shares: the plan, parameters and data.
struct Run {
  std::unique_ptr<hal::Channel> channel;
  std::shared_ptr<LoadedPlan> plan;
  std::unique_ptr<hal::Device> device;
  std::optional<ParameterStore> params;
  std::optional<TokenData> data;
  int64_t B = 0, S = 0; // this rank's batch shape
  int64_t ranks = 1;    // ranks of the plan's mesh: the batch is B * ranks
  uint64_t seed = 0;
  int64_t firstStep = 0;
  const moec::plan::Training *training = nullptr;
  std::string optimizer;
  std::map<std::string, double> hyperparameters; // input name -> value given
};

/// The batch shape a plan was compiled for: that of forward's tokens input.
/// The plan (compiled again when --batch or --seq-len ask for another shape)
/// and the data, which is checked first: a wrong --data fails before a compile.
Status loadPlanAndData(const Options &o, Run &run) {
  auto plan = LoadedPlan::load(o.plan);
  if (!plan)
    return plan.status();
  auto shape = (*plan)->tokenShape();
  if (!shape)
    return shape.status();
  auto data = TokenData::load(o.data, o.dataDtype, (*plan)->root().vocab_size());
  if (!data)
    return data.status();
  run.data.emplace(std::move(*data));
  // Sharded plans hold one rank's share of the batch; --batch is the whole.
  int64_t ranks = (*plan)->meshRanks();
  int64_t batch = o.batch.value_or(shape->first * ranks), seqLen = o.seqLen.value_or(shape->second);
  if (batch % ranks != 0)
    return Status::error("--batch " + std::to_string(batch) + " does not split over the " +
                         std::to_string(ranks) + " ranks of " + o.plan + "'s mesh");
  // The schedule's kind is code: another one needs a compile (training only).
  const moec::plan::Training *training = (*plan)->root().training();
  std::string compiledSchedule = training && training->schedule() && training->schedule()->kind()
                                     ? training->schedule()->kind()->str()
                                     : "";
  std::string schedule = !o.eval && o.schedule != compiledSchedule ? o.schedule : "";
  if (batch != shape->first * ranks || seqLen != shape->second || !schedule.empty()) {
    plan = recompile(**plan, o.plan, batch, seqLen, schedule);
    if (!plan)
      return plan.status();
    shape = (*plan)->tokenShape();
    if (!shape)
      return shape.status();
    if (shape->first * ranks != batch || shape->second != seqLen)
      return Status::error("moec compiled " + o.plan + " for another shape than asked");
  }
  run.plan = *plan;
  run.ranks = ranks;
  run.B = batch / ranks;
  run.S = seqLen;
  // Fewer tokens than one batch reads: its sequences overlap and every step
  // sees the same text. Allowed (a test on a tiny file), but said.
  if (uint64_t needed = static_cast<uint64_t>(batch) * seqLen + 1;
      writesOutput() && run.data->size() < needed)
    std::cerr << "moe-run: warning: " << o.data << " has " << run.data->size()
              << " tokens, fewer than one batch reads (" << batch << " x " << seqLen
              << " + 1 = " << needed << "): its sequences overlap, and every step sees the "
              << "same tokens\n";
  return Status::ok();
}

/// The hyperparameter inputs --lr ... give, checked.
Status parseHyperparameters(const Options &o, Run &run) {
  for (const auto &[flag, text] : o.hyper) {
    auto input = kHyperFlags.find(flag);
    if (input == kHyperFlags.end())
      continue; // --optimizer chose the training function
    std::optional<double> value = parseDouble(text);
    if (!value || *value < 0 || !std::isfinite(*value))
      return Status::error(flag + " needs a non-negative number, but is '" + text + "'");
    if (flag == "--eps" && *value == 0)
      return Status::error("--eps must be positive (AdamW divides by sqrt(v) + eps), but is '" +
                           text + "'");
    if ((flag == "--beta1" || flag == "--beta2") && *value >= 1)
      return Status::error(flag + " must be below 1");
    if ((flag == "--warmup-steps" || flag == "--total-steps") && *value != std::floor(*value))
      return Status::error(flag + " needs a whole number, but is '" + text + "'");
    // Step counts are 64-bit integers in the plan: 1e30 used to wrap around
    // and switch the warmup off.
    constexpr double kMaxSteps = 9007199254740992.0; // 2^53, exact in a double
    if ((flag == "--warmup-steps" || flag == "--total-steps") && *value > kMaxSteps)
      return Status::error(flag + " must be at most 2^53 = 9007199254740992, but is '" + text +
                           "'");
    run.hyperparameters[input->second] = *value;
  }
  return Status::ok();
}

/// Whether every rank has the same `value` of `what`; else an error, with
/// `message`'s %s replaced by the ranks that differ from rank 0.
Status agree(hal::Channel &channel, const std::string &what, const std::string &value,
             const std::string &message) {
  if (channel.size() == 1)
    return Status::ok();
  uint64_t mine = fnv1a64(value);
  std::vector<uint64_t> all(channel.size());
  if (Status s = channel.allGatherHost(&mine, sizeof(mine), all.data()); !s)
    return Status::error("comparing " + what + " among the ranks: " + s.message());
  std::string differing;
  for (int r = 0; r < channel.size(); ++r)
    if (all[r] != all[0])
      differing += (differing.empty() ? "" : ", ") + std::to_string(r);
  if (differing.empty())
    return Status::ok();
  std::string text = message;
  text.replace(text.find("%s"), 2, differing);
  return Status::error(text);
}

/// Every rank runs the plan's mesh, and the same plan.
Status checkRanks(const Options &o, Run &run) {
  hal::Channel &channel = *run.channel;
  if (channel.size() != run.ranks) {
    const moec::plan::Mesh *mesh = run.plan->root().mesh();
    std::string shape;
    if (mesh && mesh->shape() && mesh->axes())
      for (unsigned i = 0; i < mesh->shape()->size() && i < mesh->axes()->size(); ++i)
        shape += (shape.empty() ? "" : ",") + mesh->axes()->Get(i)->str() + "=" +
                 std::to_string(mesh->shape()->Get(i));
    return Status::error(
        o.plan + " was compiled for " + std::to_string(run.ranks) + " rank" +
        (run.ranks == 1 ? "" : "s") + (shape.empty() ? "" : " (moec --mesh " + shape + ")") +
        ", but this run has " + std::to_string(channel.size()) +
        (run.ranks == 1 ? "; compile it with moec --mesh dp=" + std::to_string(channel.size()) +
                              " to train on that many ranks"
                        : "; launch it with mpirun -np " + std::to_string(run.ranks)));
  }
  // What this rank runs must be what every rank runs.
  return agree(channel, "plan", std::to_string(run.plan->contentHash()),
               "the ranks did not load the same plan: rank(s) %s loaded another plan than "
               "rank 0 (" +
                   o.plan + ")");
}

/// Every rank runs with the same settings: a rank with another seed,
/// learning rate, data or checkpoint would train another model, silently.
Status checkSameSettings(const Options &o, const Run &run) {
  if (run.channel->size() == 1)
    return Status::ok();
  std::vector<std::pair<std::string, std::string>> settings = {
      {"--device", hal::deviceKindName(run.device->kind())},
      {"--seed", std::to_string(run.seed)},
      {"the first step (--resume)", std::to_string(run.firstStep)},
      {"--steps", o.steps ? std::to_string(*o.steps) : "eval step " + std::to_string(o.step)},
      {"--optimizer", run.optimizer},
      {"--no-shuffle", o.shuffle ? "shuffle" : "no-shuffle"},
      {"--data",
       std::to_string(run.data->size()) + " tokens, " + std::to_string(run.data->sampleHash())}};
  // One setting for all of them: every rank compares as many settings.
  std::string hyperparameters;
  for (const auto &[input, value] : run.hyperparameters)
    hyperparameters += input + "=" + std::to_string(value) + " ";
  settings.push_back({"hyperparameters (--lr, --grad-clip, ...)", hyperparameters});
  for (const auto &[name, value] : settings)
    if (Status s = agree(*run.channel, name, value,
                         "rank(s) %s run with another " + name + " than rank 0");
        !s)
      return s;
  return Status::ok();
}

/// What running `functions` holds on the device, from the plan
/// (PlanMemory.h): more than the device can allocate (the machine's memory
/// for cpu and cuda-emu, the GPU's free memory for cuda) is refused before
/// anything is allocated (it ended in std::bad_alloc or a failed
/// cuMemAlloc mid-setup), with the plan's figures.
Status checkMemory(const Run &run, const std::vector<std::string> &functions) {
  PlanMemory needed = planMemory(*run.plan, functions);
  double allocatable = run.device->allocatableBytes();
  if (allocatable <= 0 || needed.total() <= allocatable)
    return Status::ok();
  return Status::error(run.plan->path() + " needs " + needed.describe() + " of memory, more than " +
                       run.device->description() + " can allocate (" + humanBytes(allocatable) +
                       "; moe-inspect shows what fills it)");
}

Status prepare(const Options &o, Run &run) {
  if (Status s = loadPlanAndData(o, run); !s)
    return s;
  if (Status s = checkRanks(o, run); !s)
    return s;
  auto device = openDevice(o.device, *run.plan);
  if (!device)
    return device.status();
  run.device = std::move(*device);
  if (o.verbose)
    std::cerr << "moe-run: device " << run.device->description() << "\n";
  run.training = run.plan->root().training();
  if (Status s = parseHyperparameters(o, run); !s)
    return s;
  run.seed = o.seed.value_or(run.training ? run.training->seed() : 0);

  // The training step of the chosen optimizer (default: as compiled).
  run.optimizer = run.training && run.training->optimizer() && run.training->optimizer()->kind()
                      ? run.training->optimizer()->kind()->str()
                      : "adamw";
  if (auto it = o.hyper.find("--optimizer"); it != o.hyper.end()) {
    if (it->second != "adamw" && it->second != "sgd")
      return Status::error("--optimizer must be adamw or sgd, but is '" + it->second + "'");
    run.optimizer = it->second;
  }
  std::vector<std::string> functions = {"forward"};
  if (!o.eval)
    functions = {"train_step_" + run.optimizer, "forward_train_backward"};
  if (Status s = checkMemory(run, functions); !s)
    return s;
  auto params = ParameterStore::create(run.plan, functions, *run.device, run.channel.get());
  if (!params)
    return params.status();
  run.params.emplace(std::move(*params));
  if (Status s = run.params->initialize(run.seed); !s)
    return s;
  if (!o.resume.empty()) {
    auto file = SafetensorsFile::load(o.resume);
    if (!file)
      return file.status();
    if (Status s = run.params->load(*file, /*state=*/true); !s)
      return Status::error(o.resume + ": " + s.message());
    const std::map<std::string, std::string> &meta = file->metadata();
    auto number = [&](const char *key) -> std::optional<int64_t> {
      auto it = meta.find(key);
      return it == meta.end() ? std::nullopt : parseInt(it->second);
    };
    std::optional<int64_t> step = number("step"), seed = number("seed");
    if (!step || *step < 0)
      return Status::error(o.resume + ": not a moe-run checkpoint (no step in its metadata)");
    run.firstStep = *step;
    if (o.steps && *o.steps > std::numeric_limits<int64_t>::max() - *step)
      return Status::error(o.resume + ": its step " + std::to_string(*step) + " and --steps " +
                           std::to_string(*o.steps) +
                           " go beyond the last step there is (2^63 - 1)");
    if (seed && !o.seed)
      run.seed = static_cast<uint64_t>(*seed);
  } else if (!o.init.empty()) {
    auto file = SafetensorsFile::load(o.init);
    if (!file)
      return file.status();
    if (Status s = run.params->load(*file, /*state=*/false); !s)
      return Status::error(o.init + ": " + s.message());
  }
  if (Status s = checkSameSettings(o, run); !s)
    return s;
  if (!o.saveInit.empty()) // every rank: sharded tensors are gathered, rank 0 writes
    if (Status s = run.params->save(o.saveInit, /*state=*/false); !s)
      return s;
  return Status::ok();
}

/// The per-step inputs of a function: host values, and device buffers that
/// stay where they are.
struct Batch {
  std::vector<int32_t> tokens, targets;
  int64_t scalars[2] = {0, 0}; // step number, noise seed
  std::unique_ptr<hal::Buffer> tokensOnDevice, targetsOnDevice, scalarsOnDevice;
  std::vector<std::unique_ptr<hal::Buffer>> hyperparameters; // fixed for a run
};

/// Binds parameters, state and the batch buffers once: none of them moves
/// afterwards (loadBatch refills the same buffers).
Status bindStorage(Run &run, Executor &ex, Batch &batch) {
  for (auto &[name, t] : run.params->tensors())
    ex.bind(name, t.buffer->address());
  batch.tokens.resize(run.B * run.S);
  batch.targets.resize(run.B * run.S);
  for (auto [buffer, bytes] : {std::pair{&batch.tokensOnDevice, batch.tokens.size() * 4},
                               {&batch.targetsOnDevice, batch.targets.size() * 4},
                               {&batch.scalarsOnDevice, sizeof(batch.scalars)}}) {
    auto allocated = run.device->allocate(bytes);
    if (!allocated)
      return allocated.status();
    *buffer = std::move(*allocated);
  }
  auto *scalars = static_cast<int64_t *>(batch.scalarsOnDevice->address());
  ex.bind("tokens", batch.tokensOnDevice->address());
  ex.bind("targets", batch.targetsOnDevice->address());
  ex.bind("step", scalars);
  ex.bind("seed", scalars + 1);
  // Hyperparameters: the ones given on the command line, else the plan's.
  auto hyperparameters = bindHyperparameters(ex, *run.device, run.hyperparameters);
  if (!hyperparameters)
    return hyperparameters.status();
  batch.hyperparameters = std::move(*hyperparameters);
  return Status::ok();
}

/// The inputs of `step`: its tokens and targets, step number and noise seed.
Status loadBatch(Run &run, Batch &batch, int64_t step, bool shuffle) {
  batch.scalars[0] = step;
  batch.scalars[1] = static_cast<int64_t>(run.seed * 1000003ull + step);
  if (run.ranks == 1) {
    if (Status s =
            run.data->batch(step, run.B, run.S, shuffle, run.seed, batch.tokens, batch.targets);
        !s)
      return s;
  } else {
    // The whole batch, of which this rank takes its rows.
    std::vector<int32_t> tokens, targets;
    if (Status s =
            run.data->batch(step, run.B * run.ranks, run.S, shuffle, run.seed, tokens, targets);
        !s)
      return s;
    size_t rows = run.B * run.S, first = run.channel->rank() * rows;
    std::copy_n(tokens.begin() + first, rows, batch.tokens.begin());
    std::copy_n(targets.begin() + first, rows, batch.targets.begin());
  }
  hal::Stream &stream = run.device->defaultStream();
  for (auto [buffer, host] : {std::pair{batch.tokensOnDevice.get(), (const void *)batch.tokens.data()},
                              {batch.targetsOnDevice.get(), batch.targets.data()},
                              {batch.scalarsOnDevice.get(), batch.scalars}})
    if (Status s = stream.upload(buffer->address(), host, buffer->size()); !s)
      return s;
  return Status::ok();
}

/// Scalars and per-layer metrics among a function's outputs.
StatusOr<json> collectMetrics(const Executor &ex) {
  json result;
  std::map<int64_t, json> layers;
  for (int id : *ex.function().outputs()) {
    std::string name = ex.plan().tensor(id).name()->str();
    if (name.rfind("grad:", 0) == 0 || name.rfind("update:", 0) == 0)
      continue;
    const TensorRef &t = ex.tensor(id);
    if (t.dtype != DType::i32 && t.dtype != DType::f32)
      return Status::error("output '" + name + "' is " + dtypeName(t.dtype) +
                           "; metrics are f32 or i32");
    std::vector<int32_t> values(t.numel()); // i32 or f32: 4 bytes each
    if (Status s = ex.read(id, values.data()); !s)
      return s;
    float scalar;
    std::memcpy(&scalar, values.data(), sizeof(float));
    if (name.rfind("layers.", 0) == 0) {
      size_t dot = name.find('.', 7);
      int64_t layer = std::stoll(name.substr(7, dot - 7));
      layers[layer]["layer"] = layer;
      if (t.dtype == DType::i32)
        layers[layer][name.substr(dot + 1)] = values;
      else
        layers[layer][name.substr(dot + 1)] = scalar;
    } else {
      result[name] = scalar;
    }
  }
  result["layers"] = json::array();
  for (auto &[layer, metrics] : layers)
    result["layers"].push_back(metrics);
  return result;
}

int evaluate(const Options &o, Run &run) {
  auto executor = Executor::create(run.plan, "forward", *run.device, run.channel.get());
  if (!executor)
    return fail(executor.status());
  Executor &ex = **executor;
  Batch batch;
  if (Status s = bindStorage(run, ex, batch); !s)
    return fail(s);
  if (Status s = loadBatch(run, batch, o.step, o.shuffle); !s)
    return fail(s);
  auto start = std::chrono::steady_clock::now();
  if (Status s = ex.run(); !s)
    return fail(s);
  if (Status s = run.device->defaultStream().synchronize(); !s)
    return fail(s);
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  auto metrics = collectMetrics(ex);
  if (!metrics)
    return fail(metrics.status());
  json result = std::move(*metrics);
  if (!writesOutput())
    return 0;
  result["tokens"] = run.B * run.S * run.ranks;
  result["step"] = o.step;
  result["seconds"] = seconds;
  result["peak_rss_bytes"] = peakResidentBytes();
  result["peak_device_bytes"] = run.device->memoryUsage().peak();
  if (!std::isfinite(result["loss"].get<double>()))
    std::cerr << "moe-run: warning: the loss is not finite\n";
  if (o.json) {
    std::cout << result.dump() << "\n";
    return 0;
  }
  std::printf("%s: %lld tokens (batch %lld x seq %lld%s), step %lld, %.3f s\n",
              run.plan->root().model_name()->c_str(), (long long)(run.B * run.S * run.ranks),
              (long long)(run.B * run.ranks), (long long)run.S,
              run.ranks > 1 ? (", over " + std::to_string(run.ranks) + " ranks").c_str() : "",
              (long long)o.step, seconds);
  for (auto &[name, value] : result.items())
    if (value.is_number_float() && name != "seconds" && name != "peak_rss_bytes")
      std::printf("  %-22s %.6f\n", name.c_str(), value.get<double>());
  if (!result["layers"].empty()) {
    std::printf("  %-6s %-10s %s\n", "layer", "dropped", "tokens per expert");
    for (auto &metrics : result["layers"]) {
      std::string counts;
      for (auto &count : metrics["expert_tokens"])
        counts += std::to_string(count.get<int>()) + " ";
      std::printf("  %-6lld %8.2f%%  %s\n", (long long)metrics["layer"].get<int64_t>(),
                  100.0 * metrics["dropped_fraction"].get<double>(), counts.c_str());
    }
  }
  return 0;
}

Status saveCheckpoint(const Run &run, const std::string &path, int64_t nextStep) {
  return run.params->save(path, /*state=*/true,
                          {{"step", std::to_string(nextStep)},
                           {"seed", std::to_string(run.seed)},
                           {"kind", "moe-run checkpoint"}});
}

int train(const Options &o, Run &run) {
  auto executor =
      Executor::create(run.plan, "train_step_" + run.optimizer, *run.device, run.channel.get());
  if (!executor)
    return fail(executor.status());
  Executor &ex = **executor;

  if (!o.gradsOut.empty()) {
    auto gradients =
        Executor::create(run.plan, "forward_train_backward", *run.device, run.channel.get());
    if (!gradients)
      return fail(gradients.status());
    Batch batch;
    if (Status s = bindStorage(run, **gradients, batch); !s)
      return fail(s);
    if (Status s = loadBatch(run, batch, run.firstStep, o.shuffle); !s)
      return fail(s);
    if (Status s = (*gradients)->run(); !s)
      return fail(s);
    std::vector<TensorToSave> tensors;
    std::map<int, std::vector<float>> values;
    for (int id : *(*gradients)->function().outputs()) {
      std::string name = run.plan->tensor(id).name()->str();
      if (name.rfind("grad:", 0) != 0)
        continue;
      std::vector<float> &host = values[id];
      host.resize((*gradients)->tensor(id).numel());
      if (Status s = (*gradients)->read(id, host.data()); !s)
        return fail(s);
      // A split parameter's gradient is split as it is: gathered whole.
      auto whole = run.params->wholeValues(name.substr(5), host.data(), values[-1 - id]);
      if (!whole)
        return fail(whole.status());
      run.params->appendCheckpointTensors(name.substr(5), *whole, tensors);
    }
    if (writesOutput())
      if (Status s = saveSafetensors(o.gradsOut, tensors, {{"kind", "gradients"}}); !s)
        return fail(s);
  }

  // Outputs that replace parameters and state after each step.
  std::vector<std::pair<int, StoredTensor *>> updates;
  for (int id : *ex.function().outputs()) {
    std::string name = run.plan->tensor(id).name()->str();
    if (name.rfind("update:", 0) == 0)
      updates.push_back({id, &run.params->tensors().at(name.substr(7))});
  }
  std::ofstream log;
  if (!o.log.empty() && writesOutput()) {
    log.open(o.log, run.firstStep > 0 ? std::ios::app : std::ios::trunc);
    if (!log)
      return fail(Status::error(o.log + ": cannot write the log"));
  }
  bool terminal = isatty(fileno(stderr)) && writesOutput();
  const int64_t batchTokens = run.B * run.S * run.ranks;
  std::string lastCheckpoint = o.resume;
  TracedRuns trace;
  ex.setTracing(!o.trace.empty());
  ex.setGraphs(o.cudaGraph);
  int64_t end = run.firstStep + *o.steps;
  std::signal(SIGINT, onInterrupt);
  std::signal(SIGTERM, onInterrupt);
  Batch batch;
  if (Status s = bindStorage(run, ex, batch); !s)
    return fail(s);
  hal::Stream &stream = run.device->defaultStream();
  for (int64_t step = run.firstStep; step < end; ++step) {
    if (interrupted) {
      std::fprintf(stderr, "\nmoe-run: interrupted before step %lld%s\n", (long long)step,
                   o.save.empty() ? " (no --save: nothing is written)" : "; saving");
      end = step;
      break;
    }
    injectFault(step);
    if (Status s = loadBatch(run, batch, step, o.shuffle); !s)
      return fail(s);
    auto start = std::chrono::steady_clock::now();
    if (Status s = ex.run(); !s)
      return fail(Status::error("step " + std::to_string(step) + ": " + s.message()));
    auto collected = collectMetrics(ex); // waits for the step
    if (!collected)
      return fail(collected.status());
    json metrics = std::move(*collected);
    double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (!o.trace.empty())
      trace.push_back({step, ex.takeTrace()});
    double loss = metrics["loss"].get<double>(), norm = metrics["grad_norm"].get<double>();
    if (!std::isfinite(loss) || !std::isfinite(norm)) {
      std::cerr << "\nmoe-run: error: "
                << (std::isfinite(loss) ? "the gradient norm became " + std::to_string(norm) +
                                              " (loss " + std::to_string(loss) + ")"
                                        : "the loss became " + std::to_string(loss))
                << " at step " << step << "; training stopped and saved nothing of it. "
                << (lastCheckpoint.empty() ? "No checkpoint was written."
                                           : "The last good checkpoint is " + lastCheckpoint + ".")
                << "\n";
      return 3;
    }
    for (auto &[id, stored] : updates)
      if (ex.tensor(id).data != stored->buffer->address()) // else updated in place
        if (Status s = stream.copy(stored->buffer->address(), ex.tensor(id).data,
                                   stored->buffer->size());
            !s)
          return fail(s);
    json line;
    line["step"] = step;
    for (auto &[key, value] : metrics.items())
      line[key] = value;
    line["tokens_per_s"] = batchTokens / seconds;
    // Of the step's time, the waits for communication that compute did not
    // hide (--overlap-chunks hides some).
    if (ex.plan().meshRanks() > 1)
      line["communication_wait_s"] = ex.takeCommunicationWait();
    if (log.is_open()) {
      log << line.dump() << "\n" << std::flush;
      if (!log) // a full disk: the run stops, rather than log nothing more
        return fail(Status::error("--log " + o.log + ": writing failed at step " +
                                  std::to_string(step) + " (" + std::strerror(errno) + ")"));
    }
    if (terminal) {
      std::fprintf(stderr,
                   "\rstep %lld/%lld  loss %.4f  lm %.4f  aux %.4f  lr %.2e  |g| %.3f  %.0f tok/s ",
                   (long long)step + 1, (long long)end, loss, metrics["lm_loss"].get<double>(),
                   metrics["aux_loss"].get<double>(), metrics["lr"].get<double>(),
                   metrics["grad_norm"].get<double>(), batchTokens / seconds);
    } else if (writesOutput() && ((step - run.firstStep) % 10 == 0 || step + 1 == end)) {
      std::printf("step %lld  loss %.4f  lm %.4f  aux %.4f  lr %.2e  |g| %.3f  %.0f tok/s\n",
                  (long long)step, loss, metrics["lm_loss"].get<double>(),
                  metrics["aux_loss"].get<double>(), metrics["lr"].get<double>(),
                  metrics["grad_norm"].get<double>(), batchTokens / seconds);
      std::fflush(stdout);
    }
    if (o.checkpointEvery && (step + 1) % *o.checkpointEvery == 0 && step + 1 < end) {
      if (Status s = saveCheckpoint(run, o.save, step + 1); !s)
        return fail(s);
      lastCheckpoint = o.save;
    }
  }
  if (terminal)
    std::fprintf(stderr, "\n");
  if (!writesOutput()) {
    // Sharded state is gathered from every rank; rank 0 writes it.
    if (!o.save.empty())
      if (Status s = saveCheckpoint(run, o.save, end); !s)
        return fail(s);
    return stream.synchronize() ? finishedCode() : 1;
  }
  if (!o.trace.empty())
    if (Status s = writeTraceFile(o.trace, "--trace", trace); !s)
      return fail(s);
  if (Status s = stream.synchronize(); !s)
    return fail(s);
  std::printf("peak memory %.1f MiB (resident; parameters, optimizer state and one arena of %.1f MiB)\n",
              peakResidentBytes() / 1048576.0, ex.arenaBytes() / 1048576.0);
  if (run.device->kind() != hal::DeviceKind::cpu)
    std::printf("peak device memory %.1f MiB in buffers (parameters, optimizer state, arena, "
                "inputs)\n",
                run.device->memoryUsage().peak() / 1048576.0);
  if (ex.usesGraphs())
    std::printf("steps after the first ran as one recorded graph (--no-cuda-graph: kernel by "
                "kernel)\n");
  if (!o.save.empty()) {
    if (Status s = saveCheckpoint(run, o.save, end); !s)
      return fail(s);
    std::printf("saved %s (step %lld)\n", o.save.c_str(), (long long)end);
  }
  return finishedCode();
}
} // namespace

int main(int argc, char **argv) {
  Options o;
  if (int code = parseArgs(argc, argv, o); code >= 0)
    return code;
  Run run;
  auto channel = openChannel(o.channel, o.collectiveTimeout);
  if (!channel)
    return fail(channel.status());
  run.channel = std::move(*channel);
  processRank = run.channel->rank();
  processRanks = run.channel->size();
  processChannel = run.channel.get();
  if (!o.calibrate.empty()) {
    if (Status s = checkWritable(o.calibrate, "--calibrate"); !s)
      return fail(s);
    if (Status s = moec::tools::calibrate(o.calibrate, o.device, *run.channel); !s)
      return fail(s);
    if (writesOutput())
      std::cerr << "wrote " << o.calibrate << "\n";
    return 0;
  }
  if (writesOutput())
    for (auto [path, flag] : {std::pair{&o.save, "--save"},
                              {&o.saveInit, "--save-init"},
                              {&o.gradsOut, "--grads-out"},
                              {&o.trace, "--trace"},
                              {&o.log, "--log"}}) {
      if (Status s = checkWritable(*path, flag); !s)
        return fail(s);
      if (Status s = checkNotAnInput(o, *path, flag); !s)
        return fail(s);
    }
  if (Status s = prepare(o, run); !s)
    return fail(s);
  return o.eval ? evaluate(o, run) : train(o, run);
}
