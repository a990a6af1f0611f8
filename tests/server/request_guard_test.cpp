#include "server/request_guard.h"

#include <gtest/gtest.h>

namespace dsv4::server {
namespace {

TEST(RequestGuard, HostsAreComparedWithoutCaseOrPort) {
  EXPECT_EQ(normalize_host("Example.COM:8000"), "example.com");
  EXPECT_EQ(normalize_host("127.0.0.1:80"), "127.0.0.1");
  EXPECT_EQ(normalize_host("[::1]:8000"), "[::1]");
  EXPECT_EQ(normalize_host("::1"), "[::1]");
  EXPECT_EQ(normalize_host("fe80::1"), "[fe80::1]");
  EXPECT_EQ(normalize_host("::ffff:10.0.0.2"), "10.0.0.2");
  const auto any = allowed_host_names("0.0.0.0", {"Api.Internal:443"});
  EXPECT_EQ(any, (std::vector<std::string>{"localhost", "127.0.0.1", "[::1]", "api.internal"}));
  EXPECT_EQ(allowed_host_names("::", {}).size(), 3u);
  EXPECT_EQ(allowed_host_names("10.1.2.3", {}).back(), "10.1.2.3");
  // Reached at its LAN address while bound to every interface.
  EXPECT_FALSE(check_host("10.1.2.3:8000", "10.1.2.3", any));
  EXPECT_FALSE(check_host("10.1.2.3:8000", "::ffff:10.1.2.3", any));
  EXPECT_TRUE(check_host("10.1.2.4:8000", "10.1.2.3", any));
  EXPECT_FALSE(check_host("", "10.1.2.3", any));   // HTTP/1.0 without Host
}

TEST(RequestGuard, OriginsMatchExactly) {
  const std::vector<std::string> allowed = {"https://app.example/", "http://localhost:3000"};
  EXPECT_FALSE(check_origin("", allowed));
  EXPECT_FALSE(check_origin("https://APP.example", allowed));
  EXPECT_FALSE(check_origin("http://localhost:3000", allowed));
  EXPECT_TRUE(check_origin("http://localhost:3001", allowed));
  EXPECT_TRUE(check_origin("https://app.example.evil", allowed));
  EXPECT_TRUE(check_origin("null", allowed));
  EXPECT_EQ(check_origin("https://x", {})->http_status, 403);
}

TEST(RequestGuard, BodyHeaders) {
  auto status = [](BodyHeaders h) {
    auto r = check_body_headers(h, 1000);
    return r ? r->http_status : 0;
  };
  BodyHeaders post{"POST", 1, "12", std::nullopt, "application/json"};
  EXPECT_EQ(status(post), 0);
  BodyHeaders h = post;
  h.content_length = "1001";
  EXPECT_EQ(status(h), 413);
  h.content_length = "-1";
  EXPECT_EQ(status(h), 400);
  h.content_length = " 12 ";
  EXPECT_EQ(status(h), 0);
  h = post;
  h.content_length_count = 0;
  EXPECT_EQ(status(h), 411);
  h.transfer_encoding = "Chunked";
  EXPECT_EQ(status(h), 0);
  h.transfer_encoding = "gzip, chunked";
  EXPECT_EQ(status(h), 501);
  h = post;
  h.content_type = "application/json;charset=utf-8";
  EXPECT_EQ(status(h), 0);
  h.content_type = "application/jsonx";
  EXPECT_EQ(status(h), 415);
  h.content_type = "";
  EXPECT_EQ(status(h), 415);
  EXPECT_EQ(status({"GET", 0, "", std::nullopt, ""}), 0);
  EXPECT_EQ(status({"GET", 1, "0", std::nullopt, ""}), 0);
  EXPECT_EQ(status({"GET", 1, "3", std::nullopt, ""}), 400);
  EXPECT_EQ(status({"DELETE", 0, "", "chunked", ""}), 400);
}

}  // namespace
}  // namespace dsv4::server
