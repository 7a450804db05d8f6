// net/tcp: one TCP connection (a transmission control block), sans-IO.
//
// What it is. The whole RFC 9293 state machine of one connection, driven entirely
// by its owner: the owner parses a segment (wire::TcpRepr) and calls input(); calls
// poll(now, buf) repeatedly, sending each segment it writes (the TCP header with
// checksum and payload; the owner adds IPv4) until it returns nothing; arms its
// timer wheel for next_deadline(); and calls the socket-side methods (send, recv,
// shutdown, close, abort) for the application. No threads, clocks, sockets or
// allocation inside: both buffers are fixed-capacity rings allocated by create(),
// so the per-segment path allocates nothing.
//
// Thread safety: none. One owner (the CPU the 4-tuple hashes to) calls everything.
//
// Contract.
//   - input() never fails: a segment it cannot use is counted (stats().drops) and
//     may schedule a reply (ACK, challenge ACK, RST) that the next poll() emits.
//   - poll() writes at most one segment per call into out (which must hold at least
//     kTcpMaxHeaderLen + mss bytes for full-sized segments; smaller buffers get
//     smaller segments) and returns its length and addresses, or len 0. It also fires
//     due timers. Calls until len 0 terminate: every emission consumes what asked
//     for it.
//   - send() copies what fits into the send ring: the count (0 when full), or
//     ENOTCONN (not yet synchronized and not connecting), EPIPE (after
//     shutdown/close), the connection's error (ECONNRESET, ETIMEDOUT, ECONNREFUSED).
//   - recv() copies in-order bytes: the count; 0 at end of stream (the peer's FIN
//     was received and all data read); EAGAIN when none is there yet; or the error.
//   - shutdown_write() queues a FIN after the send queue; close() also gives up the
//     receive side (unread or later-arriving data resets the connection, RFC 9293
//     §3.10.4); abort() sends RST and closes now.
//   - is_closed(): the owner may free the Tcb (after folding stats() into its
//     aggregate). The receive ring is the application's socket buffer, so after an
//     orderly end (CLOSED with error() 0: LAST_ACK acknowledged, TIME_WAIT over or
//     reset) the Tcb stays until the application has read every byte (recv()
//     returns them, then 0) or called close(); a failed connection may go at once.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include "base/result.h"
#include "net/tcp/assembler.h"
#include "net/tcp/congestion.h"
#include "net/tcp/endpoint.h"
#include "net/tcp/ring.h"
#include "net/tcp/rtt.h"
#include "net/tcp/scoreboard.h"
#include "net/tcp/state.h"
#include "net/tcp/stats.h"
#include "net/tcp/timers.h"
#include "net/wire/tcp.h"

namespace dfly::net::tcp {

struct TcpConfig {
  uint32_t send_buffer = 256 * 1024;
  uint32_t recv_buffer = 256 * 1024;
  uint16_t mss = 1460;   // what we can receive (interface MTU - 40)
  bool nodelay = false;  // disable Nagle
  bool sack = true;
  bool timestamps = true;
  bool window_scale = true;
  CcAlgorithm cc = CcAlgorithm::kCubic;
  RtoConfig rto;
  uint64_t delayed_ack_ns = 40'000'000;
  uint32_t max_retries = 12;  // RTOs in a row before ETIMEDOUT
  uint32_t max_syn_retries = 5;
  bool keepalive = false;
  uint64_t keepalive_idle_ns = 7200'000'000'000;
  uint64_t keepalive_interval_ns = 75'000'000'000;
  uint32_t keepalive_probes = 9;
  uint64_t time_wait_ns = 60'000'000'000;  // 2·MSL
  uint64_t fin_wait2_ns = 60'000'000'000;  // after close(), like Linux tcp_fin_timeout
};

// Events for the socket layer (take_events()): what may now succeed that may not
// have before, so it can complete blocked or async calls without polling states.
inline constexpr uint32_t kEventReadable = 1;   // recv() has bytes or end of stream
inline constexpr uint32_t kEventWritable = 2;   // send() has room again
inline constexpr uint32_t kEventConnected = 4;  // the handshake completed
inline constexpr uint32_t kEventClosed = 8;     // CLOSED (error() says why, 0 if orderly)

class Tcb {
 public:
  // Allocates the rings. The Tcb starts CLOSED; then connect() or accept_syn().
  static std::unique_ptr<Tcb> create(const FourTuple& t, const TcpConfig& c);

