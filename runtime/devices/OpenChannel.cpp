// OpenChannel.cpp - the channel of this process: one rank, or an MPI job.
#include "runtime/devices/OpenChannel.h"
#include "runtime/core/Process.h"
#include "runtime/cuda/NcclChannel.h"
#include "runtime/hal/LocalChannel.h"
#include "runtime/hal/TcpChannel.h"

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

/// The channel that carries host memory between the processes of this run:
/// MPI's under mpirun or srun, TCP under torchrun's environment, else one
/// rank's.
StatusOr<std::unique_ptr<hal::Channel>> openHostChannel(double timeoutSeconds) {
  if (launchedByMpi())
    return openMpiChannel(timeoutSeconds);
  auto rendezvous = hal::rendezvousFromEnvironment();
  if (!rendezvous)
    return rendezvous.status();
  if (*rendezvous && (*rendezvous)->size > 1) {
    auto tcp = hal::TcpChannel::connect(**rendezvous, timeoutSeconds);
    if (!tcp)
      return tcp.status();
    return std::unique_ptr<hal::Channel>(std::move(*tcp));
  }
  return std::unique_ptr<hal::Channel>(new hal::LocalChannel());
}

} // namespace

bool launchedByTorchrun() {
  const char *size = std::getenv("WORLD_SIZE");
  return size && std::getenv("RANK") && std::atoi(size) > 1;
}

int localRankFromEnvironment() {
  for (const char *variable :
       {"LOCAL_RANK", "OMPI_COMM_WORLD_LOCAL_RANK", "SLURM_LOCALID", "MPI_LOCALRANKID"})
    if (const char *text = std::getenv(variable); text && *text) {
      char *end = nullptr;
      long rank = std::strtol(text, &end, 10);
      if (*end == 0 && rank >= 0 && rank < 1 << 16)
        return static_cast<int>(rank);
    }
  return 0;
}

bool launchedByMpi() {
  for (const char *variable : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK"})
    if (std::getenv(variable))
      return true;
  return false;
}

StatusOr<std::unique_ptr<hal::Channel>> openChannel(const std::string &name,
                                                    double timeoutSeconds) {
  if (name == "auto")
    return openChannel(launchedByMpi()        ? "mpi"
                       : launchedByTorchrun() ? "nccl"
                                              : "local",
                       timeoutSeconds);
  if (name == "local")
    return std::unique_ptr<hal::Channel>(new hal::LocalChannel());
  if (name == "mpi")
    return openMpiChannel(timeoutSeconds);
  if (name == "nccl") {
    auto host = openHostChannel(timeoutSeconds);
    if (!host)
      return host.status();
    return cuda::openNcclChannel(std::move(*host));
  }
  return Status::error("--channel must be auto, local, mpi or nccl, but is '" + name + "'");
}

} // namespace moec::rt
