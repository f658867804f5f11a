#include "http/tls.h"

#include <fcntl.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <poll.h>
#include <sys/stat.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>

#include "core/log.h"
#include "core/metrics.h"

namespace app {
namespace {

namespace m = core::metrics;

m::Counter& reloads(const char* outcome) {
  static auto& f = m::global().counter_family(
      "aftercommit_tls_reloads_total",
      "TLS certificate reloads (SIGHUP), by outcome (ok; failed: the old pair stays in use).",
      {"outcome"});
  return f.with({outcome});
}

m::Gauge& not_after_gauge() {
  return m::global().gauge("aftercommit_tls_certificate_not_after_timestamp_seconds",
                           "Unix time at which the served TLS certificate expires (its notAfter).");
}

struct BioFree {
  void operator()(BIO* b) const noexcept { BIO_free(b); }
};
struct X509Free {
  void operator()(X509* x) const noexcept { X509_free(x); }
};
struct PkeyFree {
  void operator()(EVP_PKEY* k) const noexcept { EVP_PKEY_free(k); }
};
using BioPtr = std::unique_ptr<BIO, BioFree>;
using X509Ptr = std::unique_ptr<X509, X509Free>;
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyFree>;

// OpenSSL's reason for the last failure, then the queue cleared.
std::string openssl_reason() {
  const unsigned long e = ERR_peek_last_error();
  std::string out = e != 0 && ERR_reason_error_string(e) != nullptr ? ERR_reason_error_string(e)
                                                                    : "unknown error";
  ERR_clear_error();
  return out;
}

// Opens `path` for reading, or says why not ("--tls-cert: cannot read ...").
core::Result<BioPtr> open_file(const std::string& flag, const std::string& path) {
  if (path.empty()) return core::Status::invalid(flag + ": must name a file");
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) {
    return core::Status::invalid(flag + ": cannot read " + path + " (" + std::strerror(errno) +
                                 ")");
  }
  struct stat st {};
  if (::fstat(::fileno(f), &st) == 0 && S_ISDIR(st.st_mode)) {
    std::fclose(f);
    return core::Status::invalid(flag + ": cannot read " + path + " (it is a directory)");
  }
  BioPtr bio(BIO_new_fp(f, BIO_CLOSE));
  if (!bio) {
    std::fclose(f);
    return core::Status::invalid(flag + ": cannot read " + path + " (out of memory)");
  }
  return bio;
}

// A password-protected key is refused rather than prompted for on a terminal.
int no_password(char*, int, int, void*) {
  return 0;
}

std::string format_time(std::int64_t unix) {
  const std::time_t t = static_cast<std::time_t>(unix);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::int64_t to_unix(const ASN1_TIME* t) {
  std::tm tm{};
  if (ASN1_TIME_to_tm(t, &tm) != 1) return 0;
  return static_cast<std::int64_t>(timegm(&tm));
}

CertInfo describe(X509* cert) {
  CertInfo info;
  info.not_after_unix = to_unix(X509_get0_notAfter(cert));
  info.not_after = format_time(info.not_after_unix);
  if (BioPtr mem(BIO_new(BIO_s_mem())); mem) {
    X509_NAME_print_ex(mem.get(), X509_get_subject_name(cert), 0, XN_FLAG_ONELINE);
    char* data = nullptr;
    const long n = BIO_get_mem_data(mem.get(), &data);
    if (n > 0) info.subject.assign(data, static_cast<std::size_t>(n));
  }
  if (BIGNUM* bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), nullptr); bn != nullptr) {
    if (char* hex = BN_bn2hex(bn); hex != nullptr) {
      info.serial = hex;
      OPENSSL_free(hex);
    }
    BN_free(bn);
  }
  return info;
}

struct Loaded {
  std::shared_ptr<SSL_CTX> ctx;
  CertInfo info;
};

// TLS 1.2 suites: forward secrecy and AEAD only (Mozilla's "intermediate").
constexpr char kTls12Ciphers[] =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";

