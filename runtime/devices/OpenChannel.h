// OpenChannel.h - the channel of this process: one rank, or an MPI job.
#ifndef MOEC_RUNTIME_DEVICES_OPENCHANNEL_H
#define MOEC_RUNTIME_DEVICES_OPENCHANNEL_H

#include "runtime/core/Status.h"
#include "runtime/hal/Channel.h"

#include <memory>
#include <string>

namespace moec::rt {

/// `name` is "local" (one rank), "mpi" (every process of the MPI job that
/// started this one: libmoec-mpi.so, beside the executable, is loaded) or
/// "auto": mpi when mpirun or srun started the process (their environment:
/// OMPI_COMM_WORLD_SIZE, PMI_SIZE or PMIX_RANK), else local. Collectives
/// that wait more than `timeoutSeconds` for the other ranks fail.
StatusOr<std::unique_ptr<hal::Channel>> openChannel(const std::string &name, double timeoutSeconds);

/// Whether this process runs under mpirun or srun (their environment).
bool launchedByMpi();

} // namespace moec::rt

#endif // MOEC_RUNTIME_DEVICES_OPENCHANNEL_H
