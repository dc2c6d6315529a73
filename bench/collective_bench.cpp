// collective_bench.cpp - the bandwidth of a channel's all-reduce and
// all-to-all between the ranks of a run, on device memory.
//
//   [mpirun -np N | torchrun-style env] collective_bench [--channel nccl|mpi|local]
//       [--device cuda|cpu] [--mib 1,16,256] [--iterations N]
//
// Rank 0 prints one JSON object: per size, the median seconds of an
// in-place f32 all-reduce and of an all-to-all (equal pieces), the
// algorithm bandwidth (bytes / time) and the bus bandwidth NCCL's tests
// report (all-reduce: 2(n-1)/n of it, all-to-all: (n-1)/n), so numbers
// compare with nccl-tests. At world size 1 a collective is a local copy (or
// nothing): its numbers say that the channel runs, not how fast a network is.
#include "runtime/cpu/CpuDevice.h"
#include "runtime/cuda/CudaDevice.h"
#include "runtime/devices/OpenChannel.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <sstream>
#include <string>
#include <vector>

using namespace moec::rt;

namespace {
hal::Channel *openedChannel = nullptr;

/// Reports the error and ends every rank (the others would wait for this
/// one in their next collective).
int fail(const std::string &message) {
  std::fprintf(stderr, "collective_bench: error: %s\n", message.c_str());
  if (openedChannel && openedChannel->size() > 1)
    openedChannel->abort(1);
  return 1;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

/// Median seconds of `iterations` runs of `collective` (each waited for),
/// after two warm-up runs.
template <typename F> StatusOr<double> timeIt(hal::Stream &stream, int iterations, F collective) {
  std::vector<double> times;
  for (int i = -2; i < iterations; ++i) {
    auto start = std::chrono::steady_clock::now();
    if (Status s = collective(); !s)
      return s;
    if (Status s = stream.synchronize(); !s)
      return s;
    if (i >= 0)
      times.push_back(
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  return median(times);
}
} // namespace

int main(int argc, char **argv) {
  std::string channelName = "nccl", deviceName = "cuda", sizes = "1,16,256";
  int iterations = 10;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    auto value = [&]() -> const char * { return i + 1 < argc ? argv[++i] : nullptr; };
    const char *v = nullptr;
    if (arg == "--channel" && (v = value()))
      channelName = v;
    else if (arg == "--device" && (v = value()))
      deviceName = v;
    else if (arg == "--mib" && (v = value()))
      sizes = v;
    else if (arg == "--iterations" && (v = value()) && std::atoi(v) > 0)
      iterations = std::atoi(v);
    else
      return fail("usage: collective_bench [--channel nccl|mpi|local] [--device cuda|cpu] "
                  "[--mib 1,16,256] [--iterations N]");
  }
  auto channel = openChannel(channelName, 300);
  if (!channel)
    return fail(channel.status().message());
  openedChannel = channel->get();
  std::unique_ptr<hal::Device> device;
  if (deviceName == "cuda") {
    auto gpu = cuda::CudaDevice::createForLocalRank(localRankFromEnvironment());
    if (!gpu)
      return fail(gpu.status().message());
    device = std::move(*gpu);
  } else if (deviceName == "cpu") {
    device = cpu::CpuDevice::create();
  } else {
    return fail("--device must be cuda or cpu, not '" + deviceName + "'");
  }
  hal::Channel &ranks = **channel;
  if (!ranks.reaches(device->kind()))
    return fail("the " + channelName + " channel cannot move the memory of the " + deviceName +
                " device (nccl moves GPU memory, mpi host memory)");
  hal::Stream &stream = device->defaultStream();
  const size_t n = static_cast<size_t>(ranks.size());
  std::ostringstream json;
  json << "{\"channel\": \"" << channelName << "\", \"device\": \"" << device->description()
       << "\", \"ranks\": " << n << ", \"sizes\": [";
  std::stringstream list(sizes);
  std::string item;
  bool first = true;
  while (std::getline(list, item, ',')) {
    size_t mib = std::strtoul(item.c_str(), nullptr, 10);
    size_t bytes = mib << 20;
    if (!bytes || bytes % (4 * n))
      return fail("--mib " + item + ": give sizes in MiB that split into f32 pieces per rank");
    auto send = device->allocate(bytes), receive = device->allocate(bytes);
    if (!send || !receive)
      return fail("allocating " + item +
                  " MiB: " + (send ? receive.status() : send.status()).message());
    void *a = (*send)->address(), *b = (*receive)->address();
    if (Status s = stream.fillZero(a, bytes); !s)
      return fail(s.message());
    auto reduce = timeIt(stream, iterations, [&] {
      return ranks.allReduce(stream, a, bytes / 4, DType::f32, hal::Reduction::sum);
    });
    if (!reduce)
      return fail("all-reduce of " + item + " MiB: " + reduce.status().message());
    std::vector<size_t> offsets(n), pieces(n, bytes / n);
    for (size_t q = 0; q < n; ++q)
      offsets[q] = q * (bytes / n);
    auto exchange = timeIt(stream, iterations, [&] {
      return ranks.allToAll(stream, a, offsets, pieces, b, offsets, pieces);
    });
    if (!exchange)
      return fail("all-to-all of " + item + " MiB: " + exchange.status().message());
    double gb = bytes / 1e9, frac = double(n - 1) / double(n);
    char row[512];
    std::snprintf(row, sizeof(row),
                  "%s{\"mib\": %zu, \"all_reduce_s\": %.6g, \"all_reduce_algbw_gbs\": %.4g, "
                  "\"all_reduce_busbw_gbs\": %.4g, \"all_to_all_s\": %.6g, "
                  "\"all_to_all_algbw_gbs\": %.4g, \"all_to_all_busbw_gbs\": %.4g}",
                  first ? "" : ", ", mib, *reduce, gb / *reduce, gb / *reduce * 2 * frac, *exchange,
                  gb / *exchange, gb / *exchange * frac);
    json << row;
    first = false;
  }
  json << "]}";
  if (ranks.rank() == 0)
    std::printf("%s\n", json.str().c_str());
  return 0;
}