  // Active open: CLOSED -> SYN_SENT with initial sequence number iss.
  Status connect(uint32_t iss, uint64_t now);
  // Passive open from a listener: takes the peer's SYN, -> SYN_RECEIVED.
  void accept_syn(const wire::TcpRepr& syn, uint32_t iss, uint64_t now);

  // Passive open from a SYN cookie (syn_cookie.h): `ack` completed a handshake the
  // listener did not record; mss is what the cookie encoded. -> ESTABLISHED (no
  // window scaling, SACK or timestamps), then ack and its payload are processed.
  void accept_cookie(const wire::TcpRepr& ack, std::span<const uint8_t> payload, uint16_t mss,
                     uint64_t now);

  void input(const wire::TcpRepr& seg, std::span<const uint8_t> payload, uint64_t now);
  Emitted poll(uint64_t now, std::span<uint8_t> out);
  // The earliest time poll() has timer work to do; kNever if none. Segments that are
  // ready now (poll would emit) are signalled by wants_poll().
  uint64_t next_deadline() const { return timers_.next(); }
  bool wants_poll() const;

  Result<size_t> send(std::span<const uint8_t> data);
  Result<size_t> recv(std::span<uint8_t> out);
  Status shutdown_write();
  void close();
  void abort();

  // In TIME_WAIT: true if `syn` may open a new incarnation of this 4-tuple (RFC
  // 6191: newer timestamp, or RFC 1122: sequence above ours). The owner then frees
  // this Tcb and hands the SYN to the listener; otherwise it feeds it to input(),
  // which answers with an ACK.
  bool accepts_new_syn(const wire::TcpRepr& syn) const;

  // Path MTU discovery (RFC 1191): the owner got ICMP "fragmentation needed" for
  // this connection's path. Lowers the segment size (never raises it, never below
  // 64 payload bytes) and resends what is in flight at the new size.
  void on_path_mtu(uint16_t mtu, uint64_t now);

  // A snapshot for `ss`-like listings.
  struct Info {
    TcpState state;
    uint32_t cwnd, ssthresh, snd_wnd, rcv_wnd, mss, in_flight;
    uint64_t srtt_ns, rto_ns;
    bool sack, timestamps, window_scale, in_recovery;
  };
  Info info() const;

  // Socket options that may change on a live connection (buffer sizes are fixed at
  // create(); SO_LINGER with a zero timeout is abort()).
  void set_nodelay(bool on) { cfg_.nodelay = on; }
  void set_keepalive(bool on, uint64_t idle_ns, uint64_t interval_ns, uint32_t probes,
                     uint64_t now);

  // Events since the last call (kEvent* bits), cleared by the call.
  uint32_t take_events() {
    uint32_t e = events_;
    events_ = 0;
    return e;
  }

  TcpState state() const { return state_; }
  bool is_closed() const {
    return state_ == TcpState::kClosed && !send_rst_ &&
           (rcv_buf_.empty() || user_closed_ || error_ != 0);
  }
  // 0, or ECONNRESET / ECONNREFUSED / ETIMEDOUT once the connection failed.
  int error() const { return error_; }
  const FourTuple& tuple() const { return tuple_; }
  const TcpStats& stats() const { return stats_; }
  size_t send_space() const { return fin_queued_ ? 0 : snd_buf_.free(); }
  size_t recv_available() const { return rcv_buf_.size(); }
  uint32_t cwnd() const { return cc_.cwnd(); }
  uint32_t mss() const { return smss_; }

 private:
  Tcb(const FourTuple& t, const TcpConfig& c);

  // tcb_input.cpp
  void challenge_ack(uint64_t now);
  void input_syn_sent(const wire::TcpRepr& seg, uint64_t now);
  bool check_sequence(const wire::TcpRepr& seg, uint32_t len);
  bool process_ack(const wire::TcpRepr& seg, uint64_t now);
  void on_new_ack(const wire::TcpRepr& seg, uint32_t acked, uint64_t now);
  void on_dup_ack(const wire::TcpRepr& seg, uint64_t now);
  void take_sack(const wire::TcpRepr& seg);
  void process_data(const wire::TcpRepr& seg, std::span<const uint8_t> payload, uint64_t now);
  void take_options(const wire::TcpRepr& syn);
  void update_window(const wire::TcpRepr& seg);
  void enter_established(uint64_t now);
  void enter_time_wait(uint64_t now);
  void reset(int err);

