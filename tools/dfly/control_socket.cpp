#include "control_socket.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>

namespace dfly::cli {
namespace {

constexpr size_t kMaxRequest = 512;

bool send_all(int fd, std::string_view s) {
  while (!s.empty()) {
    ssize_t n = ::send(fd, s.data(), s.size(), MSG_NOSIGNAL);
    if (n <= 0) return false;
    s.remove_prefix(size_t(n));
  }
  return true;
}

Result<sockaddr_un> unix_addr(const std::string& path) {
  sockaddr_un a{};
  if (path.size() >= sizeof a.sun_path)
    return Error(ENAMETOOLONG, "control socket path " + path + ": too long");
  a.sun_family = AF_UNIX;
  std::memcpy(a.sun_path, path.c_str(), path.size());
  return a;
}

}  // namespace

Result<std::unique_ptr<ControlSocket>> ControlSocket::start(std::string path, Handler handler) {
  sockaddr_un a = TRY(unix_addr(path));
  std::error_code ec;
  std::filesystem::create_directories(std::filesystem::path(path).parent_path(), ec);
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return errno_error("control socket");
  ::unlink(path.c_str());  // a stale socket from a killed run
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(fd, 8) != 0) {
    Error e = errno_error("control socket " + path);
    ::close(fd);
    return e;
  }
  std::unique_ptr<ControlSocket> s(new ControlSocket(std::move(path), fd, std::move(handler)));
  s->thread_ = std::thread([p = s.get()] { p->serve(); });
  return s;
}

ControlSocket::~ControlSocket() {
  stop_ = true;
  thread_.join();
  ::close(fd_);
  ::unlink(path_.c_str());
}

void ControlSocket::serve() {
  while (!stop_) {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, 200) <= 0) continue;
    int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (c < 0) continue;
    timeval tv{2, 0};
    ::setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    std::string line;
    char buf[256];
    ssize_t n;
    while (line.size() <= kMaxRequest && line.find('\n') == std::string::npos &&
           (n = ::read(c, buf, sizeof buf)) > 0)
      line.append(buf, size_t(n));
    nlohmann::json reply;
    if (line.size() > kMaxRequest || line.find('\n') == std::string::npos)
      reply = {{"error", "request too long or incomplete"}};
    else
      reply = handler_(std::string_view(line).substr(0, line.find('\n')));
    send_all(c, reply.dump() + "\n");
    ::close(c);
  }
}

Result<nlohmann::json> control_query(const std::string& path, std::string_view request) {
  sockaddr_un a = TRY(unix_addr(path));
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return errno_error("socket");
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    Error e = errno_error(path);
    ::close(fd);
    return e;
  }
  timeval tv{5, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  std::string req(request);
  req += '\n';
  if (!send_all(fd, req)) {
    Error e = errno_error(path + ": sending the request");
    ::close(fd);
    return e;
  }
  std::string out;
  char buf[4096];
  ssize_t n;
  while (out.size() < (16u << 20) && (n = ::read(fd, buf, sizeof buf)) > 0)
    out.append(buf, size_t(n));
  ::close(fd);
  auto j = nlohmann::json::parse(out, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return Error(EBADMSG, path + ": the reply is not JSON");
  return j;
}

}  // namespace dfly::cli
