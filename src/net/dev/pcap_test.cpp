// PcapWriter/PcapDevice: the file is what tcpdump (a real reader) says it is.
#include "net/dev/pcap.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <string>

#include "net/dev/test_frames.h"
#include "net/dev/wire_pair.h"

namespace dfly::net {
namespace {

using namespace testing;

struct TempFile {
  std::string path = std::filesystem::temp_directory_path() /
                     ("dfly_pcap_test_" + std::to_string(::getpid()) + ".pcap");
  ~TempFile() { std::filesystem::remove(path); }
};

// Runs a command, returns stdout (bounded), or "" if the tool is missing.
std::string run(const std::string& cmd) {
  std::string out;
  FILE* p = ::popen((cmd + " 2>/dev/null").c_str(), "r");
  if (p == nullptr) return out;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0 && out.size() < (1 << 20)) out.append(buf, n);
  ::pclose(p);
  return out;
}

bool have_tcpdump() {
  return std::system("command -v tcpdump >/dev/null 2>&1") == 0;
}

const MacAddr kMacA{0x02, 0xdf, 0, 0, 0, 0x0a}, kMacB{0x02, 0xdf, 0, 0, 0, 0x0b};
const Ip4 kIpA{198, 18, 0, 1}, kIpB{198, 18, 0, 2};

TEST(PcapWriter, HeaderIsClassicNanosecondEthernet) {
  TempFile t;
  {
    auto w = MUST(PcapWriter::create(t.path, [] { return uint64_t(0); }));
  }
  ASSERT_EQ(std::filesystem::file_size(t.path), 24u);
  FILE* f = std::fopen(t.path.c_str(), "rb");
  uint32_t h[6];
  ASSERT_EQ(std::fread(h, 4, 6, f), 6u);
  std::fclose(f);
  EXPECT_EQ(h[0], 0xa1b23c4du);
  EXPECT_EQ(h[1], 2u | (4u << 16));
  EXPECT_EQ(h[4], 65535u);
  EXPECT_EQ(h[5], 1u);
}

TEST(PcapWriter, CreateInMissingDirectory_FailsWithEnoent) {
  auto w = PcapWriter::create("/nonexistent-dfly-dir/x.pcap");
  ASSERT_FALSE(w.ok());
  EXPECT_EQ(w.error().code(), ENOENT);
}

TEST(PcapDevice, BothDirectionsRecorded_TcpdumpReadsThemBack) {
  if (!have_tcpdump()) GTEST_SKIP() << "tcpdump not installed (scripts/setup installs it)";
  TempFile t;
  uint64_t clock = 1700000000ull * 1000000000ull + 123;
  auto wire = MUST(WirePair::create());
  {
    auto w = MUST(PcapWriter::create(t.path, [&] { return clock += 1000; }));
    PcapDevice cap(wire->a(), *w);

    auto req = arp_frame(1, kBroadcast, kMacA, kIpA, MacAddr{}, kIpB);
    FrameBuf f = as_buf(req);
    ASSERT_EQ(cap.tx_batch({&f, 1}), 1u);

    auto reply = arp_frame(2, kMacA, kMacB, kIpB, kMacA, kIpA);
    const uint8_t payload[4] = {'d', 'f', 'l', 'y'};
    auto udp = udp_frame(kMacA, kMacB, kIpB, kIpA, 1234, 9, payload);
    FrameBuf back[2] = {as_buf(reply), as_buf(udp)};
    ASSERT_EQ(wire->b().tx_batch(back), 2u);

    uint8_t store[4][2048];
    FrameBuf in[4] = {
        {store[0], 2048, 0}, {store[1], 2048, 0}, {store[2], 2048, 0}, {store[3], 2048, 0}};
    ASSERT_EQ(cap.rx_batch(in), 2u);
    EXPECT_EQ(w->records(), 3u);
    ASSERT_TRUE(w->flush().ok());
    EXPECT_EQ(cap.write_errors(), 0u);
  }
  std::string out = run("tcpdump -r " + t.path + " -nn -c 3 --nano -tt");
  EXPECT_NE(out.find("1700000000.000001123 ARP, Request who-has 198.18.0.2 tell 198.18.0.1"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("ARP, Reply 198.18.0.2 is-at 02:df:00:00:00:0b"), std::string::npos) << out;
  EXPECT_NE(out.find("IP 198.18.0.2.1234 > 198.18.0.1.9: UDP, length 4"), std::string::npos) << out;
  EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 3) << out;
}

}  // namespace
}  // namespace dfly::net
