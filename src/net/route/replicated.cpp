// net/route: the CPU-to-CPU update walk of ReplicatedRoutes (see replicated.h).
#include "net/route/replicated.h"

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "base/bug.h"

namespace dfly::net {
namespace {

[[noreturn]] void bug(const char* what) {
  ::dfly::bug("net/route", what);
}

}  // namespace

// The request is written once by the caller before the walk starts; the handlers
// only read op/route (so every CPU applies the identical request). error_msg is
// written by CPU 0 only when it stops the walk.
struct ReplicatedRoutes::Walk : lwkt::Msg {
  enum Op { kAdd, kDel };
  ReplicatedRoutes* self = nullptr;
  Op op = kAdd;
  Route route;
  std::string error_msg;
};

ReplicatedRoutes::ReplicatedRoutes(lwkt::System& sys) : sys_(sys) {
  for (int i = 0; i < sys.ncpus(); ++i) replicas_.push_back(std::make_unique<Replica>());
}

ReplicatedRoutes::~ReplicatedRoutes() = default;

const RouteTable& ReplicatedRoutes::local() const {
  lwkt::Cpu* c = lwkt::Cpu::current();
  if (c == nullptr || c->id() >= ncpus() || &sys_.cpu(c->id()) != c)
    bug("route lookup off this system's dispatch threads");
  return replicas_[static_cast<size_t>(c->id())]->table;
}

void ReplicatedRoutes::walk_handler(lwkt::Msg* m) {
  auto* w = static_cast<Walk*>(m);
  const int id = lwkt::Cpu::current()->id();
  RouteTable& t = w->self->replicas_[static_cast<size_t>(id)]->table;
  Status s = w->op == Walk::kAdd ? t.add(w->route) : t.del(w->route.prefix, w->route.len);
  if (!s.ok()) {
    if (id != 0) bug("route replicas diverged: a change CPU 0 accepted failed on another CPU");
    w->error_msg = s.error().message();
    lwkt::replymsg(w, s.error().code());
    return;
  }
  if (id + 1 < w->self->ncpus()) {
    lwkt::forwardmsg(w->self->sys_.cpu(id + 1).port(), w);
  } else {
    lwkt::replymsg(w, 0);
  }
}

Status ReplicatedRoutes::run_walk(Walk& w) {
  if (lwkt::Cpu::current() != nullptr)
    bug("route change from a dispatch thread (control plane must not block the data plane)");
  w.self = this;
  w.handler = walk_handler;
  int err = lwkt::domsg(sys_.cpu(0).port(), &w);
  if (err == 0) return Ok{};
  if (err == ECANCELED) return Error(ECANCELED, "route change: system stopping");
  return Error(err, w.error_msg);
}

Status ReplicatedRoutes::add(const Route& r) {
  Walk w;
  w.op = Walk::kAdd;
  w.route = r;
  return run_walk(w);
}

Status ReplicatedRoutes::del(uint32_t prefix, uint8_t len) {
  Walk w;
  w.op = Walk::kDel;
  w.route.prefix = prefix;
  w.route.len = len;
  return run_walk(w);
}

}  // namespace dfly::net
