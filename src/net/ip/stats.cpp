#include "net/ip/stats.h"

namespace dfly::net::ip {

std::string_view if_counter_name(IfCounter c) {
  static constexpr std::string_view kNames[] = {
      "rx_frames",
      "rx_bytes",
      "tx_frames",
      "tx_bytes",
      "arp_requests_in",
      "arp_replies_in",
      "arp_requests_out",
      "arp_replies_out",
      "icmp_echo_in",
      "icmp_echo_reply_out",
      "icmp_echo_out",
      "icmp_echo_reply_in",
      "ipv4_in",
      "ipv4_out",
      "udp_in",
      "udp_out",
      "fragments_in",
      "reassembled",
      "fragments_out",
      "icmp_time_exceeded_out",
      "handoffs_in",
      "forwarded",
      "icmp_unreach_out",
      "tcp_in",
      "tcp_out",
      "tcp_time_wait",
      "tcp_time_wait_recycled",
  };
  static_assert(std::size(kNames) == static_cast<size_t>(IfCounter::kCount));
  auto i = static_cast<size_t>(c);
  return i < std::size(kNames) ? kNames[i] : "unknown";
}

std::string_view ip_drop_name(IpDrop d) {
  static constexpr std::string_view kNames[] = {
      "other_host",   "unknown_ethertype", "unknown_protocol", "fragment",       "no_route",
      "arp_timeout",  "arp_hold_full",     "arp_table_full",   "no_bufs",        "tx_full",
      "icmp_ignored", "arp_ignored",       "udp_no_socket",    "udp_queue_full", "cant_fragment",
      "ttl_exceeded", "stopped",           "tcp_no_socket",
  };
  static_assert(std::size(kNames) == static_cast<size_t>(IpDrop::kCount));
  auto i = static_cast<size_t>(d);
  return i < std::size(kNames) ? kNames[i] : "unknown";
}

IfCounters IfStats::snapshot() const {
  IfCounters s;
  for (size_t i = 0; i < events_.size(); i++)
    s.events[i] = events_[i].load(std::memory_order_relaxed);
  for (size_t i = 0; i < wire_drops_.size(); i++)
    s.wire_drops[i] = wire_drops_[i].load(std::memory_order_relaxed);
  for (size_t i = 0; i < drops_.size(); i++) s.drops[i] = drops_[i].load(std::memory_order_relaxed);
  return s;
}

}  // namespace dfly::net::ip
