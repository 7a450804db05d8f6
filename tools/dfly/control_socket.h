// A daemon's control socket: a Unix stream socket where a CLI client sends one
// request line and reads one JSON document back (`dfly stack stats`, `dfly cluster
// status`).
//
// Theory of operation. One thread accepts and answers connections one at a time
// (requests are rare and cheap: counters and tables); a request is at most 512 bytes
// and must arrive within 2 s, so a stuck client costs at most that and never blocks
// the daemon's work. The handler runs on that thread. The socket file is replaced at
// start (a stale one from a killed run) and removed when the ControlSocket goes.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <thread>

#include <nlohmann/json.hpp>

#include "base/result.h"

namespace dfly::cli {

class ControlSocket {
 public:
  using Handler = std::function<nlohmann::json(std::string_view request)>;
  // Creates the socket's directory if missing. Errors: ENAMETOOLONG, or the errno of
  // socket/bind/listen.
  static Result<std::unique_ptr<ControlSocket>> start(std::string path, Handler handler);
  ~ControlSocket();
  ControlSocket(const ControlSocket&) = delete;
  ControlSocket& operator=(const ControlSocket&) = delete;

 private:
  ControlSocket(std::string path, int fd, Handler h)
      : path_(std::move(path)), fd_(fd), handler_(std::move(h)) {}
  void serve();
  std::string path_;
  int fd_;
  Handler handler_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

// The client side: sends request (one line) to the socket at path and parses the
// reply (at most 16 MiB, within 5 s). Errors: the errno of connect (ENOENT when no
// daemon made the socket), EBADMSG for a reply that is not JSON.
Result<nlohmann::json> control_query(const std::string& path, std::string_view request);

}  // namespace dfly::cli
