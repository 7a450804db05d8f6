// net/wire: drop-reason tags survive error forwarding and map back to WireDrop.
#include "net/wire/drop.h"

#include <gtest/gtest.h>

namespace dfly::net::wire {
namespace {

TEST(WireDrop, ReasonSurvivesContextAndForwarding) {
  Error e = wire_error(WireDrop::kBadChecksum, "udp: checksum 0x1234 does not verify");
  EXPECT_EQ(e.code(), EBADMSG);
  EXPECT_EQ(e.message(), "udp: checksum 0x1234 does not verify [bad_checksum]");
  EXPECT_EQ(drop_reason(e), WireDrop::kBadChecksum);
  Error wrapped = std::move(e).with_context("ipv4 198.18.1.2");
  EXPECT_EQ(drop_reason(wrapped), WireDrop::kBadChecksum);
  EXPECT_EQ(wire_error(WireDrop::kUnsupported, "x").code(), EINVAL);
  EXPECT_EQ(drop_reason(Error(EIO, "not from wire")), WireDrop::kMalformed);
  EXPECT_EQ(drop_reason(Error(EIO, "odd [tag]")), WireDrop::kMalformed);
  for (int i = 0; i < static_cast<int>(WireDrop::kCount); ++i) {
    auto d = static_cast<WireDrop>(i);
    EXPECT_EQ(drop_reason(wire_error(d, "x")), d) << wire_drop_name(d);
  }
}

}  // namespace
}  // namespace dfly::net::wire
