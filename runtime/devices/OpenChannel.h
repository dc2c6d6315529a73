// OpenChannel.h - the channel of this process: one rank, or an MPI job.
#ifndef MOEC_RUNTIME_DEVICES_OPENCHANNEL_H
#define MOEC_RUNTIME_DEVICES_OPENCHANNEL_H

#include "runtime/core/Status.h"
#include "runtime/hal/Channel.h"

#include <memory>
#include <string>

namespace moec::rt {

/// `name` is "local" (one rank), "mpi" (every process of the MPI job that
/// started this one: libmoec-mpi.so, beside the executable, is loaded),
/// "nccl" (GPU memory through NCCL; the ranks meet through MPI under mpirun
/// or srun, else through torchrun's RANK, WORLD_SIZE, MASTER_ADDR and
/// MASTER_PORT over TCP, else the run has one rank) or "auto": mpi when
/// mpirun or srun started the process (their environment:
/// OMPI_COMM_WORLD_SIZE, PMI_SIZE or PMIX_RANK), nccl under torchrun, else
/// local. Host collectives that wait more than `timeoutSeconds` for the
/// other ranks fail.
StatusOr<std::unique_ptr<hal::Channel>> openChannel(const std::string &name, double timeoutSeconds);

/// Whether this process runs under mpirun or srun (their environment).
bool launchedByMpi();
/// Whether torchrun (or a launcher like it) set RANK and a WORLD_SIZE above 1.
bool launchedByTorchrun();
/// This process's rank among those of its node (LOCAL_RANK,
/// OMPI_COMM_WORLD_LOCAL_RANK, SLURM_LOCALID or MPI_LOCALRANKID; 0 when
/// none is set): the GPU it uses.
int localRankFromEnvironment();

} // namespace moec::rt

#endif // MOEC_RUNTIME_DEVICES_OPENCHANNEL_H
