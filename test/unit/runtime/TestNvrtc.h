// TestNvrtc.h - CUDA C++ to PTX with NVRTC, for the GPU unit tests.
//
// Those tests run on GPU machines that have no LLVM, so they call NVRTC
// directly rather than through moec's codegen library. Without NVRTC at
// build time, compileToPtx says so.
#ifndef MOEC_TEST_UNIT_RUNTIME_TESTNVRTC_H
#define MOEC_TEST_UNIT_RUNTIME_TESTNVRTC_H

#include <string>

#ifdef MOEC_HAVE_NVRTC
#include <nvrtc.h>
#endif

namespace moec::test {

/// PTX for `arch` ("compute_90"), or false with the reason in `error`.
inline bool compileToPtx(const std::string &source, const std::string &arch, std::string &ptx,
                         std::string &error) {
#ifdef MOEC_HAVE_NVRTC
  nvrtcProgram program;
  if (nvrtcCreateProgram(&program, source.c_str(), "test.cu", 0, nullptr, nullptr) !=
      NVRTC_SUCCESS) {
    error = "nvrtcCreateProgram failed";
    return false;
  }
  std::string option = "--gpu-architecture=" + arch;
  const char *options[] = {option.c_str()};
  nvrtcResult compiled = nvrtcCompileProgram(program, 1, options);
  size_t size = 0;
  if (compiled != NVRTC_SUCCESS) {
    nvrtcGetProgramLogSize(program, &size);
    error.assign(size, '\0');
    nvrtcGetProgramLog(program, error.data());
    nvrtcDestroyProgram(&program);
    return false;
  }
  nvrtcGetPTXSize(program, &size);
  ptx.assign(size, '\0');
  nvrtcGetPTX(program, ptx.data());
  nvrtcDestroyProgram(&program);
  return true;
#else
  error = "built without NVRTC";
  return false;
#endif
}

/// Whether compileToPtx can work.
inline bool haveNvrtc() {
#ifdef MOEC_HAVE_NVRTC
  return true;
#else
  return false;
#endif
}

} // namespace moec::test

#endif // MOEC_TEST_UNIT_RUNTIME_TESTNVRTC_H
