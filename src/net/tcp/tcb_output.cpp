// net/tcp: what to send next, and the timers (RFC 9293 §3.8, RFC 6298, RFC 6675
// NextSeg, RFC 1122 §4.2.3.4 Nagle, §4.2.3.6 keepalive).
//
// Theory. poll() first fires due timers (which only set flags or rewind snd_nxt),
// then emits the single most urgent segment, in this order: a pending RST, our
// SYN or SYN-ACK, a retransmission or new data chosen by pick_data(), a FIN, a
// zero-window probe, a keepalive probe, a bare ACK. Any segment carrying an ACK
// satisfies a pending ACK, so data piggybacks ACKs for free. Each emission clears
// the flag or advances the pointer that asked for it, so repeated polls terminate.
//
// Sending data. Bytes [snd_una, snd_max) are in flight; snd_nxt is where new
// sending resumes (it drops back to snd_una on a timeout: go-back-N, with the SACK
// scoreboard cleared since the receiver may renege). The usable window is the
// peer's window and cwnd minus what is in flight; in recovery, what is in flight is
// RFC 6675's pipe (SACK) or flight less one segment per duplicate ACK (NewReno's
// window inflation, stated the other way round). Nagle holds back a short tail
// while anything is unacknowledged; sender-side SWS avoidance holds back short
// segments the window forces unless they are at least half the largest window seen.
//
// Zero window. With nothing in flight, data queued and a zero window, the
// retransmit timer runs in persist mode; when it fires one byte is sent beyond the
// window (the probe) and the RTO timer, backed off each time, repeats it until the
// window opens. Probe ACKs are not duplicate ACKs, and probing never gives up while
// the peer answers.
#include <algorithm>
#include <cerrno>
#include "net/tcp/seq.h"
#include "net/tcp/tcb.h"

