// net/tcp: connection creation, opening, and the socket-side calls (contract in
// tcb.h). The input state machine is in tcb_input.cpp, segment output and timers in
// tcb_output.cpp.
//
// Ownership. The application's calls only move bytes between its buffers and the
// rings and set flags (fin_queued_, user_closed_, send_rst_); every segment leaves
// through poll(), so the owner sees all output in one place and can batch it.
#include "net/tcp/tcb.h"

#include <algorithm>
#include <cerrno>
#include "net/tcp/seq.h"

namespace dfly::net::tcp {
namespace {

// The smallest shift that lets a 16-bit field describe the whole buffer.
uint8_t wscale_for(uint32_t buf) {
  uint8_t s = 0;
  while (s < wire::kTcpMaxWindowScale && (buf >> s) > 0xffff) ++s;
  return s;
}

}  // namespace

Tcb::Tcb(const FourTuple& t, const TcpConfig& c)
    : tuple_(t),
      cfg_(c),
      snd_buf_(c.send_buffer),
      rcv_buf_(c.recv_buffer),
      rtt_(c.rto),
      cc_(c.cc, 536) {}

std::unique_ptr<Tcb> Tcb::create(const FourTuple& t, const TcpConfig& c) {
  return std::unique_ptr<Tcb>(new Tcb(t, c));
}

void Tcb::init_send(uint32_t iss, uint64_t now) {
  iss_ = snd_una_ = snd_nxt_ = snd_max_ = iss;
  snd_head_seq_ = iss + 1;
  recover_ = iss;
  rcv_wscale_ = cfg_.window_scale ? wscale_for(cfg_.recv_buffer) : 0;
  // Timestamp offset per 4-tuple (RFC 7323 §5.4): hides our clock from the peer,
  // yet stays the same for a later incarnation of the tuple, so its timestamps
  // keep increasing and TIME_WAIT reuse can rely on them (RFC 6191).
  uint64_t h =
      (uint64_t{tuple_.local.addr.value} << 32 | tuple_.remote.addr.value) * 0x9e3779b97f4a7c15ull;
  h ^= (uint64_t{tuple_.local.port} << 16 | tuple_.remote.port) * 0xc2b2ae3d27d4eb4full;
  ts_offset_ = static_cast<uint32_t>(h >> 32);
  send_syn_ = true;
  last_rx_ = now;
}

Status Tcb::connect(uint32_t iss, uint64_t now) {
  if (state_ != TcpState::kClosed || error_ != 0 || iss_ != 0 || snd_max_ != 0)
    return Error(EISCONN, "tcp: connect: connection already used");
  init_send(iss, now);
  state_ = TcpState::kSynSent;
  return Ok{};
}

void Tcb::accept_syn(const wire::TcpRepr& syn, uint32_t iss, uint64_t now) {
  init_send(iss, now);
  passive_ = true;
  irs_ = syn.seq;
  rcv_nxt_ = syn.seq + 1;
  rcv_adv_ = rcv_nxt_;
  take_options(syn);
  snd_wnd_ = max_snd_wnd_ = syn.window;  // a SYN's window is never scaled
  snd_wl1_ = syn.seq;
  snd_wl2_ = iss;
  state_ = TcpState::kSynReceived;
  stats_.segs_in++;
}

void Tcb::accept_cookie(const wire::TcpRepr& ack, std::span<const uint8_t> payload, uint16_t mss,
                        uint64_t now) {
  uint32_t iss = ack.ack - 1;
  init_send(iss, now);
  send_syn_ = false;
  passive_ = true;
  irs_ = ack.seq - 1;
  rcv_nxt_ = rcv_adv_ = ack.seq;
  wire::TcpRepr syn;  // what the cookie remembers of the peer's SYN: its MSS only
  syn.has_mss = true;
  syn.mss = mss;
  take_options(syn);
  snd_una_ = snd_nxt_ = snd_max_ = iss + 1;
  snd_wnd_ = max_snd_wnd_ = ack.window;
  snd_wl1_ = ack.seq;
  snd_wl2_ = ack.ack;
  last_ack_sent_ = rcv_nxt_;
  enter_established(now);
  input(ack, payload, now);
}

void Tcb::take_options(const wire::TcpRepr& syn) {
  uint16_t peer_mss = syn.has_mss && syn.mss >= 64 ? syn.mss : 536;
  ws_ok_ = cfg_.window_scale && syn.has_window_scale;
  snd_wscale_ = ws_ok_ ? syn.window_scale : 0;
  if (!ws_ok_) rcv_wscale_ = 0;
  ts_ok_ = cfg_.timestamps && syn.has_timestamps;
  if (ts_ok_) ts_recent_ = syn.ts_val;
  sack_ok_ = cfg_.sack && syn.sack_permitted;
  uint16_t base = std::min(peer_mss, cfg_.mss);
  smss_ = static_cast<uint16_t>(std::max<int>(base - (ts_ok_ ? 12 : 0), 64));
  cc_.set_mss(smss_);
}

Result<size_t> Tcb::send(std::span<const uint8_t> data) {
  if (error_ != 0) return Error(error_, "tcp: send: connection failed");
  if (fin_queued_ || user_closed_) return Error(EPIPE, "tcp: send: after shutdown");
  switch (state_) {
    case TcpState::kSynSent:
    case TcpState::kSynReceived:
    case TcpState::kEstablished:
    case TcpState::kCloseWait:
      return snd_buf_.write(data);
    default:
      return Error(ENOTCONN, "tcp: send: not connected");
  }
}

Result<size_t> Tcb::recv(std::span<uint8_t> out) {
  if (user_closed_) return Error(ENOTCONN, "tcp: recv: after close");
  if (!rcv_buf_.empty()) {
    size_t n = rcv_buf_.read(out);
    // Window update (RFC 9293 §3.8.6.2.2): tell the peer once the right edge can
    // move by enough to matter (this also reopens a zero window). Not after its FIN:
    // it sends nothing more, and it may be gone already, answering with an RST
    // that would end our TIME_WAIT.
    uint32_t thr = std::min<uint32_t>(cfg_.recv_buffer / 2, 2u * cfg_.mss);
    uint32_t edge = rcv_nxt_ + static_cast<uint32_t>(rcv_buf_.free());
    if (tcp_synchronized(state_) && !fin_received_ && seq_ge(edge, rcv_adv_ + thr)) ack_now_ = true;
    return n;
  }
  if (fin_received_) return size_t{0};
  if (error_ != 0) return Error(error_, "tcp: recv: connection failed");
  if (state_ == TcpState::kClosed) return Error(ENOTCONN, "tcp: recv: not connected");
  return Error(EAGAIN, "tcp: no data");  // short: fits the string, no allocation
}

Status Tcb::shutdown_write() {
  if (error_ != 0) return Error(error_, "tcp: shutdown: connection failed");
  if (fin_queued_) return Ok{};
  switch (state_) {
    case TcpState::kSynSent:
    case TcpState::kSynReceived:
      fin_queued_ = true;  // sent once established (enter_established)
      return Ok{};
    case TcpState::kEstablished:
      fin_queued_ = true;
      state_ = TcpState::kFinWait1;
      return Ok{};
    case TcpState::kCloseWait:
      fin_queued_ = true;
      state_ = TcpState::kLastAck;
      return Ok{};
    default:
      return Error(ENOTCONN, "tcp: shutdown: not connected");
  }
}

void Tcb::close() {
  if (user_closed_) return;
  user_closed_ = true;
  if (state_ == TcpState::kClosed) {  // never opened, or over and kept for its unread bytes
    reset(0);
    return;
  }
  if (!rcv_buf_.empty()) {  // unread data: RFC 9293 §3.10.4 allows, RFC 2525 asks, RST
    abort();
    return;
  }
  switch (state_) {
    case TcpState::kSynSent:
    case TcpState::kListen:
      reset(0);
      return;
    case TcpState::kFinWait2:
      timers_.time_wait = last_rx_ + cfg_.fin_wait2_ns;
      return;
    default:
      shutdown_write().ignore_error_on_purpose();  // already closing: fine
  }
}

void Tcb::abort() {
  switch (state_) {
    case TcpState::kSynReceived:
    case TcpState::kEstablished:
    case TcpState::kFinWait1:
    case TcpState::kFinWait2:
    case TcpState::kCloseWait:
      send_rst_ = true;
      rst_seq_ = snd_nxt_;
      rst_ack_ = true;
      break;
    default:
      break;
  }
  user_closed_ = true;
  reset(ECONNABORTED);
}

void Tcb::reset(int err) {
  // Wake every waiter: reads and writes now fail (or read end of stream).
  events_ |= kEventClosed | kEventReadable | kEventWritable;
  state_ = TcpState::kClosed;
  if (error_ == 0) error_ = err;
  timers_ = Timers{};
  ack_now_ = send_syn_ = probe_due_ = keepalive_due_ = false;
}

void Tcb::on_path_mtu(uint16_t mtu, uint64_t now) {
  int payload = int{mtu} - 40 - (ts_ok_ ? 12 : 0);
  if (payload >= smss_) return;
  smss_ = static_cast<uint16_t>(std::max(payload, 64));
  cc_.set_mss(smss_);
  // What was sent at the old size was dropped on the way: send it again now,
  // without treating it as congestion (RFC 1191 §6.5).
  if (snd_una_ != snd_max_ && tcp_synchronized(state_)) {
    snd_nxt_ = snd_una_;
    sack_.clear();
    arm_rto(now);
  }
}

void Tcb::set_keepalive(bool on, uint64_t idle_ns, uint64_t interval_ns, uint32_t probes,
                        uint64_t now) {
  cfg_.keepalive = on;
  cfg_.keepalive_idle_ns = idle_ns;
  cfg_.keepalive_interval_ns = interval_ns;
  cfg_.keepalive_probes = probes;
  keepalives_sent_ = 0;
  bool live = state_ == TcpState::kEstablished || state_ == TcpState::kCloseWait;
  timers_.keepalive = on && live ? now + idle_ns : 0;
}

Tcb::Info Tcb::info() const {
  return Info{
      state_, cc_.cwnd(), cc_.ssthresh(), snd_wnd_,   static_cast<uint32_t>(rcv_buf_.free()),
      smss_,  flight(),   rtt_.srtt(),    rtt_.rto(), sack_ok_,
      ts_ok_, ws_ok_,     in_recovery_};
}

bool Tcb::wants_poll() const {
  if (send_rst_ || ack_now_ || send_syn_ || probe_due_ || keepalive_due_) return true;
  if (!tcp_synchronized(state_) || state_ == TcpState::kSynReceived) return false;
  uint32_t seq, len;
  bool rtx;
  return fin_ready() || pick_data(&seq, &len, &rtx);
}

}  // namespace dfly::net::tcp
