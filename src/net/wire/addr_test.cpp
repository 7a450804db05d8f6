// net/wire: IPv4/CIDR/MAC text forms and address classes.
#include "net/wire/addr.h"

#include <gtest/gtest.h>

namespace dfly::net::wire {
namespace {

TEST(Ipv4Addr, Parse_FormatsBack_HostOrderInside) {
  auto a = Ipv4Addr::parse("198.18.1.2");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->value, 0xc6120102u);
  EXPECT_EQ(a->to_string(), "198.18.1.2");
  EXPECT_EQ(Ipv4Addr::parse("0.0.0.0")->value, 0u);
  EXPECT_EQ(Ipv4Addr::parse("255.255.255.255")->value, 0xffffffffu);
  EXPECT_EQ(Ipv4Addr(198, 18, 1, 2), *a);
}

TEST(Ipv4Addr, Parse_RejectsMalformedWithEinval) {
  for (const char* bad :
       {"", "1", "1.2.3", "1.2.3.4.5", "256.1.1.1", "01.2.3.4", "1..3.4", "1.2.3.4 ", " 1.2.3.4",
        "1.2.3.-4", "1.2.3.4/24", "a.b.c.d", "1.2.3.0004", "1.2.3.1000"}) {
    auto r = Ipv4Addr::parse(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.error().code(), EINVAL);
    EXPECT_NE(r.error().message().find(bad), std::string::npos) << r.error().message();
  }
}

TEST(Ipv4Addr, Classes) {
  EXPECT_TRUE(Ipv4Addr(224, 0, 0, 1).is_multicast());
  EXPECT_FALSE(Ipv4Addr(198, 18, 0, 1).is_multicast());
  EXPECT_TRUE(Ipv4Addr(255, 255, 255, 255).is_broadcast());
  EXPECT_TRUE(Ipv4Addr(127, 0, 0, 1).is_loopback());
  EXPECT_TRUE(Ipv4Addr().is_unspecified());
}

TEST(Ipv4Cidr, Parse_MaskNetworkContains) {
  auto c = Ipv4Cidr::parse("198.18.1.7/24");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->prefix_len, 24);
  EXPECT_EQ(c->mask(), 0xffffff00u);
  EXPECT_EQ(c->network(), Ipv4Addr(198, 18, 1, 0));
  EXPECT_EQ(c->broadcast(), Ipv4Addr(198, 18, 1, 255));
  EXPECT_TRUE(c->contains(Ipv4Addr(198, 18, 1, 200)));
  EXPECT_FALSE(c->contains(Ipv4Addr(198, 18, 2, 1)));
  EXPECT_EQ(c->to_string(), "198.18.1.7/24");
  EXPECT_EQ(Ipv4Cidr::parse("0.0.0.0/0")->mask(), 0u);
  EXPECT_TRUE(Ipv4Cidr::parse("0.0.0.0/0")->contains(Ipv4Addr(1, 2, 3, 4)));
  EXPECT_EQ(Ipv4Cidr::parse("198.18.0.1/32")->mask(), 0xffffffffu);
}

TEST(Ipv4Cidr, Parse_RejectsMalformed) {
  for (const char* bad : {"198.18.1.0", "198.18.1.0/", "198.18.1.0/33", "198.18.1.0/024",
                          "198.18.1/24", "198.18.1.0/24/", "/24", "198.18.1.0/2x"}) {
    auto r = Ipv4Cidr::parse(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.error().code(), EINVAL);
  }
}

TEST(MacAddr, Parse_FormatsLowercase) {
  auto m = MacAddr::parse("02:DF:00:00:00:0a");
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(*m, MacAddr(0x02, 0xdf, 0, 0, 0, 0x0a));
  EXPECT_EQ(m->to_string(), "02:df:00:00:00:0a");
  std::array<uint8_t, 6> raw{0x02, 0xdf, 0, 0, 0, 0x0a};
  EXPECT_EQ(MacAddr(raw), *m);  // interchangeable with net/dev's std::array form
}

TEST(MacAddr, Parse_RejectsMalformed) {
  for (const char* bad : {"", "02:df:00:00:00", "02:df:00:00:00:0a:", "02-df-00-00-00-0a",
                          "02:df:00:00:00:0g", "2:df:00:00:00:0a0"}) {
    auto r = MacAddr::parse(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.error().code(), EINVAL);
  }
}

TEST(MacAddr, BroadcastMulticastLocalBits) {
  EXPECT_TRUE(MacAddr::broadcast().is_broadcast());
  EXPECT_TRUE(MacAddr::broadcast().is_multicast());
  EXPECT_TRUE(MacAddr(0x01, 0x00, 0x5e, 0, 0, 1).is_multicast());
  EXPECT_FALSE(MacAddr(0x01, 0x00, 0x5e, 0, 0, 1).is_broadcast());
  EXPECT_TRUE(MacAddr(0x02, 0xdf, 0, 0, 0, 1).is_unicast());
  EXPECT_TRUE(MacAddr(0x02, 0xdf, 0, 0, 0, 1).is_local());
  EXPECT_FALSE(MacAddr(0x7c, 0xdf, 0, 0, 0, 1).is_local());
}

}  // namespace
}  // namespace dfly::net::wire
