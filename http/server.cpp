#include "http/server.h"

#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <mutex>
#include <random>
#include <regex>
#include <sstream>
#include <thread>

#include "core/clock.h"
#include "core/log.h"
#include "http/auth.h"
#include "http/idempotency.h"
#include "http/metrics.h"
#include "http/request_scope.h"
#include "http/routes.h"

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

// The path as logged: a segment that holds an email address (PUT
// /users/{email}) becomes "{email}", and control characters become '?', so a
// log line carries no personal data and cannot be split by a hostile path.
std::string loggable_path(const std::string& path) {
  std::string out;
  std::size_t start = 0;
  while (start <= path.size()) {
    const auto slash = path.find('/', start);
    const auto end = slash == std::string::npos ? path.size() : slash;
    const std::string segment = path.substr(start, end - start);
    out += segment.find('@') != std::string::npos ? "{email}" : segment;
    if (slash == std::string::npos) break;
    out += '/';
    start = slash + 1;
  }
  for (char& c : out) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '?';
  }
  return out;
}

// One line per request (http/metrics.cpp writes it): request id, method, route
// template, path (emails masked), status, µs, transaction attempts. The query
// string, headers (Authorization) and body are left out: they may carry
// personal data or secrets. A request cpp-httplib refused before routing
// (bad request line, header limits) never passed the pre-routing hook: it is
// logged with "-" for its id and a zero duration. The scope is cleared after
// each line, so a refused request never shows the previous request's id.
void log_request(const httplib::Request& req, const httplib::Response& res) {
  RequestScope& scope = request_scope();
  const bool routed = scope.start_us != 0;
  record_request(routed ? scope.request_id : "-", req.method.empty() ? "-" : req.method,
                 scope.route, loggable_path(req.path), res.status,
                 routed ? core::monotonic_us() - scope.start_us : 0, scope.tx_attempts);
  scope = RequestScope{};
}

// The HTTP thread pool, bounded: `threads` serve connections, at most
// `max_waiting` more wait for a thread. When both are taken, enqueue() blocks
// the accept loop, so further clients wait unaccepted in the kernel's listen
// backlog rather than piling up descriptors and memory here. (cpp-httplib's
// own ThreadPool queues without bound.)
class BoundedPool : public httplib::TaskQueue {
 public:
  BoundedPool(int threads, std::size_t max_waiting) : max_waiting_(max_waiting) {
    for (int i = 0; i < threads; ++i) threads_.emplace_back([this] { work(); });
  }
  ~BoundedPool() override { shutdown(); }
  BoundedPool(const BoundedPool&) = delete;
  BoundedPool& operator=(const BoundedPool&) = delete;

  void enqueue(std::function<void()> fn) override {
    std::unique_lock lock(mu_);
    room_.wait(lock, [&] { return queue_.size() < max_waiting_ || shutdown_; });
    if (shutdown_) {
      // Not expected (the accept loop stops before shutdown), but the task
      // owns a socket: serve it here rather than leak it.
      lock.unlock();
      fn();
      return;
    }
    queue_.push_back(std::move(fn));
    ready_.notify_one();
  }

  void shutdown() override {
    {
      std::lock_guard lock(mu_);
      shutdown_ = true;
    }
    ready_.notify_all();
    room_.notify_all();
    for (auto& t : threads_) {
      if (t.joinable()) t.join();
    }
  }

 private:
  void work() {
    for (;;) {
      std::function<void()> fn;
      {
        std::unique_lock lock(mu_);
        ready_.wait(lock, [&] { return !queue_.empty() || shutdown_; });
        if (queue_.empty()) return;  // shut down and drained
        fn = std::move(queue_.front());
        queue_.pop_front();
      }
      room_.notify_one();
      fn();
    }
  }

  const std::size_t max_waiting_;
  std::mutex mu_;
  std::condition_variable ready_;            // a task was queued, or shutdown
  std::condition_variable room_;             // a task left the queue, or shutdown
  std::deque<std::function<void()>> queue_;  // guarded by mu_
  bool shutdown_ = false;                    // guarded by mu_
  std::vector<std::thread> threads_;
};

// Connections the kernel queues before accept(); SOMAXCONN caps it.
constexpr int kListenBacklog = 1024;
// Requests served on one connection before it is closed.
constexpr std::size_t kKeepAliveMaxCount = 10000;

ConnectionLimits connection_limits(const ServerOptions& options) {
  ConnectionLimits limits = options.limits;
  limits.max_requests = kKeepAliveMaxCount;
  return limits;
}

}  // namespace

bool HttpServer::process_and_close_socket(socket_t sock) {
  SslPtr tls;
  if (tls_ != nullptr) {
    tls = tls_->accept(sock, limits_.read_timeout_ms);
    if (!tls) {  // no handshake (not TLS, TLS 1.1, too slow, gone): nothing to answer
      ::shutdown(sock, SHUT_RDWR);
      ::close(sock);
      return true;
    }
  }
  serve_connection(
      sock, tls.get(), limits_, drain_,
      [this](httplib::Stream& strm, bool close_connection, bool& connection_closed) {
        return process_request(strm, close_connection, connection_closed,
                               [](httplib::Request& req) {
                                 // A header sent with an empty value (http/connection.h).
                                 for (auto& [name, value] : req.headers) {
                                   if (is_empty_header_mark(value)) value.clear();
                                 }
                               });
      },
      refused_);
  return true;
}

