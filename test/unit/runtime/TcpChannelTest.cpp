// TcpChannelTest.cpp - ranks meeting over TCP (torchrun's rendezvous):
// threads of this process play the ranks on the loopback interface.
#include "runtime/hal/TcpChannel.h"

#include <gtest/gtest.h>

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <future>
#include <string>
#include <thread>
#include <vector>

using moec::rt::Status;
using moec::rt::hal::Rendezvous;
using moec::rt::hal::TcpChannel;

namespace {

/// A port nothing listens on now.
int freePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof(address);
  ::bind(fd, reinterpret_cast<sockaddr *>(&address), length);
  ::getsockname(fd, reinterpret_cast<sockaddr *>(&address), &length);
  ::close(fd);
  return ntohs(address.sin_port);
}

Rendezvous at(int port, int rank, int size) {
  Rendezvous r;
  r.rank = rank;
  r.size = size;
  r.address = "127.0.0.1";
  r.port = port;
  return r;
}

TEST(TcpChannelTest, RanksGatherEachOthersBytes) {
  const int port = freePort(), size = 3;
  // The others start first: they retry until rank 0 listens.
  std::vector<std::future<std::vector<int>>> ranks;
  for (int rank = size - 1; rank >= 0; --rank)
    ranks.push_back(std::async(std::launch::async, [=]() -> std::vector<int> {
      auto channel = TcpChannel::connect(at(port, rank, size), 10);
      if (!channel) {
        ADD_FAILURE() << channel.status().message();
        return {};
      }
      EXPECT_EQ((*channel)->rank(), rank);
      EXPECT_EQ((*channel)->size(), size);
      std::vector<int> all;
      for (int round = 0; round < 2; ++round) {
        int mine[2] = {rank * 10 + round, -rank};
        std::vector<int> gathered(2 * size);
        EXPECT_TRUE((*channel)->allGatherHost(mine, sizeof(mine), gathered.data()));
        all.insert(all.end(), gathered.begin(), gathered.end());
      }
      return all;
    }));
  std::vector<int> expected = {0, 0, 10, -1, 20, -2, 1, 0, 11, -1, 21, -2};
  for (auto &rank : ranks)
    EXPECT_EQ(rank.get(), expected);
}

TEST(TcpChannelTest, ARankWithoutRankZeroTimesOutNamingWhereItLooked) {
  const int port = freePort();
  auto channel = TcpChannel::connect(at(port, 1, 2), 0.5);
  ASSERT_FALSE(channel);
  EXPECT_NE(channel.status().message().find("rank 1 could not reach rank 0 at 127.0.0.1:" +
                                            std::to_string(port) + " within 0.5 s"),
            std::string::npos)
      << channel.status().message();
}

TEST(TcpChannelTest, RankZeroNamesTheRanksThatNeverCame) {
  const int port = freePort();
  auto two = std::async(std::launch::async, [=] { return TcpChannel::connect(at(port, 2, 4), 5); });
  auto channel = TcpChannel::connect(at(port, 0, 4), 1);
  ASSERT_FALSE(channel);
  EXPECT_NE(channel.status().message().find("rank(s) 1, 3 never connected"), std::string::npos)
      << channel.status().message();
  (void)two.get(); // rank 2 came; what it got is beside the point
}

TEST(TcpChannelTest, SomethingElseOnThePortDoesNotStopTheRanks) {
  const int port = freePort();
  auto zero =
      std::async(std::launch::async, [=] { return TcpChannel::connect(at(port, 0, 2), 10); });
  // A health check that connects and says something else, first.
  int stranger = -1;
  for (int tries = 0; tries < 100 && stranger < 0; ++tries) {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    address.sin_port = htons(static_cast<uint16_t>(port));
    if (::connect(fd, reinterpret_cast<sockaddr *>(&address), sizeof(address)) == 0) {
      stranger = fd;
    } else {
      ::close(fd);
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }
  ASSERT_GE(stranger, 0);
  const char junk[16] = "GET / HTTP/1.0";
  ASSERT_EQ(::send(stranger, junk, sizeof(junk), 0), ssize_t(sizeof(junk)));
  auto one = TcpChannel::connect(at(port, 1, 2), 10);
  ASSERT_TRUE(one) << one.status().message();
  auto joined = zero.get();
  ASSERT_TRUE(joined) << joined.status().message();
  int mine = 1, all[2] = {0, 0};
  auto gathered = std::async(std::launch::async, [&] {
    int theirs = 0, both[2];
    return (*joined)->allGatherHost(&theirs, sizeof(theirs), both).isOk() && both[1] == 1;
  });
  EXPECT_TRUE((*one)->allGatherHost(&mine, sizeof(mine), all));
  EXPECT_TRUE(gathered.get());
  EXPECT_EQ(all[1], 1);
  ::close(stranger);
}

TEST(TcpChannelTest, AWorldSizeMismatchIsAnError) {
  const int port = freePort();
  auto other =
      std::async(std::launch::async, [=] { return TcpChannel::connect(at(port, 1, 3), 5); });
  auto channel = TcpChannel::connect(at(port, 0, 2), 5);
  ASSERT_FALSE(channel);
  EXPECT_NE(channel.status().message().find("a rank of a run of 3 ranks connected (WORLD_SIZE "
                                            "differs between the ranks)"),
            std::string::npos)
      << channel.status().message();
  (void)other.get();
}

TEST(TcpChannelTest, ItMovesNoDeviceMemory) {
  auto channel = TcpChannel::connect(at(0, 0, 1), 1);
  ASSERT_TRUE(channel);
  EXPECT_FALSE((*channel)->reaches(moec::rt::hal::DeviceKind::cpu));
  EXPECT_FALSE((*channel)->group("ep", 0, 0));
}

TEST(RendezvousTest, FromTorchrunsEnvironment) {
  ::unsetenv("WORLD_SIZE");
  auto none = moec::rt::hal::rendezvousFromEnvironment();
  ASSERT_TRUE(none);
  EXPECT_EQ(none->get(), nullptr);
  ::setenv("WORLD_SIZE", "4", 1);
  ::setenv("RANK", "2", 1);
  ::setenv("MASTER_ADDR", "node7", 1);
  ::setenv("MASTER_PORT", "29500", 1);
  auto r = moec::rt::hal::rendezvousFromEnvironment();
  ASSERT_TRUE(r);
  EXPECT_EQ((*r)->rank, 2);
  EXPECT_EQ((*r)->size, 4);
  EXPECT_EQ((*r)->address, "node7");
  EXPECT_EQ((*r)->port, 29501) << "torchrun's own store holds MASTER_PORT";
  ::setenv("MOEC_RENDEZVOUS_PORT", "31000", 1);
  auto chosen = moec::rt::hal::rendezvousFromEnvironment();
  ASSERT_TRUE(chosen);
  EXPECT_EQ((*chosen)->port, 31000);
  ::unsetenv("MOEC_RENDEZVOUS_PORT");
  ::setenv("RANK", "4", 1);
  auto bad = moec::rt::hal::rendezvousFromEnvironment();
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.status().message().find("RANK must be a whole number from 0 to 3, but is '4'"),
            std::string::npos)
      << bad.status().message();
  ::setenv("RANK", "1", 1);
  ::unsetenv("MASTER_PORT");
  auto noPort = moec::rt::hal::rendezvousFromEnvironment();
  ASSERT_FALSE(noPort);
  EXPECT_NE(noPort.status().message().find("MASTER_PORT"), std::string::npos);
  for (const char *name : {"WORLD_SIZE", "RANK", "MASTER_ADDR"})
    ::unsetenv(name);
}

} // namespace
