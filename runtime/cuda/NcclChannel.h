// NcclChannel.h - collectives between GPUs through NCCL, loaded at run time.
#ifndef MOEC_RUNTIME_CUDA_NCCLCHANNEL_H
#define MOEC_RUNTIME_CUDA_NCCLCHANNEL_H

#include "runtime/hal/Channel.h"

#include <memory>

namespace moec::rt::cuda {

/// The channel of a run on GPUs: NCCL (dlopen of `MOEC_NCCL`, else
/// libnccl.so.2) moves device memory, queued on the CUDA stream like the
/// kernels around it; `host` (the mpi channel under mpirun or srun, the tcp
/// channel under torchrun, the local channel for one rank) carries host
/// memory: NCCL's unique id from rank 0 to the others when the first
/// collective forms the communicator (the GPU's context current by then),
/// and moe-run's setup checks. The error says why NCCL cannot be loaded.
StatusOr<std::unique_ptr<hal::Channel>> openNcclChannel(std::unique_ptr<hal::Channel> host);

} // namespace moec::rt::cuda

#endif // MOEC_RUNTIME_CUDA_NCCLCHANNEL_H