namespace dfly::net::tcp {

using namespace wire::tcp_flags;

namespace {

bool sends_data(TcpState s) {
  return s == TcpState::kEstablished || s == TcpState::kCloseWait || s == TcpState::kFinWait1 ||
         s == TcpState::kClosing || s == TcpState::kLastAck;
}

}  // namespace

void Tcb::arm_rto(uint64_t now) {
  timers_.retransmit = now + rtt_.rto();
  timers_.persist_mode = false;
}

uint32_t Tcb::data_end() const {
  return snd_head_seq_ + static_cast<uint32_t>(snd_buf_.size());
}

bool Tcb::fin_ready() const {
  return fin_queued_ && sends_data(state_) && state_ != TcpState::kEstablished &&
         state_ != TcpState::kCloseWait && snd_nxt_ == data_end();
}

uint32_t Tcb::pipe() const {
  if (!in_recovery_) return snd_nxt_ - snd_una_;
  if (sack_ok_) return sack_.pipe(snd_una_, snd_max_, rtx_next_);
  uint32_t out = snd_max_ - snd_una_, left = dup_acks_ * uint32_t{smss_};
  return out > left ? out - left : 0;
}

bool Tcb::pick_data(uint32_t* seq, uint32_t* len, bool* rtx) const {
  if (!sends_data(state_)) return false;
  uint32_t end = data_end();
  uint32_t cwnd = cc_.cwnd();
  uint32_t in_pipe = pipe();
  if (rtx_una_ && seq_lt(snd_una_, end)) {
    *seq = snd_una_;
    *len = std::min<uint32_t>(smss_, end - snd_una_);
    *rtx = true;
    return true;
  }
  if (in_recovery_ && sack_ok_) {
    if (in_pipe >= cwnd) return false;
    uint32_t from = seq_max(rtx_next_, snd_una_);
    uint32_t hi = seq_min(sack_.highest(snd_una_), end);
    uint32_t s, l;
    if (sack_.next_hole(from, hi, &s, &l)) {
      *seq = s;
      *len = std::min<uint32_t>(l, smss_);
      *rtx = true;
      return true;
    }
  }
  if (!seq_lt(snd_nxt_, end)) return false;
  uint32_t wnd_right = snd_una_ + snd_wnd_;
  uint32_t by_wnd = seq_gt(wnd_right, snd_nxt_) ? wnd_right - snd_nxt_ : 0;
  uint32_t by_cwnd = cwnd > in_pipe ? cwnd - in_pipe : 0;
  uint32_t avail = end - snd_nxt_;
  uint32_t n = std::min({uint32_t{smss_}, avail, by_wnd, by_cwnd});
  if (n == 0) return false;
  bool outstanding = snd_nxt_ != snd_una_;
  if (n < smss_) {
    // Nagle: a short tail waits for the ACK of what is outstanding.
    if (n == avail && outstanding && !cfg_.nodelay && !fin_queued_) return false;
    // SWS avoidance: a short segment forced by the window waits for a bigger one.
    if (n < avail && n == std::min(by_wnd, by_cwnd) && n < max_snd_wnd_ / 2 && outstanding)
      return false;
  }
  *seq = snd_nxt_;
  *len = n;
  *rtx = seq_lt(snd_nxt_, snd_max_);
  return true;
}

uint16_t Tcb::window_field(bool syn) const {
  uint32_t free = static_cast<uint32_t>(rcv_buf_.free());
  if (syn) return static_cast<uint16_t>(std::min<uint32_t>(free, 0xffff));
  // Receiver SWS avoidance: move the right edge only by a worthwhile amount, and
  // never back (RFC 9293 §3.8.6.2.2).
  uint32_t thr = std::min<uint32_t>(cfg_.recv_buffer / 2, smss_);
  uint32_t edge = rcv_nxt_ + (free >= thr ? free : 0);
  if (seq_gt(rcv_adv_, edge)) edge = rcv_adv_;
  uint32_t w = (edge - rcv_nxt_) >> rcv_wscale_;
  return static_cast<uint16_t>(std::min<uint32_t>(w, 0xffff));
}

Emitted Tcb::emit(uint64_t now, std::span<uint8_t> out, uint32_t seq, uint8_t flags,
                  uint32_t data_len, bool fin_if_last, uint32_t* sent) {
  wire::TcpRepr r;
  r.src_port = tuple_.local.port;
  r.dst_port = tuple_.remote.port;
  r.seq = seq;
  bool syn = (flags & kSyn) != 0;
  if (state_ != TcpState::kSynSent) {
    flags |= kAck;
    r.ack = rcv_nxt_;
  }
  r.window = window_field(syn);
  bool active_syn = syn && state_ == TcpState::kSynSent;
  if (syn) {
    r.has_mss = true;
    r.mss = cfg_.mss;
    r.has_window_scale = active_syn ? cfg_.window_scale : ws_ok_;
    r.window_scale = rcv_wscale_;
    r.sack_permitted = active_syn ? cfg_.sack : sack_ok_;
  }
  if (active_syn ? cfg_.timestamps : ts_ok_) {
    r.has_timestamps = true;
    r.ts_val = static_cast<uint32_t>(now / 1'000'000) + ts_offset_;
    r.ts_ecr = active_syn ? 0 : ts_recent_;
  }
  if (!syn && sack_ok_ && !ooo_.empty())
    r.sack_count = static_cast<uint8_t>(ooo_.sack_blocks(r.sack));
  size_t hl = r.header_len();
  // Options beyond timestamps come out of the payload, so the IP packet stays
  // within the MTU the MSS was derived from; and the caller's buffer bounds it too.
  uint32_t extra = static_cast<uint32_t>(hl - wire::kTcpHeaderLen - (ts_ok_ ? 12 : 0));
  uint32_t room = out.size() > hl ? static_cast<uint32_t>(out.size() - hl) : 0;
  uint32_t cap = smss_ > extra ? smss_ - extra : 1;
  data_len = std::min({data_len, room, cap});
  if (out.size() < hl) return {};
  if (data_len > 0) {
    size_t got = snd_buf_.peek(seq - snd_head_seq_, out.subspan(hl, data_len));
    data_len = static_cast<uint32_t>(got);
    if (seq + data_len == data_end()) flags |= kPsh;
  }
  if (fin_if_last && fin_queued_ && seq + data_len == data_end()) flags |= kFin;
  r.flags = flags;
  r.payload_len = static_cast<uint16_t>(data_len);
  r.emit(out, tuple_.local.addr, tuple_.remote.addr);
  if (flags & kAck) {
    // Out-of-order arrivals each owe the sender a duplicate ACK (its loss signal),
    // even when the owner fed several before polling; only a bare ACK counts as one.
    if (data_len == 0 && (flags & (kSyn | kFin)) == 0 && acks_owed_ > 0) --acks_owed_;
    ack_now_ = acks_owed_ > 0;
    segs_unacked_ = 0;
    timers_.delayed_ack = 0;
    last_ack_sent_ = rcv_nxt_;
    uint32_t edge = rcv_nxt_ + (static_cast<uint32_t>(r.window) << (syn ? 0 : rcv_wscale_));
    if (seq_gt(edge, rcv_adv_)) rcv_adv_ = edge;
  }
  stats_.segs_out++;
  if (sent) *sent = data_len + ((flags & kFin) ? 1 : 0);
  return {hl + data_len, tuple_.local.addr, tuple_.remote.addr};
}

Emitted Tcb::emit_rst(std::span<uint8_t> out) {
  wire::TcpRepr r;
  r.src_port = tuple_.local.port;
  r.dst_port = tuple_.remote.port;
  r.seq = rst_seq_;
  r.flags = kRst;
  if (rst_ack_) {
    r.flags |= kAck;
    r.ack = rcv_nxt_;
  }
  if (out.size() < r.header_len()) return {};
  r.emit(out, tuple_.local.addr, tuple_.remote.addr);
  send_rst_ = false;
  stats_.resets_out++;
  stats_.segs_out++;
  return {r.header_len(), tuple_.local.addr, tuple_.remote.addr};
}

void Tcb::on_rto(uint64_t now) {
  if (state_ == TcpState::kSynSent || state_ == TcpState::kSynReceived) {
    if (++retries_ > cfg_.max_syn_retries) {
      if (state_ == TcpState::kSynReceived) {
        send_rst_ = true;
        rst_seq_ = snd_nxt_;
        rst_ack_ = true;
      }
      reset(ETIMEDOUT);
      return;
    }
    stats_.rto_timeouts++;
    stats_.retransmits++;
    rtt_timing_ = false;
    rtt_.backoff();
    send_syn_ = true;
    return;
  }
  if (snd_una_ == snd_max_) return;  // everything was acknowledged meanwhile
  if (++retries_ > cfg_.max_retries) {
    send_rst_ = true;
    rst_seq_ = snd_nxt_;
    rst_ack_ = true;
    reset(ETIMEDOUT);
    return;
  }
  if (snd_wnd_ == 0) {
    probe_due_ = true;  // our probe byte went unanswered: probe again
    rtt_.backoff();
    return;
  }
  stats_.rto_timeouts++;
  cc_.on_rto(flight());
  rtt_.backoff();
  rtt_timing_ = false;
  snd_nxt_ = snd_una_;
  sack_.clear();
  in_recovery_ = false;
  rtx_una_ = false;
  dup_acks_ = 0;
  recover_ = snd_max_;  // RFC 6582 §3.2 step 2: no fast retransmit for this window
  arm_rto(now);
}

void Tcb::fire_timers(uint64_t now) {
  if (Timers::due(timers_.retransmit, now)) {
    timers_.retransmit = 0;
    if (timers_.persist_mode) {
      timers_.persist_mode = false;
      probe_due_ = true;
    } else {
      on_rto(now);
    }
  }
  if (Timers::due(timers_.delayed_ack, now)) {
    timers_.delayed_ack = 0;
    ack_now_ = true;
    stats_.delayed_acks++;
  }
  if (Timers::due(timers_.keepalive, now)) {
    timers_.keepalive = 0;
    if (cfg_.keepalive && (state_ == TcpState::kEstablished || state_ == TcpState::kCloseWait)) {
      if (keepalives_sent_ >= cfg_.keepalive_probes) {
        send_rst_ = true;
        rst_seq_ = snd_nxt_;
        rst_ack_ = true;
        reset(ETIMEDOUT);
        return;
      }
      keepalive_due_ = true;
      keepalives_sent_++;
      timers_.keepalive = now + cfg_.keepalive_interval_ns;
    }
  }
  if (Timers::due(timers_.time_wait, now)) {
    timers_.time_wait = 0;
    if (state_ == TcpState::kTimeWait) {
      reset(0);
    } else if (state_ == TcpState::kFinWait2 && user_closed_) {
      reset(ETIMEDOUT);
    }
  }
}

Emitted Tcb::poll(uint64_t now, std::span<uint8_t> out) {
  fire_timers(now);
  if (send_rst_) return emit_rst(out);
  if (state_ == TcpState::kClosed) return {};
  if (send_syn_ && (state_ == TcpState::kSynSent || state_ == TcpState::kSynReceived)) {
    send_syn_ = false;
    Emitted e = emit(now, out, iss_, kSyn, 0, false, nullptr);
    if (!e) return e;
    snd_nxt_ = iss_ + 1;
    if (seq_lt(snd_max_, snd_nxt_)) snd_max_ = snd_nxt_;
    if (!rtt_timing_ && retries_ == 0) {
      rtt_timing_ = true;
      rtt_seq_ = iss_ + 1;
      rtt_start_ = now;
    }
    arm_rto(now);
    return e;
  }
  if (state_ == TcpState::kSynSent) return {};
  uint32_t seq, len, sent = 0;
  bool rtx;
  if (state_ != TcpState::kSynReceived && pick_data(&seq, &len, &rtx)) {
    Emitted e = emit(now, out, seq, 0, len, true, &sent);
    if (!e) return e;
    uint32_t data = sent - ((seq + sent == data_end() + 1) ? 1 : 0);
    if (rtx) {
      stats_.retransmits++;
      stats_.retransmit_bytes += data;
    } else {
      stats_.bytes_out += data;
    }
    if (rtx_una_ && seq == snd_una_) rtx_una_ = false;
    if (in_recovery_ && seq_lt(seq, snd_nxt_) && seq_lt(rtx_next_, seq + sent))
      rtx_next_ = seq + sent;
    if (seq == snd_nxt_) {  // new data, or go-back-N after a timeout (not a hole)
      if (!rtx && !ts_ok_ && !rtt_timing_) {
        rtt_timing_ = true;
        rtt_seq_ = seq + sent;
        rtt_start_ = now;
      }
      snd_nxt_ = seq + sent;
    }
    if (seq_lt(snd_max_, seq + sent)) snd_max_ = seq + sent;
    if (timers_.retransmit == 0 || timers_.persist_mode || rtx) arm_rto(now);
    return e;
  }
  if (fin_ready()) {
    Emitted e = emit(now, out, snd_nxt_, kFin, 0, false, nullptr);
    if (!e) return e;
    if (snd_nxt_ != snd_max_) stats_.retransmits++;
    snd_nxt_++;
    if (seq_lt(snd_max_, snd_nxt_)) snd_max_ = snd_nxt_;
    if (timers_.retransmit == 0 || timers_.persist_mode) arm_rto(now);
    return e;
  }
  if (probe_due_) {
    probe_due_ = false;
    bool resend = snd_una_ != snd_max_;
    uint32_t at = resend ? snd_una_ : snd_nxt_;
    if (sends_data(state_) && seq_lt(at, data_end())) {
      Emitted e = emit(now, out, at, 0, 1, false, &sent);
      if (!e) return e;
      stats_.zero_window_probes++;
      if (at == snd_nxt_) snd_nxt_ += sent;
      if (seq_lt(snd_max_, snd_nxt_)) snd_max_ = snd_nxt_;
      arm_rto(now);
      return e;
    }
  }
  if (keepalive_due_) {
    keepalive_due_ = false;
    stats_.keepalive_probes++;
    return emit(now, out, snd_una_ - 1, 0, 0, false, nullptr);
  }
  // A bare ACK carries snd_max, not a snd_nxt rewound by a timeout: the peer's
  // rcv_nxt may already be past snd_nxt, and it would discard the ACK as old (BSD
  // does the same).
  if (ack_now_) return emit(now, out, snd_max_, 0, 0, false, nullptr);
  // Nothing to send. Stuck behind a zero window with nothing in flight: persist.
  if (sends_data(state_) && snd_wnd_ == 0 && seq_lt(snd_nxt_, data_end()) && snd_una_ == snd_max_ &&
      timers_.retransmit == 0) {
    timers_.retransmit = now + rtt_.rto();
    timers_.persist_mode = true;
  }
  return {};
}

}  // namespace dfly::net::tcp
