// AtomicFile.cpp - outputs written whole or not at all.
#include "runtime/core/AtomicFile.h"

#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace moec::rt {

namespace {
std::string errorText() { return std::strerror(errno); }

/// The file a write to `path` replaces: a symbolic link's target (resolved
/// through every link), else `path` itself.
std::string destinationOf(const std::string &path) {
  struct stat link;
  if (lstat(path.c_str(), &link) != 0 || !S_ISLNK(link.st_mode))
    return path;
  char resolved[PATH_MAX];
  if (realpath(path.c_str(), resolved))
    return resolved;
  // A dangling link: write where it points.
  char target[PATH_MAX];
  ssize_t n = readlink(path.c_str(), target, sizeof target - 1);
  if (n <= 0)
    return path;
  target[n] = '\0';
  if (target[0] == '/')
    return target;
  std::string::size_type slash = path.rfind('/');
  return slash == std::string::npos ? std::string(target) : path.substr(0, slash + 1) + target;
}

std::string directoryOf(const std::string &path) {
  std::string::size_type slash = path.rfind('/');
  if (slash == std::string::npos)
    return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

/// A new, empty, uniquely named file beside `path` (mkstemp: O_CREAT |
/// O_EXCL), open for writing; its name in `temp`.
int createTemporary(const std::string &path, std::string &temp) {
  temp = path + ".XXXXXX";
  return mkostemp(temp.data(), O_CLOEXEC);
}

/// The process's umask, read without changing it (umask() would change it
/// for every thread while it is read): /proc's "Umask:", else 022.
mode_t currentUmask() {
  FILE *status = std::fopen("/proc/self/status", "r");
  unsigned mask = 022;
  if (status) {
    char line[256];
    while (std::fgets(line, sizeof line, status))
      if (std::sscanf(line, "Umask: %o", &mask) == 1)
        break;
    std::fclose(status);
  }
  return static_cast<mode_t>(mask);
}

/// Refuses an existing `path` that is not a regular file.
Status checkKind(const std::string &path, const std::string &what) {
  struct stat info;
  if (stat(path.c_str(), &info) != 0)
    return errno == ENOENT ? Status::ok() : Status::error(what + " " + path + ": " + errorText());
  if (S_ISDIR(info.st_mode))
    return Status::error(what + " " + path + ": is a directory, not a file to write");
  if (!S_ISREG(info.st_mode))
    return Status::error(what + " " + path +
                         ": is a special file (a device, FIFO or socket), not a file to write");
  return Status::ok();
}

bool syncDirectory(const std::string &directory) {
  int fd = open(directory.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd < 0)
    return false;
  bool ok = fsync(fd) == 0 || errno == EINVAL; // some file systems cannot
  close(fd);
  return ok;
}
} // namespace

bool writeAll(int fd, const void *data, size_t size) {
  const char *bytes = static_cast<const char *>(data);
  while (size > 0) {
    ssize_t n = ::write(fd, bytes, size);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      return false;
    bytes += n;
    size -= static_cast<size_t>(n);
  }
  return true;
}

namespace {
/// The file `path` stands for (`destination`), checked, and a new temporary
/// beside it (`temp`), open for writing.
StatusOr<int> temporaryFor(const std::string &path, const std::string &what,
                           std::string &destination, std::string &temp) {
  if (path.empty())
    return Status::error(what + ": an empty path");
  destination = destinationOf(path);
  if (Status s = checkKind(destination, what); !s)
    return s;
  int fd = createTemporary(destination, temp);
  if (fd < 0)
    return Status::error(what + " " + path + ": cannot write in " + directoryOf(destination) +
                         " (" + errorText() + ")");
  return fd;
}
} // namespace

Status checkOutputPath(const std::string &path, const std::string &what) {
  std::string destination, temp;
  auto fd = temporaryFor(path, what, destination, temp);
  if (!fd)
    return fd.status();
  close(*fd);
  unlink(temp.c_str());
  return Status::ok();
}

Status writeFileAtomically(const std::string &path, const std::string &what,
                           const std::function<bool(int fd)> &write) {
  std::string destination, temp;
  auto opened = temporaryFor(path, what, destination, temp);
  if (!opened)
    return opened.status();
  int fd = *opened;
  // The replaced file's permissions, or those a new file would get
  // (mkstemp makes it 0600); never setuid or setgid bits.
  struct stat existing;
  mode_t mode =
      stat(destination.c_str(), &existing) == 0 ? existing.st_mode & 0777 : 0666 & ~currentUmask();
  errno = 0;
  bool ok = fchmod(fd, mode) == 0 && write(fd) && fsync(fd) == 0;
  std::string failure = ok ? "" : errno ? errorText() : "a write failed";
  ok = close(fd) == 0 && ok;
  if (!ok) {
    unlink(temp.c_str());
    return Status::error(what + " " + path + ": writing failed (" +
                         (failure.empty() ? errorText() : failure) +
                         "); the previous file, if any, is untouched");
  }
  if (rename(temp.c_str(), destination.c_str()) != 0) {
    std::string reason = errorText();
    unlink(temp.c_str());
    return Status::error(what + " " + path + ": cannot replace the file (" + reason + ")");
  }
  if (!syncDirectory(directoryOf(destination)))
    return Status::error(what + " " + path + ": written and renamed, but its directory could not " +
                         "be synced, so the rename may not survive a crash (" + errorText() + ")");
  return Status::ok();
}

} // namespace moec::rt