core::Result<Loaded> load(const std::string& cert_path, const std::string& key_path) {
  ERR_clear_error();
  auto cert_bio = open_file("--tls-cert", cert_path);
  if (!cert_bio) return cert_bio.status();
  X509Ptr cert(PEM_read_bio_X509(cert_bio->get(), nullptr, no_password, nullptr));
  if (!cert) {
    ERR_clear_error();
    return core::Status::invalid("--tls-cert: " + cert_path + " holds no PEM certificate");
  }
  auto key_bio = open_file("--tls-key", key_path);
  if (!key_bio) return key_bio.status();
  PkeyPtr key(PEM_read_bio_PrivateKey(key_bio->get(), nullptr, no_password, nullptr));
  if (!key) {
    ERR_clear_error();
    return core::Status::invalid("--tls-key: " + key_path +
                                 " holds no PEM private key (or it is password-protected)");
  }
  if (X509_check_private_key(cert.get(), key.get()) != 1) {
    ERR_clear_error();
    return core::Status::invalid("--tls-key: " + key_path +
                                 " does not match the certificate in --tls-cert " + cert_path);
  }
  const CertInfo info = describe(cert.get());
  if (X509_cmp_current_time(X509_get0_notAfter(cert.get())) <= 0) {
    return core::Status::invalid("--tls-cert: the certificate in " + cert_path + " expired on " +
                                 info.not_after);
  }
  if (X509_cmp_current_time(X509_get0_notBefore(cert.get())) >= 0) {
    return core::Status::invalid("--tls-cert: the certificate in " + cert_path +
                                 " is not valid before " +
                                 format_time(to_unix(X509_get0_notBefore(cert.get()))));
  }

  std::shared_ptr<SSL_CTX> ctx(SSL_CTX_new(TLS_server_method()), SSL_CTX_free);
  if (!ctx) return core::Status::internal("TLS: cannot create a context: " + openssl_reason());
  SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION);
  SSL_CTX_set_options(
      ctx.get(), SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
  SSL_CTX_set_mode(ctx.get(), SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  if (SSL_CTX_set_cipher_list(ctx.get(), kTls12Ciphers) != 1) {
    return core::Status::internal("TLS: cipher list refused: " + openssl_reason());
  }
  // The leaf and any intermediates after it in the file (a full chain, as
  // certbot's fullchain.pem), so clients that only know the root verify it.
  if (SSL_CTX_use_certificate_chain_file(ctx.get(), cert_path.c_str()) != 1) {
    return core::Status::invalid("--tls-cert: " + cert_path +
                                 " could not be used: " + openssl_reason());
  }
  if (SSL_CTX_use_PrivateKey(ctx.get(), key.get()) != 1 ||
      SSL_CTX_check_private_key(ctx.get()) != 1) {
    return core::Status::invalid("--tls-key: " + key_path +
                                 " does not match the certificate in --tls-cert " + cert_path +
                                 " (" + openssl_reason() + ")");
  }
  return Loaded{std::move(ctx), info};
}

int ms_left(std::chrono::steady_clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                        deadline - std::chrono::steady_clock::now())
                        .count();
  return left <= 0 ? 0 : static_cast<int>(std::min<long long>(left, 1 << 30));
}

}  // namespace

core::Status check_tls_pair(const std::string& cert_path, const std::string& key_path) {
  auto loaded = load(cert_path, key_path);
  return loaded ? core::Status::ok() : loaded.status();
}

core::Status check_ca_file(const std::string& path) {
  auto bio = open_file("--ca-file", path);
  if (!bio) return bio.status();
  X509Ptr cert(PEM_read_bio_X509(bio->get(), nullptr, no_password, nullptr));
  ERR_clear_error();
  if (!cert) return core::Status::invalid("--ca-file: " + path + " holds no PEM certificate");
  return core::Status::ok();
}

core::Result<std::unique_ptr<TlsServerContext>> TlsServerContext::open(std::string cert_path,
                                                                       std::string key_path) {
  reloads("ok");
  reloads("failed");
  auto loaded = load(cert_path, key_path);
  if (!loaded) return loaded.status();
  std::unique_ptr<TlsServerContext> tls(
      new TlsServerContext(std::move(cert_path), std::move(key_path)));
  tls->ctx_ = std::move(loaded->ctx);
  tls->info_ = loaded->info;
  not_after_gauge().set(static_cast<double>(tls->info_.not_after_unix));
  return tls;
}

core::Result<CertInfo> TlsServerContext::reload() {
  auto loaded = load(cert_path_, key_path_);
  if (!loaded) {
    reloads("failed").inc();
    return loaded.status();
  }
  {
    std::lock_guard lock(mu_);
    ctx_ = std::move(loaded->ctx);
    info_ = loaded->info;
  }
  not_after_gauge().set(static_cast<double>(loaded->info.not_after_unix));
  reloads("ok").inc();
  return loaded->info;
}

CertInfo TlsServerContext::info() const {
  std::lock_guard lock(mu_);
  return info_;
}

SslPtr TlsServerContext::accept(int fd, int timeout_ms) const {
  std::shared_ptr<SSL_CTX> ctx;
  {
    std::lock_guard lock(mu_);
    ctx = ctx_;
  }
  const int flags = ::fcntl(fd, F_GETFL, 0);
  if (flags < 0 || ::fcntl(fd, F_SETFL, flags | O_NONBLOCK) != 0) return nullptr;
  SslPtr ssl(SSL_new(ctx.get()));  // holds its own reference to ctx
  if (!ssl || SSL_set_fd(ssl.get(), fd) != 1) {
    ERR_clear_error();
    return nullptr;
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  for (;;) {
    ERR_clear_error();
    const int r = SSL_accept(ssl.get());
    if (r == 1) return ssl;
    const int err = SSL_get_error(ssl.get(), r);
    short events = 0;
    if (err == SSL_ERROR_WANT_READ) events = POLLIN;
    if (err == SSL_ERROR_WANT_WRITE) events = POLLOUT;
    if (events == 0) {
      ERR_clear_error();
      return nullptr;
    }
    pollfd p{fd, events, 0};
    const int ms = ms_left(deadline);
    const int n = ms == 0 ? 0 : ::poll(&p, 1, ms);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return nullptr;
  }
}

}  // namespace app
