#include "app/server.h"

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cstdio>
#include <random>

#include "app/idempotency.h"
#include "app/metrics.h"
#include "app/request_scope.h"
#include "app/routes.h"
#include "core/clock.h"
#include "core/log.h"

namespace app {
namespace {

// Request ids: "req-<8 hex digits of this process's start>-<n>", unique
// across restarts so log lines of two runs never share an id.
std::string next_request_id() {
  static const unsigned boot = static_cast<unsigned>(std::random_device{}());
  static std::atomic<std::uint64_t> counter{0};
  char buf[48];
  std::snprintf(buf, sizeof buf, "req-%08x-%llu", boot,
                static_cast<unsigned long long>(counter.fetch_add(1) + 1));
  return buf;
}

// An X-Request-Id sent by a proxy or client is kept (so one id follows the
// request through every hop) when it is 1-128 characters of letters, digits
// and "-_.:"; anything else is replaced, so log lines stay parseable and a
// client cannot inject text into them.
bool acceptable_request_id(const std::string& id) {
  if (id.empty() || id.size() > 128) return false;
  return std::all_of(id.begin(), id.end(), [](unsigned char c) {
    return std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == ':';
  });
}

std::string join(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& s : items) {
    if (!out.empty()) out += ", ";
    out += s;
  }
  return out;
}

// One line per request (app/metrics.cpp writes it): request id, method, route
// template, path, status, µs, transaction attempts. The query string and
// body are left out: they may carry personal data or tokens.
void log_request(const httplib::Request& req, const httplib::Response& res) {
  RequestScope& scope = request_scope();
  // cpp-httplib answers a few malformed requests (414, a bad request line)
  // without running the pre-routing hook; the scope then still holds the
  // previous request's values.
  if (scope.start_us == 0) {
    scope.request_id = next_request_id();
    scope.route.clear();
    scope.tx_attempts = 0;
    scope.start_us = core::monotonic_us();
  }
  record_request(scope.request_id, req.method, scope.route, req.path, res.status,
                 core::monotonic_us() - scope.start_us, scope.tx_attempts);
  scope.start_us = 0;
}

// Connections the kernel queues before accept(); SOMAXCONN caps it.
constexpr int kListenBacklog = 1024;

}  // namespace

Server::Server(const Config& config, Context& ctx)
    : config_(config), ctx_(ctx), router_(http_, ctx.db) {
  install_hooks();
  router_.set_write_layer(make_idempotency_layer(ctx_.clock, config_.idempotency_lock_timeout_ms));
  register_user_routes(router_, ctx_);
  register_checkout_routes(router_, ctx_);
  register_job_routes(router_, ctx_);
  register_ops_routes(router_, ctx_);
  register_product_routes(router_, ctx_);
  register_anagram_routes(router_, ctx_);
  register_dashboard_routes(router_, ctx_);
}

Server::~Server() {
  stop();
}

void Server::install_hooks() {
  const int threads = config_.http_threads;
  http_.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  // cpp-httplib 0.11 stalls ~40 ms per keep-alive response without it (Nagle
  // + delayed ACK).
  http_.set_tcp_nodelay(true);
  http_.set_keep_alive_max_count(10000);
  http_.set_keep_alive_timeout(5);
  http_.set_read_timeout(10, 0);
  http_.set_write_timeout(10, 0);
  http_.set_payload_max_length(config_.max_body_bytes);

  http_.set_pre_routing_handler([](const httplib::Request& req, httplib::Response& res) {
    // RFC 9112 6.3: a request with neither Content-Length nor Transfer-Encoding
    // has an empty body. cpp-httplib 0.11 instead reads such a PUT/POST/DELETE
    // until the client closes (a bare `curl -X PUT` hangs for the read
    // timeout). The hook runs before the body is read, on the server's own
    // non-const Request, so declaring the empty body here is well-defined.
    if (!req.has_header("Content-Length") && !req.has_header("Transfer-Encoding")) {
      const_cast<httplib::Request&>(req).headers.emplace("Content-Length", "0");
    }
    RequestScope& scope = request_scope();
    scope.start_us = core::monotonic_us();
    scope.tx_attempts = 0;
    scope.route.clear();
    const std::string incoming = req.get_header_value("X-Request-Id");
    scope.request_id = acceptable_request_id(incoming) ? incoming : next_request_id();
    res.set_header("X-Request-Id", scope.request_id);
    return httplib::Server::HandlerResponse::Unhandled;
  });

  // Every status >= 400 passes here. Replies that already carry a problem
  // body are left alone; bare ones from cpp-httplib itself (404, 413, 400 ...)
  // become problem documents.
  http_.set_error_handler(httplib::Server::HandlerWithResponse([this](const httplib::Request& req,
                                                                      httplib::Response& res) {
    if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
    Reply reply;
    if (res.status == 404) {
      auto allowed = router_.allowed_methods(req.path);
      if (!allowed.empty()) {
        reply = problem(405, "method-not-allowed", "Method not allowed",
                        req.method + " is not allowed on " + req.path + "; use " + join(allowed));
        reply.header("Allow", join(allowed));
      } else {
        reply =
            problem(404, "not-found", "Not found", "no route for " + req.method + " " + req.path);
      }
    } else if (res.status == 413) {
      reply = problem(413, "payload-too-large", "Payload too large",
                      "the body exceeds " + std::to_string(config_.max_body_bytes) + " bytes");
    } else if (res.status == 414) {
      reply = problem(414, "uri-too-long", "URI too long", "the request target is too long");
    } else if (res.status == 400) {
      reply = problem(400, "bad-request", "Bad request", "the request could not be parsed");
    } else if (res.status >= 500) {
      reply = problem(500, "internal", "Internal error",
                      "the server failed to process the request; it was logged");
    } else {
      reply = problem(res.status, "http-" + std::to_string(res.status), "HTTP error",
                      "the request was refused with HTTP " + std::to_string(res.status));
    }
    send(res, reply);
    return httplib::Server::HandlerResponse::Handled;
  }));

  http_.set_exception_handler(
      [](const httplib::Request& req, httplib::Response& res, std::exception_ptr ep) {
        std::string what = "unknown exception";
        try {
          if (ep) std::rethrow_exception(ep);
        } catch (const std::exception& e) {
          what = e.what();
        } catch (...) {
        }
        core::log::error("exception", {{"request_id", request_scope().request_id},
                                       {"method", req.method},
                                       {"path", req.path},
                                       {"error", what}});
        send(res, problem(500, "internal", "Internal error",
                          "the server failed to process the request; it was logged"));
      });

  http_.set_logger(log_request);
}

bool HttpServer::set_listen_backlog(int backlog) {
  const socket_t sock = svr_sock_;
  return sock != INVALID_SOCKET && ::listen(sock, backlog) == 0;
}

core::Result<int> Server::bind() {
  int port = config_.port;
  if (port == 0) {
    port = http_.bind_to_any_port(config_.bind);
    if (port <= 0) return core::Status::unavailable("--bind: cannot listen on " + config_.bind);
  } else if (!http_.bind_to_port(config_.bind, port)) {
    return core::Status::unavailable("--port: cannot listen on " + config_.bind + ":" +
                                     std::to_string(port) + " (in use or not allowed)");
  }
  http_.set_listen_backlog(kListenBacklog);
  return port;
}

void Server::listen() {
  http_.listen_after_bind();
}

void Server::stop() {
  if (http_.is_running()) http_.stop();
}

}  // namespace app