  // tcb_output.cpp
  void fire_timers(uint64_t now);
  void on_rto(uint64_t now);
  // Writes one segment at seq with up to data_len bytes from the send ring (fewer if
  // out or the MSS bound it) and FIN if asked and the data reaches its end; *sent:
  // sequence space used.
  Emitted emit(uint64_t now, std::span<uint8_t> out, uint32_t seq, uint8_t flags, uint32_t data_len,
               bool fin_if_last, uint32_t* sent);
  Emitted emit_rst(std::span<uint8_t> out);
  bool pick_data(uint32_t* seq, uint32_t* len, bool* rtx) const;
  uint32_t data_end() const;
  uint32_t pipe() const;
  uint32_t flight() const { return snd_max_ - snd_una_; }
  uint16_t window_field(bool syn) const;
  void arm_rto(uint64_t now);
  bool fin_ready() const;
  void init_send(uint32_t iss, uint64_t now);

  FourTuple tuple_;
  TcpConfig cfg_;
  TcpState state_ = TcpState::kClosed;
  int error_ = 0;
  bool passive_ = false;
  bool user_closed_ = false;

  // Send side (RFC 9293 §3.3.1 names). snd_max_: highest sequence ever sent + 1;
  // snd_nxt_ falls back to snd_una_ on a timeout (go-back-N).
  uint32_t iss_ = 0, snd_una_ = 0, snd_nxt_ = 0, snd_max_ = 0;
  uint32_t snd_wnd_ = 0, snd_wl1_ = 0, snd_wl2_ = 0, max_snd_wnd_ = 0;
  uint8_t snd_wscale_ = 0;
  uint32_t snd_head_seq_ = 0;  // sequence number of snd_buf_'s first byte
  bool fin_queued_ = false;    // FIN follows the last byte in snd_buf_
  ByteRing snd_buf_;
  uint16_t smss_ = 536;  // payload bytes per segment (options excluded)

  // Receive side.
  uint32_t irs_ = 0, rcv_nxt_ = 0, rcv_adv_ = 0;  // rcv_adv_: right edge advertised
  uint8_t rcv_wscale_ = 0;
  bool fin_received_ = false;
  bool ooo_fin_ = false;  // a FIN arrived beyond a gap, at ooo_fin_seq_
  uint32_t ooo_fin_seq_ = 0;
  ByteRing rcv_buf_;
  Assembler ooo_;

  // Options agreed in the handshake.
  bool ts_ok_ = false, sack_ok_ = false, ws_ok_ = false;
  uint32_t ts_recent_ = 0;
  uint32_t ts_offset_ = 0;
  uint32_t last_ack_sent_ = 0;

  // Pending output.
  bool ack_now_ = false;
  uint8_t acks_owed_ = 0;  // duplicate ACKs still to send for out-of-order arrivals
  bool send_syn_ = false;
  bool send_rst_ = false;
  uint32_t rst_seq_ = 0;
  bool rst_ack_ = false;       // RST carries ACK=rcv_nxt
  uint32_t segs_unacked_ = 0;  // full segments received since our last ACK
  bool probe_due_ = false;     // zero-window probe
  bool keepalive_due_ = false;

  // Loss recovery.
  RttEstimator rtt_;
  Congestion cc_;
  Scoreboard sack_;
  uint32_t dup_acks_ = 0;
  bool in_recovery_ = false;
  uint32_t recover_ = 0;   // snd_max at recovery entry (RFC 6582)
  uint32_t rtx_next_ = 0;  // next hole byte to retransmit in recovery
  bool rtx_una_ = false;   // NewReno: resend the segment at snd_una
  uint32_t retries_ = 0;
  bool rtt_timing_ = false;  // Karn: one segment timed when no timestamps
  uint32_t rtt_seq_ = 0;
  uint64_t rtt_start_ = 0;
  uint64_t last_rx_ = 0;  // for keepalive idle
  uint32_t keepalives_sent_ = 0;

  static constexpr uint32_t kChallengeAcksPerSecond = 10;
  uint64_t challenge_epoch_ = 0;
  uint32_t challenges_in_epoch_ = 0;

  uint32_t events_ = 0;
  Timers timers_;
  TcpStats stats_;
};

}  // namespace dfly::net::tcp
