// FilesTest.cpp - outputs written whole or not at all; inputs that must be
// regular files.
#include "runtime/core/AtomicFile.h"
#include "runtime/core/InputFile.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <dirent.h>
#include <string>
#include <sys/stat.h>
#include <thread>
#include <unistd.h>
#include <vector>

using namespace moec::rt;

namespace {
std::string scratchDirectory() {
  char name[] = "/tmp/moec-files-XXXXXX";
  return mkdtemp(name);
}

std::vector<std::string> entries(const std::string &directory) {
  std::vector<std::string> names;
  DIR *dir = opendir(directory.c_str());
  while (dirent *entry = readdir(dir))
    if (std::string(entry->d_name) != "." && std::string(entry->d_name) != "..")
      names.push_back(entry->d_name);
  closedir(dir);
  return names;
}

Status writeText(const std::string &path, const std::string &text) {
  return writeFileAtomically(path, "test",
                             [&](int fd) { return writeAll(fd, text.data(), text.size()); });
}

// Two writers of one path never share a temporary: the file ends up as one
// of them wrote it, whole, and no temporary is left.
TEST(AtomicFile, ConcurrentWritersLeaveOneWholeFile) {
  std::string dir = scratchDirectory(), path = dir + "/out.bin";
  std::string a(1 << 20, 'a'), b(1 << 20, 'b');
  for (int round = 0; round < 20; ++round) {
    std::thread first([&] { EXPECT_TRUE(static_cast<bool>(writeText(path, a))); });
    std::thread second([&] { EXPECT_TRUE(static_cast<bool>(writeText(path, b))); });
    first.join();
    second.join();
    auto bytes = readInputFile(path, "the output");
    ASSERT_TRUE(static_cast<bool>(bytes));
    std::string got(bytes->begin(), bytes->end());
    EXPECT_TRUE(got == a || got == b) << "a mixed or truncated file of " << got.size() << " bytes";
    EXPECT_EQ(entries(dir), std::vector<std::string>{"out.bin"});
  }
}

// A failed write leaves the previous file as it was, and no temporary.
TEST(AtomicFile, FailedWriteKeepsThePreviousFile) {
  std::string dir = scratchDirectory(), path = dir + "/keep.txt";
  ASSERT_TRUE(static_cast<bool>(writeText(path, "first")));
  Status failed = writeFileAtomically(path, "--save", [](int fd) {
    writeAll(fd, "partial", 7);
    return false;
  });
  EXPECT_FALSE(static_cast<bool>(failed));
  EXPECT_NE(failed.message().find("--save " + path + ": writing failed"), std::string::npos)
      << failed.message();
  auto bytes = readInputFile(path, "the output");
  ASSERT_TRUE(static_cast<bool>(bytes));
  EXPECT_EQ(std::string(bytes->begin(), bytes->end()), "first");
  EXPECT_EQ(entries(dir), std::vector<std::string>{"keep.txt"});
}

// An existing file keeps its permissions when it is replaced.
TEST(AtomicFile, ReplacementKeepsTheMode) {
  std::string dir = scratchDirectory(), path = dir + "/mode.txt";
  ASSERT_TRUE(static_cast<bool>(writeText(path, "one")));
  ASSERT_EQ(chmod(path.c_str(), 0640), 0);
  ASSERT_TRUE(static_cast<bool>(writeText(path, "two")));
  struct stat info;
  ASSERT_EQ(stat(path.c_str(), &info), 0);
  EXPECT_EQ(info.st_mode & 0777, 0640u);
}

TEST(InputFile, RefusesDirectoriesAndSpecialFiles) {
  auto directory = readInputFile("/tmp", "the plan");
  ASSERT_FALSE(static_cast<bool>(directory));
  EXPECT_EQ(directory.status().message(),
            "/tmp: the plan must be a regular file, but this is a directory");
  auto device = readInputFile("/dev/zero", "the token file");
  ASSERT_FALSE(static_cast<bool>(device));
  EXPECT_NE(device.status().message().find("special file"), std::string::npos);
  auto missing = readInputFile("/tmp/moec-no-such-file", "the plan");
  ASSERT_FALSE(static_cast<bool>(missing));
  EXPECT_NE(missing.status().message().find("cannot open the plan (No such file"),
            std::string::npos);
}
} // namespace
