// Recompile.cpp - running moec on the description a plan carries.
#include "Recompile.h"
#include "runtime/core/Process.h"

#include <cctype>
#include <cerrno>
#include <chrono>
#include <climits>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <initializer_list>
#include <iterator>
#include <map>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>


namespace moec::rt {
namespace {

bool isExecutable(const std::string &path) {
  struct stat info;
  return stat(path.c_str(), &info) == 0 && S_ISREG(info.st_mode) &&
         access(path.c_str(), X_OK) == 0;
}

/// A private directory for the description and the new plan; removed with
/// everything in it when it goes out of scope.
class ScratchDirectory {
public:
  ScratchDirectory() {
    const char *tmp = std::getenv("TMPDIR");
    std::string pattern = std::string(tmp && *tmp ? tmp : "/tmp") + "/moe-run-XXXXXX";
    std::vector<char> name(pattern.begin(), pattern.end());
    name.push_back('\0');
    if (mkdtemp(name.data()))
      path_ = name.data();
  }
  ~ScratchDirectory() {
    for (const std::string &file : files_)
      std::remove(file.c_str());
    if (!path_.empty())
      rmdir(path_.c_str());
  }
  const std::string &path() const { return path_; }
  std::string file(const std::string &name) {
    files_.push_back(path_ + "/" + name);
    return files_.back();
  }

private:
  std::string path_;
  std::vector<std::string> files_;
};

/// "sm_" and two digits.
bool isGpuArchName(const std::string &name) {
  return name.size() == 5 && name.compare(0, 3, "sm_") == 0 && std::isdigit(name[3]) &&
         std::isdigit(name[4]);
}

/// Whether `text` is a mesh moec --mesh takes: axis=size pairs, comma-separated.
bool isMeshText(const std::string &text) {
  if (text.empty() || text.size() > 64)
    return false;
  for (char c : text)
    if (!std::islower(static_cast<unsigned char>(c)) &&
        !std::isdigit(static_cast<unsigned char>(c)) && c != '=' && c != ',')
      return false;
  return true;
}

bool isOneOf(const std::string &value, std::initializer_list<const char *> allowed) {
  for (const char *a : allowed)
    if (value == a)
      return true;
  return false;
}

/// Whether `option` is `flag` (which ends in '=') followed by decimal digits.
bool hasNumberValue(const std::string &option, const std::string &flag) {
  return option.size() > flag.size() && option.compare(0, flag.size(), flag) == 0 &&
         option.find_first_not_of("0123456789", flag.size()) == std::string::npos;
}

/// The moec arguments a plan's Source may carry, as `--flag=V` (so that no
/// value is ever read as an option or an @response-file): `--set V`,
/// `--substitute V`, `--no-train`, `--rematerialize=false`, `--zero=1`,
/// `--attention-chunk-bytes=N`, `--overlap-chunks=N`, and `--target`, `--gpu-arch`, `--gemm`,
/// `--precision`, `--fusion`, `--mesh` with the values moec accepts.
/// Anything else is a damaged or forged plan, never passed on.
StatusOr<std::vector<std::string>> sourceOptions(const plan::Source &source,
                                                 const std::string &planPath) {
  std::vector<std::string> arguments;
  if (!source.options())
    return arguments;
  const auto &options = *source.options();
  // Flags with a value, and whether a value is one moec can be given.
  const std::map<std::string, std::function<bool(const std::string &)>> valued = {
      {"--set", [](const std::string &) { return true; }},
      {"--substitute", [](const std::string &) { return true; }},
      {"--target",
       [](const std::string &v) {
         return isOneOf(v, {"cpu", "cuda"});
       }},
      {"--gpu-arch", isGpuArchName},
      {"--gemm",
       [](const std::string &v) {
         return isOneOf(v, {"generated", "cublaslt"});
       }},
      {"--precision",
       [](const std::string &v) {
         return isOneOf(v, {"fp32", "bf16"});
       }},
      {"--fusion",
       [](const std::string &v) {
         return isOneOf(v, {"none", "router", "dispatch", "expert", "moe", "all"});
       }},
      {"--mesh", isMeshText}};
  for (unsigned i = 0; i < options.size(); ++i) {
    std::string option = options.Get(i)->str();
    auto flag = valued.find(option);
    if (option == "--no-train" || option == "--rematerialize=false" || option == "--zero=1") {
      arguments.push_back(option);
    } else if (hasNumberValue(option, "--attention-chunk-bytes=") ||
               hasNumberValue(option, "--overlap-chunks=")) {
      arguments.push_back(option);
    } else if (flag != valued.end() && i + 1 < options.size() &&
               flag->second(options.Get(i + 1)->str())) {
      arguments.push_back(option + "=" + options.Get(++i)->str());
    } else {
      return Status::error(planPath + ": corrupt plan: its description carries the option '" +
                           option + "', which moec is never given from a plan");
    }
  }
  return arguments;
}

/// Whether the plan's description file name is a plain name that cannot
/// collide with the output (hidden names are reserved for it).
bool isPlainFileName(const std::string &name) {
  return !name.empty() && name[0] != '.' && name.find('/') == std::string::npos &&
         name.find('\0') == std::string::npos;
}

std::string shapeText(int64_t batch, int64_t seqLen) {
  return "batch " + std::to_string(batch) + " x seq-len " + std::to_string(seqLen);
}

} // namespace

std::string findCompiler() {
  if (const char *explicitPath = std::getenv("MOEC"); explicitPath && *explicitPath)
    return explicitPath;
  std::string beside = executableDirectory() + "/moec";
  if (isExecutable(beside))
    return beside;
  const char *pathVariable = std::getenv("PATH");
  std::string path = pathVariable ? pathVariable : "";
  for (size_t start = 0; start <= path.size();) {
    size_t end = path.find(':', start);
    if (end == std::string::npos)
      end = path.size();
    std::string candidate = path.substr(start, end - start) + "/moec";
    if (end > start && isExecutable(candidate))
      return candidate;
    start = end + 1;
  }
  return "";
}

StatusOr<std::shared_ptr<LoadedPlan>> recompile(const LoadedPlan &plan,
                                                const std::string &planPath, int64_t batch,
                                                int64_t seqLen, const std::string &schedule) {
  const plan::Source *source = plan.root().source();
  std::string wanted = shapeText(batch, seqLen);
  if (!schedule.empty())
    wanted += " with a " + schedule + " schedule";
  if (!source || !source->file_name() || !source->text()) {
    const flatbuffers::String *kind = plan.root().model_source();
    if (kind && kind->str() == "mlir")
      return Status::error(planPath + " was compiled from hand-written IR, which moe-run "
                           "cannot compile again: it cannot run at " + wanted);
    return Status::error(planPath + " was compiled by an older moec and does not carry its "
                         "model description: compile the description again with `moec ... "
                         "--batch " + std::to_string(batch) + " --seq-len " +
                         std::to_string(seqLen) + "`");
  }
  std::string fileName = source->file_name()->str();
  if (!isPlainFileName(fileName))
    return Status::error(planPath + ": corrupt plan: its description's file name '" + fileName +
                         "' is not a plain file name");
  auto options = sourceOptions(*source, planPath);
  if (!options)
    return options.status();

  std::string compiler = findCompiler();
  if (compiler.empty())
    return Status::error("compiling " + planPath + " for " + wanted +
                         " needs the moec compiler: none beside moe-run or on PATH (set $MOEC)");
  if (compiler.find('/') != std::string::npos && !isExecutable(compiler))
    return Status::error("$MOEC names " + compiler + ", which is not an executable");

  ScratchDirectory scratch;
  if (scratch.path().empty())
    return Status::error(std::string("cannot create a temporary directory to compile in: ") +
                         std::strerror(errno));
  std::string description = scratch.file(fileName);
  {
    std::ofstream out(description, std::ios::binary);
    out.write(source->text()->data(), source->text()->size());
    if (!out.flush())
      return Status::error("cannot write " + description + " to compile it");
  }
  std::string output = scratch.file(".plan.moeb");
  scratch.file(".plan.moeb.tmp"); // left behind only if moec dies mid-write
  std::vector<std::string> argv = {compiler, description};
  argv.insert(argv.end(), options->begin(), options->end());
  argv.insert(argv.end(), {"--batch=" + std::to_string(batch),
                           "--seq-len=" + std::to_string(seqLen), "-o", output});
  if (!schedule.empty()) // a value moe-run checked: constant, cosine or linear
    argv.push_back("--set=training.schedule.kind=" + schedule);

  auto start = std::chrono::steady_clock::now();
  ProcessResult result = runProcess(argv);
  double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::string what = "moec could not compile " + planPath + " for " + wanted;
  if (result.startError)
    return Status::error("cannot run " + compiler + ": " + std::strerror(result.startError));
  if (result.signal == SIGINT || result.signal == SIGTERM)
    return Status::error("interrupted while moec compiled " + planPath + " for " + wanted);
  if (result.signal)
    return Status::error(what + ": it was killed by signal " + std::to_string(result.signal) +
                         " (" + strsignal(result.signal) + ")");
  if (result.exitCode != 0)
    return Status::error(what + " (exit status " + std::to_string(result.exitCode) +
                         "; its messages are above)");
  std::ifstream in(output, std::ios::binary);
  if (!in)
    return Status::error(what + ": it reported success but wrote no plan");
  std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)),
                             std::istreambuf_iterator<char>());
  std::fprintf(stderr, "moe-run: compiled %s for %s with %s (%.2f s)\n", planPath.c_str(),
               wanted.c_str(), compiler.c_str(), seconds);
  // Later messages name the user's plan, not the temporary file.
  return LoadedPlan::fromBytes(std::move(bytes), planPath + " (compiled for " + wanted + ")");
}

} // namespace moec::rt
