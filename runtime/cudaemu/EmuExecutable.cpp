// EmuExecutable.cpp - compiling and loading generated kernels on the host.
#include "runtime/cudaemu/EmuExecutable.h"
#include "runtime/cudaemu/HostGemm.h"
#include "runtime/cpu/CpuStream.h"
#include "runtime/core/Hash.h"
#include "runtime/core/Process.h"

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <dlfcn.h>
#include <fstream>
#include <sstream>
#include <sys/stat.h>
#include <unistd.h>

namespace moec::rt::cudaemu {
namespace {

std::string environment(const char *name) {
  const char *value = std::getenv(name);
  return value ? value : "";
}

/// $MOEC_CACHE_DIR/emu, $XDG_CACHE_HOME/moec/emu or ~/.cache/moec/emu,
/// created; empty when none can be.
std::string cacheDirectory() {
  std::string base = environment("MOEC_CACHE_DIR");
  if (base.empty()) {
    std::string xdg = environment("XDG_CACHE_HOME"), home = environment("HOME");
    if (!xdg.empty())
      base = xdg + "/moec";
    else if (!home.empty())
      base = home + "/.cache/moec";
    else
      return "";
  }
  std::string dir = base + "/emu";
  // mkdir -p
  for (size_t slash = dir.find('/', 1); ; slash = dir.find('/', slash + 1)) {
    std::string prefix = dir.substr(0, slash);
    if (mkdir(prefix.c_str(), 0755) != 0 && errno != EEXIST)
      return "";
    if (slash == std::string::npos)
      break;
  }
  return dir;
}

bool exists(const std::string &path) {
  struct stat info;
  return stat(path.c_str(), &info) == 0;
}

Status writeFile(const std::string &path, const std::string &text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
  if (!out.flush())
    return Status::error("cannot write " + path);
  return Status::ok();
}

/// The translation unit: each kernel in a namespace of its own (their
/// preludes repeat), extern "C" entry points unchanged.
std::string translationUnit(const std::vector<const plan::Kernel *> &kernels) {
  std::ostringstream tu;
  for (size_t i = 0; i < kernels.size(); ++i)
    tu << "namespace moec_kernel_" << i << " {\n"
       << kernels[i]->source()->str() << "\n} // namespace moec_kernel_" << i << "\n";
  return tu.str();
}
} // namespace

StatusOr<std::unique_ptr<EmuExecutable>>
EmuExecutable::load(const std::vector<const plan::Kernel *> &kernels) {
  for (const plan::Kernel *kernel : kernels)
    if (!kernel->source() || kernel->source()->size() == 0)
      return Status::error("kernel '" + kernel->name()->str() +
                           "' carries no source: cuda-emu needs a plan compiled by this moec "
                           "with --target=cuda");
  std::string compiler = environment("MOEC_EMU_CXX");
  if (compiler.empty())
    compiler = "c++";
  // No strict aliasing: kernels store words into arrays of halves (the
  // bf16 tiles), as CUDA code may.
  std::vector<std::string> flags = {"-std=c++17", "-O1", "-fno-strict-aliasing", "-fPIC",
                                    "-shared",    "-w",  "-DMOEC_CUDA_EMU"};
  std::string source = translationUnit(kernels);
  uint64_t key = fnv1a64(source, fnv1a64(kEmuHeader, fnv1a64(compiler)));
  for (const std::string &flag : flags)
    key = fnv1a64(flag, key);
  char name[32];
  std::snprintf(name, sizeof(name), "%016llx", static_cast<unsigned long long>(key));

  std::string dir = cacheDirectory();
  if (dir.empty())
    return Status::error("cuda-emu: no directory to compile kernels in (set MOEC_CACHE_DIR)");
  std::string library = dir + "/" + name + ".so";
  if (!exists(library)) {
    // Unique names for this process's files; the rename publishes the result.
    std::string stem = dir + "/" + name + "." + std::to_string(getpid());
    std::string header = stem + ".h", input = stem + ".cpp", output = stem + ".so";
    if (Status s = writeFile(header, kEmuHeader); !s)
      return s;
    if (Status s = writeFile(input, source); !s)
      return s;
    std::vector<std::string> argv = {compiler};
    argv.insert(argv.end(), flags.begin(), flags.end());
    argv.insert(argv.end(), {"-include", header, "-o", output, input});
    ProcessResult result = runProcess(argv);
    std::remove(header.c_str());
    std::remove(input.c_str());
    if (result.startError)
      return Status::error("cuda-emu: cannot run the host compiler '" + compiler +
                           "': " + std::strerror(result.startError) + " (set MOEC_EMU_CXX)");
    if (result.exitCode != 0) {
      std::remove(output.c_str());
      return Status::error("cuda-emu: " + compiler +
                           " could not compile the plan's kernels (its messages are above)");
    }
    if (std::rename(output.c_str(), library.c_str()) != 0)
      return Status::error("cuda-emu: cannot publish " + library + ": " + std::strerror(errno));
  }

  std::unique_ptr<EmuExecutable> executable(new EmuExecutable());
  executable->library_ = dlopen(library.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!executable->library_)
    return Status::error(std::string("cuda-emu: cannot load the compiled kernels: ") + dlerror());
  for (const plan::Kernel *kernel : kernels) {
    if (!kernel->launches())
      continue;
    for (const plan::Launch *launch : *kernel->launches()) {
      std::string entry = launch->entry()->str();
      if (const plan::GemmCall *call = launch->gemm()) {
        auto gemm = LibraryGemm::fromPlan(*call, entry);
        if (!gemm)
          return gemm.status();
        executable->entries_[entry] = [gemm = *gemm](void **arguments, const unsigned *,
                                                     const unsigned *) {
          runHostGemm(gemm, arguments);
        };
        executable->gemms_[entry] = *gemm;
        continue;
      }
      void *symbol = dlsym(executable->library_, (entry + "_emu").c_str());
      if (!symbol)
        return Status::error("cuda-emu: the compiled kernels lack " + entry);
      executable->entries_[entry] =
          reinterpret_cast<void (*)(void **, const unsigned *, const unsigned *)>(symbol);
    }
  }
  return executable;
}

EmuExecutable::~EmuExecutable() {
  if (library_)
    dlclose(library_);
}

Status EmuExecutable::launch(hal::Stream &stream, const std::string &kernel,
                             const hal::LaunchConfig &config, void **arguments) {
  auto it = entries_.find(kernel);
  if (it == entries_.end())
    return Status::error("cuda-emu: no kernel '" + kernel + "' in the executable");
  auto *cpuStream = dynamic_cast<cpu::CpuStream *>(&stream);
  if (!cpuStream)
    return Status::error("cuda-emu kernels run on cuda-emu streams only");
  auto entry = it->second;
  if (auto gemm = gemms_.find(kernel);
      gemm != gemms_.end() && !gemm->second.argumentsWithin(config.argumentCount))
    return Status::error("cuda-emu: library GEMM " + kernel + " names an argument past the " +
                         std::to_string(config.argumentCount) + " its step has");
  if (!cpuStream->capturing()) {
    entry(arguments, config.grid, config.block);
    return Status::ok();
  }
  // A recorded launch keeps its arguments' values, as cuLaunchKernel does.
  if (config.argumentCount == 0)
    return Status::error("cuda-emu: launch of '" + kernel +
                         "' recorded without its argument count");
  std::vector<void *> values(config.argumentCount);
  for (unsigned k = 0; k < config.argumentCount; ++k)
    values[k] = *static_cast<void *const *>(arguments[k]);
  cpuStream->run([entry, values, config]() mutable {
    std::vector<void *> slots(values.size());
    for (size_t k = 0; k < values.size(); ++k)
      slots[k] = &values[k];
    entry(slots.data(), config.grid, config.block);
  });
  return Status::ok();
}

} // namespace moec::rt::cudaemu
