// net/tcp: listening socket (see listener.h for the queues and their bounds).
#include "net/tcp/listener.h"

#include <algorithm>
#include "net/tcp/reset.h"

namespace dfly::net::tcp {

using namespace wire::tcp_flags;

namespace {

// Cookies and ISNs use different secrets derived from one.
IsnGenerator::Key cookie_secret(IsnGenerator::Key k) {
  for (auto& b : k) b ^= 0x5c;
  return k;
}

}  // namespace

Listener::Listener(Endpoint local, const ListenerConfig& c, const IsnGenerator& isn)
    : local_(local), cfg_(c), isn_(isn), cookies_(cookie_secret(isn.key())) {
  syn_queue_.reserve(c.syn_queue);
  backlog_.reserve(c.backlog);
}

void Listener::input(wire::Ipv4Addr src, wire::Ipv4Addr dst, const wire::TcpRepr& seg,
                     std::span<const uint8_t> payload, uint64_t now) {
  stats_.segs_in++;
  for (size_t i = 0; i < syn_queue_.size(); ++i) {
    Tcb& t = *syn_queue_[i];
    if (t.tuple().remote == Endpoint{src, seg.src_port} && t.tuple().local.addr == dst) {
      if (seg.has(kAck) && !seg.has(kRst) && backlog_.size() >= cfg_.backlog) {
        stats_.drop(TcpDrop::kBacklogFull);
        return;
      }
      t.input(seg, payload, now);
      if (t.state() != TcpState::kSynReceived && !t.is_closed()) {
        backlog_.push_back(std::move(syn_queue_[i]));
        syn_queue_.erase(syn_queue_.begin() + static_cast<long>(i));
      } else if (t.is_closed()) {
        stats_.add(t.stats());
        syn_queue_.erase(syn_queue_.begin() + static_cast<long>(i));
      }
      return;
    }
  }
  if (seg.has(kRst)) return;
  if (seg.has(kAck) && !seg.has(kSyn) && cfg_.syn_cookies) {
    FourTuple t{{dst, local_.port}, {src, seg.src_port}};
    if (uint16_t mss = cookies_.check(t, seg.seq - 1, seg.ack - 1, now)) {
      if (backlog_.size() >= cfg_.backlog) {
        stats_.drop(TcpDrop::kBacklogFull);
        return;
      }
      stats_.syn_cookies_ok++;
      auto tcb = Tcb::create(t, cfg_.conn);
      tcb->accept_cookie(seg, payload, mss, now);
      if (!tcb->is_closed()) backlog_.push_back(std::move(tcb));
      return;
    }
    stats_.syn_cookies_bad++;
  }
  if (seg.has(kAck)) {  // no half-open connection: the peer is confused; reset it
    if (n_rst_ < kMaxPendingRst) rst_[n_rst_++] = {src, dst, seg};
    return;
  }
  if (!seg.has(kSyn)) {
    stats_.drop(TcpDrop::kClosed);
    return;
  }
  if (syn_queue_.size() >= cfg_.syn_queue) {
    if (cfg_.syn_cookies && n_cookie_ < kMaxPendingCookies) {
      FourTuple t{{dst, local_.port}, {src, seg.src_port}};
      uint16_t mss = seg.has_mss ? seg.mss : 536;
      cookie_[n_cookie_++] = {src, dst, seg.src_port, seg.seq, cookies_.make(t, seg.seq, mss, now)};
      return;
    }
    stats_.drop(TcpDrop::kSynQueueFull);
    return;
  }
  FourTuple t{{dst, local_.port}, {src, seg.src_port}};
  auto tcb = Tcb::create(t, cfg_.conn);
  tcb->accept_syn(seg, isn_.isn(t, now), now);
  syn_queue_.push_back(std::move(tcb));
}

Emitted Listener::emit_cookie(const PendingCookie& p, std::span<uint8_t> out) {
  wire::TcpRepr r;
  r.src_port = local_.port;
  r.dst_port = p.src_port;
  r.seq = p.cookie;
  r.ack = p.peer_isn + 1;
  r.flags = kSyn | kAck;
  r.window = static_cast<uint16_t>(std::min<uint32_t>(cfg_.conn.recv_buffer, 0xffff));
  r.has_mss = true;
  r.mss = cfg_.conn.mss;
  if (out.size() < r.header_len()) return {};
  r.emit(out, p.dst, p.src);
  stats_.syn_cookies_sent++;
  stats_.segs_out++;
  return {r.header_len(), p.dst, p.src};
}

Emitted Listener::poll(uint64_t now, std::span<uint8_t> out) {
  if (n_cookie_ > 0) return emit_cookie(cookie_[--n_cookie_], out);
  if (n_rst_ > 0) {
    PendingRst& p = rst_[--n_rst_];
    Emitted e = reset_reply(p.src, p.dst, p.seg, out);
    if (e) stats_.resets_out++;
    return e;
  }
  for (size_t k = 0; k < syn_queue_.size(); ++k) {
    size_t i = (next_poll_ + k) % syn_queue_.size();
    Tcb& t = *syn_queue_[i];
    Emitted e = t.poll(now, out);
    if (t.is_closed()) {  // handshake timed out
      stats_.add(t.stats());
      syn_queue_.erase(syn_queue_.begin() + static_cast<long>(i));
      if (e) return e;
      --k;
      continue;
    }
    if (e) {
      next_poll_ = i + 1;
      return e;
    }
  }
  return {};
}

uint64_t Listener::next_deadline() const {
  uint64_t n = kNever;
  for (const auto& t : syn_queue_) {
    uint64_t d = t->wants_poll() ? 0 : t->next_deadline();
    if (d < n) n = d;
  }
  return n_rst_ > 0 || n_cookie_ > 0 ? 0 : n;
}

std::unique_ptr<Tcb> Listener::accept() {
  if (backlog_.empty()) return nullptr;
  auto t = std::move(backlog_.front());
  backlog_.erase(backlog_.begin());
  return t;
}

}  // namespace dfly::net::tcp
