// TcpChannel.cpp - ranks started by torchrun or Slurm meet over TCP.
#include "runtime/hal/TcpChannel.h"

#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <thread>

namespace moec::rt::hal {
namespace {

using Clock = std::chrono::steady_clock;

/// The first message on every connection: who connects, in which run.
struct Hello {
  uint32_t magic = 0x6d6f6563; // "moec"
  uint32_t rank = 0, size = 0;
};

Clock::time_point deadlineAfter(double seconds) {
  return Clock::now() +
         std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
}

/// Waits until `fd` is ready for `events` or the deadline passes.
bool waitReady(int fd, short events, Clock::time_point deadline) {
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0)
      return false;
    pollfd p{fd, events, 0};
    int n = ::poll(&p, 1, static_cast<int>(std::min<int64_t>(left.count(), 1000)));
    if (n > 0)
      return true;
    if (n < 0 && errno != EINTR)
      return false;
  }
}

/// All `bytes` of `data` to (or from) `fd` before the deadline; the error
/// says what happened ("" on success).
std::string transfer(int fd, void *data, size_t bytes, bool sending, Clock::time_point deadline) {
  auto *at = static_cast<uint8_t *>(data);
  while (bytes) {
    if (!waitReady(fd, sending ? POLLOUT : POLLIN, deadline))
      return "timed out";
    ssize_t n = sending ? ::send(fd, at, bytes, MSG_NOSIGNAL | MSG_DONTWAIT)
                        : ::recv(fd, at, bytes, MSG_DONTWAIT);
    if (n == 0)
      return "the connection closed (the rank ended)";
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN)
        continue;
      return std::strerror(errno);
    }
    at += n;
    bytes -= static_cast<size_t>(n);
  }
  return "";
}

std::string where(const Rendezvous &r) { return r.address + ":" + std::to_string(r.port); }

std::optional<long> parseInteger(const char *text) {
  if (!text || !*text)
    return std::nullopt;
  char *end = nullptr;
  errno = 0;
  long value = std::strtol(text, &end, 10);
  if (errno || *end)
    return std::nullopt;
  return value;
}

} // namespace

StatusOr<std::unique_ptr<Rendezvous>> rendezvousFromEnvironment() {
  const char *worldSize = std::getenv("WORLD_SIZE");
  if (!worldSize)
    return std::unique_ptr<Rendezvous>();
  auto r = std::make_unique<Rendezvous>();
  auto number = [](const char *name, long low, long high) -> StatusOr<long> {
    const char *text = std::getenv(name);
    std::optional<long> value = parseInteger(text);
    if (!value || *value < low || *value > high)
      return Status::error(std::string("the environment variable ") + name + " must be a whole " +
                           "number from " + std::to_string(low) + " to " + std::to_string(high) +
                           ", but is " + (text ? "'" + std::string(text) + "'" : "not set") +
                           " (torchrun and Slurm set RANK, WORLD_SIZE, MASTER_ADDR and "
                           "MASTER_PORT)");
    return *value;
  };
  auto size = number("WORLD_SIZE", 1, 1 << 20);
  if (!size)
    return size.status();
  auto rank = number("RANK", 0, *size - 1);
  if (!rank)
    return rank.status();
  r->size = static_cast<int>(*size);
  r->rank = static_cast<int>(*rank);
  if (r->size == 1)
    return r; // no one to meet
  const char *address = std::getenv("MASTER_ADDR");
  if (!address || !*address)
    return Status::error("the environment variable MASTER_ADDR (rank 0's host) is not set; "
                         "torchrun and Slurm set RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT");
  r->address = address;
  // torchrun's own store listens on MASTER_PORT: the ranks meet one port
  // above it, or where MOEC_RENDEZVOUS_PORT says.
  if (std::getenv("MOEC_RENDEZVOUS_PORT")) {
    auto port = number("MOEC_RENDEZVOUS_PORT", 1, 65535);
    if (!port)
      return port.status();
    r->port = static_cast<int>(*port);
  } else {
    auto port = number("MASTER_PORT", 1, 65534);
    if (!port)
      return port.status();
    r->port = static_cast<int>(*port) + 1;
  }
  return r;
}

