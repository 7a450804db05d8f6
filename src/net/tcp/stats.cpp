// net/tcp: counter names and sums (stats.h).
#include "net/tcp/stats.h"

namespace dfly::net::tcp {
namespace {

constexpr std::array<std::string_view, static_cast<size_t>(TcpDrop::kCount)> kNames = {
    "out_of_window",  "paws",         "bad_ack", "rst_out_of_window", "no_ack", "assembler_full",
    "syn_queue_full", "backlog_full", "closed",  "bad_syn",
};

}  // namespace

std::string_view tcp_drop_name(TcpDrop d) {
  auto i = static_cast<size_t>(d);
  return i < kNames.size() ? kNames[i] : std::string_view("unknown");
}

void TcpStats::add(const TcpStats& o) {
  segs_in += o.segs_in;
  segs_out += o.segs_out;
  bytes_in += o.bytes_in;
  bytes_out += o.bytes_out;
  retransmits += o.retransmits;
  retransmit_bytes += o.retransmit_bytes;
  rto_timeouts += o.rto_timeouts;
  dup_acks += o.dup_acks;
  fast_retransmits += o.fast_retransmits;
  sack_recoveries += o.sack_recoveries;
  newreno_recoveries += o.newreno_recoveries;
  partial_acks += o.partial_acks;
  ooo_segments += o.ooo_segments;
  challenge_acks += o.challenge_acks;
  zero_window_probes += o.zero_window_probes;
  keepalive_probes += o.keepalive_probes;
  resets_in += o.resets_in;
  resets_out += o.resets_out;
  delayed_acks += o.delayed_acks;
  syn_cookies_sent += o.syn_cookies_sent;
  syn_cookies_ok += o.syn_cookies_ok;
  syn_cookies_bad += o.syn_cookies_bad;
  for (size_t i = 0; i < drops.size(); ++i) drops[i] += o.drops[i];
}

}  // namespace dfly::net::tcp
