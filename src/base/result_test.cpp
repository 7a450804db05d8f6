#include "base/result.h"

#include <gtest/gtest.h>

namespace dfly {
namespace {

Result<int> parse_positive(int x) {
  if (x <= 0) return Error(EINVAL, "not positive");
  return x;
}

Result<int> doubled(int x) {
  int v = TRY(parse_positive(x));
  return v * 2;
}

Status check(int x) {
  TRY(parse_positive(x));
  return Ok{};
}

TEST(Result, TryPropagatesErrorWithOriginalLocation) {
  auto r = doubled(-1);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), EINVAL);
  EXPECT_EQ(r.error().message(), "not positive");
  EXPECT_NE(std::string(r.error().where().function_name()).find("parse_positive"),
            std::string::npos);
}

TEST(Result, TryYieldsValueOnSuccess) {
  auto r = doubled(21);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.value(), 42);
}

TEST(Result, StatusCarriesErrors) {
  EXPECT_TRUE(check(1).ok());
  auto s = check(0);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code(), EINVAL);
}

TEST(Result, ToStringNamesTheCode) {
  Error e(ENOENT, "no such pool");
  EXPECT_EQ(e.to_string(), "no such pool (ENOENT)");
  auto ctx = Error(EIO, "short read").with_context("label 2");
  EXPECT_EQ(ctx.message(), "label 2: short read");
}

TEST(Result, ErrnoErrorUsesStrerror) {
  errno = EACCES;
  auto e = errno_error("open /x");
  EXPECT_EQ(e.code(), EACCES);
  EXPECT_EQ(e.message(), "open /x: Permission denied");
}

TEST(ResultDeathTest, MustAbortsOnFailure) {
  EXPECT_DEATH(MUST(parse_positive(0)), "MUST.*not positive");
}

}  // namespace
}  // namespace dfly