StatusOr<std::unique_ptr<TcpChannel>> TcpChannel::connect(const Rendezvous &r,
                                                          double timeoutSeconds) {
  std::unique_ptr<TcpChannel> channel(new TcpChannel(r.rank, r.size, timeoutSeconds));
  channel->sockets_.assign(r.rank == 0 ? r.size : 1, -1);
  if (r.size == 1)
    return channel;
  const auto deadline = deadlineAfter(timeoutSeconds);
  char text[32];
  std::snprintf(text, sizeof(text), "%g", timeoutSeconds);
  const std::string seconds = text;
  if (r.rank == 0) {
    // Listen on every interface: MASTER_ADDR names this host for the others.
    int listener = ::socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
    bool ipv6 = listener >= 0;
    if (!ipv6)
      listener = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (listener < 0)
      return Status::error(std::string("rank 0 cannot open a socket: ") + std::strerror(errno));
    int on = 1, off = 0;
    ::setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
    sockaddr_storage address{};
    socklen_t length;
    if (ipv6) {
      ::setsockopt(listener, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof(off));
      auto *a = reinterpret_cast<sockaddr_in6 *>(&address);
      a->sin6_family = AF_INET6;
      a->sin6_addr = in6addr_any;
      a->sin6_port = htons(static_cast<uint16_t>(r.port));
      length = sizeof(sockaddr_in6);
    } else {
      auto *a = reinterpret_cast<sockaddr_in *>(&address);
      a->sin_family = AF_INET;
      a->sin_addr.s_addr = htonl(INADDR_ANY);
      a->sin_port = htons(static_cast<uint16_t>(r.port));
      length = sizeof(sockaddr_in);
    }
    if (::bind(listener, reinterpret_cast<sockaddr *>(&address), length) != 0 ||
        ::listen(listener, r.size) != 0) {
      std::string why = std::strerror(errno);
      ::close(listener);
      return Status::error("rank 0 cannot listen on port " + std::to_string(r.port) +
                           " (MASTER_PORT + 1, or MOEC_RENDEZVOUS_PORT): " + why);
    }
    for (int joined = 1; joined < r.size; ++joined) {
      if (!waitReady(listener, POLLIN, deadline)) {
        ::close(listener);
        std::string missing;
        for (int q = 1; q < r.size; ++q)
          if (channel->sockets_[q] < 0)
            missing += (missing.empty() ? "" : ", ") + std::to_string(q);
        return Status::error("rank 0 waited " + seconds + " s on port " + std::to_string(r.port) +
                             " for the other ranks; rank(s) " + missing + " never connected");
      }
      int fd = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) {
        --joined;
        continue;
      }
      // A rank greets at once; something else (a port scan, a health check)
      // that stays silent or says another thing is dropped.
      Hello hello;
      std::string greeting = transfer(fd, &hello, sizeof(hello), false,
                                      std::min(deadline, Clock::now() + std::chrono::seconds(10)));
      if (!greeting.empty() || hello.magic != Hello().magic) {
        ::close(fd);
        --joined;
        continue;
      }
      std::string failed;
      if (hello.size != uint32_t(r.size))
        failed = "a rank of a run of " + std::to_string(hello.size) +
                 " ranks connected (WORLD_SIZE differs between the ranks)";
      else if (hello.rank == 0 || hello.rank >= uint32_t(r.size) ||
               channel->sockets_[hello.rank] >= 0)
        failed = "rank " + std::to_string(hello.rank) +
                 " connected twice or is out of range (RANK differs from what the launcher gave)";
      if (!failed.empty()) {
        ::close(fd);
        ::close(listener);
        return Status::error("rank 0 at port " + std::to_string(r.port) + ": " + failed);
      }
      ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
      channel->sockets_[hello.rank] = fd;
    }
    ::close(listener);
    return channel;
  }
  // Another rank: connect to rank 0, retrying while it is not listening yet.
  addrinfo hints{}, *found = nullptr;
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  if (int code = ::getaddrinfo(r.address.c_str(), std::to_string(r.port).c_str(), &hints, &found);
      code != 0)
    return Status::error("rank " + std::to_string(r.rank) + " cannot resolve MASTER_ADDR '" +
                         r.address + "': " + ::gai_strerror(code));
  std::string lastError = "nothing listens there";
  int fd = -1;
  while (fd < 0 && Clock::now() < deadline) {
    for (addrinfo *a = found; a && fd < 0; a = a->ai_next) {
      // Non-blocking, so that an unreachable host waits no longer than the
      // deadline.
      int s = ::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, a->ai_protocol);
      if (s < 0)
        continue;
      int code = ::connect(s, a->ai_addr, a->ai_addrlen) == 0 ? 0 : errno;
      if (code == EINPROGRESS) {
        code = ETIMEDOUT;
        if (waitReady(s, POLLOUT, std::min(deadline, Clock::now() + std::chrono::seconds(5)))) {
          socklen_t length = sizeof(code);
          ::getsockopt(s, SOL_SOCKET, SO_ERROR, &code, &length);
        }
      }
      if (code == 0) {
        fd = s;
      } else {
        lastError = std::strerror(code);
        ::close(s);
      }
    }
    if (fd < 0)
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ::freeaddrinfo(found);
  if (fd < 0)
    return Status::error("rank " + std::to_string(r.rank) + " could not reach rank 0 at " +
                         where(r) + " within " + seconds + " s (" + lastError +
                         "); is rank 0 running, with the same MASTER_ADDR and MASTER_PORT?");
  int on = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
  channel->sockets_[0] = fd;
  Hello hello;
  hello.rank = static_cast<uint32_t>(r.rank);
  hello.size = static_cast<uint32_t>(r.size);
  if (std::string failed = transfer(fd, &hello, sizeof(hello), true, deadline); !failed.empty())
    return Status::error("rank " + std::to_string(r.rank) + " could not greet rank 0 at " +
                         where(r) + ": " + failed);
  return channel;
}

