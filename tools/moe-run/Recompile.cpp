// Recompile.cpp - running moec on the description a plan carries.
#include "Recompile.h"

#include <cerrno>
#include <chrono>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

extern char **environ;

namespace moec::rt {
namespace {

bool isExecutable(const std::string &path) {
  struct stat info;
  return stat(path.c_str(), &info) == 0 && S_ISREG(info.st_mode) &&
         access(path.c_str(), X_OK) == 0;
}

/// The directory of the running executable.
std::string ownDirectory() {
  char buffer[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", buffer, sizeof(buffer) - 1);
  if (n <= 0)
    return "";
  std::string path(buffer, n);
  size_t slash = path.rfind('/');
  return slash == std::string::npos ? "" : path.substr(0, slash);
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

/// Runs `argv` and waits for it; the exit status, or -1 when it could not start.
int runProcess(const std::vector<std::string> &argv, const std::string &program) {
  std::vector<char *> args;
  for (const std::string &arg : argv)
    args.push_back(const_cast<char *>(arg.c_str()));
  args.push_back(nullptr);
  pid_t pid;
  if (int error = posix_spawnp(&pid, program.c_str(), nullptr, nullptr, args.data(), environ)) {
    errno = error;
    return -1;
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0)
    if (errno != EINTR)
      return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

std::string shapeText(int64_t batch, int64_t seqLen) {
  return "batch " + std::to_string(batch) + " x seq-len " + std::to_string(seqLen);
}

} // namespace

std::string findCompiler() {
  if (const char *explicitPath = std::getenv("MOEC"); explicitPath && *explicitPath)
    return explicitPath;
  std::string beside = ownDirectory() + "/moec";
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

StatusOr<std::shared_ptr<LoadedPlan>> recompileForShape(const LoadedPlan &plan,
                                                        const std::string &planPath,
                                                        int64_t batch, int64_t seqLen) {
  const plan::Source *source = plan.root().source();
  std::string wanted = shapeText(batch, seqLen);
  if (!source || !source->file_name() || !source->text())
    return Status::error(planPath + " does not carry its model description (it was compiled "
                         "from IR, or by an older moec), so it cannot be compiled for " +
                         wanted + "; compile the description with `moec ... --batch " +
                         std::to_string(batch) + " --seq-len " + std::to_string(seqLen) + "`");
  std::string fileName = source->file_name()->str();
  if (fileName.empty() || fileName.find('/') != std::string::npos || fileName[0] == '.')
    return Status::error(planPath + ": corrupt plan: its description's file name '" + fileName +
                         "' is not a plain file name");

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
  std::string output = scratch.file("plan.moeb");
  scratch.file("plan.moeb.tmp"); // left behind only if moec is killed mid-write
  std::vector<std::string> argv = {compiler, description};
  if (source->options())
    for (const flatbuffers::String *option : *source->options())
      argv.push_back(option->str());
  argv.insert(argv.end(), {"--batch", std::to_string(batch), "--seq-len",
                           std::to_string(seqLen), "-o", output});

  auto start = std::chrono::steady_clock::now();
  int exitCode = runProcess(argv, compiler);
  int spawnError = errno;
  double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (exitCode < 0)
    return Status::error("cannot run " + compiler + ": " + std::strerror(spawnError));
  if (exitCode != 0)
    return Status::error("moec could not compile " + planPath + " for " + wanted +
                         " (exit status " + std::to_string(exitCode) +
                         "; its messages are above)");
  std::fprintf(stderr, "moe-run: compiled %s for %s with %s (%.2f s)\n", planPath.c_str(),
               wanted.c_str(), compiler.c_str(), seconds);
  return LoadedPlan::load(output);
}

} // namespace moec::rt
