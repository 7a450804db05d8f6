// net/tcp: segment arrival, RFC 9293 §3.10.7 step by step.
//
// Theory. SYN_SENT is handled apart (§3.10.7.3). Every synchronized state runs the
// same checks in the RFC's order: PAWS (RFC 7323 §5), sequence acceptability, RST
// (accepted only exactly at rcv_nxt, else a challenge ACK: RFC 5961 §3), SYN (always
// a challenge ACK: RFC 5961 §4), ACK (acceptable only within [snd_una - max window,
// snd_max]: RFC 5961 §5), then data and FIN. Urgent data is not special: the URG
// flag and pointer are ignored and the bytes delivered inline, which is what every
// modern peer expects (RFC 6093). An unacceptable segment never changes state; at
// most it asks for an ACK, which poll() sends.
//
// Loss recovery on the ACK path: three duplicate ACKs (RFC 5681 §3.2) enter fast
// recovery once per window (RFC 6582's `recover`); with SACK the scoreboard picks
// the holes to resend (RFC 6675), without it each partial ACK resends the next
// unacknowledged segment (RFC 6582 §3.2 step 5). A full ACK ends recovery.
#include <algorithm>
#include <cerrno>
#include "net/tcp/seq.h"
#include "net/tcp/tcb.h"

namespace dfly::net::tcp {

using namespace wire::tcp_flags;

void Tcb::input(const wire::TcpRepr& seg, std::span<const uint8_t> payload, uint64_t now) {
  stats_.segs_in++;
  if (payload.size() != seg.payload_len)
    payload = payload.first(std::min<size_t>(payload.size(), seg.payload_len));
  switch (state_) {
    case TcpState::kClosed:
    case TcpState::kListen:
      stats_.drop(TcpDrop::kClosed);
      return;
    case TcpState::kSynSent:
      input_syn_sent(seg, now);
      return;
    default:
      break;
  }
  uint32_t len =
      static_cast<uint32_t>(payload.size()) + (seg.has(kSyn) ? 1 : 0) + (seg.has(kFin) ? 1 : 0);
  // PAWS: a timestamp older than the last one we took means an old duplicate.
  if (ts_ok_ && seg.has_timestamps && !seg.has(kRst) && seq_lt(seg.ts_val, ts_recent_)) {
    ack_now_ = true;
    stats_.drop(TcpDrop::kPaws);
    return;
  }
  // RFC 5961 §4: a SYN in a synchronized state, whatever its sequence number, gets
  // a challenge ACK; a genuine peer that restarted answers it with an RST.
  if (seg.has(kSyn) && !seg.has(kRst)) {
    if (state_ == TcpState::kSynReceived && seg.seq == irs_ && !seg.has(kAck)) {
      send_syn_ = true;  // our SYN-ACK was lost: the peer repeated its SYN
      return;
    }
    challenge_ack(now);
    return;
  }
  if (!check_sequence(seg, len)) {
    if (!seg.has(kRst)) ack_now_ = true;
    if (state_ == TcpState::kTimeWait && seg.has(kFin))
      timers_.time_wait = now + cfg_.time_wait_ns;  // the peer lost our last ACK
    stats_.drop(TcpDrop::kOutOfWindow);
    return;
  }
  if (seg.has(kRst)) {
    if (seg.seq != rcv_nxt_) {
      challenge_ack(now);  // a real peer answers it with an exact RST
      stats_.drop(TcpDrop::kRstOutOfWindow);
      return;
    }
    stats_.resets_in++;
    bool quiet = state_ == TcpState::kTimeWait || state_ == TcpState::kClosing ||
                 state_ == TcpState::kLastAck;
    reset(quiet ? 0 : (state_ == TcpState::kSynReceived && passive_ ? ECONNREFUSED : ECONNRESET));
    return;
  }
  if (!seg.has(kAck)) {
    stats_.drop(TcpDrop::kNoAck);
    return;
  }
  // RFC 7323 §4.3: take the timestamp of a segment at or before the byte our last
  // ACK asked for (PAWS above made sure it is not older).
  if (ts_ok_ && seg.has_timestamps && seq_le(seg.seq, last_ack_sent_)) ts_recent_ = seg.ts_val;
  last_rx_ = now;
  keepalives_sent_ = 0;
  if (cfg_.keepalive) timers_.keepalive = now + cfg_.keepalive_idle_ns;
  if (!process_ack(seg, now)) return;
  if (snd_wnd_ == 0) retries_ = 0;  // the peer answers our window probes: keep probing
  process_data(seg, payload, now);
}

void Tcb::challenge_ack(uint64_t now) {
  // RFC 5961 §7: at most kChallengeAcksPerSecond, so that an attacker cannot turn
  // us into an ACK cannon (and cannot count our replies to learn rcv_nxt).
  if (now - challenge_epoch_ >= 1'000'000'000) {
    challenge_epoch_ = now;
    challenges_in_epoch_ = 0;
  }
  if (challenges_in_epoch_ >= kChallengeAcksPerSecond) return;
  ++challenges_in_epoch_;
  ack_now_ = true;
  stats_.challenge_acks++;
}

bool Tcb::accepts_new_syn(const wire::TcpRepr& syn) const {
  // RFC 6191 (timestamps) and RFC 1122 §4.2.2.13 (sequence numbers): a new
  // incarnation may take over a TIME_WAIT 4-tuple if its SYN cannot be confused with
  // the old connection's segments.
  if (state_ != TcpState::kTimeWait || !syn.has(kSyn) || syn.has(kAck) || syn.has(kRst))
    return false;
  if (ts_ok_ && syn.has_timestamps) return seq_gt(syn.ts_val, ts_recent_);
  return seq_gt(syn.seq, rcv_nxt_);
}

void Tcb::input_syn_sent(const wire::TcpRepr& seg, uint64_t now) {
  bool ack_ok = seg.has(kAck) && seq_gt(seg.ack, iss_) && seq_le(seg.ack, snd_max_);
  if (seg.has(kAck) && !ack_ok) {
    if (!seg.has(kRst)) {
      send_rst_ = true;
      rst_seq_ = seg.ack;
      rst_ack_ = false;
    }
    stats_.drop(TcpDrop::kBadAck);
    return;
  }
  if (seg.has(kRst)) {
    if (ack_ok) {
      stats_.resets_in++;
      reset(ECONNREFUSED);
    } else {
      stats_.drop(TcpDrop::kRstOutOfWindow);
    }
    return;
  }
  if (!seg.has(kSyn)) {
    stats_.drop(TcpDrop::kBadSyn);
    return;
  }
  irs_ = seg.seq;
  rcv_nxt_ = seg.seq + 1;
  rcv_adv_ = rcv_nxt_;
  take_options(seg);
  snd_wnd_ = max_snd_wnd_ = seg.window;  // unscaled in a SYN
  snd_wl1_ = seg.seq;
  snd_wl2_ = seg.ack;
  last_rx_ = now;
  if (ack_ok) {
    if (rtt_timing_ && seq_ge(seg.ack, rtt_seq_)) rtt_.sample(now - rtt_start_);
    rtt_timing_ = false;
    snd_una_ = seg.ack;
    if (seq_lt(snd_nxt_, snd_una_)) snd_nxt_ = snd_una_;
    timers_.retransmit = 0;
    retries_ = 0;
    rtt_.reset_backoff();
    enter_established(now);
    ack_now_ = true;
  } else {
    state_ = TcpState::kSynReceived;  // simultaneous open: answer with SYN-ACK
    send_syn_ = true;
    snd_nxt_ = iss_;
  }
}

bool Tcb::check_sequence(const wire::TcpRepr& seg, uint32_t len) {
  uint32_t wnd = static_cast<uint32_t>(rcv_buf_.free());
  // Never shrink what we already advertised (we may have rounded it down).
  if (seq_gt(rcv_adv_, rcv_nxt_ + wnd)) wnd = rcv_adv_ - rcv_nxt_;
  if (len == 0) return wnd == 0 ? seg.seq == rcv_nxt_ : seq_in(seg.seq, rcv_nxt_, rcv_nxt_ + wnd);
  if (wnd == 0) return seg.seq == rcv_nxt_;  // take its ACK; process_data drops the bytes
  return seq_in(seg.seq, rcv_nxt_, rcv_nxt_ + wnd) ||
         seq_in(seg.seq + len - 1, rcv_nxt_, rcv_nxt_ + wnd);
}

bool Tcb::process_ack(const wire::TcpRepr& seg, uint64_t now) {
  uint32_t a = seg.ack;
  if (state_ == TcpState::kSynReceived) {
    if (!(seq_lt(snd_una_, a) && seq_le(a, snd_max_))) {
      send_rst_ = true;  // RFC 9293: <SEQ=SEG.ACK><CTL=RST>; the connection stays
      rst_seq_ = a;
      rst_ack_ = false;
      stats_.drop(TcpDrop::kBadAck);
      return false;
    }
    snd_wnd_ = static_cast<uint32_t>(seg.window) << snd_wscale_;
    max_snd_wnd_ = std::max(max_snd_wnd_, snd_wnd_);
    snd_wl1_ = seg.seq;
    snd_wl2_ = a;
    enter_established(now);
  }
  if (seq_gt(a, snd_max_)) {
    ack_now_ = true;
    stats_.drop(TcpDrop::kBadAck);
    return false;
  }
  if (seq_lt(a, snd_una_ - std::max<uint32_t>(max_snd_wnd_, 1))) {
    challenge_ack(now);  // RFC 5961 §5.2: too old to be real
    stats_.drop(TcpDrop::kBadAck);
    return false;
  }
  if (sack_ok_ && seg.sack_count > 0) take_sack(seg);
  if (seq_gt(a, snd_una_)) {
    on_new_ack(seg, a - snd_una_, now);
  } else if (a == snd_una_ && seg.payload_len == 0 && !seg.has(kSyn) && !seg.has(kFin) &&
             flight() > 0 && snd_wnd_ != 0 &&
             (static_cast<uint32_t>(seg.window) << snd_wscale_) == snd_wnd_) {
    on_dup_ack(seg, now);
  }
  update_window(seg);
  bool fin_acked = fin_queued_ && snd_buf_.empty() && snd_una_ == snd_head_seq_ + 1;
  switch (state_) {
    case TcpState::kFinWait1:
      if (fin_acked) {
        state_ = TcpState::kFinWait2;
        if (user_closed_) timers_.time_wait = now + cfg_.fin_wait2_ns;
      }
      break;
    case TcpState::kClosing:
      if (fin_acked) enter_time_wait(now);
      break;
    case TcpState::kLastAck:
      if (fin_acked) {
        reset(0);
        return false;
      }
      break;
    default:
      break;
  }
  return true;
}

void Tcb::take_sack(const wire::TcpRepr& seg) {
  for (size_t i = 0; i < seg.sack_count && i < seg.sack.size(); ++i)
    sack_.add(seg.sack[i].left, seg.sack[i].right, snd_una_, snd_max_);
}

void Tcb::on_new_ack(const wire::TcpRepr& seg, uint32_t acked, uint64_t now) {
  uint32_t a = seg.ack;
  if (seq_gt(a, snd_head_seq_)) {
    uint32_t data = std::min<uint32_t>(a - snd_head_seq_, static_cast<uint32_t>(snd_buf_.size()));
    snd_buf_.consume(data);
    snd_head_seq_ += data;
    if (data > 0) events_ |= kEventWritable;
  }
  snd_una_ = a;
  if (seq_lt(snd_nxt_, a)) snd_nxt_ = a;
  sack_.advance(a);
  retries_ = 0;
  if (ts_ok_ && seg.has_timestamps && seg.ts_ecr != 0) {
    uint32_t now_ts = static_cast<uint32_t>(now / 1'000'000) + ts_offset_;
    uint32_t ms = now_ts - seg.ts_ecr;
    if (ms < 60'000) rtt_.sample(uint64_t{ms} * 1'000'000);
  } else if (rtt_timing_ && seq_ge(a, rtt_seq_)) {
    rtt_.sample(now - rtt_start_);
    rtt_timing_ = false;
  }
  rtt_.reset_backoff();
  if (in_recovery_) {
    if (seq_ge(a, recover_)) {
      in_recovery_ = false;
      rtx_una_ = false;
      dup_acks_ = 0;
      cc_.on_exit_recovery(flight());
    } else {
      stats_.partial_acks++;
      rtx_una_ = !sack_ok_;  // NewReno: resend the next hole now
      if (seq_lt(rtx_next_, snd_una_)) rtx_next_ = snd_una_;
    }
  } else {
    dup_acks_ = 0;
    cc_.on_ack(acked, now, rtt_.srtt());
  }
  if (snd_una_ == snd_max_) {
    timers_.retransmit = 0;
    timers_.persist_mode = false;
  } else {
    arm_rto(now);
  }
}

void Tcb::on_dup_ack(const wire::TcpRepr&, uint64_t now) {
  stats_.dup_acks++;
  ++dup_acks_;
  if (in_recovery_) return;
  bool sack_says_lost = sack_ok_ && sack_.sacked_bytes() > 2u * smss_;
  if ((dup_acks_ >= 3 || sack_says_lost) && seq_gt(snd_una_, recover_)) {
    in_recovery_ = true;
    recover_ = snd_max_;
    cc_.on_enter_recovery(flight(), now);
    stats_.fast_retransmits++;
    if (sack_ok_)
      stats_.sack_recoveries++;
    else
      stats_.newreno_recoveries++;
    rtx_una_ = true;
    rtx_next_ = snd_una_;
    rtt_timing_ = false;
  }
}

void Tcb::update_window(const wire::TcpRepr& seg) {
  if (seq_lt(snd_wl1_, seg.seq) || (snd_wl1_ == seg.seq && seq_le(snd_wl2_, seg.ack))) {
    snd_wnd_ = static_cast<uint32_t>(seg.window) << snd_wscale_;
    max_snd_wnd_ = std::max(max_snd_wnd_, snd_wnd_);
    snd_wl1_ = seg.seq;
    snd_wl2_ = seg.ack;
    if (snd_wnd_ > 0 && timers_.persist_mode) {
      timers_.persist_mode = false;
      timers_.retransmit = 0;
      probe_due_ = false;
    }
  }
}

void Tcb::process_data(const wire::TcpRepr& seg, std::span<const uint8_t> payload, uint64_t now) {
  bool fin = seg.has(kFin);
  bool takes_data = state_ == TcpState::kEstablished || state_ == TcpState::kFinWait1 ||
                    state_ == TcpState::kFinWait2;
  if (!takes_data) {
    // CLOSE_WAIT, CLOSING, LAST_ACK, TIME_WAIT: the peer already sent FIN; anything
    // more is a retransmission and only needs an ACK.
    if (fin || !payload.empty()) ack_now_ = true;
    if (state_ == TcpState::kTimeWait && fin) timers_.time_wait = now + cfg_.time_wait_ns;
    return;
  }
  if (user_closed_ && !payload.empty()) {
    // Data for an application that closed: nobody will read it (RFC 9293 §3.10.7.4).
    stats_.resets_out++;
    send_rst_ = true;
    rst_seq_ = snd_nxt_;
    rst_ack_ = true;
    reset(ECONNRESET);
    return;
  }
  uint32_t seq = seg.seq;
  uint32_t seg_end = seq + static_cast<uint32_t>(payload.size());
  if (!payload.empty()) {
    if (seq_lt(seq, rcv_nxt_)) {  // trim what we already have
      uint32_t skip = rcv_nxt_ - seq;
      payload = skip >= payload.size() ? payload.last(0) : payload.subspan(skip);
      seq = rcv_nxt_;
    }
    size_t wnd = rcv_buf_.free();
    size_t off = seq - rcv_nxt_;
    if (off + payload.size() > wnd) {
      payload = off >= wnd ? payload.last(0) : payload.first(wnd - off);
      fin = false;  // the FIN lies beyond what we can take
    }
    if (payload.empty()) {
      ack_now_ = true;  // a duplicate, or no room: tell the peer where we are
    } else if (off == 0) {
      bool had_holes = !ooo_.empty();
      rcv_buf_.write_at(0, payload);
      uint32_t end = ooo_.advance(rcv_nxt_ + static_cast<uint32_t>(payload.size()));
      rcv_buf_.commit(end - rcv_nxt_);
      stats_.bytes_in += end - rcv_nxt_;
      events_ |= kEventReadable;
      rcv_nxt_ = end;
      if (had_holes) {
        ack_now_ = true;  // RFC 5681 §4.2: ACK at once when a gap fills
      } else if (++segs_unacked_ >= 2) {
        ack_now_ = true;  // every second full segment
      } else if (timers_.delayed_ack == 0) {
        timers_.delayed_ack = now + cfg_.delayed_ack_ns;
      }
    } else {
      stats_.ooo_segments++;
      if (ooo_.add(seq, seq + static_cast<uint32_t>(payload.size()))) {
        rcv_buf_.write_at(off, payload);
      } else {
        stats_.drop(TcpDrop::kAssemblerFull);
      }
      ack_now_ = true;                   // duplicate ACK with SACK blocks, for fast retransmit
      if (acks_owed_ < 8) ++acks_owed_;  // one per segment, even if polled in a batch
    }
  }
  // A FIN beyond a gap is remembered (its data went to the assembler) and taken
  // once the gap fills, so a lossy close does not wait for the FIN's resend.
  if (fin && seq_gt(seg_end, rcv_nxt_) && !ooo_fin_) {
    ooo_fin_ = true;
    ooo_fin_seq_ = seg_end;
  }
  bool take_fin = fin && seg_end == rcv_nxt_;
  if (!take_fin && ooo_fin_ && ooo_fin_seq_ == rcv_nxt_) take_fin = fin = true;
  if (fin) {
    if (take_fin) {
      ooo_fin_ = false;
      rcv_nxt_++;
      fin_received_ = true;
      events_ |= kEventReadable;  // end of stream is readable
      ack_now_ = true;
      switch (state_) {
        case TcpState::kEstablished:
          state_ = TcpState::kCloseWait;
          break;
        case TcpState::kFinWait1:
          state_ = TcpState::kClosing;  // our FIN is not yet acked (else FIN_WAIT_2)
          break;
        case TcpState::kFinWait2:
          enter_time_wait(now);
          break;
        default:
          break;
      }
    } else {
      ack_now_ = true;  // out of order: remembered above, or a stale duplicate
    }
  }
}

void Tcb::enter_established(uint64_t now) {
  events_ |= kEventConnected | kEventWritable;
  state_ = fin_queued_ ? TcpState::kFinWait1 : TcpState::kEstablished;
  if (cfg_.keepalive) timers_.keepalive = now + cfg_.keepalive_idle_ns;
}

void Tcb::enter_time_wait(uint64_t now) {
  state_ = TcpState::kTimeWait;
  timers_.retransmit = 0;
  timers_.persist_mode = false;
  timers_.keepalive = 0;
  timers_.time_wait = now + cfg_.time_wait_ns;
}

}  // namespace dfly::net::tcp