TcpChannel::~TcpChannel() {
  for (int fd : sockets_)
    if (fd >= 0)
      ::close(fd);
}

Status TcpChannel::refuse() {
  return Status::error("the tcp channel moves host memory between the ranks only (for setup); "
                       "device collectives need the nccl channel");
}

Status TcpChannel::allGatherHost(const void *send, size_t bytes, void *receive) {
  auto *all = static_cast<uint8_t *>(receive);
  if (size_ == 1) {
    if (bytes && send != receive)
      std::memmove(receive, send, bytes);
    return Status::ok();
  }
  const auto deadline = deadlineAfter(timeout_);
  uint64_t length = bytes;
  if (rank_ == 0) {
    std::memmove(all, send, bytes);
    for (int q = 1; q < size_; ++q) {
      uint64_t theirs = 0;
      std::string failed = transfer(sockets_[q], &theirs, sizeof(theirs), false, deadline);
      if (failed.empty() && theirs != length)
        return Status::error("the all-gather: rank " + std::to_string(q) + " sends " +
                             std::to_string(theirs) + " bytes, rank 0 " + std::to_string(length));
      if (failed.empty())
        failed = transfer(sockets_[q], all + q * bytes, bytes, false, deadline);
      if (!failed.empty())
        return Status::error("the all-gather waited for rank " + std::to_string(q) + ": " + failed);
    }
    for (int q = 1; q < size_; ++q)
      if (std::string failed = transfer(sockets_[q], all, bytes * size_, true, deadline);
          !failed.empty())
        return Status::error("the all-gather could not reach rank " + std::to_string(q) + ": " +
                             failed);
    return Status::ok();
  }
  std::string failed = transfer(sockets_[0], &length, sizeof(length), true, deadline);
  if (failed.empty())
    failed = transfer(sockets_[0], const_cast<void *>(send), bytes, true, deadline);
  if (failed.empty())
    failed = transfer(sockets_[0], all, bytes * size_, false, deadline);
  if (!failed.empty())
    return Status::error("the all-gather waited for rank 0: " + failed);
  return Status::ok();
}

void TcpChannel::abort(int exitCode) {
  for (int &fd : sockets_)
    if (fd >= 0) {
      ::close(fd);
      fd = -1;
    }
  std::_Exit(exitCode);
}

StatusOr<Channel *> TcpChannel::group(const std::string &name, int, int) {
  return Status::error("the tcp channel forms no groups ('" + name +
                       "'); device collectives need the nccl channel");
}

} // namespace moec::rt::hal
