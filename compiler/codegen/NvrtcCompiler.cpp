//===- NvrtcCompiler.cpp - CUDA C++ to PTX with NVRTC ---------------------===//
#include "compiler/codegen/NvrtcCompiler.h"

#include "llvm/ADT/SmallString.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Program.h"
#include "llvm/Support/raw_ostream.h"

#if MOEC_HAVE_NVRTC
#include <nvrtc.h>
#endif

using namespace llvm;

namespace moec::codegen {

bool isNvrtcAvailable() { return MOEC_HAVE_NVRTC + 0 == 1; }

std::string nvrtcVersion() {
#if MOEC_HAVE_NVRTC
  int major = 0, minor = 0;
  if (::nvrtcVersion(&major, &minor) == NVRTC_SUCCESS)
    return std::to_string(major) + "." + std::to_string(minor);
#endif
  return "none";
}

#if MOEC_HAVE_NVRTC
static Error nvrtcError(nvrtcResult result, StringRef what, StringRef log) {
  return createStringError(inconvertibleErrorCode(), "NVRTC %s failed: %s\n%s",
                           what.str().c_str(), nvrtcGetErrorString(result),
                           log.str().c_str());
}

Expected<std::string> compileCudaToPtx(StringRef source, StringRef name,
                                       StringRef arch) {
  nvrtcProgram program;
  std::string sourceText = source.str(), nameText = name.str();
  if (nvrtcResult result =
          nvrtcCreateProgram(&program, sourceText.c_str(), nameText.c_str(), 0,
                             nullptr, nullptr);
      result != NVRTC_SUCCESS)
    return nvrtcError(result, "nvrtcCreateProgram", "");

  std::string archOption = "--gpu-architecture=" + arch.str();
  const char *options[] = {archOption.c_str(), "--std=c++17"};
  nvrtcResult compiled = nvrtcCompileProgram(program, 2, options);

  size_t logSize = 0;
  nvrtcGetProgramLogSize(program, &logSize);
  std::string log(logSize, '\0');
  if (logSize)
    nvrtcGetProgramLog(program, log.data());

  if (compiled != NVRTC_SUCCESS) {
    nvrtcDestroyProgram(&program);
    return nvrtcError(compiled, "compilation of " + nameText, log);
  }
  size_t ptxSize = 0;
  nvrtcGetPTXSize(program, &ptxSize);
  std::string ptx(ptxSize, '\0');
  nvrtcGetPTX(program, ptx.data());
  nvrtcDestroyProgram(&program);
  if (!ptx.empty() && ptx.back() == '\0')
    ptx.pop_back();
  return ptx;
}
#else
Expected<std::string> compileCudaToPtx(StringRef, StringRef name, StringRef) {
  return createStringError(inconvertibleErrorCode(),
                           "cannot compile %s: moec was built without NVRTC "
                           "(no CUDA toolkit found at configure time)",
                           name.str().c_str());
}
#endif

std::string findPtxas() {
  StringRef configured = MOEC_PTXAS_PATH;
  if (!configured.empty() && sys::fs::can_execute(configured))
    return configured.str();
  if (ErrorOr<std::string> onPath = sys::findProgramByName("ptxas"))
    return *onPath;
  return "";
}

Error assembleWithPtxas(StringRef ptx, StringRef gpuArch, std::vector<uint8_t> *cubin) {
  std::string ptxas = findPtxas();
  if (ptxas.empty())
    return createStringError(inconvertibleErrorCode(), "ptxas not found");

  SmallString<128> input, output, log;
  if (std::error_code ec =
          sys::fs::createTemporaryFile("moec-kernel", "ptx", input))
    return errorCodeToError(ec);
  if (std::error_code ec =
          sys::fs::createTemporaryFile("moec-kernel", "cubin", output))
    return errorCodeToError(ec);
  if (std::error_code ec = sys::fs::createTemporaryFile("moec-ptxas", "log", log))
    return errorCodeToError(ec);
  {
    std::error_code ec;
    raw_fd_ostream os(input, ec);
    if (ec)
      return errorCodeToError(ec);
    os << ptx;
  }
  std::string archFlag = "-arch=" + gpuArch.str();
  SmallVector<StringRef> args = {ptxas, archFlag, input, "-o", output};
  std::optional<StringRef> redirects[] = {std::nullopt, StringRef(log),
                                          StringRef(log)};
  std::string message;
  int status = sys::ExecuteAndWait(ptxas, args, std::nullopt, redirects, 0, 0,
                                   &message);
  std::string logText;
  if (auto buffer = MemoryBuffer::getFile(log))
    logText = (*buffer)->getBuffer().str();
  if (status == 0 && cubin) {
    auto binary = MemoryBuffer::getFile(output, /*IsText=*/false, /*RequiresNullTerminator=*/false);
    if (!binary)
      status = -1, message = "ptxas wrote no cubin";
    else
      cubin->assign((*binary)->getBufferStart(), (*binary)->getBufferEnd());
  }
  sys::fs::remove(input);
  sys::fs::remove(output);
  sys::fs::remove(log);
  if (status != 0)
    return createStringError(inconvertibleErrorCode(),
                             "ptxas %s failed (%d) %s\n%s", archFlag.c_str(),
                             status, message.c_str(), logText.c_str());
  return Error::success();
}

} // namespace moec::codegen
