// InputFile.cpp - reading the files a run is given.
#include "runtime/core/InputFile.h"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace moec::rt {

StatusOr<std::vector<uint8_t>> readInputFile(const std::string &path, const std::string &what) {
  // O_NONBLOCK: opening a FIFO with no writer would otherwise wait forever.
  int fd = open(path.c_str(), O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
  if (fd < 0)
    return Status::error(path + ": cannot open " + what + " (" + std::strerror(errno) + ")");
  struct stat info;
  if (fstat(fd, &info) != 0) {
    std::string reason = std::strerror(errno);
    close(fd);
    return Status::error(path + ": cannot read " + what + " (" + reason + ")");
  }
  if (!S_ISREG(info.st_mode)) {
    close(fd);
    return Status::error(
        path + ": " + what + " must be a regular file, but this is " +
        (S_ISDIR(info.st_mode) ? "a directory" : "a special file (a device, FIFO or socket)"));
  }
  // A regular file: blocking reads from here, to its end (which may lie
  // beyond the size fstat saw).
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
  std::vector<uint8_t> bytes;
  bytes.reserve(static_cast<size_t>(info.st_size));
  uint8_t chunk[1 << 16];
  for (;;) {
    ssize_t n = read(fd, chunk, sizeof chunk);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0) {
      std::string reason = std::strerror(errno);
      close(fd);
      return Status::error(path + ": cannot read " + what + " (" + reason + ")");
    }
    if (n == 0)
      break;
    bytes.insert(bytes.end(), chunk, chunk + n);
  }
  close(fd);
  return bytes;
}

} // namespace moec::rt
