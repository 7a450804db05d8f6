// net/tcp: per-CPU connection table (ownership and demultiplexing in table.h).
#include "net/tcp/table.h"

#include <cerrno>
#include "net/tcp/reset.h"
#include "net/wire/drop.h"

namespace dfly::net::tcp {

using namespace wire::tcp_flags;

Result<Listener*> TcpTable::listen(Endpoint local, const ListenerConfig& c) {
  if (listeners_.count(local.port) != 0)
    return Error(EADDRINUSE, "tcp: listen: port " + std::to_string(local.port) + " taken");
  auto l = std::make_unique<Listener>(local, c, isn_);
  Listener* p = l.get();
  listeners_.emplace(local.port, std::move(l));
  return p;
}

Result<Tcb*> TcpTable::connect(const FourTuple& t, const TcpConfig& c, uint64_t now) {
  if (index_.count(t) != 0) return Error(EADDRINUSE, "tcp: connect: 4-tuple in use");
  Tcb* tcb = adopt(Tcb::create(t, c));
  TRY(tcb->connect(isn_.isn(t, now), now));
  return tcb;
}

Tcb* TcpTable::adopt(std::unique_ptr<Tcb> t) {
  Tcb* p = t.get();
  index_[p->tuple()] = conns_.size();
  conns_.push_back({std::move(t), false});
  return p;
}

Tcb* TcpTable::accept(uint16_t port) {
  Listener* l = listener_for(port);
  if (!l) return nullptr;
  auto t = l->accept();
  if (!t) return nullptr;
  if (index_.count(t->tuple()) != 0) {  // cannot happen: demux sends it to the Tcb
    t->abort();
    return nullptr;
  }
  return adopt(std::move(t));
}

void TcpTable::release(Tcb* t) {
  auto it = index_.find(t->tuple());
  if (it == index_.end() || conns_[it->second].tcb.get() != t) return;
  conns_[it->second].released = true;
  t->close();
}

void TcpTable::free_at(size_t i) {
  stats_.add(conns_[i].tcb->stats());
  index_.erase(conns_[i].tcb->tuple());
  if (i + 1 != conns_.size()) {
    conns_[i] = std::move(conns_.back());
    index_[conns_[i].tcb->tuple()] = i;
  }
  conns_.pop_back();
}

Listener* TcpTable::listener_for(uint16_t port) const {
  auto it = listeners_.find(port);
  return it == listeners_.end() ? nullptr : it->second.get();
}

Tcb* TcpTable::find(const FourTuple& t) const {
  auto it = index_.find(t);
  return it == index_.end() ? nullptr : conns_[it->second].tcb.get();
}

Status TcpTable::input(wire::Ipv4Addr src, wire::Ipv4Addr dst, std::span<const uint8_t> segment,
                       uint64_t now) {
  auto v = TRY(wire::TcpView::parse(segment));
  auto r = TRY(wire::TcpRepr::parse(v, src, dst));
  FourTuple t{{dst, r.dst_port}, {src, r.src_port}};
  auto it = index_.find(t);
  if (it != index_.end()) {
    Entry& e = conns_[it->second];
    if (e.released && e.tcb->accepts_new_syn(r) && listener_for(r.dst_port)) {
      free_at(it->second);  // a new incarnation takes over the TIME_WAIT 4-tuple
    } else {
      e.tcb->input(r, v.payload(), now);
      return Ok{};
    }
  }
  if (Listener* l = listener_for(r.dst_port)) {
    l->input(src, dst, r, v.payload(), now);
    return Ok{};
  }
  if (!r.has(kRst) && n_rst_ < kMaxPendingRst) rst_[n_rst_++] = {src, dst, r};
  return Ok{};
}

Emitted TcpTable::poll(uint64_t now, std::span<uint8_t> out) {
  while (n_rst_ > 0) {
    PendingRst& p = rst_[--n_rst_];
    if (Emitted e = reset_reply(p.src, p.dst, p.seg, out)) {
      stats_.resets_out++;
      return e;
    }
  }
  for (auto& [port, l] : listeners_)
    if (Emitted e = l->poll(now, out)) return e;
  for (size_t k = 0; k < conns_.size(); ++k) {
    size_t i = (cursor_ + k) % conns_.size();
    Emitted e = conns_[i].tcb->poll(now, out);
    if (e) {
      cursor_ = i + 1;
      return e;
    }
    if (conns_[i].released && conns_[i].tcb->is_closed()) {
      free_at(i);
      if (conns_.empty()) break;
      --k;  // slot i now holds another connection
    }
  }
  return {};
}

uint64_t TcpTable::next_deadline() const {
  if (n_rst_ > 0) return 0;
  uint64_t n = kNever;
  for (const auto& [port, l] : listeners_) n = std::min(n, l->next_deadline());
  for (const auto& e : conns_) {
    if (e.tcb->wants_poll() || (e.released && e.tcb->is_closed())) return 0;
    n = std::min(n, e.tcb->next_deadline());
  }
  return n;
}

}  // namespace dfly::net::tcp

namespace dfly::net::tcp {

TcpStats TcpTable::totals() const {
  TcpStats t = stats_;
  for (const auto& e : conns_) t.add(e.tcb->stats());
  for (const auto& [port, l] : listeners_) t.add(l->stats());
  return t;
}

}  // namespace dfly::net::tcp
