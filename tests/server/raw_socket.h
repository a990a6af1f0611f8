// Raw loopback sockets for the edge tests (tests/server/http_edge_test.cpp,
// http_transport_test.cpp): they send what an HTTP library would not (partial heads, oversized
// chunked bodies, one byte at a time) and read exactly what the server writes back.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <string>

namespace dsv4::server::test_server {

// A blocking loopback connection; reads and writes give up after `timeout`. `rcvbuf` > 0 sets a
// small receive buffer (a client that reads slowly).
inline int connect_to(int port, std::chrono::seconds timeout = std::chrono::seconds(10), int rcvbuf = 0) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (rcvbuf > 0) ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(uint16_t(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  timeval tv{long(timeout.count()), 0};
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  EXPECT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0) << std::strerror(errno);
  return fd;
}

// Sends as much of `data` as the peer takes; returns the bytes sent.
inline size_t send_all(int fd, const std::string& data) {
  size_t sent = 0;
  while (sent < data.size()) {
    const ssize_t n = ::send(fd, data.data() + sent, data.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) break;
    sent += size_t(n);
  }
  return sent;
}

// Everything the peer sends until it closes the connection (or the read timeout passes).
inline std::string read_until_close(int fd) {
  std::string out;
  char buf[65536];
  for (;;) {
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    out.append(buf, size_t(n));
  }
  return out;
}

// The status code of a raw HTTP reply ("HTTP/1.1 413 ..."), 0 if there is none.
inline int status_of(const std::string& reply) { return reply.size() > 12 ? std::atoi(reply.c_str() + 9) : 0; }

}  // namespace dsv4::server::test_server
