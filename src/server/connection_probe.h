// Whether the client of a non-streaming request is still connected.
//
// cpp-httplib 0.11 gives a handler no access to its socket and writes nothing before the
// handler returns, so a client that gave up on a long non-streaming answer would keep its
// sequence busy until the answer was complete. The probe finds the connection's socket once,
// by its address pair (the request's local and remote address and port, unique for a TCP
// connection), among the process's open descriptors (/proc/self/fd), and then polls it: a
// peer that closed or reset the connection shows as POLLRDHUP / POLLHUP / POLLERR. A client
// that only half-closes (shutdown(SHUT_WR)) while still waiting would be taken for gone; HTTP
// clients do not do that.
//
// Thread-safety: used by the one handler thread that owns the connection. The descriptor stays
// valid while that handler runs (httplib closes the socket after the response).
#pragma once

#include <string>

namespace dsv4::server {

class ConnectionProbe {
 public:
  ConnectionProbe(const std::string& local_addr, int local_port, const std::string& remote_addr, int remote_port);
  bool found() const { return fd_ >= 0; }
  // True once the peer has closed or reset the connection; false when the socket was not found.
  bool peer_closed() const;

 private:
  int fd_ = -1;
};

}  // namespace dsv4::server
