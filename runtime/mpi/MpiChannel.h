// MpiChannel.h - collectives among the processes of an MPI job (CPU memory).
//
// Built into its own shared library, libmoec-mpi.so, that moe-run loads only
// when mpirun or srun started it (OpenChannel.h): moe-run itself does not
// link MPI, and runs where no MPI is installed.
#ifndef MOEC_RUNTIME_MPI_MPICHANNEL_H
#define MOEC_RUNTIME_MPI_MPICHANNEL_H

#include "runtime/hal/Channel.h"

#include <cstddef>

/// The library's one entry point: initialises MPI and returns a channel over
/// every process of the job (null, with a message in `error`, on failure).
/// A collective that waits more than `timeoutSeconds` for the other ranks
/// fails with an error naming the ranks that did not reach it.
extern "C" moec::rt::hal::Channel *moecCreateMpiChannel(double timeoutSeconds, char *error,
                                                        size_t errorBytes);

#endif // MOEC_RUNTIME_MPI_MPICHANNEL_H
