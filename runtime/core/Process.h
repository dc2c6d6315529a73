// Process.h - running another program and waiting for it.
#ifndef MOEC_RUNTIME_CORE_PROCESS_H
#define MOEC_RUNTIME_CORE_PROCESS_H

#include <string>
#include <vector>

namespace moec::rt {

/// How a child process ended.
struct ProcessResult {
  int startError = 0; // errno of a failed start
  int exitCode = -1;  // when it exited
  int signal = 0;     // when a signal ended it
};

/// Runs `argv` (argv[0] looked up on PATH) with its stdout sent to our
/// stderr (stdout may carry machine-readable output) and waits for it.
/// Ctrl-C reaches the child, which the parent outlives to clean up:
/// SIGINT/SIGTERM are ignored here while it runs and restored to their
/// defaults in the child.
ProcessResult runProcess(const std::vector<std::string> &argv);

/// The directory of the running executable ("" when it cannot be read).
std::string executableDirectory();

} // namespace moec::rt

#endif // MOEC_RUNTIME_CORE_PROCESS_H
