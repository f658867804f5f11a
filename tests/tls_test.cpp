// Built-in TLS and outbound https, against the real binary on real sockets,
// with a throwaway CA made in the test (tests/support/test_pki.h):
// - start-up refuses a missing, unreadable, mismatched, expired or
//   not-yet-valid pair with one line naming the flag (exit 2);
// - a client that verifies the test CA uses the API over HTTPS (and curl
//   --cacert, as the README shows); TLS 1.1 is refused, 1.2 and 1.3 served,
//   no compression;
// - the connection layer's limits hold over TLS (431, 413, 408);
// - SIGHUP loads a renewed pair for new connections, keeps open ones, and
//   refuses a bad pair keeping the old one; both counted in /metrics;
// - webhooks and the payment gateway verify an https:// peer: delivered with
//   --ca-file, refused without it (the job stays retryable and is delivered
//   once the CA is trusted), and refused for an expired or wrong-host
//   certificate.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>

#include "services/payment_gateway.h"
#include "tests/support/harness.h"
#include "tests/support/raw_conn.h"
#include "tests/support/test_pki.h"

using namespace std::chrono_literals;
using testing::CertSpec;
using testing::Pem;
using testing::TestPki;

namespace {

void copy_over(const std::string& from, const std::string& to) {
  std::filesystem::copy_file(from, to, std::filesystem::copy_options::overwrite_existing);
}

// Runs a shell command; returns its stdout and stderr.
std::string shell(const std::string& command) {
  std::string out;
  std::FILE* p = ::popen((command + " 2>&1").c_str(), "r");
  REQUIRE(p != nullptr);
  char buf[4096];
  std::size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  ::pclose(p);
  return out;
}

// The certificate's notAfter as Unix time.
std::int64_t not_after_of(const std::string& cert_path) {
  std::FILE* f = std::fopen(cert_path.c_str(), "rb");
  REQUIRE(f != nullptr);
  X509* x = PEM_read_X509(f, nullptr, nullptr, nullptr);
  std::fclose(f);
  REQUIRE(x != nullptr);
  std::tm tm{};
  ASN1_TIME_to_tm(X509_get0_notAfter(x), &tm);
  X509_free(x);
  return static_cast<std::int64_t>(timegm(&tm));
}

// `aftercommit serve` with stdout and stderr in <dir>/server.log.
class TlsServer {
 public:
  TlsServer(const testing::TempDir& dir, const std::vector<std::string>& extra)
      : log_path_(dir.file("server.log")) {
    std::vector<std::string> args = {AFTERCOMMIT_BINARY,         "serve", "--port", "0", "--db",
                                     testing::test_db(dir, "db")};
    args.insert(args.end(), extra.begin(), extra.end());
    pid_ = ::fork();
    REQUIRE(pid_ >= 0);
    if (pid_ == 0) {
      const int fd = ::open(log_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
      ::dup2(fd, STDOUT_FILENO);
      ::dup2(fd, STDERR_FILENO);
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
    REQUIRE(testing::eventually(
        [&] {
          const std::string text = log();
          const auto at = text.find("listening on ");
          const auto nl = text.find('\n', at);
          if (at == std::string::npos || nl == std::string::npos) return false;
          listening_ = text.substr(at, nl - at);
          port_ = std::stoi(listening_.substr(listening_.rfind(':') + 1));
          return true;
        },
        20s));
  }
  ~TlsServer() { kill9(); }
  TlsServer(const TlsServer&) = delete;
  TlsServer& operator=(const TlsServer&) = delete;

  int port() const { return port_; }
  const std::string& listening_line() const { return listening_; }
  std::string log() const { return testing::read_file(log_path_); }
  void signal(int sig) const { ::kill(pid_, sig); }
  void kill9() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
      pid_ = -1;
    }
  }
  // An HTTPS client that verifies the server against `ca` and the host name.
  httplib::Client client(const std::string& ca) const {
    httplib::Client c("https://127.0.0.1:" + std::to_string(port_));
    c.set_ca_cert_path(ca);
    c.enable_server_certificate_verification(true);
    c.set_connection_timeout(5, 0);
    c.set_read_timeout(10, 0);
    return c;
  }

