// app::serve_connection: the wire side of one HTTP/1.1 connection, ahead of
// cpp-httplib's parser.
//
// Debian 12's cpp-httplib 0.11.4 percent-decodes header values, drops a
// header whose value is empty, reads a chunked body without bound and grows a
// line buffer until it sees a newline (docs/RELIABILITY.md, "The HTTP
// boundary"). Its public API cannot change that, but it lets a server
// subclass serve an accepted socket itself and hand cpp-httplib one request
// at a time as a Stream. So each request is read here first, within the
// limits, and cpp-httplib is shown a normalised copy of it:
// - the whole request must arrive within --read-timeout from its first byte
//   (408 and close otherwise, so a trickling client cannot hold a thread);
// - the head (request line and header fields) is read up to
//   --max-header-bytes (431 beyond, 414 for a request line over 8 KiB), then
//   checked (obs-fold, a field without a name or
//   colon, CR or NUL in a value: 400);
// - every '%' in a header value is sent on as "%25", so cpp-httplib's decoding
//   yields the octets the client sent; an empty value is sent on as "%00",
//   and the server turns the resulting "\0" back into "" (is_empty_header_mark);
// - the body is read here whatever its framing, up to --max-body (413 as soon
//   as it is passed): Content-Length (one value, digits only), chunked
//   (sizes, extensions, trailers), or none (empty). cpp-httplib sees it with a
//   Content-Length and never sees Transfer-Encoding; a coding other than
//   chunked gets 501, Content-Length with Transfer-Encoding 400.
// Refusals are answered here with a problem document and Connection: close.
//
// Over TLS (http/tls.h) the same happens on the decrypted bytes: the
// connection reads and writes through the SSL object (the socket then
// non-blocking, every wait a poll bounded by the same timeouts), so every
// limit above holds over HTTPS too. The handshake itself is bounded by
// --read-timeout before serve_connection starts.
//
// Between requests the connection waits for the next one at most
// --idle-timeout, and no longer once the server drains: an idle connection is
// closed at once, a request that arrives gets 503 + Connection: close without
// running, and a request in flight completes.
#pragma once

#include <httplib.h>
#include <openssl/ssl.h>

#include <atomic>
#include <cstddef>
#include <functional>
#include <string>

namespace app {

// True for the value cpp-httplib hands the app for a header sent with an
// empty value ("%00" decoded: one NUL, which a client cannot send itself, as
// a raw NUL in a value is refused with 400 and "%00" arrives as "%2500").
inline bool is_empty_header_mark(const std::string& value) {
  return value.size() == 1 && value[0] == '\0';
}

struct ConnectionLimits {
  std::size_t max_header_bytes = 32 * 1024;  // header fields, as the 431 hook counts them
  int max_headers = 100;
  std::size_t max_body_bytes = 64 * 1024;
  int read_timeout_ms = 10000;  // the whole request, from its first byte
  int idle_timeout_ms = 5000;   // waiting for a request
  std::size_t max_requests = 10000;
};

// The server's drain state, shared with its connections: begin() wakes every
// connection waiting for a request (an eventfd, readable for good once set).
class Drain {
 public:
  Drain();
  ~Drain();
  Drain(const Drain&) = delete;
  Drain& operator=(const Drain&) = delete;

  void begin();
  bool draining() const noexcept { return draining_.load(std::memory_order_acquire); }
  int fd() const noexcept { return fd_; }

 private:
  std::atomic<bool> draining_{false};
  int fd_ = -1;
};

// Runs cpp-httplib on one request shown as `strm` (Server::process_request).
using ProcessRequest =
    std::function<bool(httplib::Stream& strm, bool close_connection, bool& connection_closed)>;
// Told of every request refused here, for the log line and metrics.
using RefusalObserver = std::function<void(const std::string& method, int status)>;

// Serves the accepted socket `fd` until the client or a limit ends the
// connection; closes `fd`. With `tls` (handshake done, socket non-blocking)
// every byte goes through it, and a close_notify is sent at the end; the
// caller still owns and frees `tls`.
void serve_connection(int fd, SSL* tls, const ConnectionLimits& limits, const Drain& drain,
                      const ProcessRequest& process, const RefusalObserver& refused);

}  // namespace app
