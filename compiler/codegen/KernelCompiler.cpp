//===- KernelCompiler.cpp - generated kernels to PTX and cubin, cached ----===//
#include "compiler/codegen/KernelCompiler.h"
#include "compiler/codegen/NvrtcCompiler.h"

#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/Process.h"
#include "llvm/Support/ThreadPool.h"
#include "llvm/Support/raw_ostream.h"
#include "llvm/Support/xxhash.h"

#include <atomic>
#include <mutex>
#include <optional>

using namespace llvm;

namespace moec::codegen {
namespace {
/// Writes `bytes` to `path` through a temporary file and a rename, so that a
/// concurrent moec never reads half a file.
void writeAtomically(const Twine &path, StringRef bytes) {
  SmallString<256> temp;
  if (sys::fs::createUniqueFile(path + ".%%%%%%.tmp", temp))
    return;
  {
    std::error_code ec;
    raw_fd_ostream os(temp, ec, sys::fs::OF_None);
    if (ec)
      return;
    os << bytes;
    if (os.has_error()) {
      os.clear_error();
      sys::fs::remove(temp);
      return;
    }
  }
  if (sys::fs::rename(temp, path))
    sys::fs::remove(temp);
}

std::optional<std::string> readFile(const Twine &path) {
  auto buffer = MemoryBuffer::getFile(path, /*IsText=*/false, /*RequiresNullTerminator=*/false);
  if (!buffer)
    return std::nullopt;
  return (*buffer)->getBuffer().str();
}
} // namespace

std::string KernelCompiler::defaultCacheDir() {
  if (std::optional<std::string> dir = sys::Process::GetEnv("MOEC_CACHE_DIR"))
    return *dir;
  SmallString<256> path;
  if (std::optional<std::string> xdg = sys::Process::GetEnv("XDG_CACHE_HOME"); xdg && !xdg->empty())
    path = *xdg;
  else if (!sys::path::home_directory(path))
    return "";
  else
    sys::path::append(path, ".cache");
  sys::path::append(path, "moec", "kernels");
  return std::string(path);
}

std::string KernelCompiler::cacheKey(const CudaKernel &kernel) const {
  std::string key = kernel.source + "\n" + gpuArch_ + "\nnvrtc " + nvrtcVersion();
  return kernel.name + "-" + gpuArch_ + "-" +
         utohexstr(xxh3_64bits(key), /*LowerCase=*/true);
}

Expected<CompiledKernel> KernelCompiler::compileOne(const CudaKernel &kernel) {
  SmallString<256> base;
  if (!cacheDir_.empty()) {
    base = cacheDir_;
    sys::path::append(base, cacheKey(kernel));
    std::optional<std::string> ptx = readFile(base + ".ptx");
    std::optional<std::string> cubin = readFile(base + ".cubin");
    if (ptx && cubin) {
      ++hits_;
      return CompiledKernel{*ptx, std::vector<uint8_t>(cubin->begin(), cubin->end())};
    }
  }
  std::string virtualArch = "compute_" + StringRef(gpuArch_).drop_front(3).str();
  Expected<std::string> ptx = compileCudaToPtx(kernel.source, kernel.name + ".cu", virtualArch);
  if (!ptx)
    return ptx.takeError();
  CompiledKernel compiled{*ptx, {}};
  if (!findPtxas().empty())
    if (Error error = assembleWithPtxas(*ptx, gpuArch_, &compiled.cubin))
      return createStringError(inconvertibleErrorCode(), "kernel %s: %s",
                               kernel.name.c_str(), toString(std::move(error)).c_str());
  if (!base.empty() && !sys::fs::create_directories(cacheDir_)) {
    writeAtomically(base + ".ptx", compiled.ptx);
    writeAtomically(base + ".cubin",
                    StringRef(reinterpret_cast<const char *>(compiled.cubin.data()),
                              compiled.cubin.size()));
  }
  return compiled;
}

Expected<std::vector<CompiledKernel>> KernelCompiler::compile(ArrayRef<CudaKernel> kernels) {
  std::vector<std::optional<CompiledKernel>> results(kernels.size());
  std::vector<std::string> errors(kernels.size());
  std::atomic<unsigned> hits{0};
  {
    // NVRTC takes about a second per kernel: compile them side by side.
    DefaultThreadPool pool(hardware_concurrency());
    std::mutex mutex;
    for (size_t i = 0; i < kernels.size(); ++i)
      pool.async([&, i] {
        KernelCompiler worker(gpuArch_, cacheDir_);
        Expected<CompiledKernel> compiled = worker.compileOne(kernels[i]);
        hits += worker.hits_;
        std::lock_guard<std::mutex> lock(mutex);
        if (compiled)
          results[i] = std::move(*compiled);
        else
          errors[i] = toString(compiled.takeError());
      });
    pool.wait();
  }
  hits_ += hits;
  std::vector<CompiledKernel> out;
  for (size_t i = 0; i < kernels.size(); ++i) {
    if (!results[i])
      return createStringError(inconvertibleErrorCode(), "%s", errors[i].c_str());
    out.push_back(std::move(*results[i]));
  }
  return out;
}

} // namespace moec::codegen