 private:
  std::string log_path_;
  std::string listening_;
  pid_t pid_ = -1;
  int port_ = 0;
};

// One TLS connection made with OpenSSL directly: the handshake's outcome,
// the certificate the server presented, and raw HTTP bytes either way.
class TlsConn {
 public:
  TlsConn(int port, const std::string& ca) {
    ctx_ = SSL_CTX_new(TLS_client_method());
    REQUIRE(SSL_CTX_load_verify_locations(ctx_, ca.c_str(), nullptr) == 1);
    SSL_CTX_set_verify(ctx_, SSL_VERIFY_PEER, nullptr);
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<std::uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    timeval tv{5, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ssl_ = SSL_new(ctx_);
    SSL_set_fd(ssl_, fd_);
    SSL_set_tlsext_host_name(ssl_, "localhost");
    SSL_set1_host(ssl_, "localhost");
    ok_ = SSL_connect(ssl_) == 1;
    ERR_clear_error();
  }
  ~TlsConn() {
    SSL_free(ssl_);
    SSL_CTX_free(ctx_);
    ::close(fd_);
  }
  TlsConn(const TlsConn&) = delete;
  TlsConn& operator=(const TlsConn&) = delete;

  bool handshake_ok() const { return ok_; }
  long serial() const {
    X509* cert = SSL_get1_peer_certificate(ssl_);
    if (cert == nullptr) return -1;
    const long s = ASN1_INTEGER_get(X509_get0_serialNumber(cert));
    X509_free(cert);
    return s;
  }
  bool send_all(const std::string& data) {
    return SSL_write(ssl_, data.data(), static_cast<int>(data.size())) ==
           static_cast<int>(data.size());
  }
  // One response (head and Content-Length body); "" on close or timeout (5 s).
  std::string read_response() {
    for (;;) {
      const auto end = pending_.find("\r\n\r\n");
      if (end != std::string::npos) {
        std::size_t length = 0;
        const auto cl = pending_.find("Content-Length: ");
        if (cl != std::string::npos && cl < end) length = std::stoul(pending_.substr(cl + 16));
        if (pending_.size() >= end + 4 + length) {
          std::string out = pending_.substr(0, end + 4 + length);
          pending_.erase(0, end + 4 + length);
          return out;
        }
      }
      char buf[4096];
      const int n = SSL_read(ssl_, buf, sizeof buf);
      if (n <= 0) {
        ERR_clear_error();
        return "";
      }
      pending_.append(buf, static_cast<std::size_t>(n));
    }
  }
  // True when the server closes the connection (close_notify, EOF or reset).
  bool closed_by_server() {
    char buf[4096];
    for (;;) {
      const int n = SSL_read(ssl_, buf, sizeof buf);
      if (n > 0) continue;
      const int err = SSL_get_error(ssl_, n);
      ERR_clear_error();
      return err == SSL_ERROR_ZERO_RETURN || err == SSL_ERROR_SYSCALL || err == SSL_ERROR_SSL;
    }
  }

 private:
  SSL_CTX* ctx_ = nullptr;
  SSL* ssl_ = nullptr;
  int fd_ = -1;
  bool ok_ = false;
  std::string pending_;
};

int status_of(const std::string& response) {
  if (response.size() < 12 || response.rfind("HTTP/1.1 ", 0) != 0) return 0;
  return std::stoi(response.substr(9, 3));
}

double metric(httplib::Client& http, const std::string& series) {
  auto res = http.Get("/metrics");
  REQUIRE(res);
  const auto at = res->body.find("\n" + series + " ");
  if (at == std::string::npos) return -1;
  return std::stod(res->body.substr(at + series.size() + 2));
}

// An HTTPS webhook receiver (cpp-httplib's SSLServer) with the given pair.
class HttpsReceiver {
 public:
  explicit HttpsReceiver(const Pem& pem) : server_(pem.cert.c_str(), pem.key.c_str()) {
    REQUIRE(server_.is_valid());
    server_.Post(".*", [this](const httplib::Request& req, httplib::Response& res) {
      std::lock_guard lock(mu_);
      keys_.push_back(req.get_header_value("Idempotency-Key"));
      res.set_content("{}", "application/json");
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    REQUIRE(port_ > 0);
    thread_ = testing::listen_in_background(server_);
  }
  ~HttpsReceiver() {
    server_.stop();
    thread_.join();
  }
  HttpsReceiver(const HttpsReceiver&) = delete;
  HttpsReceiver& operator=(const HttpsReceiver&) = delete;

  std::string url() const { return "https://127.0.0.1:" + std::to_string(port_) + "/hooks"; }
  int port() const { return port_; }
  std::vector<std::string> keys() const {
    std::lock_guard lock(mu_);
    return keys_;
  }

 private:
  httplib::SSLServer server_;
  std::thread thread_;
  mutable std::mutex mu_;
  std::vector<std::string> keys_;
  int port_ = 0;
};

nlohmann::json webhook_jobs(httplib::Client& http) {
  auto res = testing::request(http, "GET", "/jobs?kind=deliver_webhook");
  REQUIRE(res.status == 200);
  return res.json()["jobs"];
}

std::string last_error(const nlohmann::json& job) {
  if (!job.contains("errors") || job["errors"].empty()) return "";
  return job["errors"].back()["message"].get<std::string>();
}

}  // namespace

TEST_CASE("start-up refuses a bad certificate or key with one line naming the flag (exit 2)" *
          doctest::test_suite("variant_independent")) {
  testing::TempDir dir;
  TestPki pki(dir.path().string());
  const Pem good = pki.issue("good");
  const Pem expired = pki.issue("expired", {.not_before_s = -3 * 86400, .not_after_s = -86400});
  const Pem early = pki.issue("early", {.not_before_s = 86400, .not_after_s = 2 * 86400});
  const std::string other_key = pki.lone_key("other");
  const std::string garbage = dir.file("garbage.pem");
  std::ofstream(garbage) << "not a certificate\n";
  // Refused before any database opens (whichever the engine): never created.
  const std::string db = dir.file("never.db");

  struct Case {
    const char* name;
    std::string cert, key;
    std::vector<std::string> expected;
  };
  const std::vector<Case> cases = {
      {"missing certificate",
       dir.file("nope.crt"),
       good.key,
       {"--tls-cert", "cannot read", "No such file"}},
      {"missing key",
       good.cert,
       dir.file("nope.key"),
       {"--tls-key", "cannot read", "No such file"}},
      {"unreadable certificate (a directory)",
       dir.path().string(),
       good.key,
       {"--tls-cert", "cannot read", "is a directory"}},
      {"not a certificate", garbage, good.key, {"--tls-cert", "holds no PEM certificate"}},
      {"not a key", good.cert, garbage, {"--tls-key", "holds no PEM private key"}},
      {"key of another certificate",
       good.cert,
       other_key,
       {"--tls-key", "does not match the certificate"}},
      {"expired certificate", expired.cert, expired.key, {"--tls-cert", "expired on"}},
      {"certificate not valid yet", early.cert, early.key, {"--tls-cert", "not valid before"}},
  };
  SUBCASE("each bad file") {
    for (const auto& c : cases) {
      CAPTURE(c.name);
      auto [code, out] = testing::run_binary(
          {"serve", "--port", "0", "--db", db, "--tls-cert", c.cert, "--tls-key", c.key});
      CAPTURE(out);
      CHECK(code == 2);
      CHECK(std::count(out.begin(), out.end(), '\n') == 1);
      for (const auto& word : c.expected) CHECK(out.find(word) != std::string::npos);
    }
  }

  SUBCASE("both flags or neither") {
    auto [code, out] = testing::run_binary({"serve", "--db", db, "--tls-cert", good.cert});
    CHECK(code == 2);
    CHECK(out.find("--tls-key") != std::string::npos);
    auto [code2, out2] = testing::run_binary({"serve", "--db", db, "--tls-key", good.key});
    CHECK(code2 == 2);
    CHECK(out2.find("--tls-cert") != std::string::npos);
  }
  SUBCASE("the environment variables are read and checked the same way") {
    auto [code, out] = testing::run_binary(
        {"serve", "--port", "0", "--db", db},
        {"AFTERCOMMIT_TLS_CERT=" + expired.cert, "AFTERCOMMIT_TLS_KEY=" + expired.key});
    CHECK(code == 2);
    CHECK(out.find("--tls-cert") != std::string::npos);
    CHECK(out.find("expired on") != std::string::npos);
  }
  SUBCASE("--ca-file must be readable and hold a certificate") {
    auto [code, out] =
        testing::run_binary({"serve", "--port", "0", "--db", db, "--ca-file", dir.file("no.pem")});
    CHECK(code == 2);
    CHECK(out.find("--ca-file") != std::string::npos);
    auto [code2, out2] =
        testing::run_binary({"serve", "--port", "0", "--db", db, "--ca-file", garbage});
    CHECK(code2 == 2);
    CHECK(out2.find("--ca-file") != std::string::npos);
  }
  CHECK_FALSE(std::filesystem::exists(db));
}

TEST_CASE("over HTTPS a client that verifies the CA creates a user and replays it") {
  testing::TempDir dir;
  TestPki pki(dir.path().string());
  const Pem pem = pki.issue("server");
  TlsServer server(dir, {"--tls-cert", pem.cert, "--tls-key", pem.key});
  CHECK(server.listening_line().rfind("listening on https://", 0) == 0);

  auto http = server.client(pki.ca_cert());
  auto created = testing::request(http, "PUT", "/users/tls@example.com");
  REQUIRE(created.status == 201);
  auto replay = testing::request(http, "POST", "/api/users", R"({"email":"tls@example.com"})",
                                 "application/json", {{"Idempotency-Key", "tls-key-1"}});
  CHECK(replay.status == 200);
  auto again = testing::request(http, "POST", "/api/users", R"({"email":"tls@example.com"})",
                                "application/json", {{"Idempotency-Key", "tls-key-1"}});
  CHECK(again.status == 200);
  CHECK(again.json() == replay.json());
  CHECK(again.header("Idempotent-Replayed") == "true");

  SUBCASE("curl --cacert, as in the README; without the CA curl refuses the server") {
    const std::string url = "https://localhost:" + std::to_string(server.port()) + "/healthz";
    CHECK(shell("curl -sS --cacert " + testing::shell_quote(pki.ca_cert()) + " " + url) ==
          R"({"status":"ok"})");
    const std::string refused = shell("curl -sS " + url);
    CHECK(refused.find("certificate") != std::string::npos);
  }
  SUBCASE("plain HTTP to the TLS port gets no answer") {
    httplib::Client plain("127.0.0.1", server.port());
    plain.set_read_timeout(5, 0);
    CHECK_FALSE(plain.Get("/healthz"));
  }
}

TEST_CASE("TLS 1.1 is refused; TLS 1.2 and 1.3 are served without compression") {
  testing::TempDir dir;
  TestPki pki(dir.path().string());
  const Pem pem = pki.issue("server");
  TlsServer server(dir, {"--tls-cert", pem.cert, "--tls-key", pem.key});
  const std::string connect =
      "openssl s_client -connect 127.0.0.1:" + std::to_string(server.port()) + " -CAfile " +
      testing::shell_quote(pki.ca_cert()) + " </dev/null";
  // SECLEVEL=0 lets this client offer TLS 1.1 at all: the refusal is the server's.
  const std::string tls11 = shell(connect + " -tls1_1 -cipher DEFAULT@SECLEVEL=0");
  CAPTURE(tls11);
  CHECK(tls11.find("alert protocol version") != std::string::npos);
  const std::string tls12 = shell(connect + " -tls1_2");
  CAPTURE(tls12);
  CHECK(tls12.find("Protocol  : TLSv1.2") != std::string::npos);
  CHECK(tls12.find("Compression: NONE") != std::string::npos);
  CHECK(tls12.find("Verify return code: 0 (ok)") != std::string::npos);
  CHECK(shell(connect + " -tls1_3").find("TLSv1.3") != std::string::npos);
}

TEST_CASE("the connection limits hold over TLS: 431, 413 and 408") {
  testing::TempDir dir;
  TestPki pki(dir.path().string());
  const Pem pem = pki.issue("server");
  TlsServer server(dir, {"--tls-cert", pem.cert, "--tls-key", pem.key, "--max-header-bytes", "2048",
                         "--max-body", "1024", "--read-timeout", "700ms"});

  SUBCASE("keep-alive works, then headers over --max-header-bytes get 431 and a close") {
    TlsConn conn(server.port(), pki.ca_cert());
    REQUIRE(conn.handshake_ok());
    REQUIRE(conn.send_all("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"));
    CHECK(status_of(conn.read_response()) == 200);
    REQUIRE(conn.send_all("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(3000, 'b') +
                          "\r\n\r\n"));
    const std::string answer = conn.read_response();
    CHECK(status_of(answer) == 431);
    CHECK(answer.find("Connection: close") != std::string::npos);
    CHECK(conn.closed_by_server());
  }
  SUBCASE("a body over --max-body gets 413") {
    TlsConn conn(server.port(), pki.ca_cert());
    REQUIRE(conn.handshake_ok());
    REQUIRE(
        conn.send_all("POST /api/users HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                      "Content-Length: 5000\r\n\r\n"));
    CHECK(status_of(conn.read_response()) == 413);
  }
  SUBCASE("a request that stops half-way gets 408 after --read-timeout") {
    TlsConn conn(server.port(), pki.ca_cert());
    REQUIRE(conn.handshake_ok());
    REQUIRE(conn.send_all("GET /healthz HTTP/1.1\r\nHost: x\r\n"));
    CHECK(status_of(conn.read_response()) == 408);
  }
  SUBCASE("a client that never starts the handshake is dropped after --read-timeout") {
    testing::RawConn raw(server.port());
    bool closed = false;
    const auto start = std::chrono::steady_clock::now();
    raw.read_until_close(5s, &closed);
    CHECK(closed);
    CHECK(std::chrono::steady_clock::now() - start < 4s);
  }
}

TEST_CASE("SIGHUP serves a renewed certificate to new connections; a bad pair keeps the old") {
  testing::TempDir dir;
  TestPki pki(dir.path().string());
  const Pem first = pki.issue("first", {.not_after_s = 86400, .serial = 1001});
  const Pem renewed = pki.issue("renewed", {.not_after_s = 3 * 86400, .serial = 2002});
  const Pem expired =
      pki.issue("expired", {.not_before_s = -3 * 86400, .not_after_s = -60, .serial = 3003});
  const std::string cert = dir.file("server.crt");
  const std::string key = dir.file("server.key");
  copy_over(first.cert, cert);
  copy_over(first.key, key);
  TlsServer server(dir, {"--tls-cert", cert, "--tls-key", key});
  auto http = server.client(pki.ca_cert());
  CHECK(metric(http, "aftercommit_tls_certificate_not_after_timestamp_seconds") ==
        static_cast<double>(not_after_of(first.cert)));
  const double ok_before = metric(http, "aftercommit_tls_reloads_total{outcome=\"ok\"}");
  const double failed_before = metric(http, "aftercommit_tls_reloads_total{outcome=\"failed\"}");

  TlsConn open_before(server.port(), pki.ca_cert());
  REQUIRE(open_before.handshake_ok());
  CHECK(open_before.serial() == 1001);

  copy_over(renewed.cert, cert);
  copy_over(renewed.key, key);
  server.signal(SIGHUP);
  REQUIRE(testing::eventually([&] {
    TlsConn probe(server.port(), pki.ca_cert());
    return probe.handshake_ok() && probe.serial() == 2002;
  }));
  CHECK(
      testing::eventually([&] { return server.log().find("tls_reloaded") != std::string::npos; }));
  const std::string log = server.log();
  const std::string reloaded = log.substr(log.find("tls_reloaded"));
  CHECK(reloaded.find("7D2") != std::string::npos);  // the serial, 2002
  CHECK(reloaded.find("not_after=") != std::string::npos);
  auto http2 = server.client(pki.ca_cert());
  CHECK(metric(http2, "aftercommit_tls_reloads_total{outcome=\"ok\"}") == ok_before + 1);
  CHECK(metric(http2, "aftercommit_tls_certificate_not_after_timestamp_seconds") ==
        static_cast<double>(not_after_of(renewed.cert)));
  // The connection opened before the reload keeps its session and is served.
  REQUIRE(open_before.send_all("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"));
  CHECK(status_of(open_before.read_response()) == 200);

  // A key that matches no certificate, then an expired pair: both refused.
  copy_over(pki.lone_key("stray"), key);
  server.signal(SIGHUP);
  REQUIRE(testing::eventually([&] {
    auto h = server.client(pki.ca_cert());
    return metric(h, "aftercommit_tls_reloads_total{outcome=\"failed\"}") == failed_before + 1;
  }));
  copy_over(expired.cert, cert);
  copy_over(expired.key, key);
  server.signal(SIGHUP);
  REQUIRE(testing::eventually([&] {
    auto h = server.client(pki.ca_cert());
    return metric(h, "aftercommit_tls_reloads_total{outcome=\"failed\"}") == failed_before + 2;
  }));
  TlsConn after_bad(server.port(), pki.ca_cert());
  REQUIRE(after_bad.handshake_ok());
  CHECK(after_bad.serial() == 2002);
  const std::string final_log = server.log();
  CHECK(final_log.find("tls_reload_failed error=\"--tls-key") != std::string::npos);
  CHECK(final_log.find("expired on") != std::string::npos);
  auto http3 = server.client(pki.ca_cert());
  CHECK(metric(http3, "aftercommit_tls_certificate_not_after_timestamp_seconds") ==
        static_cast<double>(not_after_of(renewed.cert)));
  CHECK(testing::request(http3, "PUT", "/users/after-reload@example.com").status == 201);
}

TEST_CASE("a webhook to an HTTPS receiver is delivered with --ca-file and retried without it") {
  testing::TempDir dir;
  TestPki pki(dir.path().string());
  HttpsReceiver receiver(pki.issue("receiver"));
  const std::string db = testing::test_db(dir, "db");
  const std::vector<std::string> base = {"--webhook-url", receiver.url(),       "--webhook-secret",
                                         "s3cret",        "--job-backoff-base", "1s"};
  std::int64_t job_id = 0;
  {
    // Without --ca-file the test CA is not trusted (the system store is).
    testing::ServerProcess server(db, base);
    auto http = server.client();
    REQUIRE(testing::request(http, "PUT", "/users/hook@example.com").status == 201);
    nlohmann::json job;
    REQUIRE(testing::eventually([&] {
      auto jobs = webhook_jobs(http);
      if (jobs.empty() || last_error(jobs[0]).empty()) return false;
      job = jobs[0];
      return true;
    }));
    CAPTURE(job.dump());
    CHECK(last_error(job).find("TLS certificate could not be verified") != std::string::npos);
    CHECK(job["state"] == "retryable");
    CHECK(receiver.keys().empty());
    job_id = job["id"].get<std::int64_t>();
  }
  // The operator adds --ca-file: the same job is delivered, once.
  std::vector<std::string> with_ca = base;
  with_ca.insert(with_ca.end(), {"--ca-file", pki.ca_cert()});
  testing::ServerProcess server(db, with_ca);
  auto http = server.client();
  REQUIRE(testing::eventually(
      [&] {
        auto jobs = webhook_jobs(http);
        return !jobs.empty() && jobs[0]["state"] == "completed";
      },
      15s));
  auto jobs = webhook_jobs(http);
  REQUIRE(jobs.size() == 1);
  CHECK(jobs[0]["id"] == job_id);
  CHECK(receiver.keys().size() == 1);
}

TEST_CASE("outbound https refuses an expired or wrong-host certificate even from a trusted CA") {
  testing::TempDir dir;
  TestPki pki(dir.path().string());
  HttpsReceiver expired(
      pki.issue("expired", {.not_before_s = -3 * 86400, .not_after_s = -60, .serial = 5}));
  HttpsReceiver wrong_host(pki.issue(
      "wrong", {.common_name = "wrong.example", .alt_names = "DNS:wrong.example", .serial = 6}));
  testing::ServerProcess server(testing::test_db(dir, "db"),
                                {"--webhook-url", expired.url() + "," + wrong_host.url(),
                                 "--webhook-secret", "s3cret", "--ca-file", pki.ca_cert()});
  auto http = server.client();
  REQUIRE(testing::request(http, "PUT", "/users/hook@example.com").status == 201);
  std::map<std::string, nlohmann::json> by_url;
  REQUIRE(testing::eventually([&] {
    by_url.clear();
    for (const auto& job : webhook_jobs(http)) {
      if (!last_error(job).empty()) by_url[job["args"]["url"].get<std::string>()] = job;
    }
    return by_url.size() == 2;
  }));
  CAPTURE(by_url[expired.url()].dump());
  CAPTURE(by_url[wrong_host.url()].dump());
  CHECK(last_error(by_url[expired.url()]).find("certificate has expired") != std::string::npos);
  CHECK(last_error(by_url[wrong_host.url()]).find("does not name the host") != std::string::npos);
  CHECK(by_url[expired.url()]["state"] == "retryable");
  CHECK(by_url[wrong_host.url()]["state"] == "retryable");
  CHECK(expired.keys().empty());
  CHECK(wrong_host.keys().empty());
}

TEST_CASE("the payment gateway client verifies an https:// gateway against --ca-file") {
  testing::TempDir dir;
  TestPki pki(dir.path().string());
  const Pem pem = pki.issue("gateway");
  httplib::SSLServer gateway(pem.cert.c_str(), pem.key.c_str());
  std::atomic<int> charges{0};
  gateway.Post("/v1/charges", [&](const httplib::Request&, httplib::Response& res) {
    charges.fetch_add(1);
    res.status = 201;
    res.set_content(R"({"id":"ch_tls","amount_cents":500})", "application/json");
  });
  const int port = gateway.bind_to_any_port("127.0.0.1");
  REQUIRE(port > 0);
  std::thread serving = testing::listen_in_background(gateway);
  const std::string url = "https://127.0.0.1:" + std::to_string(port);

  const auto untrusted = services::PaymentGateway(url, 5000).charge(500, "tok_ok", "k1");
  CHECK(untrusted.outcome == services::ChargeOutcome::kFailed);
  CHECK(untrusted.detail.find("TLS certificate could not be verified") != std::string::npos);
  CHECK(charges.load() == 0);

  const auto trusted =
      services::PaymentGateway(url, 5000, pki.ca_cert()).charge(500, "tok_ok", "k2");
  CHECK(trusted.outcome == services::ChargeOutcome::kSucceeded);
  CHECK(trusted.charge_id == "ch_tls");
  CHECK(charges.load() == 1);

  // And start-up takes an https:// gateway URL.
  testing::ServerProcess server(testing::test_db(dir, "db"),
                                {"--payment-gateway-url", url, "--ca-file", pki.ca_cert()});
  CHECK(server.port() > 0);
  gateway.stop();
  serving.join();
}
