// app::Server: the HTTP server and the hooks every request goes through.
//
// The hooks live here once: request ids, the admin token (401), unknown
// routes (404) and wrong methods (405 + Allow), exceptions (a logged 500
// problem, never a crash), and one log line per request on stderr (no query,
// headers, body or email). Connections are served by a bounded pool
// (--http-threads, --max-connections), each through app::serve_connection,
// which enforces the body (413), header (431) and line limits and the read and
// idle timeouts on the wire; docs/RELIABILITY.md lists every limit.
#pragma once

#include <httplib.h>

#include <memory>
#include <string>

#include "core/status.h"
#include "http/connection.h"
#include "http/context.h"
#include "http/router.h"
#include "http/tls.h"

namespace app {

// cpp-httplib's server with what 0.11 does not expose:
// - the listen backlog, compiled into the library as 5. A burst of
//   connections (64 clients at once) overflows 5 and the kernel drops SYNs,
//   which clients see as connect timeouts. Linux applies a second listen() on
//   a bound socket as a new backlog, and the socket is a protected member, so
//   a subclass can raise it.
// - the connection itself: each accepted socket is served by
//   app::serve_connection (http/connection.h), which reads every request within
//   the limits and shows cpp-httplib a normalised copy, and which closes idle
//   connections at once when the server drains.
// - TLS: with a TlsServerContext (http/tls.h), each accepted socket first
//   completes a handshake within --read-timeout, then is served by the same
//   app::serve_connection through the SSL object, so every limit holds over
//   HTTPS too (cpp-httplib's SSLServer would read requests itself).
class HttpServer : public httplib::Server {
 public:
  explicit HttpServer(ConnectionLimits limits) : limits_(limits) {}

  // Call after bind. Returns false if the socket is not bound.
  bool set_listen_backlog(int backlog);
  void set_refusal_observer(RefusalObserver observer) { refused_ = std::move(observer); }
  // Serve HTTPS with `tls` (must outlive the server); call before listening.
  void set_tls(const TlsServerContext* tls) { tls_ = tls; }
  // Stops accepting and drains: idle connections close now, requests that
  // arrive get 503, requests in flight complete. Thread-safe.
  void drain_and_stop();
  bool draining() const noexcept { return drain_.draining(); }

 private:
  bool process_and_close_socket(socket_t sock) override;

  const ConnectionLimits limits_;
  Drain drain_;
  RefusalObserver refused_;
  const TlsServerContext* tls_ = nullptr;
};

// What the HTTP layer needs of the configuration (app::Config says each
// flag; app::App fills this from it).
struct ServerOptions {
  std::string bind = "127.0.0.1";
  int port = 8080;  // 0: any free port
  int http_threads = 64;
  int max_connections = 1024;  // beyond http_threads, wait for a thread
  // Per connection: header and body sizes, read and idle timeouts. Its
  // max_requests is the server's keep-alive cap.
  ConnectionLimits limits;
  // How long a key's lock counts as held by a live request (--idempotency-lock-timeout).
  core::Millis idempotency_lock_timeout_ms = 90000;
  std::string admin_token;  // empty: no route is guarded
};

class Server {
 public:
  // `tls` (null: plain HTTP) must outlive the server.
  Server(ServerOptions options, Context& ctx, const TlsServerContext* tls = nullptr);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  Router& router() noexcept { return router_; }

  // Binds the listening socket; returns the port (useful with --port 0).
  [[nodiscard]] core::Result<int> bind();
  // Serves until stop(); returns when the listener closed and in-flight
  // requests finished.
  void listen();
  // Stops accepting and drains (HttpServer::drain_and_stop); thread-safe.
  void stop();
  bool is_running() const { return http_.is_running(); }

 private:
  void install_hooks();

  const ServerOptions options_;
  Context& ctx_;
  HttpServer http_;
  Router router_;
};

}  // namespace app
