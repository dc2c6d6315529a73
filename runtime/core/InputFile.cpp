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
  int fd = open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0)
    return Status::error(path + ": cannot open " + what + " (" + std::strerror(errno) + ")");
  struct stat info;
  if (fstat(fd, &info) != 0 || !S_ISREG(info.st_mode)) {
    bool directory = S_ISDIR(info.st_mode);
    close(fd);
    return Status::error(path + ": " + what + " must be a regular file, but this is " +
                         (directory ? "a directory" : "a special file (a device, FIFO or socket)"));
  }
  std::vector<uint8_t> bytes(static_cast<size_t>(info.st_size));
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = read(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && (errno == EINTR || errno == EAGAIN))
      continue;
    if (n <= 0) {
      std::string reason = n < 0 ? std::strerror(errno) : "the file shrank while it was read";
      close(fd);
      return Status::error(path + ": cannot read " + what + " (" + reason + ")");
    }
    done += static_cast<size_t>(n);
  }
  close(fd);
  return bytes;
}

} // namespace moec::rt
