// net/ip: UDP echo (RFC 862) and discard (RFC 863); see udp_services.h.
#include "net/ip/udp_services.h"

#include "net/mbuf/pool.h"

namespace dfly::net::ip {

Result<std::unique_ptr<UdpService>> UdpService::start(Interface& ifp, Kind kind, uint16_t port) {
  std::unique_ptr<UdpService> svc(new UdpService(kind));
  svc->sock_ =
      TRY(UdpSocket::open(ifp, {.queue_len = 1, .upcall = upcall, .upcall_ctx = svc.get()}));
  TRY(svc->sock_->bind(port));
  return svc;
}

void UdpService::upcall(void* ctx, UdpSocket& s, Mbuf* m, const UdpEndpoint& from, bool bcast) {
  auto* self = static_cast<UdpService*>(ctx);
  if (self->kind_ == Kind::kEcho && (bcast || from.port == 0 || from.addr.is_unspecified() ||
                                     from.addr.is_broadcast() || from.addr.is_multicast())) {
    bump(self->ignored_, 1);
    return m->pool()->free(m);
  }
  bump(self->datagrams_, 1);
  bump(self->bytes_, m->pkt.len);
  if (self->kind_ == Kind::kDiscard) return m->pool()->free(m);
  s.output_on_cpu(m, from);  // echo: the same payload straight back
}

}  // namespace dfly::net::ip
