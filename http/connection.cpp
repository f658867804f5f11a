#include "http/connection.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <optional>
#include <string_view>
#include <vector>

#include "http/http.h"

namespace app {

Drain::Drain() : fd_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {}

Drain::~Drain() {
  if (fd_ >= 0) ::close(fd_);
}

void Drain::begin() {
  if (draining_.exchange(true, std::memory_order_acq_rel)) return;
  const std::uint64_t one = 1;
  // Never read back: the eventfd stays readable, so every later poll wakes too.
  [[maybe_unused]] const ssize_t n = ::write(fd_, &one, sizeof one);
}

namespace {

using Clock = std::chrono::steady_clock;

// cpp-httplib's own line limits (CPPHTTPLIB_REQUEST_URI_MAX_LENGTH and
// CPPHTTPLIB_HEADER_MAX_LENGTH): a longer line is refused here, before it is
// buffered, rather than by cpp-httplib after.
constexpr std::size_t kMaxRequestLine = 8192;
constexpr std::size_t kMaxFieldLine = 8192;  // a field line as cpp-httplib sees it, with CRLF
constexpr std::size_t kMaxChunkLine = 4096;  // chunk size and extensions
constexpr std::size_t kReadSize = 16 * 1024;
constexpr std::size_t kFlushAt = 64 * 1024;
// After a refusal the rest of the request is read and dropped for a moment,
// so the client reads the answer instead of a reset.
constexpr int kLingerMs = 1000;
constexpr int kLingerQuietMs = 50;
constexpr std::size_t kLingerBytes = 1 << 20;

struct Refusal {
  int status;
  std::string slug;
  std::string title;
  std::string detail;
};

const char* reason(int status) {
  switch (status) {
    case 400:
      return "Bad Request";
    case 413:
      return "Content Too Large";
    case 408:
      return "Request Timeout";
    case 414:
      return "URI Too Long";
    case 431:
      return "Request Header Fields Too Large";
    case 501:
      return "Not Implemented";
    case 503:
      return "Service Unavailable";
    default:
      return "Error";
  }
}

bool is_tchar(unsigned char c) {
  return std::isalnum(c) || std::strchr("!#$%&'*+-.^_`|~", c) != nullptr;
}

bool is_ows(char c) {
  return c == ' ' || c == '\t';
}

std::string_view trim_ows(std::string_view s) {
  while (!s.empty() && is_ows(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_ows(s.back())) s.remove_suffix(1);
  return s;
}

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

// Splits a comma-separated field value into its non-empty, trimmed elements.
std::vector<std::string_view> elements(std::string_view value) {
  std::vector<std::string_view> out;
  while (true) {
    const auto comma = value.find(',');
    const auto item = trim_ows(value.substr(0, comma));
    if (!item.empty()) out.push_back(item);
    if (comma == std::string_view::npos) break;
    value.remove_prefix(comma + 1);
  }
  return out;
}

// The head of one request, as read and checked.
struct Head {
  std::string method;
  std::string request_line;
  std::vector<std::pair<std::string, std::string>> fields;  // other than the framing ones
  std::vector<std::string> content_length;                  // every Content-Length value
  std::vector<std::string> transfer_encoding;               // every Transfer-Encoding value
  bool expect_continue = false;
};

class Connection final : public httplib::Stream {
 public:
  Connection(int fd, SSL* tls, const ConnectionLimits& limits)
      : fd_(fd), tls_(tls), limits_(limits) {}
  // Sends TLS's close_notify, unless the session already failed or was shut.
  void close_tls();

  void serve(const Drain& drain, const ProcessRequest& process, const RefusalObserver& refused);

  // httplib::Stream: cpp-httplib reads the request shown to it, and writes
  // into a buffer sent when the request is done (one send per response).
  bool is_readable() const override { return shown_pos_ < shown_.size(); }
  bool is_writable() const override { return !write_failed_; }
  ssize_t read(char* ptr, size_t size) override {
    const std::size_t n = std::min(size, shown_.size() - shown_pos_);
    std::memcpy(ptr, shown_.data() + shown_pos_, n);
    shown_pos_ += n;
    return static_cast<ssize_t>(n);
  }
  ssize_t write(const char* ptr, size_t size) override {
    if (write_failed_) return -1;
    out_.append(ptr, size);
    if (out_.size() >= kFlushAt && !flush()) return -1;
    return static_cast<ssize_t>(size);
  }
  // Asked for each request; looked up once per connection.
  void get_remote_ip_and_port(std::string& ip, int& port) const override {
    if (remote_port_ < 0) address(false, remote_ip_, remote_port_);
    ip = remote_ip_;
    port = remote_port_;
  }
  void get_local_ip_and_port(std::string& ip, int& port) const override {
    if (local_port_ < 0) address(true, local_ip_, local_port_);
    ip = local_ip_;
    port = local_port_;
  }
  // cpp-httplib 0.11.4 reads socket() only to answer 500 when the descriptor
  // is past FD_SETSIZE, which its select() could not watch. This stream polls
  // and does its own I/O, so it names no descriptor for that check.
  socket_t socket() const override { return INVALID_SOCKET; }

 private:
  enum class Got { kOk, kClosed, kRefused };

  Got wait_for_request(const Drain& drain);
  Got read_head(Head& head);
  Got read_body(const Head& head, std::string& body);
  Got read_chunked(std::string& body);
  Got next_line(std::string_view& line, std::size_t limit, Clock::time_point deadline,
                const Refusal& too_long);
  bool fill(Clock::time_point deadline);
  bool fill_tls(Clock::time_point deadline);
  bool flush_tls();
  // Waits (poll) for what SSL_read/SSL_write asked for; false on timeout or error.
  bool wait_tls(int ssl_error, Clock::time_point deadline, bool reading);
  void show(const Head& head, const std::string& body);
  bool flush();
  Got refuse(int status, std::string slug, std::string title, std::string detail) {
    refusal_ = Refusal{status, std::move(slug), std::move(title), std::move(detail)};
    return Got::kRefused;
  }
  void answer_refusal();
  void linger();
  void address(bool local, std::string& ip, int& port) const;

  int fd_;
  SSL* tls_;                 // null: plain TCP
  bool tls_failed_ = false;  // a fatal TLS error: no close_notify may follow
  const ConnectionLimits& limits_;
  std::string in_;           // bytes received and not yet taken
  std::size_t in_pos_ = 0;   // start of the untaken bytes in in_
  std::size_t scanned_ = 0;  // untaken bytes already searched for a line end
  std::string shown_;        // the request as cpp-httplib reads it
  std::size_t shown_pos_ = 0;
  std::string out_;
  bool write_failed_ = false;
  bool timed_out_ = false;  // the last fill() met its deadline
  mutable std::string remote_ip_, local_ip_;
  mutable int remote_port_ = -1, local_port_ = -1;
  Clock::time_point deadline_;  // for the whole request being read
  std::optional<Refusal> refusal_;
};

Clock::time_point after(int ms) {
  return Clock::now() + std::chrono::milliseconds(ms);
}

int ms_until(Clock::time_point deadline) {
  const auto left =
      std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  return left <= 0 ? 0 : static_cast<int>(std::min<long long>(left, 1 << 30));
}

bool Connection::wait_tls(int ssl_error, Clock::time_point deadline, bool reading) {
  short events = 0;
  if (ssl_error == SSL_ERROR_WANT_READ) events = POLLIN;
  if (ssl_error == SSL_ERROR_WANT_WRITE) events = POLLOUT;
  if (events == 0) {
    // The client closed (close_notify: not a failure) or TLS broke.
    if (ssl_error != SSL_ERROR_ZERO_RETURN) tls_failed_ = true;
    ERR_clear_error();
    return false;
  }
  for (;;) {
    pollfd p{fd_, events, 0};
    const int ms = ms_until(deadline);
    const int r = ms == 0 ? 0 : ::poll(&p, 1, ms);
    if (r < 0 && errno == EINTR) continue;
    if (r == 0 && reading) timed_out_ = true;
    return r > 0;
  }
}

bool Connection::fill_tls(Clock::time_point deadline) {
  char buf[kReadSize];
  for (;;) {
    ERR_clear_error();
    const int n = SSL_read(tls_, buf, sizeof buf);
    if (n > 0) {
      in_.append(buf, static_cast<std::size_t>(n));
      return true;
    }
    if (!wait_tls(SSL_get_error(tls_, n), deadline, true)) return false;
  }
}

bool Connection::fill(Clock::time_point deadline) {
  if (in_pos_ == in_.size()) {
    in_.clear();
    in_pos_ = 0;
  } else if (in_pos_ > 0) {
    in_.erase(0, in_pos_);
    in_pos_ = 0;
  }
  if (tls_ != nullptr) return fill_tls(deadline);
  char buf[kReadSize];
  for (;;) {
    const ssize_t n = ::recv(fd_, buf, sizeof buf, MSG_DONTWAIT);
    if (n > 0) {
      in_.append(buf, static_cast<std::size_t>(n));
      return true;
    }
    if (n == 0) return false;  // the client closed
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) return false;
    const int ms = ms_until(deadline);
    pollfd p{fd_, POLLIN, 0};
    const int r = ms == 0 ? 0 : ::poll(&p, 1, ms);
    if (r < 0 && errno == EINTR) continue;
    if (r == 0) timed_out_ = true;
    if (r <= 0) return false;
  }
}

// The next line (without its LF, and without a CR before it). A line longer
// than `limit` is refused with `too_long` as soon as that many bytes came
// without a line end: nothing longer is ever buffered.
Connection::Got Connection::next_line(std::string_view& line, std::size_t limit,
                                      Clock::time_point deadline, const Refusal& too_long) {
  for (;;) {
    const std::size_t avail = in_.size() - in_pos_;
    const char* start = in_.data() + in_pos_;
    const void* lf = std::memchr(start + scanned_, '\n', avail - scanned_);
    if (lf != nullptr) {
      std::size_t len = static_cast<std::size_t>(static_cast<const char*>(lf) - start);
      if (len + 1 > limit) break;
      in_pos_ += len + 1;
      scanned_ = 0;
      if (len > 0 && start[len - 1] == '\r') --len;
      line = std::string_view(start, len);
      return Got::kOk;
    }
    scanned_ = avail;
    if (avail >= limit) break;
    if (!fill(deadline)) return Got::kClosed;
  }
  refusal_ = too_long;
  return Got::kRefused;
}

Connection::Got Connection::wait_for_request(const Drain& drain) {
  if (in_pos_ < in_.size()) return Got::kOk;  // pipelined
  // Received and decrypted by OpenSSL but not yet read here: the socket
  // would not show it as readable.
  if (tls_ != nullptr && SSL_has_pending(tls_) == 1) return Got::kOk;
  pollfd fds[2] = {{fd_, POLLIN, 0}, {drain.fd(), POLLIN, 0}};
  for (;;) {
    const int r = ::poll(fds, 2, limits_.idle_timeout_ms);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return Got::kClosed;  // idle timeout
    // Bytes (or the client's close) win over the drain: they are answered.
    if (fds[0].revents != 0) return Got::kOk;
    return Got::kClosed;  // draining and idle: close now
  }
}

Connection::Got Connection::read_head(Head& head) {
  // The whole request, head and body, must arrive within one read timeout
  // from its first byte: a client trickling bytes cannot hold a thread longer.
  deadline_ = after(limits_.read_timeout_ms);
  timed_out_ = false;
  const auto deadline = deadline_;
  std::string_view line;
  // RFC 9112 §2.2: empty lines before the request line are ignored.
  for (int skipped = 0;; ++skipped) {
    const Got got = next_line(
        line, kMaxRequestLine, deadline,
        {414, "uri-too-long", "URI too long",
         "the request line is longer than " + std::to_string(kMaxRequestLine) + " bytes"});
    if (got != Got::kOk) return got;
    if (!line.empty()) break;
    if (skipped > 4) return refuse(400, "bad-request", "Bad request", "no request line");
  }
  const auto sp = line.find(' ');
  if (sp == std::string_view::npos || sp == 0 ||
      line.find_first_of(std::string_view("\r\0", 2)) != std::string_view::npos) {
    return refuse(400, "bad-request", "Bad request", "the request line could not be parsed");
  }
  head.method.assign(line.substr(0, sp));
  head.request_line.assign(line);

  const Refusal too_large{431, "request-header-fields-too-large", "Request header fields too large",
                          "at most " + std::to_string(limits_.max_headers) + " header fields and " +
                              std::to_string(limits_.max_header_bytes) + " bytes of headers"};
  std::size_t bytes = 0;
  int count = 0;
  for (;;) {
    const std::size_t budget = limits_.max_header_bytes - std::min(bytes, limits_.max_header_bytes);
    // +2: the line end, so a field that fits the budget is never cut.
    const Got got = next_line(line, budget + 2, deadline, too_large);
    if (got != Got::kOk) return got;
    if (line.empty()) break;
    if (is_ows(line.front())) {
      return refuse(400, "bad-request", "Bad request",
                    "a header field is folded over lines (obs-fold)");
    }
    const auto colon = line.find(':');
    const std::string_view name = line.substr(0, colon);
    if (colon == std::string_view::npos || name.empty() ||
        !std::all_of(name.begin(), name.end(),
                     [](char c) { return is_tchar(static_cast<unsigned char>(c)); })) {
      return refuse(400, "bad-request", "Bad request",
                    "a header line is not a field name, a colon and a value");
    }
    const std::string_view value = trim_ows(line.substr(colon + 1));
    if (value.find_first_of(std::string_view("\r\0", 2)) != std::string_view::npos) {
      return refuse(400, "bad-request", "Bad request", "a header value holds a CR or NUL");
    }
    // Counted as the server's 431 rule always counted them.
    bytes += name.size() + value.size() + 4;
    if (++count > limits_.max_headers || bytes > limits_.max_header_bytes) {
      refusal_ = too_large;
      return Got::kRefused;
    }
    if (iequals(name, "Content-Length")) {
      head.content_length.emplace_back(value);
    } else if (iequals(name, "Transfer-Encoding")) {
      head.transfer_encoding.emplace_back(value);
    } else if (iequals(name, "Expect")) {
      head.expect_continue = iequals(value, "100-continue");
    } else {
      // '%' is sent on as "%25" so cpp-httplib's decoding gives back '%';
      // an empty value as "%00" (is_empty_header_mark).
      std::string shown;
      shown.reserve(value.size());
      for (const char c : value) {
        if (c == '%') {
          shown += "%25";
        } else {
          shown += c;
        }
      }
      if (shown.empty()) shown = "%00";
      if (name.size() + 2 + shown.size() + 2 > kMaxFieldLine) {
        return refuse(431, "request-header-fields-too-large", "Request header fields too large",
                      "a header field is longer than " + std::to_string(kMaxFieldLine) +
                          " bytes (each '%' in a value counts 3)");
      }
      head.fields.emplace_back(std::string(name), std::move(shown));
    }
  }
  return Got::kOk;
}

Connection::Got Connection::read_body(const Head& head, std::string& body) {
  const auto too_large = [&] {
    return refuse(413, "payload-too-large", "Payload too large",
                  "the body exceeds " + std::to_string(limits_.max_body_bytes) + " bytes");
  };
  bool chunked = false;
  std::optional<std::size_t> length;
  if (!head.transfer_encoding.empty()) {
    std::vector<std::string_view> codings;
    for (const auto& v : head.transfer_encoding) {
      for (const auto e : elements(v)) codings.push_back(e);
    }
    for (const auto c : codings) {
      if (!iequals(c, "chunked")) {
        return refuse(501, "not-implemented", "Not implemented",
                      "the only Transfer-Encoding accepted is chunked");
      }
    }
    if (codings.size() != 1) {
      return refuse(400, "bad-request", "Bad request",
                    "Transfer-Encoding must name chunked exactly once");
    }
    // RFC 9112 §6.3: both framings at once is how requests are smuggled.
    if (!head.content_length.empty()) {
      return refuse(400, "bad-request", "Bad request",
                    "a request may not carry both Content-Length and Transfer-Encoding");
    }
    chunked = true;
  } else if (!head.content_length.empty()) {
    for (const auto& v : head.content_length) {
      const auto items = elements(v);
      if (items.empty()) {
        return refuse(400, "bad-request", "Bad request", "Content-Length is empty");
      }
      for (const auto item : items) {
        std::size_t n = 0;
        for (const char c : item) {
          if (c < '0' || c > '9') {
            return refuse(400, "bad-request", "Bad request", "Content-Length is not a number");
          }
          // Saturates: any length past the limit is refused the same way.
          n = std::min<std::size_t>(n * 10 + static_cast<std::size_t>(c - '0'),
                                    limits_.max_body_bytes + 1);
        }
        if (length && *length != n) {
          return refuse(400, "bad-request", "Bad request", "Content-Length values differ");
        }
        length = n;
      }
    }
    if (*length > limits_.max_body_bytes) return too_large();
  }
  if (!chunked && length.value_or(0) == 0) return Got::kOk;

  if (head.expect_continue && in_pos_ == in_.size()) {
    out_ += "HTTP/1.1 100 Continue\r\n\r\n";
    if (!flush()) return Got::kClosed;
  }
  if (chunked) return read_chunked(body);

  const std::size_t want = *length;
  body.reserve(want);
  while (body.size() < want) {
    if (in_pos_ == in_.size() && !fill(deadline_)) return Got::kClosed;
    const std::size_t n = std::min(want - body.size(), in_.size() - in_pos_);
    body.append(in_, in_pos_, n);
    in_pos_ += n;
  }
  return Got::kOk;
}

// RFC 9112 §7.1: chunk sizes in hex (an overflowing size is past the limit),
// extensions ignored, trailer fields read within the header limit and dropped.
Connection::Got Connection::read_chunked(std::string& body) {
  const Refusal bad{400, "bad-request", "Bad request", "the chunked body is malformed"};
  std::string_view line;
  for (;;) {
    Got got = next_line(line, kMaxChunkLine, deadline_, bad);
    if (got != Got::kOk) return got;
    std::size_t size = 0;
    std::size_t i = 0;
    for (; i < line.size() && std::isxdigit(static_cast<unsigned char>(line[i])); ++i) {
      const char c = static_cast<char>(std::tolower(static_cast<unsigned char>(line[i])));
      const std::size_t digit =
          c <= '9' ? static_cast<std::size_t>(c - '0') : static_cast<std::size_t>(c - 'a' + 10);
      size = std::min<std::size_t>(size * 16 + digit, limits_.max_body_bytes + 1);
    }
    const std::string_view rest = trim_ows(line.substr(i));
    if (i == 0 || (!rest.empty() && rest.front() != ';')) {
      refusal_ = bad;
      return Got::kRefused;
    }
    if (size == 0) break;
    if (size > limits_.max_body_bytes - body.size()) {
      return refuse(413, "payload-too-large", "Payload too large",
                    "the body exceeds " + std::to_string(limits_.max_body_bytes) + " bytes");
    }
    std::size_t left = size;
    while (left > 0) {
      if (in_pos_ == in_.size() && !fill(deadline_)) return Got::kClosed;
      const std::size_t n = std::min(left, in_.size() - in_pos_);
      body.append(in_, in_pos_, n);
      in_pos_ += n;
      left -= n;
    }
    got = next_line(line, 2, deadline_, bad);
    if (got != Got::kOk) return got;
    if (!line.empty()) {
      refusal_ = bad;
      return Got::kRefused;
    }
  }
  std::size_t trailer_bytes = 0;
  const Refusal too_large{
      431, "request-header-fields-too-large", "Request header fields too large",
      "the trailer fields exceed " + std::to_string(limits_.max_header_bytes) + " bytes"};
  for (;;) {
    const std::size_t budget =
        limits_.max_header_bytes - std::min(trailer_bytes, limits_.max_header_bytes);
    const Got got = next_line(line, budget + 2, deadline_, too_large);
    if (got != Got::kOk) return got;
    if (line.empty()) return Got::kOk;
    trailer_bytes += line.size() + 2;
  }
}

void Connection::show(const Head& head, const std::string& body) {
  shown_.clear();
  shown_pos_ = 0;
  shown_ += head.request_line;
  shown_ += "\r\n";
  for (const auto& [name, value] : head.fields) {
    shown_ += name;
    shown_ += ": ";
    shown_ += value;
    shown_ += "\r\n";
  }
  // RFC 9112 §6.3: no framing means an empty body. cpp-httplib would instead
  // read a PUT/POST/DELETE without framing until the client closes.
  shown_ += "Content-Length: ";
  shown_ += std::to_string(body.size());
  shown_ += "\r\n\r\n";
  shown_ += body;
}

// The socket is non-blocking under TLS: each wait for room is bounded by the
// write timeout, which the server sets equal to the read timeout.
bool Connection::flush_tls() {
  std::size_t off = 0;
  const auto deadline = after(limits_.read_timeout_ms);
  while (off < out_.size() && !write_failed_) {
    ERR_clear_error();
    const std::size_t chunk = std::min<std::size_t>(out_.size() - off, 1 << 30);
    const int n = SSL_write(tls_, out_.data() + off, static_cast<int>(chunk));
    if (n > 0) {
      off += static_cast<std::size_t>(n);
    } else if (!wait_tls(SSL_get_error(tls_, n), deadline, false)) {
      write_failed_ = true;
    }
  }
  out_.clear();
  return !write_failed_;
}

void Connection::close_tls() {
  if (tls_ == nullptr || tls_failed_ || (SSL_get_shutdown(tls_) & SSL_SENT_SHUTDOWN) != 0) return;
  ERR_clear_error();
  // One try: the socket is non-blocking and nothing waits for the peer's reply.
  SSL_shutdown(tls_);
  ERR_clear_error();
}

bool Connection::flush() {
  if (tls_ != nullptr) return flush_tls();
  std::size_t off = 0;
  while (off < out_.size() && !write_failed_) {
    // SO_SNDTIMEO (the write timeout, set by cpp-httplib at accept) bounds each send.
    const ssize_t n = ::send(fd_, out_.data() + off, out_.size() - off, MSG_NOSIGNAL);
    if (n > 0) {
      off += static_cast<std::size_t>(n);
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else {
      write_failed_ = true;
    }
  }
  out_.clear();
  return !write_failed_;
}

void Connection::answer_refusal() {
  const Reply reply = problem(refusal_->status, refusal_->slug, refusal_->title, refusal_->detail);
  out_ += "HTTP/1.1 " + std::to_string(reply.status) + " " + reason(reply.status) + "\r\n";
  out_ += "Content-Type: ";
  out_ += reply.content_type;
  out_ += "\r\nContent-Length: " + std::to_string(reply.body.size()) + "\r\n";
  if (reply.status == 503) out_ += "Retry-After: 1\r\n";
  out_ += "Connection: close\r\n\r\n";
  out_ += reply.body;
  flush();
}

// Reads and drops what the client still sends, so that closing does not
// reset the connection before the client has read the answer: until the
// client closes, pauses for kLingerQuietMs, or kLingerMs or kLingerBytes pass.
void Connection::linger() {
  close_tls();
  ::shutdown(fd_, SHUT_WR);
  const auto deadline = after(std::min(kLingerMs, limits_.read_timeout_ms));
  std::size_t dropped = 0;
  char buf[kReadSize];
  while (dropped < kLingerBytes) {
    pollfd p{fd_, POLLIN, 0};
    const int r = ::poll(&p, 1, std::min(kLingerQuietMs, ms_until(deadline)));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return;
    const ssize_t n = ::recv(fd_, buf, sizeof buf, MSG_DONTWAIT);
    if (n <= 0 && !(n < 0 && errno == EINTR)) return;
    if (n > 0) dropped += static_cast<std::size_t>(n);
  }
}

void Connection::address(bool local, std::string& ip, int& port) const {
  sockaddr_storage addr{};
  socklen_t len = sizeof addr;
  const int r = local ? ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len)
                      : ::getpeername(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
  ip.clear();
  port = 0;
  if (r != 0) return;
  char buf[INET6_ADDRSTRLEN] = {};
  if (addr.ss_family == AF_INET) {
    const auto* a = reinterpret_cast<const sockaddr_in*>(&addr);
    ::inet_ntop(AF_INET, &a->sin_addr, buf, sizeof buf);
    port = ntohs(a->sin_port);
  } else if (addr.ss_family == AF_INET6) {
    const auto* a = reinterpret_cast<const sockaddr_in6*>(&addr);
    ::inet_ntop(AF_INET6, &a->sin6_addr, buf, sizeof buf);
    port = ntohs(a->sin6_port);
  }
  ip = buf;
}

void Connection::serve(const Drain& drain, const ProcessRequest& process,
                       const RefusalObserver& refused) {
  for (std::size_t served = 0; served < limits_.max_requests; ++served) {
    if (wait_for_request(drain) != Got::kOk) return;
    Head head;
    std::string body;
    Got got = read_head(head);
    if (got == Got::kOk && drain.draining()) {
      // Arrived after the drain began: not run, so not written.
      got = refuse(503, "unavailable", "Service unavailable",
                   "the server is shutting down; retry on a new connection");
    }
    if (got == Got::kOk) got = read_body(head, body);
    if (got == Got::kClosed && timed_out_) {
      got = refuse(
          408, "request-timeout", "Request timeout",
          "the request did not arrive within " + std::to_string(limits_.read_timeout_ms) + " ms");
    }
    if (got == Got::kClosed) return;
    if (got == Got::kRefused) {
      if (refused) refused(head.method.empty() ? "-" : head.method, refusal_->status);
      answer_refusal();
      linger();
      return;
    }
    show(head, body);
    const bool last = served + 1 == limits_.max_requests;
    bool connection_closed = false;
    const bool ok = process(*this, last, connection_closed);
    if (!flush() || !ok || connection_closed || last || drain.draining()) return;
    shown_.clear();
    shown_pos_ = 0;
  }
}

}  // namespace

void serve_connection(int fd, SSL* tls, const ConnectionLimits& limits, const Drain& drain,
                      const ProcessRequest& process, const RefusalObserver& refused) {
  {
    Connection conn(fd, tls, limits);
    conn.serve(drain, process, refused);
    conn.close_tls();
  }
  ::shutdown(fd, SHUT_RDWR);
  ::close(fd);
}

}  // namespace app
