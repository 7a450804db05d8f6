// net/ip: UDP echo (RFC 862) and discard (RFC 863); see udp_services.h.
#include "net/ip/udp_services.h"

#include "net/mbuf/pool.h"

namespace dfly::net::ip {

Result<std::unique_ptr<UdpService>> UdpService::start(Interface& ifp, Kind kind, uint16_t port) {
  std::unique_ptr<UdpService> svc(new UdpService(kind));
  for (size_t i = 0; i < ifp.nprotos(); i++) {
    auto inst = std::make_unique<Instance>();
    inst->svc = svc.get();
    inst->sock = TRY(UdpSocket::open(ifp, {.queue_len = 1,
                                           .upcall = upcall,
                                           .upcall_ctx = inst.get(),
                                           .proto = int(i),
                                           .per_cpu = true}));
    TRY(inst->sock->bind(port));
    svc->insts_.push_back(std::move(inst));
  }
  return svc;
}

void UdpService::upcall(void* ctx, UdpSocket& s, Mbuf* m, const UdpEndpoint& from, bool bcast) {
  auto* inst = static_cast<Instance*>(ctx);
  Kind kind = inst->svc->kind_;
  if (kind == Kind::kEcho && (bcast || from.port == 0 || from.addr.is_unspecified() ||
                              from.addr.is_broadcast() || from.addr.is_multicast())) {
    bump(inst->ignored, 1);
    return m->pool()->free(m);
  }
  bump(inst->datagrams, 1);
  bump(inst->bytes, m->pkt.len);
  if (kind == Kind::kDiscard) return m->pool()->free(m);
  s.output_on_cpu(m, from);  // echo: the same payload straight back
}

}  // namespace dfly::net::ip
