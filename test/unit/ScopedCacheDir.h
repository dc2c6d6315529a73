// ScopedCacheDir.h - a fresh $MOEC_CACHE_DIR for one test, removed after it.
#ifndef MOEC_TEST_UNIT_SCOPEDCACHEDIR_H
#define MOEC_TEST_UNIT_SCOPEDCACHEDIR_H

#include <cstdlib>
#include <stdexcept>
#include <string>

namespace moec::test {

/// Creates /tmp/moec-test-XXXXXX, points MOEC_CACHE_DIR at it (so compiled
/// kernels are not reused between tests) and removes it when destroyed.
class ScopedCacheDir {
public:
  ScopedCacheDir() {
    char pattern[] = "/tmp/moec-test-XXXXXX";
    if (!mkdtemp(pattern))
      throw std::runtime_error("cannot create a temporary cache directory");
    path_ = pattern;
    setenv("MOEC_CACHE_DIR", path_.c_str(), 1);
  }
  ~ScopedCacheDir() { std::system(("rm -rf " + path_).c_str()); }
  ScopedCacheDir(const ScopedCacheDir &) = delete;
  ScopedCacheDir &operator=(const ScopedCacheDir &) = delete;

private:
  std::string path_;
};

} // namespace moec::test

#endif // MOEC_TEST_UNIT_SCOPEDCACHEDIR_H
