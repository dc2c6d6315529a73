# Detects the CUDA toolkit (headers, NVRTC, NCCL, cuBLAS). Nothing here needs a
# GPU or a driver: the driver API is loaded at run time with dlopen.

set(MOEC_HAVE_CUDA OFF)
set(MOEC_HAVE_NVRTC OFF)
if(MOEC_ENABLE_CUDA)
  find_package(CUDAToolkit QUIET)
  if(CUDAToolkit_FOUND)
    set(MOEC_HAVE_CUDA ON)
    if(CUDA_nvrtc_LIBRARY)
      set(MOEC_HAVE_NVRTC ON)
    endif()
    find_program(MOEC_PTXAS ptxas HINTS ${CUDAToolkit_BIN_DIR})
    message(STATUS "CUDA toolkit ${CUDAToolkit_VERSION} at ${CUDAToolkit_BIN_DIR}/.. "
                   "(nvrtc: ${MOEC_HAVE_NVRTC}, ptxas: ${MOEC_PTXAS})")
  else()
    message(STATUS "CUDA toolkit not found: CUDA-dependent tests will be skipped")
  endif()
else()
  message(STATUS "CUDA disabled (MOEC_ENABLE_CUDA=OFF)")
endif()
