// OpenChannel.cpp - the channel of this process: one rank, or an MPI job.
#include "runtime/devices/OpenChannel.h"
#include "runtime/core/Process.h"
#include "runtime/hal/LocalChannel.h"

#include <dlfcn.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

namespace moec::rt {
namespace {

StatusOr<std::unique_ptr<hal::Channel>> openMpiChannel(double timeoutSeconds) {
  // Beside moe-run, where the build puts it; else on the loader's path.
  std::string directory = executableDirectory();
  std::string path = directory.empty() ? "libmoec-mpi.so" : directory + "/libmoec-mpi.so";
  // RTLD_GLOBAL: Open MPI loads its own components, which need libmpi's symbols.
  void *library = dlopen(path.c_str(), RTLD_NOW | RTLD_GLOBAL);
  if (!library)
    return Status::error(std::string("the mpi channel: cannot load ") + path + " (" + dlerror() +
                         "); build moec where MPI is installed (apt-get install "
                         "libopenmpi-dev openmpi-bin)");
  using Create = hal::Channel *(*)(double, char *, size_t);
  auto create = reinterpret_cast<Create>(dlsym(library, "moecCreateMpiChannel"));
  if (!create)
    return Status::error(path + " has no moecCreateMpiChannel: rebuild it with this moe-run");
  char error[512] = {0};
  hal::Channel *channel = create(timeoutSeconds, error, sizeof(error));
  if (!channel)
    return Status::error(std::string("the mpi channel: ") + error);
  // The library stays loaded: MPI is finalised when the channel goes.
  return std::unique_ptr<hal::Channel>(channel);
}

} // namespace

bool launchedByMpi() {
  for (const char *variable : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK"})
    if (std::getenv(variable))
      return true;
  return false;
}

StatusOr<std::unique_ptr<hal::Channel>> openChannel(const std::string &name,
                                                    double timeoutSeconds) {
  if (name == "local" || (name == "auto" && !launchedByMpi()))
    return std::unique_ptr<hal::Channel>(new hal::LocalChannel());
  if (name == "mpi" || name == "auto")
    return openMpiChannel(timeoutSeconds);
  return Status::error("--channel must be auto, local or mpi, but is '" + name + "'");
}

} // namespace moec::rt