void HttpServer::drain_and_stop() {
  drain_.begin();
  if (is_running()) stop();
}

Server::Server(ServerOptions options, Context& ctx, const TlsServerContext* tls)
    : options_(std::move(options)),
      ctx_(ctx),
      http_(connection_limits(options_)),
      router_(http_, ctx.db) {
  http_.set_tls(tls);
  install_hooks();
  router_.set_write_layer(make_idempotency_layer(ctx_.clock, options_.idempotency_lock_timeout_ms));
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
  const int threads = options_.http_threads;
  const auto waiting = static_cast<std::size_t>(std::max(1, options_.max_connections - threads));
  http_.new_task_queue = [threads, waiting] { return new BoundedPool(threads, waiting); };
  // cpp-httplib 0.11 stalls ~40 ms per keep-alive response without it (Nagle
  // + delayed ACK).
  http_.set_tcp_nodelay(true);
  http_.set_keep_alive_max_count(kKeepAliveMaxCount);
  // Timeouts bound what a silent client costs. app::serve_connection applies
  // the read timeout (the whole request, from its first byte) and the idle
  // timeout; cpp-httplib sets the write timeout as SO_SNDTIMEO at accept, and
  // announces the idle timeout in Keep-Alive (in whole seconds, at least 1).
  const auto ms = [](int v) { return std::pair<time_t, time_t>{v / 1000, (v % 1000) * 1000}; };
  http_.set_keep_alive_timeout(std::max<time_t>(1, (options_.limits.idle_timeout_ms + 999) / 1000));
  http_.set_read_timeout(ms(options_.limits.read_timeout_ms).first,
                         ms(options_.limits.read_timeout_ms).second);
  http_.set_write_timeout(ms(options_.limits.read_timeout_ms).first,
                          ms(options_.limits.read_timeout_ms).second);
  http_.set_payload_max_length(options_.limits.max_body_bytes);
  // Requests refused on the wire (http/connection.h) get their log line too.
  http_.set_refusal_observer([](const std::string& method, int status) {
    record_request("-", method, "", "-", status, 0, 0);
  });
  // A response written while the server drains closes its connection.
  http_.set_post_routing_handler([this](const httplib::Request&, httplib::Response& res) {
    if (!http_.draining()) return;
    res.headers.erase("Keep-Alive");
    if (res.get_header_value("Connection") != "close") res.set_header("Connection", "close");
  });

  http_.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
    RequestScope& scope = request_scope();
    scope.start_us = core::monotonic_us();
    scope.tx_attempts = 0;
    scope.route.clear();
    const std::string incoming = req.get_header_value("X-Request-Id");
    scope.request_id = acceptable_request_id(incoming) ? incoming : next_request_id();
    res.set_header("X-Request-Id", scope.request_id);
    scope.refusal.reset();
    // The admin token, checked once here for every route it guards. The
    // Authorization header is never logged.
    if (!options_.admin_token.empty() && needs_admin_token(req.method, req.path)) {
      if (!presents_token(req.get_header_value("Authorization"), options_.admin_token)) {
        scope.refusal = problem(401, "unauthorized", "Unauthorized",
                                "this route needs Authorization: Bearer <admin token>")
                            .header("WWW-Authenticate", "Bearer realm=\"aftercommit\"");
      }
    }
    return httplib::Server::HandlerResponse::Unhandled;
  });

  // Every status >= 400 passes here. Replies that already carry a problem
  // body are left alone; bare ones from cpp-httplib itself (404, 413, 400 ...)
  // become problem documents.
  http_.set_error_handler(httplib::Server::HandlerWithResponse([this](const httplib::Request& req,
                                                                      httplib::Response& res) {
    if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
    if (res.status == 404 && request_scope().refusal) {  // refused, and no such route
      send(res, *request_scope().refusal);
      return httplib::Server::HandlerResponse::Handled;
    }
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
      reply =
          problem(413, "payload-too-large", "Payload too large",
                  "the body exceeds " + std::to_string(options_.limits.max_body_bytes) + " bytes");
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
                                       {"path", loggable_path(req.path)},
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
  int port = options_.port;
  if (port == 0) {
    port = http_.bind_to_any_port(options_.bind);
    if (port <= 0) return core::Status::unavailable("--bind: cannot listen on " + options_.bind);
  } else if (!http_.bind_to_port(options_.bind, port)) {
    return core::Status::unavailable("--port: cannot listen on " + options_.bind + ":" +
                                     std::to_string(port) + " (in use or not allowed)");
  }
  http_.set_listen_backlog(kListenBacklog);
  return port;
}

void Server::listen() {
  http_.listen_after_bind();
}

void Server::stop() {
  http_.drain_and_stop();
}

}  // namespace app
