// RuntimeCoreTest.cpp - runtime pieces that need neither a GPU nor LLVM.
#include "runtime/core/Status.h"
#include "runtime/cuda/CudaDriver.h"

#include <gtest/gtest.h>

#include <cstdlib>

using namespace moec::rt;

namespace {
TEST(Status, CarriesTheMessage) {
  EXPECT_TRUE(Status::ok().isOk());
  Status error = Status::error("tensor 'w1' is missing");
  EXPECT_FALSE(error.isOk());
  EXPECT_EQ(error.message(), "tensor 'w1' is missing");

  StatusOr<int> value = 42;
  ASSERT_TRUE(value.isOk());
  EXPECT_EQ(*value, 42);
  StatusOr<int> failed = Status::error("no value");
  EXPECT_FALSE(failed.isOk());
  EXPECT_EQ(failed.status().message(), "no value");
}

TEST(CudaDriver, ReportsWhyItCannotLoad) {
  setenv("MOEC_CUDA_DRIVER", "/nonexistent/libcuda.so.1", 1);
  auto driver = cuda::CudaDriver::load();
  unsetenv("MOEC_CUDA_DRIVER");
  ASSERT_FALSE(driver.isOk());
  EXPECT_NE(driver.status().message().find("/nonexistent/libcuda.so.1"),
            std::string::npos)
      << driver.status().message();
}
} // namespace
