// app::TlsServerContext: the server's certificate and key (--tls-cert,
// --tls-key), reloadable while serving (SIGHUP).
//
// Why not cpp-httplib's SSLServer: in 0.11.4 it does the TLS handshake and
// then serves the connection with its own reader inside
// process_and_close_socket, the very method app::HttpServer overrides to read
// every request through app::serve_connection within the limits (413, 431,
// 408, drain, idle timeout). So TLS is done here with OpenSSL directly, and
// the connection layer reads and writes through the SSL object instead of
// the socket (http/connection.h): every limit holds over TLS as over plain TCP.
// None of cpp-httplib's TLS pieces is used on the server side.
//
// One OpenSSL server context (SSL_CTX) is current at a time, held by a
// shared_ptr swapped under a mutex. accept() takes the current one for each
// accepted socket (SSL_new holds its own reference), so reload() changes what
// new connections present and never touches connections already open.
//
// Settings: TLS 1.2 and 1.3 only, no TLS compression (CRIME), no
// renegotiation, server cipher order with forward-secret AEAD suites only for
// TLS 1.2 (OpenSSL's defaults for 1.3).
//
// Checks (at start-up through Config::validate, and on every reload): the
// files are readable, the certificate file holds a PEM certificate (then any
// intermediates), the key file a PEM private key that is not
// password-protected and matches the certificate, and the certificate is
// valid now (not expired, not before its notBefore). A failure reads as one
// line naming the flag and the reason.
#pragma once

#include <openssl/ssl.h>

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

#include "core/status.h"

namespace app {

struct SslFree {
  void operator()(SSL* ssl) const noexcept { SSL_free(ssl); }
};
using SslPtr = std::unique_ptr<SSL, SslFree>;

// What the loaded certificate says, for log lines and /metrics.
struct CertInfo {
  std::int64_t not_after_unix = 0;
  std::string not_after;  // "2027-11-30T04:00:00Z"
  std::string subject;    // the one-line form, "CN = api.example"
  std::string serial;     // hex
};

// Checks a certificate and key pair without keeping it: what start-up runs.
[[nodiscard]] core::Status check_tls_pair(const std::string& cert_path,
                                          const std::string& key_path);
// --ca-file: readable and holding at least one PEM certificate.
[[nodiscard]] core::Status check_ca_file(const std::string& path);

class TlsServerContext {
 public:
  // Loads and checks the pair (the checks above); the message names the flag.
  [[nodiscard]] static core::Result<std::unique_ptr<TlsServerContext>> open(std::string cert_path,
                                                                            std::string key_path);
  TlsServerContext(const TlsServerContext&) = delete;
  TlsServerContext& operator=(const TlsServerContext&) = delete;

  // Reads both files again. On success, connections accepted from now on
  // present the new certificate; on failure the current pair stays and the
  // Status says why. Counted in aftercommit_tls_reloads_total{outcome};
  // aftercommit_tls_certificate_not_after_timestamp_seconds follows the
  // certificate in use. Thread-safe.
  [[nodiscard]] core::Result<CertInfo> reload();

  // The TLS handshake on an accepted socket, with the current certificate,
  // within `timeout_ms`. Leaves the socket non-blocking. Null when the client
  // did not complete a handshake (gone, too slow, TLS 1.1, not TLS at all).
  SslPtr accept(int fd, int timeout_ms) const;

  CertInfo info() const;

 private:
  TlsServerContext(std::string cert_path, std::string key_path)
      : cert_path_(std::move(cert_path)), key_path_(std::move(key_path)) {}

  const std::string cert_path_;
  const std::string key_path_;
  mutable std::mutex mu_;
  std::shared_ptr<SSL_CTX> ctx_;  // guarded by mu_
  CertInfo info_;                 // guarded by mu_
};

}  // namespace app
